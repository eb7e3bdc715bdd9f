//! A director's reload (see the crate's `control` module doc): re-read the file, apply what a
//! running director can, name what it cannot (`start_only`), and keep, log and write the
//! outcome (`events`).

use std::sync::Arc;
use std::time::SystemTime;

use super::{cluster, config_view, events, health, lock, Inner};
use crate::config::DirectorConfig;

impl Inner {
    /// Re-reads the config (see the module doc); the outcome is logged on one line, written
    /// to the access log and kept for the admin views.
    pub(super) fn reload(self: &Arc<Self>) -> Result<events::Outcome, String> {
        let loaded = super::backend_ctl::load_text(&self.config_path).map_err(|e| e.to_string());
        let (new, text) = match loaded {
            Ok(v) => v,
            Err(why) => {
                let outcome = events::Outcome {
                    time: SystemTime::now(),
                    applied: false,
                    errors: vec![why.clone()],
                    not_applied: Vec::new(),
                    changes: events::Changes::default(),
                };
                self.record(outcome);
                return Err(why);
            }
        };
        let outcome = {
            let mut running = lock(&self.config);
            let old = &*running;
            let not_applied = start_only(old, &new);
            for key in &not_applied {
                tracing::warn!(key, "{key} changed: it takes effect on restart");
            }
            let changes = events::changes(old, &new);
            let mut kept = new.clone();
            kept.interface = old.interface.clone();
            kept.inner_interface = old.inner_interface.clone();
            kept.datapath = old.datapath;
            kept.xdp_mode = old.xdp_mode;
            kept.admin = old.admin;
            kept.max_conns = old.max_conns;
            kept.threaded_napi = old.threaded_napi;
            kept.icmp = old.icmp;
            kept.new_flow = old.new_flow;
            kept.conn_timeouts = old.conn_timeouts;
            kept.cluster = old.cluster.clone();
            kept.ha = old.ha.clone();
            kept.log = old.log.clone();
            if kept.services.iter().any(|s| s.cluster) && self.membership.is_none() {
                tracing::warn!(
                    "backends = \"cluster\" without a running [cluster]: such services get \
                     no backends until a restart"
                );
            }
            if let Some(m) = &self.membership {
                kept = cluster::fill(&kept, &m.members());
            }
            let links = self.links.clone();
            self.change("reload", |state| {
                state.reconcile_joining(&kept, SystemTime::now(), |m| links.initial_mac(m));
                ((), true)
            });
            if let Some(router) = lock(&self.ha).as_ref() {
                router.set_vips(kept.vips());
            }
            *running = kept;
            *lock(&self.applied_text) = text.clone();
            events::Outcome {
                time: SystemTime::now(),
                applied: true,
                errors: Vec::new(),
                not_applied,
                changes,
            }
        };
        health::restart(self);
        lock(&self.reloads).hash = config_view::hash_text(&text);
        tracing::info!(path = %self.config_path.display(), "config reloaded: {}", outcome.changes.summary());
        self.record(outcome.clone());
        Ok(outcome)
    }

    /// Keeps `outcome` as the last reload and writes its access line.
    fn record(&self, outcome: events::Outcome) {
        {
            let mut r = lock(&self.reloads);
            if outcome.applied {
                r.applied += 1;
            } else {
                r.refused += 1;
            }
            r.last = Some(outcome.clone());
        }
        self.access.log(events::Event::Reload(outcome));
    }
}

/// The `[director]` keys (and sections) a reload cannot apply, where `new` differs from `old`.
fn start_only(old: &DirectorConfig, new: &DirectorConfig) -> Vec<String> {
    let fixed = [
        ("interface", old.interface != new.interface),
        (
            "inner_interface",
            old.inner_interface != new.inner_interface,
        ),
        ("datapath", old.datapath != new.datapath),
        ("xdp_mode", old.xdp_mode != new.xdp_mode),
        ("admin", old.admin != new.admin),
        ("max_conns", old.max_conns != new.max_conns),
        ("threaded_napi", old.threaded_napi != new.threaded_napi),
        ("icmp_rate/icmp_burst", old.icmp != new.icmp),
        ("new_flow_rate/new_flow_burst", old.new_flow != new.new_flow),
        (
            "tcp_timeout/udp_timeout",
            old.conn_timeouts != new.conn_timeouts,
        ),
    ];
    let mut out: Vec<String> = fixed
        .iter()
        .filter(|(_, changed)| *changed)
        .map(|(k, _)| format!("director.{k}"))
        .collect();
    for (section, changed) in [
        ("cluster", old.cluster != new.cluster),
        ("ha", old.ha != new.ha),
        ("log", old.log != new.log),
    ] {
        if changed {
            out.push(section.to_string());
        }
    }
    out
}
