//! Validation of the director's `[cluster]`: how it joins the cache cluster's gossip as an
//! observer, for services with `backends = "cluster"`.
//!
//! ```toml
//! [cluster]
//! gossip_listen = "10.0.0.3:7946"      # required; advertised, so a concrete ip:port
//! seeds = ["10.0.0.11:7946"]           # gossip addresses of nodes to join through
//! secret_file = "/etc/strait/cluster.key"  # the nodes' key (>= 16 bytes after trimming)
//! probe_interval = "200ms"             # 50ms..=60s
//! suspect_timeout = "1300ms"           # at least probe_interval
//! ```
//!
//! Rules: the node's `[cluster]` rules for the keys they share (`crate::membership::section`), each
//! problem at its value. The secret file is read here (a path relative to the working
//! directory), as the node reads its own when its config is loaded.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_spanned::Spanned;

use super::types::RawCluster;
use super::validate::{parse_duration, Report};
use crate::membership::section::{
    secret_from_bytes, DEFAULT_PROBE_INTERVAL, DEFAULT_SUSPECT_TIMEOUT,
};

/// Most seeds listed (the node's bound).
const MAX_SEEDS: usize = 64;
/// Bounds of `probe_interval` (the node's).
const PROBE_INTERVAL: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(50)..=Duration::from_secs(60);

/// A validated director `[cluster]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Where the director's gossip listens (UDP); advertised to the nodes.
    pub gossip_listen: SocketAddr,
    /// Gossip addresses to join through.
    pub seeds: Vec<SocketAddr>,
    /// The cluster key from `secret_file`; `None`: gossip is not authenticated.
    pub secret: Option<ClusterKey>,
    /// SWIM probe period.
    pub probe_interval: Duration,
    /// How long a suspect member has before it is declared dead.
    pub suspect_timeout: Duration,
}

/// The cluster key; its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey(pub Arc<[u8]>);

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterKey({} bytes)", self.0.len())
    }
}

/// The `[cluster]` described by `raw`, or `None` after reporting why not.
pub(super) fn check_cluster(raw: &RawCluster, r: &mut Report<'_, '_>) -> Option<ClusterConfig> {
    let before = r.out.len();
    let gossip_listen = advertised(&raw.gossip_listen, "cluster.gossip_listen", r);
    let mut seeds = Vec::new();
    if let Some(list) = raw.seeds.as_ref() {
        if list.get_ref().len() > MAX_SEEDS {
            r.at(
                list.span(),
                format!(
                    "cluster.seeds lists {} addresses; at most {MAX_SEEDS}",
                    list.get_ref().len()
                ),
            );
        }
        for seed in list.get_ref() {
            let Some(addr) = advertised(seed, "cluster.seeds:", r) else {
                continue;
            };
            if seeds.contains(&addr) {
                r.at(seed.span(), format!("cluster.seeds lists {addr} twice"));
            } else {
                seeds.push(addr);
            }
        }
    }
    let secret = raw.secret_file.as_ref().and_then(|file| {
        let path = file.get_ref();
        let key = std::fs::read(path)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|b| secret_from_bytes(&b));
        match key {
            Ok(key) => Some(ClusterKey(key)),
            Err(why) => {
                r.at(file.span(), format!("cluster.secret_file {path}: {why}"));
                None
            }
        }
    });
    let insecure = raw.insecure.as_ref().is_some_and(|v| *v.get_ref());
    if let (None, false, Some(addr)) = (&raw.secret_file, insecure, gossip_listen) {
        if !addr.ip().is_loopback() {
            r.at(
                raw.gossip_listen.span(),
                format!(
                    "cluster.gossip_listen {addr} is reachable from other hosts but [cluster] \
                     has no secret_file: any host that reaches it could feed this director \
                     members (backends). Set secret_file (the cluster's key), or \
                     insecure = true on a network only the nodes and directors reach"
                ),
            );
        }
    }
    let probe_interval = duration(
        raw.probe_interval.as_ref(),
        DEFAULT_PROBE_INTERVAL,
        "cluster.probe_interval",
        r,
    );
    if let Some(v) = raw.probe_interval.as_ref() {
        if !PROBE_INTERVAL.contains(&probe_interval) {
            r.at(
                v.span(),
                format!(
                    "cluster.probe_interval {:?} must be 50ms to 60s",
                    v.get_ref()
                ),
            );
        }
    }
    let suspect_timeout = duration(
        raw.suspect_timeout.as_ref(),
        DEFAULT_SUSPECT_TIMEOUT,
        "cluster.suspect_timeout",
        r,
    );
    if suspect_timeout < probe_interval {
        let span = raw
            .suspect_timeout
            .as_ref()
            .or(raw.probe_interval.as_ref())
            .map_or(0..0, Spanned::span);
        r.at(
            span,
            format!(
                "cluster.suspect_timeout ({}) must be at least probe_interval ({})",
                humantime::format_duration(suspect_timeout),
                humantime::format_duration(probe_interval)
            ),
        );
    }
    if r.out.len() > before {
        return None;
    }
    Some(ClusterConfig {
        gossip_listen: gossip_listen?,
        seeds,
        secret,
        probe_interval,
        suspect_timeout,
    })
}

/// An `ip:port` other hosts can reach, or `None` after reporting it under `key`.
fn advertised(v: &Spanned<String>, key: &str, r: &mut Report<'_, '_>) -> Option<SocketAddr> {
    let text = v.get_ref();
    let why = match text.parse::<SocketAddr>() {
        Err(_) => "is not an ip:port address; names are not resolved",
        Ok(a) if a.ip().is_unspecified() => {
            "is unspecified; the nodes must be able to reach this address"
        }
        Ok(a) if a.port() == 0 => "has port 0; the nodes must know the port",
        Ok(a) if a.ip().is_multicast() => "is a multicast address",
        Ok(a) => return Some(a),
    };
    r.at(v.span(), format!("{key} {text:?} {why}"));
    None
}

/// A humantime duration, or `default` when absent or invalid (reported).
fn duration(
    raw: Option<&Spanned<String>>,
    default: Duration,
    key: &str,
    r: &mut Report<'_, '_>,
) -> Duration {
    raw.and_then(|v| parse_duration(v, key, "\"500ms\" or \"2s\"", r))
        .unwrap_or(default)
}
