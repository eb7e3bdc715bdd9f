//! Validation of the director's `[ha]`: director failover with VRRPv3 (`crate::vrrp`).
//!
//! ```toml
//! [ha]
//! vrid = 51                     # required, 1..=255; the same on both directors
//! priority = 150                # 1..=254 (default 100); the higher is master
//! advert_interval = "100ms"     # 10ms steps, 10ms..=40.95s (default 1s)
//! preempt = true                # default true
//! preempt_delay = "0s"          # 0..=1000s (default 0)
//! interface = "eth0"            # default: [director] interface
//! peers = ["10.0.0.4"]          # unicast adverts; absent: multicast to 224.0.0.18
//! garp_repeat = 5               # gratuitous ARPs per VIP on becoming master, 1..=100
//! garp_interval = "20ms"        # between them, 0..=10s
//! notify = "/etc/strait/notify" # run as `sh -c 'notify "$1"' notify STATE` on every change
//! # connection sync (sync.rs): sync, secret_file, sync_insecure, sync_port, sync_delay,
//! # sync_refresh, sync_rate, sync_catchup_timeout
//! ```
//!
//! Rules: each key at its value as above. Priority 255 is refused: it belongs to the owner of
//! the addresses, and a strait director never holds its VIPs as interface addresses (its
//! datapath answers ARP for them while master). `peers` are unicast IPv4 addresses, each
//! once, at most [`MAX_PEERS`]; an empty list is refused (omit the key for multicast).
//! The virtual router's addresses are the services' VIPs (`DirectorConfig::vips`).

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_spanned::Spanned;

use super::types::RawHa;
use super::validate::{int_in, interface_name, parse_duration, Report};

mod sync;
pub use sync::{SyncConfig, SyncSecret};

/// Default `priority` (keepalived's and the RFC's default for a backup).
pub const DEFAULT_PRIORITY: u8 = 100;
/// Default `advert_interval` (the RFC's).
pub const DEFAULT_ADVERT_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest and longest `advert_interval` (the advert's 12-bit centisecond field).
pub const ADVERT_INTERVAL: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(10)..=Duration::from_millis(40_950);
/// Longest `preempt_delay` (keepalived's bound).
pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);
/// Default `garp_repeat`.
pub const DEFAULT_GARP_REPEAT: u32 = 5;
/// Default `garp_interval`.
pub const DEFAULT_GARP_INTERVAL: Duration = Duration::from_millis(20);
/// Longest `garp_interval`.
pub const MAX_GARP_INTERVAL: Duration = Duration::from_secs(10);
/// Most `peers`.
pub const MAX_PEERS: usize = 16;

/// A validated `[ha]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    /// Virtual router id, 1..=255: the same on every director of the pair.
    pub vrid: u8,
    /// 1..=254: the director with the higher priority is master.
    pub priority: u8,
    /// Time between adverts while master (a multiple of 10 ms).
    pub advert_interval: Duration,
    /// Whether a higher-priority backup takes the VIPs from a lower-priority master.
    pub preempt: bool,
    /// How long a higher-priority backup waits before preempting.
    pub preempt_delay: Duration,
    /// The interface adverts go out and come in on (`None`: `[director] interface`).
    pub interface: Option<String>,
    /// Unicast peers; empty: multicast to 224.0.0.18.
    pub peers: Vec<Ipv4Addr>,
    /// Gratuitous ARPs sent per VIP on becoming master.
    pub garp_repeat: u32,
    /// Time between two gratuitous ARPs of the burst.
    pub garp_interval: Duration,
    /// A shell command run with the new state (`master`, `backup`, `init`) as argument.
    pub notify: Option<String>,
    /// Connection sync with the peers (`None`: off).
    pub sync: Option<SyncConfig>,
}

/// The `[ha]` described by `raw`, or `None` after reporting why not.
pub(super) fn check_ha(raw: &RawHa, r: &mut Report<'_, '_>) -> Option<HaConfig> {
    let before = r.out.len();
    let vrid = int_in(Some(&raw.vrid), 1, 255, "ha.vrid", r);
    let priority = match raw.priority.as_ref() {
        Some(p) if *p.get_ref() == 255 => {
            r.at(
                p.span(),
                "ha.priority 255 is for the owner of the addresses; a strait director never \
                 holds its VIPs as interface addresses, use 1..=254"
                    .into(),
            );
            None
        }
        p => int_in(p, 1, 254, "ha.priority", r),
    }
    .map_or(DEFAULT_PRIORITY, |p| p as u8);
    let advert_interval = raw
        .advert_interval
        .as_ref()
        .and_then(|v| {
            let d = parse_duration(v, "ha.advert_interval", "\"1s\" or \"100ms\"", r)?;
            let why = if !ADVERT_INTERVAL.contains(&d) {
                "must be 10ms to 40.95s"
            } else if d.as_micros() % 10_000 != 0 {
                "must be a multiple of 10ms (adverts carry centiseconds)"
            } else {
                return Some(d);
            };
            r.at(
                v.span(),
                format!("ha.advert_interval {:?} {why}", v.get_ref()),
            );
            None
        })
        .unwrap_or(DEFAULT_ADVERT_INTERVAL);
    let preempt_delay = raw
        .preempt_delay
        .as_ref()
        .and_then(|v| {
            let d = parse_duration(v, "ha.preempt_delay", "\"0s\" or \"30s\"", r)?;
            if d > MAX_PREEMPT_DELAY {
                r.at(
                    v.span(),
                    format!("ha.preempt_delay {:?} is longer than 1000s", v.get_ref()),
                );
                return None;
            }
            Some(d)
        })
        .unwrap_or(Duration::ZERO);
    let interface = raw
        .interface
        .as_ref()
        .map(|i| interface_name(i, "ha.interface", r));
    let peers = raw
        .peers
        .as_ref()
        .map_or_else(Vec::new, |list| peers(list, r));
    let garp_repeat = int_in(raw.garp_repeat.as_ref(), 1, 100, "ha.garp_repeat", r)
        .unwrap_or(DEFAULT_GARP_REPEAT);
    let garp_interval = raw
        .garp_interval
        .as_ref()
        .and_then(|v| {
            let d = parse_duration(v, "ha.garp_interval", "\"20ms\" or \"0s\"", r)?;
            if d > MAX_GARP_INTERVAL {
                r.at(
                    v.span(),
                    format!("ha.garp_interval {:?} is longer than 10s", v.get_ref()),
                );
                return None;
            }
            Some(d)
        })
        .unwrap_or(DEFAULT_GARP_INTERVAL);
    let notify = raw.notify.as_ref().and_then(|n| {
        if n.get_ref().trim().is_empty() {
            r.at(
                n.span(),
                "ha.notify is empty; omit it to run nothing".into(),
            );
            None
        } else {
            Some(n.get_ref().clone())
        }
    });
    let sync = sync::check_sync(raw, !peers.is_empty(), r);
    if r.out.len() > before {
        return None;
    }
    Some(HaConfig {
        vrid: vrid? as u8,
        priority,
        advert_interval,
        preempt: raw.preempt.as_ref().is_none_or(|p| *p.get_ref()),
        preempt_delay,
        interface,
        peers,
        garp_repeat,
        garp_interval,
        notify,
        sync,
    })
}

/// `peers`: unicast IPv4 addresses, each once (see the module doc).
fn peers(list: &Spanned<Vec<Spanned<String>>>, r: &mut Report<'_, '_>) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = Vec::new();
    if list.get_ref().is_empty() {
        r.at(
            list.span(),
            "ha.peers is empty; omit it to advertise by multicast".into(),
        );
    }
    if list.get_ref().len() > MAX_PEERS {
        r.at(
            list.span(),
            format!(
                "ha.peers lists {} addresses; at most {MAX_PEERS}",
                list.get_ref().len()
            ),
        );
    }
    for p in list.get_ref() {
        let text = p.get_ref();
        let why = match text.parse::<Ipv4Addr>() {
            Err(_) => "is not an IPv4 address; names are not resolved",
            Ok(a) if a.is_unspecified() || a.is_broadcast() => "is not a host address",
            Ok(a) if a.is_multicast() => "is multicast; omit peers to advertise by multicast",
            Ok(a) if out.contains(&a) => "is listed twice",
            Ok(a) => {
                out.push(a);
                continue;
            }
        };
        r.at(p.span(), format!("ha.peers: {text:?} {why}"));
    }
    out
}

#[cfg(test)]
mod tests;
