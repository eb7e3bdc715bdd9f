//! `backends = "cluster"` as plain data: the cache cluster's members as a service's backends,
//! the `[cluster]` section the director joins the gossip with, and what changed between two
//! backend sets (for the log). No I/O; `observer` drives it.
//!
//! Contract:
//! * Members of weight 0 are observers (directors, this one included) and never backends.
//! * Every other member is a backend at its peer address's IP (IPv4 only; the cluster's
//!   addresses are the nodes' addresses) and the service's VIP port, in snapshot order (by
//!   id). Alive and suspect members (live, as for key ownership) get their cluster weight
//!   (1..=10000, within the director's 0..=65535); a dead one (it failed or left) gets weight
//!   0: it drains, no new flows, established flows keep it, until gossip forgets it
//!   (`crate::membership::gossip::DEAD_RETENTION`) and it leaves the set (then the state
//!   keeps it draining, as a backend removed by a reload).
//! * Two members on one IP (a node restarted under another id) are one backend: the live one
//!   (the larger weight) wins.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_spanned::Spanned;

use crate::config::{BackendConfig, ClusterConfig, DirectorConfig, ServiceConfig};
use crate::membership::{ClusterSection, Member, Secret};

/// The backends of a cluster service on `port` (see the module doc).
pub(super) fn backends(members: &[Member], port: u16) -> Vec<BackendConfig> {
    let mut out: Vec<BackendConfig> = Vec::new();
    for m in members.iter().filter(|m| m.weight > 0) {
        let IpAddr::V4(ip) = m.peer_addr.ip() else {
            continue;
        };
        let weight = if m.state.is_live() {
            m.weight.min(u32::from(u16::MAX))
        } else {
            0
        };
        match out.iter_mut().find(|b| b.ip == ip) {
            Some(b) => b.weight = b.weight.max(weight),
            None => out.push(BackendConfig { ip, port, weight }),
        }
    }
    out
}

/// `config` with every cluster service's backends taken from `members`.
pub(super) fn fill(config: &DirectorConfig, members: &[Member]) -> DirectorConfig {
    let mut out = config.clone();
    for s in out.services.iter_mut().filter(|s| s.cluster) {
        s.backends = backends(members, s.vip.port());
    }
    out
}

/// The `[cluster]` section the director joins the gossip with: an observer of weight 0 (no
/// key ownership, no peer protocol: its peer address is its gossip address, where nothing
/// answers the peer protocol), no handover.
pub(super) fn section(c: &ClusterConfig) -> ClusterSection {
    let at = |a: SocketAddr| Spanned::new(0..0, a);
    ClusterSection {
        peer_listen: at(c.gossip_listen),
        gossip_listen: at(c.gossip_listen),
        seeds: Spanned::new(0..0, c.seeds.iter().map(|s| at(*s)).collect()),
        weight: Spanned::new(0..0, 0),
        secret_file: None,
        // Checked where the director's own [cluster] is validated (`config::cluster`).
        insecure: None,
        probe_interval: c.probe_interval,
        suspect_timeout: c.suspect_timeout,
        handover_window: Duration::ZERO,
        handover_min_lead: Duration::ZERO,
        lease_timeout: crate::membership::section::DEFAULT_LEASE_TIMEOUT,
        peer_timeout: crate::membership::section::DEFAULT_PEER_TIMEOUT,
        secret: Secret::default(),
    }
}

/// How a cluster service's backend set changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Changes {
    /// New backends, with their weights.
    pub added: Vec<(Ipv4Addr, u32)>,
    /// Backends whose weight went to 0 (their member died or left).
    pub drained: Vec<Ipv4Addr>,
    /// Backends with another weight above 0 (back alive, or reweighted).
    pub(crate) reweighted: Vec<(Ipv4Addr, u32)>,
    /// Backends no longer in the set (gossip forgot them).
    pub removed: Vec<Ipv4Addr>,
}

impl Changes {
    /// Whether nothing changed.
    pub(super) fn is_empty(&self) -> bool {
        *self == Changes::default()
    }
}

/// What changed from `old` to `new` (backends matched by address).
pub(super) fn changes(old: &[BackendConfig], new: &[BackendConfig]) -> Changes {
    let mut c = Changes::default();
    for n in new {
        match old.iter().find(|o| (o.ip, o.port) == (n.ip, n.port)) {
            None => c.added.push((n.ip, n.weight)),
            Some(o) if o.weight == n.weight => {}
            Some(_) if n.weight == 0 => c.drained.push(n.ip),
            Some(_) => c.reweighted.push((n.ip, n.weight)),
        }
    }
    for o in old {
        if !new.iter().any(|n| (n.ip, n.port) == (o.ip, o.port)) {
            c.removed.push(o.ip);
        }
    }
    c
}

/// The cluster services of `new` whose backends differ from `old`'s, with the changes.
pub(super) fn service_changes<'a>(
    old: &DirectorConfig,
    new: &'a DirectorConfig,
) -> Vec<(&'a ServiceConfig, Changes)> {
    new.services
        .iter()
        .filter(|s| s.cluster)
        .filter_map(|s| {
            let before = old
                .services
                .iter()
                .find(|o| (o.vip, o.proto) == (s.vip, s.proto))
                .map_or(&[][..], |o| &o.backends[..]);
            let c = changes(before, &s.backends);
            (!c.is_empty()).then_some((s, c))
        })
        .collect()
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
