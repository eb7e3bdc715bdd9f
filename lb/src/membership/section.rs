//! `[cluster]`: a cache node's place in the cluster (absent: a single node), the section
//! [`super::Membership`] starts from; the director builds one as an observer
//! (`crate::control::cluster::section`).
//!
//! ```toml
//! [cluster]
//! peer_listen = "10.0.0.11:7070"     # peer protocol (TCP); advertised to the other nodes
//! gossip_listen = "10.0.0.11:7946"   # membership (UDP); advertised to the other nodes
//! seeds = ["10.0.0.12:7946"]         # gossip addresses to join through; may be empty
//! weight = 100                       # 1..=10000, share of the keys this node owns
//! secret_file = "/etc/strait/cluster.key"  # optional: authenticates gossip datagrams
//! probe_interval = "200ms"           # SWIM probe period
//! suspect_timeout = "1300ms"         # a suspect not heard from in this long is dead
//! handover_window = "5m"             # after joining, ask a key's previous owner first ("0s": never)
//! handover_min_lead = "10s"          # ... if it had been running this long when we started
//! lease_timeout = "3s"               # a fill lease's holder silent this long is replaced
//! peer_timeout = "1s"                # a key's owner that does not answer in this long is skipped
//! ```
//!
//! Contract: both listen addresses are advertised, so they must name a concrete address and
//! port (no `0.0.0.0`, no port 0). The secret file is read when the config is loaded (a path
//! relative to the working directory); the key is its bytes without trailing whitespace, at
//! least [`MIN_SECRET_LEN`] of them. `[cluster]` is read at start only: a reload that changes
//! it is reported by [`restart_only_changes`] and the running membership stays. The handover
//! timings and `lease_timeout` are the cache node's (its `http::handover`, `http::lease`); they
//! ride in this section because they are written in it and read with it.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

use crate::config::{Diagnostic, Locator, Seg};

/// Default weight of a node.
pub const DEFAULT_CLUSTER_WEIGHT: u32 = 100;
/// Largest `cluster.weight` accepted (a node's relative share of the keys).
pub const MAX_CLUSTER_WEIGHT: u32 = 10_000;
/// Default SWIM probe period. Each node probes one member per period, in a shuffled round
/// over the others, so the first probe of a crashed node waits on the order of one period
/// (the least of the others' places in their rounds) and, in a 10-node cluster, more than 1.2
/// s about once in 10^4 deaths at 200 ms (against once in 40 at 500 ms, which made 3.35 s
/// detections): see `DEFAULT_SUSPECT_TIMEOUT`.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_millis(200);
/// Default time a suspect member has to refute the suspicion before it is declared dead. A
/// crashed node is dead to every member after the wait for its first probe, one probe period
/// (the failed probe), this, and the spread of the news (0.1-0.3 s): 1.8-2.0 s in most runs
/// of a 10-node cluster, under 3 s in all (`tests/cluster_scale.rs`). A live node that stops
/// answering gossip (busy, paused) for less than the probe period and this (1.5 s, against
/// 2 s before) refutes the suspicion when it resumes and is not declared dead: a 1 s pause
/// is tested, 1.4 s held in three runs.
pub const DEFAULT_SUSPECT_TIMEOUT: Duration = Duration::from_millis(1300);
/// Default `handover_window`: for 5 minutes after joining, a node asks a key's previous
/// owner before the origin.
pub const DEFAULT_HANDOVER_WINDOW: Duration = Duration::from_secs(300);
/// Default `handover_min_lead`: the previous owner is asked only when it had been running
/// at least 10 s longer than this node.
pub const DEFAULT_HANDOVER_MIN_LEAD: Duration = Duration::from_secs(10);
/// Default `lease_timeout`: the owner waits this long for each frame of a fill lease
/// holder's push before it takes the fill over.
pub const DEFAULT_LEASE_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest `lease_timeout`.
const MAX_LEASE_TIMEOUT: Duration = Duration::from_secs(600);
/// Default `peer_timeout`: a key's owner that has not started answering a lookup (or
/// completed the connection handshake) within 1 s is passed over for the next node, and
/// suspected locally for a while (the cache node's `cluster::suspect`).
pub const DEFAULT_PEER_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest `peer_timeout`.
const MAX_PEER_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest `handover_window`.
const MAX_HANDOVER_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Shortest key accepted in `secret_file`.
pub const MIN_SECRET_LEN: usize = 16;
/// Bounds of `probe_interval`.
const MIN_PROBE_INTERVAL: Duration = Duration::from_millis(50);
const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(60);
/// Most seeds listed.
const MAX_SEEDS: usize = 64;

/// `[cluster]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Where the peer protocol listens; advertised to the other nodes.
    pub peer_listen: Spanned<SocketAddr>,
    /// Where gossip (UDP) listens; advertised to the other nodes.
    pub gossip_listen: Spanned<SocketAddr>,
    /// Gossip addresses of nodes to join through (this node's own address is skipped).
    #[serde(default = "no_seeds")]
    pub seeds: Spanned<Vec<Spanned<SocketAddr>>>,
    /// Relative share of the keys this node owns.
    #[serde(default = "default_weight")]
    pub weight: Spanned<u32>,
    /// A file holding the cluster key; absent: gossip is not authenticated.
    #[serde(default)]
    pub secret_file: Option<Spanned<PathBuf>>,
    /// `true`: run without `secret_file` although the listeners are reachable from other
    /// hosts (a network only the nodes reach); refused otherwise.
    #[serde(default)]
    pub insecure: Option<Spanned<bool>>,
    /// SWIM probe period.
    #[serde(
        default = "default_probe_interval",
        with = "crate::config::units::duration"
    )]
    pub probe_interval: Duration,
    /// How long a suspect stays suspect before it is declared dead.
    #[serde(
        default = "default_suspect_timeout",
        with = "crate::config::units::duration"
    )]
    pub suspect_timeout: Duration,
    /// How long after joining this node asks a key's previous owner before the origin
    /// (`http::handover`); zero: never.
    #[serde(
        default = "default_handover_window",
        with = "crate::config::units::duration"
    )]
    pub handover_window: Duration,
    /// ... when that owner had been running at least this long when this node started.
    #[serde(
        default = "default_handover_min_lead",
        with = "crate::config::units::duration"
    )]
    pub handover_min_lead: Duration,
    /// How long the owner waits for each frame of the push of a fill lease it granted (after
    /// the holder's origin answered) before it takes the fill over (`http::lease`).
    #[serde(
        default = "default_lease_timeout",
        with = "crate::config::units::duration"
    )]
    pub lease_timeout: Duration,
    /// How long a request waits for a peer's first answer (and for the connection handshake)
    /// before the key's next node takes the request over.
    #[serde(
        default = "default_peer_timeout",
        with = "crate::config::units::duration"
    )]
    pub peer_timeout: Duration,
    /// The key read from `secret_file` when the config was loaded.
    #[serde(skip)]
    pub secret: Secret,
}

/// The cluster key; its `Debug` never shows the bytes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Option<Arc<[u8]>>);

impl Secret {
    /// The key, when one was configured.
    pub fn key(&self) -> Option<Arc<[u8]>> {
        self.0.clone()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(k) => write!(f, "Secret({} bytes)", k.len()),
            None => f.write_str("Secret(none)"),
        }
    }
}

fn no_seeds() -> Spanned<Vec<Spanned<SocketAddr>>> {
    Spanned::new(0..0, Vec::new())
}
fn default_weight() -> Spanned<u32> {
    Spanned::new(0..0, DEFAULT_CLUSTER_WEIGHT)
}
fn default_probe_interval() -> Duration {
    DEFAULT_PROBE_INTERVAL
}
fn default_suspect_timeout() -> Duration {
    DEFAULT_SUSPECT_TIMEOUT
}
fn default_handover_window() -> Duration {
    DEFAULT_HANDOVER_WINDOW
}
fn default_handover_min_lead() -> Duration {
    DEFAULT_HANDOVER_MIN_LEAD
}
fn default_lease_timeout() -> Duration {
    DEFAULT_LEASE_TIMEOUT
}

fn default_peer_timeout() -> Duration {
    DEFAULT_PEER_TIMEOUT
}

/// The key in a secret file's bytes: trailing whitespace trimmed, at least [`MIN_SECRET_LEN`].
pub fn secret_from_bytes(bytes: &[u8]) -> Result<Arc<[u8]>, String> {
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    if end < MIN_SECRET_LEN {
        return Err(format!(
            "the key is {end} bytes long (after trimming trailing whitespace); at least \
             {MIN_SECRET_LEN} are needed"
        ));
    }
    Ok(Arc::from(&bytes[..end]))
}

/// Read `secret_file` into `secret`; a problem is reported at the `secret_file` value.
pub fn read_secret(cluster: &mut ClusterSection, loc: &Locator<'_>) -> Option<Diagnostic> {
    let file = cluster.secret_file.as_ref()?;
    let path = file.get_ref();
    let key = std::fs::read(path)
        .map_err(|e| format!("cannot read: {e}"))
        .and_then(|b| secret_from_bytes(&b));
    match key {
        Ok(key) => {
            cluster.secret = Secret(Some(key));
            None
        }
        Err(why) => Some(loc.at(
            file.span(),
            &[Seg::Key("cluster"), Seg::Key("secret_file")],
            format!("cluster.secret_file {}: {why}", path.display()),
        )),
    }
}

/// Problems of `[cluster]`: advertised addresses, seeds, weight and timings.
pub fn check(c: &ClusterSection, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    for (key, addr) in [
        ("peer_listen", &c.peer_listen),
        ("gossip_listen", &c.gossip_listen),
    ] {
        if let Some(why) = not_advertisable(*addr.get_ref()) {
            out.push(loc.at(
                addr.span(),
                &[Seg::Key("cluster"), Seg::Key(key)],
                format!("cluster.{key} {} {why}", addr.get_ref()),
            ));
        }
    }
    let insecure = c.insecure.as_ref().is_some_and(|v| *v.get_ref());
    let exposed = [
        ("peer_listen", &c.peer_listen),
        ("gossip_listen", &c.gossip_listen),
    ]
    .into_iter()
    .find(|(_, a)| !a.get_ref().ip().is_loopback());
    if let (None, false, Some((key, addr))) = (&c.secret_file, insecure, exposed) {
        out.push(loc.at(
            addr.span(),
            &[Seg::Key("cluster"), Seg::Key(key)],
            format!(
                "cluster.{key} {} is reachable from other hosts but [cluster] has no \
                 secret_file: any host that reaches it could join the cluster, be given keys \
                 and answer for them. Set secret_file (a file of at least {MIN_SECRET_LEN} \
                 bytes, the same on every node), or insecure = true on a network only the \
                 nodes reach",
                addr.get_ref()
            ),
        ));
    }
    let seeds = c.seeds.get_ref();
    if seeds.len() > MAX_SEEDS {
        out.push(loc.at(
            c.seeds.span(),
            &[Seg::Key("cluster"), Seg::Key("seeds")],
            format!(
                "cluster.seeds lists {} addresses; at most {MAX_SEEDS}",
                seeds.len()
            ),
        ));
    }
    for (i, seed) in seeds.iter().enumerate() {
        let addr = *seed.get_ref();
        let path = [Seg::Key("cluster"), Seg::Key("seeds"), Seg::Idx(i)];
        if let Some(why) = not_advertisable(addr) {
            out.push(loc.at(seed.span(), &path, format!("cluster.seeds: {addr} {why}")));
        } else if seeds[..i].iter().any(|s| *s.get_ref() == addr) {
            out.push(loc.at(
                seed.span(),
                &path,
                format!("cluster.seeds lists {addr} twice"),
            ));
        }
    }
    let weight = *c.weight.get_ref();
    if weight == 0 || weight > MAX_CLUSTER_WEIGHT {
        out.push(loc.at(
            c.weight.span(),
            &[Seg::Key("cluster"), Seg::Key("weight")],
            format!("cluster.weight must be 1 to {MAX_CLUSTER_WEIGHT}, not {weight}"),
        ));
    }
    if !(MIN_PROBE_INTERVAL..=MAX_PROBE_INTERVAL).contains(&c.probe_interval) {
        out.push(loc.at(
            0..0,
            &[Seg::Key("cluster"), Seg::Key("probe_interval")],
            format!(
                "cluster.probe_interval must be 50ms to 60s, not {}",
                humantime::format_duration(c.probe_interval)
            ),
        ));
    }
    if c.handover_window > MAX_HANDOVER_WINDOW {
        out.push(loc.at(
            0..0,
            &[Seg::Key("cluster"), Seg::Key("handover_window")],
            format!(
                "cluster.handover_window must be at most 1day, not {}",
                humantime::format_duration(c.handover_window)
            ),
        ));
    }
    if c.lease_timeout.is_zero() || c.lease_timeout > MAX_LEASE_TIMEOUT {
        out.push(loc.at(
            0..0,
            &[Seg::Key("cluster"), Seg::Key("lease_timeout")],
            format!(
                "cluster.lease_timeout must be greater than 0 and at most 10m, not {}",
                humantime::format_duration(c.lease_timeout)
            ),
        ));
    }
    if c.peer_timeout.is_zero() || c.peer_timeout > MAX_PEER_TIMEOUT {
        out.push(loc.at(
            0..0,
            &[Seg::Key("cluster"), Seg::Key("peer_timeout")],
            format!(
                "cluster.peer_timeout must be greater than 0 and at most 1m, not {}",
                humantime::format_duration(c.peer_timeout)
            ),
        ));
    }
    if c.suspect_timeout < c.probe_interval {
        out.push(loc.at(
            0..0,
            &[Seg::Key("cluster"), Seg::Key("suspect_timeout")],
            format!(
                "cluster.suspect_timeout ({}) must be at least probe_interval ({})",
                humantime::format_duration(c.suspect_timeout),
                humantime::format_duration(c.probe_interval)
            ),
        ));
    }
}

/// Why other nodes could not reach `addr`, if they could not.
fn not_advertisable(addr: SocketAddr) -> Option<&'static str> {
    if addr.ip().is_unspecified() {
        Some("is unspecified; other nodes must be able to reach this address")
    } else if addr.port() == 0 {
        Some("has port 0; other nodes must know the port")
    } else if addr.ip().is_multicast() {
        Some("is a multicast address")
    } else {
        None
    }
}

/// What a reload from `old` to `new` would change in `[cluster]`, which applies at start only
/// (`None`: nothing changed). The message names the settings.
pub fn restart_only_changes(
    old: Option<&ClusterSection>,
    new: Option<&ClusterSection>,
) -> Option<String> {
    match (old, new) {
        (None, None) => None,
        (None, Some(_)) => Some("adding [cluster] needs a restart".to_owned()),
        (Some(_), None) => Some("removing [cluster] needs a restart".to_owned()),
        (Some(o), Some(n)) => {
            let mut changed = Vec::new();
            if o.peer_listen.get_ref() != n.peer_listen.get_ref() {
                changed.push("peer_listen");
            }
            if o.gossip_listen.get_ref() != n.gossip_listen.get_ref() {
                changed.push("gossip_listen");
            }
            let seeds = |c: &ClusterSection| -> Vec<SocketAddr> {
                c.seeds.get_ref().iter().map(|s| *s.get_ref()).collect()
            };
            if seeds(o) != seeds(n) {
                changed.push("seeds");
            }
            if o.weight.get_ref() != n.weight.get_ref() {
                changed.push("weight");
            }
            if o.secret != n.secret {
                changed.push("secret_file");
            }
            if (o.probe_interval, o.suspect_timeout) != (n.probe_interval, n.suspect_timeout) {
                changed.push("probe_interval/suspect_timeout");
            }
            if (o.handover_window, o.handover_min_lead) != (n.handover_window, n.handover_min_lead)
            {
                changed.push("handover_window/handover_min_lead");
            }
            if o.lease_timeout != n.lease_timeout {
                changed.push("lease_timeout");
            }
            if o.peer_timeout != n.peer_timeout {
                changed.push("peer_timeout");
            }
            (!changed.is_empty()).then(|| {
                format!(
                    "[cluster] {} changed; cluster settings apply at restart only",
                    changed.join(", ")
                )
            })
        }
    }
}
