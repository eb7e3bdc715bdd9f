//! A cache node as a proxy, end to end: real `strait node` and `strait sim origin` processes
//! on loopback (see `tests/support`), one file per concern under `tests/proxy/`.
//!
//! Contract under test: every method is forwarded with its body (RFC 9110 §9); hop-by-hop
//! fields are dropped both ways and `Via` is added (RFC 9110 §7.6); misses of one key are
//! coalesced, with a bounded wait; stale responses are served under stale-while-revalidate and
//! stale-if-error (RFC 5861); the RAM tier stays within its bound; malformed requests get a 4xx
//! and never reach the origin (RFC 9112 §6.3); origin failures give 502/504 and store nothing;
//! the admin endpoints and `strait ctl` report and invalidate.

mod support;

#[path = "proxy/admin.rs"]
mod admin;
#[path = "proxy/admin_security.rs"]
mod admin_security;
#[path = "proxy/bad_input.rs"]
mod bad_input;
#[path = "proxy/coalescing.rs"]
mod coalescing;
#[path = "proxy/forwarding.rs"]
mod forwarding;
#[path = "proxy/hostile.rs"]
mod hostile;
#[path = "proxy/origin_trouble.rs"]
mod origin_trouble;
#[path = "proxy/slow_readers.rs"]
mod slow_readers;
#[path = "proxy/stale.rs"]
mod stale;
#[path = "proxy/storage.rs"]
mod storage;

use std::time::Duration;

/// Wait bound for conditions that should hold within a moment.
pub(crate) const SOON: Duration = Duration::from_secs(5);

/// True when the recorded request `head` has a field called `name` (case-insensitive).
pub(crate) fn head_has(head: &str, name: &str) -> bool {
    head.lines().skip(1).any(|l| {
        l.split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
    })
}

/// The value of field `name` in a recorded request `head`.
pub(crate) fn head_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}
