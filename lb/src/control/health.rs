//! Health checks and MAC resolution of the backends.
//!
//! Contract:
//! * One task per backend listed in the config, every `interval` (the first at once): when the
//!   backend's interface has MACs and its MAC is unknown, ask the kernel (`neigh::resolve`,
//!   bounded by `timeout`, on a blocking thread); when known, refresh it from the neighbour
//!   table; then probe it (`crate::health::probe`: TCP connect or HTTP GET, bounded by `timeout`) and
//!   feed the rise/fall state machine. The probe itself keeps the kernel's entry fresh.
//! * Each state change (health or MAC) is logged on one line and rebuilds the services.
//! * [`restart`] stops the previous generation of tasks and starts one for the current state
//!   (at start and after each reload); backends removed from the config are not checked.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::state::{ServiceId, State};
use super::{lock, Inner, Links};
use crate::config::CheckKind;
use crate::health::{probe, ProbeKind};
use crate::iface::format_mac;

/// What one backend's task needs to know.
struct Target {
    service: ServiceId,
    index: usize,
    ip: Ipv4Addr,
    probe_addr: SocketAddr,
    probe: Option<ProbeKind>,
    /// The interface to resolve the MAC on; `None` when it has no MACs.
    device: Option<String>,
    interval: Duration,
    timeout: Duration,
}

/// Stops the running health tasks and starts one per backend of the current config.
pub(super) fn restart(inner: &Arc<Inner>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let old = std::mem::replace(&mut *lock(&inner.health_stop), stop_tx);
    let _ = old.send(true);
    let targets = targets(&lock(&inner.state), &inner.links);
    for target in targets {
        tokio::spawn(check_loop(Arc::clone(inner), target, stop_rx.clone()));
    }
}

fn targets(state: &State, links: &Links) -> Vec<Target> {
    let mut out = Vec::new();
    for s in &state.services {
        let h = &s.config.health;
        let device = links.device(s.config.mode);
        let device = (device.mac != [0; 6]).then(|| device.name.clone());
        for (index, b) in s.backends.iter().enumerate().filter(|(_, b)| b.in_config) {
            out.push(Target {
                service: s.id(),
                index,
                ip: b.ip,
                probe_addr: SocketAddr::from((b.ip, h.port.unwrap_or(b.port))),
                probe: match &h.kind {
                    CheckKind::Tcp => Some(ProbeKind::Tcp),
                    CheckKind::Http { path, expect } => Some(ProbeKind::Http {
                        path: path.clone(),
                        expect: *expect,
                    }),
                    CheckKind::None => None,
                },
                device: device.clone(),
                interval: h.interval,
                timeout: h.timeout,
            });
        }
    }
    out
}

async fn check_loop(inner: Arc<Inner>, t: Target, mut stop: watch::Receiver<bool>) {
    if t.device.is_none() && t.probe.is_none() {
        return; // Nothing to check: the backend stays up.
    }
    let mut ticker = tokio::time::interval(t.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let addr = t.probe_addr;
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            _ = ticker.tick() => {}
        }
        if let Some(device) = &t.device {
            let known = lock(&inner.state)
                .backend_mut(t.service, t.index)
                .and_then(|b| b.mac);
            let mac = resolve(t.ip, device, t.timeout, known.is_none())
                .await
                .or(known);
            if *stop.borrow() {
                return;
            }
            if inner.change("MAC change", |s| {
                let changed = s.set_mac(t.service, t.index, mac);
                (changed, changed)
            }) {
                match mac {
                    Some(m) => {
                        tracing::info!(backend = %addr, mac = %format_mac(m), "backend MAC resolved")
                    }
                    None => {
                        tracing::warn!(backend = %addr, "backend down: no ARP reply");
                        inner.access.log(super::events::Event::Backend {
                            time: SystemTime::now(),
                            vip: t.service.0.to_string(),
                            backend: addr.to_string(),
                            state: "down",
                            detail: "no ARP reply".into(),
                        });
                    }
                }
            }
        }
        let Some(kind) = &t.probe else { continue };
        let outcome = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            o = probe(addr, kind, t.timeout) => o,
        };
        let detail = outcome.detail.clone();
        let changed = inner.change("health change", |s| {
            let changed = s.on_check(t.service, t.index, outcome, SystemTime::now());
            let apply = changed.is_some();
            (changed, apply)
        });
        if let Some(new) = changed {
            tracing::info!(backend = %addr, vip = %t.service.0, state = new.as_str(), %detail, "backend health changed");
            inner.access.log(super::events::Event::Backend {
                time: SystemTime::now(),
                vip: t.service.0.to_string(),
                backend: addr.to_string(),
                state: new.as_str(),
                detail,
            });
        }
    }
}

/// The MAC of `ip` on `device`: asking the network when `ask`, else only reading the table.
async fn resolve(ip: Ipv4Addr, device: &str, timeout: Duration, ask: bool) -> Option<[u8; 6]> {
    let device = device.to_owned();
    let found = tokio::task::spawn_blocking(move || {
        if ask {
            crate::neigh::resolve(ip, &device, timeout)
        } else {
            crate::neigh::lookup(ip, &device)
        }
    })
    .await;
    match found {
        Ok(Ok(mac)) => mac,
        Ok(Err(e)) => {
            tracing::warn!(backend = %ip, error = %e, "neighbour lookup failed");
            None
        }
        Err(e) => {
            tracing::warn!(backend = %ip, error = %e, "neighbour lookup task failed");
            None
        }
    }
}

/// Resolves every unknown MAC once, concurrently (before the first apply).
pub(super) async fn resolve_all(state: &mut State, links: &Links) {
    let mut jobs = tokio::task::JoinSet::new();
    for s in &state.services {
        let device = links.device(s.config.mode);
        if device.mac == [0; 6] {
            continue;
        }
        for (index, b) in s
            .backends
            .iter()
            .enumerate()
            .filter(|(_, b)| b.mac.is_none())
        {
            let (id, ip, name, timeout) =
                (s.id(), b.ip, device.name.clone(), s.config.health.timeout);
            jobs.spawn(async move { (id, index, ip, resolve(ip, &name, timeout, true).await) });
        }
    }
    while let Some(joined) = jobs.join_next().await {
        if let Ok((id, index, ip, mac)) = joined {
            if mac.is_none() {
                tracing::warn!(service = %id.0, backend = %ip, "no ARP reply; backend down until it answers");
            }
            state.set_mac(id, index, mac);
        }
    }
}
