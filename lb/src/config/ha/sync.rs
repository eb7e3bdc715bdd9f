//! Validation of `[ha]`'s connection-sync keys (`crate::sync`): the two directors of a pair
//! send each other their connection tables, so that a failover keeps every flow.
//!
//! ```toml
//! [ha]
//! peers = ["10.0.0.4"]                 # sync needs the peer's address
//! sync = true                          # default: true when peers is set
//! secret_file = "/etc/strait/ha.key"   # >= 16 bytes; required for sync
//! sync_insecure = false                # true: sync without secret_file (a trusted LAN)
//! sync_port = 7480                     # UDP, on the [ha] interface's address (1..=65535)
//! sync_delay = "5ms"                   # a record waits at most this long (1ms..=1s)
//! sync_refresh = "10s"                 # every live flow sent again (1s..=1h)
//! sync_rate = 500000                   # records sent per second at most (1000..=10000000)
//! sync_catchup_timeout = "3s"          # at start, wait this long for the peer's dump (0s..=60s)
//! ```
//!
//! Rules: sync on without `peers` is refused (whom to sync with); sync on without
//! `secret_file` is refused unless `sync_insecure = true` says so (the datagrams carry the
//! connection table and install entries in the peer's); a `sync_*` key or `secret_file`
//! with sync off is refused (it would do nothing); each value in its range.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::super::types::RawHa;
use super::super::validate::{int_in, parse_duration, Report};

/// Default `sync_port`.
pub const DEFAULT_SYNC_PORT: u16 = 7480;
/// Default `sync_delay`.
pub const DEFAULT_SYNC_DELAY: Duration = Duration::from_millis(5);
/// Default `sync_refresh`.
pub const DEFAULT_SYNC_REFRESH: Duration = Duration::from_secs(10);
/// Default `sync_rate`.
pub const DEFAULT_SYNC_RATE: u32 = 500_000;
/// Default `sync_catchup_timeout`.
pub const DEFAULT_SYNC_CATCHUP_TIMEOUT: Duration = Duration::from_secs(3);

/// The sync key from `secret_file`; its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SyncSecret(pub Arc<[u8]>);

impl fmt::Debug for SyncSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SyncSecret({} bytes)", self.0.len())
    }
}

/// A validated connection sync (`[ha]` with sync on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// UDP port, on the `[ha]` interface's address, on both directors.
    pub port: u16,
    /// The shared secret (`None`: `sync_insecure = true`, datagrams not authenticated).
    pub secret: Option<SyncSecret>,
    /// Longest time a record waits for its datagram to fill.
    pub delay: Duration,
    /// Time between two sends of every live flow.
    pub refresh: Duration,
    /// Records sent per second at most.
    pub rate: u32,
    /// At start, how long to wait for the peer's dump before taking part in VRRP.
    pub catchup_timeout: Duration,
}

/// A duration key in `range`, or `default` when absent.
fn duration_in(
    v: Option<&serde_spanned::Spanned<String>>,
    key: &str,
    examples: &str,
    range: std::ops::RangeInclusive<Duration>,
    shown: &str,
    default: Duration,
    r: &mut Report<'_, '_>,
) -> Duration {
    let Some(v) = v else { return default };
    match parse_duration(v, key, examples, r) {
        Some(d) if range.contains(&d) => d,
        Some(_) => {
            r.at(v.span(), format!("{key} {:?} must be {shown}", v.get_ref()));
            default
        }
        None => default,
    }
}

/// The sync of `raw` (`None`: off), after reporting what is wrong (see the module doc).
pub(super) fn check_sync(
    raw: &RawHa,
    has_peers: bool,
    r: &mut Report<'_, '_>,
) -> Option<SyncConfig> {
    let on = raw.sync.as_ref().map_or(has_peers, |s| *s.get_ref());
    if !on {
        let set = [
            raw.secret_file.as_ref().map(|v| ("secret_file", v.span())),
            raw.sync_insecure
                .as_ref()
                .map(|v| ("sync_insecure", v.span())),
            raw.sync_port.as_ref().map(|v| ("sync_port", v.span())),
            raw.sync_delay.as_ref().map(|v| ("sync_delay", v.span())),
            raw.sync_refresh
                .as_ref()
                .map(|v| ("sync_refresh", v.span())),
            raw.sync_rate.as_ref().map(|v| ("sync_rate", v.span())),
            raw.sync_catchup_timeout
                .as_ref()
                .map(|v| ("sync_catchup_timeout", v.span())),
        ];
        for (key, span) in set.into_iter().flatten() {
            r.at(
                span,
                format!("ha.{key} is set but connection sync is off (it needs ha.peers, or ha.sync = false was given)"),
            );
        }
        return None;
    }
    if let (Some(s), false) = (raw.sync.as_ref(), has_peers) {
        r.at(
            s.span(),
            "ha.sync needs ha.peers: the addresses of the directors to sync with".into(),
        );
    }
    let insecure = raw.sync_insecure.as_ref().is_some_and(|v| *v.get_ref());
    let secret = match raw.secret_file.as_ref() {
        Some(file) => {
            let path = file.get_ref();
            let key = std::fs::read(path)
                .map_err(|e| format!("cannot read: {e}"))
                .and_then(|b| crate::membership::section::secret_from_bytes(&b));
            match key {
                Ok(key) => Some(SyncSecret(key)),
                Err(why) => {
                    r.at(file.span(), format!("ha.secret_file {path}: {why}"));
                    None
                }
            }
        }
        None if insecure => None,
        None => {
            let span = raw.sync.as_ref().map_or(raw.vrid.span(), |s| s.span());
            r.at(
                span,
                "connection sync is on (ha.peers is set) but ha.secret_file is not: its \
                 datagrams install entries in the peer's connection table. Set secret_file \
                 (a file of at least 16 bytes, the same on both directors), or \
                 sync_insecure = true on a LAN only the directors reach, or sync = false"
                    .into(),
            );
            None
        }
    };
    let port = int_in(raw.sync_port.as_ref(), 1, 65535, "ha.sync_port", r)
        .map_or(DEFAULT_SYNC_PORT, |p| p as u16);
    let delay = duration_in(
        raw.sync_delay.as_ref(),
        "ha.sync_delay",
        "\"5ms\"",
        Duration::from_millis(1)..=Duration::from_secs(1),
        "1ms to 1s",
        DEFAULT_SYNC_DELAY,
        r,
    );
    let refresh = duration_in(
        raw.sync_refresh.as_ref(),
        "ha.sync_refresh",
        "\"10s\"",
        Duration::from_secs(1)..=Duration::from_secs(3600),
        "1s to 1h",
        DEFAULT_SYNC_REFRESH,
        r,
    );
    let rate = int_in(raw.sync_rate.as_ref(), 1000, 10_000_000, "ha.sync_rate", r)
        .unwrap_or(DEFAULT_SYNC_RATE);
    let catchup_timeout = duration_in(
        raw.sync_catchup_timeout.as_ref(),
        "ha.sync_catchup_timeout",
        "\"3s\"",
        Duration::ZERO..=Duration::from_secs(60),
        "0s to 60s",
        DEFAULT_SYNC_CATCHUP_TIMEOUT,
        r,
    );
    Some(SyncConfig {
        port,
        secret,
        delay,
        refresh,
        rate,
        catchup_timeout,
    })
}
