//! What the admin endpoints show: a [`Snapshot`] of state and datapath counters, rendered as
//! `/stats.json`, the HTML page and `/metrics` (pure functions of the snapshot).
//!
//! `/stats.json` = `{"id", "role" (`standalone`, or with `[ha]` `master`/`backup`), "datapath", "conntrack_entries", "counters":
//! {name: value}, "services": [{"vip", "proto", "mode", "scheduler", "backends": [{"addr",
//! "weight", "effective_weight", "up", "state", "detail", "since", "last_check", "packets",
//! "bytes", "flows"}]}]}`; `since` is RFC 3339 (UTC, seconds). Metrics are prefixed
//! `strait_director_`: per-backend `backend_{packets,bytes,flows}_total`, `backend_up`,
//! `backend_weight` (labels `vip`, `proto`, `backend`), `conntrack_entries`, and each
//! datapath counter as `<name>_total`. With `[ha]`, `/stats.json` has an `ha` block and the
//! metrics the `ha_*` families (`crate::vrrp::status`); with connection sync, a `sync` block
//! and the `sync_*` families (`crate::sync::status`). The HTML page runs no script; a meta
//! refresh reloads it every [`REFRESH_SECS`] s (as the node's stats page).

use std::fmt::{self, Write as _};
use std::time::SystemTime;

use crate::admin::metrics::{build_info, counter, counters, gauge, gauges, DescriptorEncoder};
use html_escape::encode_quoted_attribute as escape;
use serde_json::{json, Value};

/// Seconds between two loads of the HTML page (its meta refresh).
pub(crate) const REFRESH_SECS: u64 = 5;

use super::{lock, Inner};
use crate::datapath::DatapathError;

/// One backend as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendView {
    /// `ip:port`.
    pub addr: String,
    /// Weight in effect: the runtime override's (`strait ctl backend`), else the config's.
    pub weight: u32,
    /// Weight in the table now.
    pub effective_weight: u32,
    /// Takes new flows.
    pub up: bool,
    /// `up`, `down` or `draining`.
    pub state: &'static str,
    /// Why (last check result, "no ARP reply", "removed from config").
    pub detail: String,
    /// Last state change.
    pub since: SystemTime,
    /// Last check result, if any ran.
    pub last_check: Option<String>,
    /// Packets forwarded.
    pub packets: u64,
    /// Bytes forwarded.
    pub bytes: u64,
    /// New flows assigned.
    pub flows: u64,
    /// Runtime control: `ready`, `drain` or `maint`.
    pub admin_state: &'static str,
}

/// One service as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    /// `ip:port`.
    pub vip: String,
    /// `tcp`/`udp`.
    pub proto: &'static str,
    /// `dr`/`tun`/`nat`.
    pub mode: &'static str,
    /// `maglev`/`wrr`/`sh`.
    pub scheduler: &'static str,
    /// Backends by stable index.
    pub backends: Vec<BackendView>,
}

/// Everything the admin endpoints show, at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Director id.
    pub id: String,
    /// Datapath name.
    pub datapath: String,
    /// Entries in the connection table.
    pub conntrack_entries: u64,
    /// Datapath-wide counters.
    pub counters: Vec<(String, u64)>,
    /// Services in config order.
    pub services: Vec<ServiceView>,
    /// `[ha]`: the virtual router's state and counters (`None`: a standalone director).
    pub ha: Option<crate::vrrp::status::HaStatus>,
    /// Connection sync's state and counters (`None`: no sync).
    pub sync: Option<crate::sync::status::SyncStatus>,
    /// Version, config file, reloads and the access log's counters.
    pub config: super::config_view::ConfigView,
}

impl Snapshot {
    /// Reads the state, then the datapath's counters.
    pub(super) fn take(inner: &Inner) -> Result<Snapshot, DatapathError> {
        let id = lock(&inner.config).id.clone();
        let ha = lock(&inner.ha).as_ref().map(|r| r.status());
        let sync = lock(&inner.sync).as_ref().map(|r| r.status());
        let (keys, mut services): (Vec<_>, Vec<_>) = lock(&inner.state)
            .services
            .iter()
            .map(|s| {
                let backends = s
                    .backends
                    .iter()
                    .map(|b| {
                        let (state, detail) = b.status();
                        BackendView {
                            addr: b.addr().to_string(),
                            weight: b.admin.weight(b.weight),
                            effective_weight: b.effective_weight(),
                            up: state == "up",
                            state,
                            detail,
                            since: b.health.since(),
                            last_check: b.health.last_check().map(|c| c.detail.clone()),
                            packets: 0,
                            bytes: 0,
                            flows: 0,
                            admin_state: b.admin.state.as_str(),
                        }
                    })
                    .collect();
                let view = ServiceView {
                    vip: s.config.vip.to_string(),
                    proto: s.config.proto.as_str(),
                    mode: s.config.mode.as_str(),
                    scheduler: s.config.scheduler.as_str(),
                    backends,
                };
                (s.key(), view)
            })
            .unzip();
        let datapath = lock(&inner.datapath);
        for (key, view) in keys.iter().zip(services.iter_mut()) {
            // A service the datapath does not hold (its last apply failed) shows zeros
            // rather than hiding every other service.
            let stats = match datapath.backend_stats(key) {
                Ok(stats) => stats,
                Err(e) => {
                    tracing::warn!(vip = %view.vip, error = %e, "no counters for service");
                    Vec::new()
                }
            };
            for (b, st) in view.backends.iter_mut().zip(stats) {
                b.packets = st.packets;
                b.bytes = st.bytes;
                b.flows = st.flows;
            }
        }
        let mut config = lock(&inner.reloads).clone();
        config.access_lines = inner.access.written();
        config.access_dropped = inner.access.dropped();
        config.access_failed = inner.access.failed();
        Ok(Snapshot {
            config,
            id,
            datapath: inner.datapath_name.clone(),
            conntrack_entries: datapath.conn_count()?,
            counters: datapath
                .counters()?
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v))
                .collect(),
            services,
            ha,
            sync,
        })
    }

    /// `master` or `backup` with `[ha]`, else `standalone`.
    pub fn role(&self) -> &'static str {
        self.ha.as_ref().map_or("standalone", |h| h.role())
    }

    /// `/stats.json` (see the module doc).
    pub fn to_json(&self) -> Value {
        let counters: serde_json::Map<String, Value> = self
            .counters
            .iter()
            .map(|(n, v)| (n.clone(), json!(v)))
            .collect();
        let services: Vec<Value> = self
            .services
            .iter()
            .map(|s| {
                let backends: Vec<Value> = s
                    .backends
                    .iter()
                    .map(|b| {
                        json!({
                            "addr": b.addr, "weight": b.weight,
                            "effective_weight": b.effective_weight, "up": b.up,
                            "state": b.state, "detail": b.detail,
                            "since": humantime::format_rfc3339_seconds(b.since).to_string(),
                            "last_check": b.last_check, "packets": b.packets,
                            "bytes": b.bytes, "flows": b.flows, "admin_state": b.admin_state,
                        })
                    })
                    .collect();
                json!({"vip": s.vip, "proto": s.proto, "mode": s.mode,
                       "scheduler": s.scheduler, "backends": backends})
            })
            .collect();
        let mut v = json!({
            "id": self.id, "role": self.role(), "datapath": self.datapath,
            "conntrack_entries": self.conntrack_entries, "counters": counters,
            "services": services,
        });
        if let Some(ha) = &self.ha {
            v["ha"] = ha.to_json();
        }
        if let Some(sync) = &self.sync {
            v["sync"] = sync.to_json();
        }
        self.config.add_json(&mut v);
        v
    }

    /// Every `/metrics` family (see the module doc).
    pub(super) fn encode_metrics(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        build_info(enc)?;
        let backends = || {
            self.services.iter().flat_map(|s| {
                s.backends.iter().map(move |b| {
                    let labels = [
                        ("vip", s.vip.as_str()),
                        ("proto", s.proto),
                        ("backend", b.addr.as_str()),
                    ];
                    (labels, b)
                })
            })
        };
        let packets = backends().map(|(l, b)| (l, b.packets));
        counters(
            enc,
            "backend_packets",
            "Packets forwarded to a backend (rate(): its packets per second)",
            packets,
        )?;
        let bytes = backends().map(|(l, b)| (l, b.bytes));
        counters(enc, "backend_bytes", "Bytes forwarded to a backend", bytes)?;
        let flows = backends().map(|(l, b)| (l, b.flows));
        counters(
            enc,
            "backend_flows",
            "New flows assigned to a backend (rate(): its new flows per second)",
            flows,
        )?;
        let up = backends().map(|(l, b)| (l, u64::from(b.up)));
        let up_help = "1 when a backend takes new flows (up and weight above 0), else 0";
        gauges(enc, "backend_up", up_help, up)?;
        let weight = backends().map(|(l, b)| (l, u64::from(b.effective_weight)));
        gauges(
            enc,
            "backend_weight",
            "A backend's weight in its table now (0 while draining or down)",
            weight,
        )?;
        super::backend_ctl::encode_admin_states(enc, &self.services)?;
        let entries = "Entries in the connection table";
        gauge(enc, "conntrack_entries", entries, self.conntrack_entries)?;
        for (name, value) in &self.counters {
            let help = super::counter_help::help(name).map_or_else(
                || format!("Datapath events counted as {name}"),
                str::to_owned,
            );
            counter(enc, name, &help, *value)?;
        }
        if let Some(ha) = &self.ha {
            ha.encode_metrics(enc)?;
        }
        if let Some(sync) = &self.sync {
            sync.encode_metrics(enc)?;
        }
        self.config.encode_metrics(enc)
    }

    /// The admin page: one table per service (HTML, no script).
    pub(crate) fn to_html(&self) -> String {
        let mut out = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\"><title>strait director {id}</title>\
             <style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}\
             td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}</style></head><body>\
             <h1>strait director {id}</h1><p>{role} · datapath {dp} · connections {conns}</p>",
            id = escape(&self.id),
            role = self.role(),
            dp = escape(&self.datapath),
            conns = self.conntrack_entries
        );
        if let Some(ha) = &self.ha {
            let _ = write!(
                out,
                "<p>ha: vrid {} priority {} · {} since {} ({}) · master {} · adverts sent {} \
                 received {} dropped {}</p>",
                ha.vrid,
                ha.priority,
                ha.state,
                humantime::format_rfc3339_seconds(ha.since),
                escape(&ha.reason),
                ha.master.map_or_else(|| "-".to_owned(), |m| m.to_string()),
                ha.adverts_sent,
                ha.adverts_received,
                ha.dropped_total(),
            );
        }
        if let Some(sync) = &self.sync {
            let _ = write!(out, "<p>{}</p>", escape(&sync.summary()));
        }
        for s in &self.services {
            let _ = write!(
                out,
                "<h2>{} {} ({}, {})</h2><table><tr><th>backend</th><th>state</th><th>weight</th>\
                 <th>packets</th><th>bytes</th><th>flows</th><th>last check</th></tr>",
                escape(&s.vip),
                s.proto,
                s.mode,
                s.scheduler
            );
            for b in &s.backends {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{} ({})</td><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&b.addr),
                    b.state,
                    escape(&b.detail),
                    b.effective_weight,
                    b.weight,
                    b.packets,
                    b.bytes,
                    b.flows,
                    escape(b.last_check.as_deref().unwrap_or("-")),
                );
            }
            out.push_str("</table>");
        }
        self.config.write_html(&mut out);
        out.push_str("</body></html>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        Snapshot {
            id: "d1".into(),
            datapath: "test".into(),
            conntrack_entries: 3,
            counters: vec![("tx_new".into(), 7)],
            services: vec![ServiceView {
                vip: "10.0.0.100:80".into(),
                proto: "tcp",
                mode: "dr",
                scheduler: "maglev",
                backends: vec![BackendView {
                    addr: "10.0.0.11:80".into(),
                    weight: 100,
                    effective_weight: 0,
                    up: false,
                    state: "down",
                    detail: "connect: <refused>".into(),
                    since: SystemTime::UNIX_EPOCH,
                    last_check: Some("connect: <refused>".into()),
                    packets: 5,
                    bytes: 300,
                    flows: 2,
                    admin_state: "ready",
                }],
            }],
            ha: None,
            sync: None,
            config: Default::default(),
        }
    }

    #[test]
    fn json_has_the_documented_shape() {
        let v = sample().to_json();
        assert_eq!(v["role"], "standalone");
        assert_eq!(v["counters"]["tx_new"], 7);
        let b = &v["services"][0]["backends"][0];
        assert_eq!(b["addr"], "10.0.0.11:80");
        assert_eq!(b["since"], "1970-01-01T00:00:00Z");
        assert_eq!(
            (b["packets"].as_u64(), b["flows"].as_u64()),
            (Some(5), Some(2))
        );
        assert_eq!(v["services"][0]["scheduler"], "maglev");
    }

    #[test]
    fn metrics_are_prefixed_and_labelled() {
        let m = crate::admin::Metrics::new("strait_director", |enc| sample().encode_metrics(enc))
            .render()
            .unwrap();
        assert!(m.contains(
            "strait_director_backend_packets_total{vip=\"10.0.0.100:80\",proto=\"tcp\",backend=\"10.0.0.11:80\"} 5"
        ), "{m}");
        assert!(m.contains("strait_director_tx_new_total 7"), "{m}");
        assert!(m.contains("strait_director_conntrack_entries 3"), "{m}");
    }

    #[test]
    fn the_whole_metrics_text_parses_with_ha_and_sync() {
        let mut s = sample();
        s.ha = Some(crate::vrrp::status::HaStatus::new(
            51,
            150,
            std::time::Duration::from_millis(100),
            "eth0".into(),
            vec![],
            vec![std::net::Ipv4Addr::new(10, 0, 0, 100)],
            &["ttl"],
        ));
        s.sync = Some(crate::sync::status::SyncStatus::new(
            std::net::Ipv4Addr::new(10, 0, 0, 2),
            8848,
            vec![std::net::Ipv4Addr::new(10, 0, 0, 3)],
            true,
        ));
        let m = crate::admin::Metrics::new("strait_director", move |enc| s.encode_metrics(enc))
            .render()
            .unwrap();
        crate::admin::metrics::tests::assert_exposition(&m);
        assert!(m.contains("strait_director_build_info{version=\""), "{m}");
        assert!(!m.contains("Datapath events counted as"), "{m}");
    }

    #[test]
    fn page_escapes_details_and_refreshes_without_javascript() {
        let page = sample().to_html();
        assert!(page.contains(&format!(
            "<meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">"
        )));
        assert!(!page.contains("<script"));
        assert!(page.contains("connect: &lt;refused&gt;"));
        assert!(!page.contains("<refused>"));
    }
}
