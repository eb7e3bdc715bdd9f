//! RFC 9111 cache semantics of a `strait node`, end to end: each test starts its own test origin
//! (`strait sim origin`) and a node in front of it on loopback ports chosen by the kernel, sends
//! plain HTTP/1.1 requests, and checks statuses, header values, body bytes, the origin's request
//! counts and the node's `/stats.json` counters.
//!
//! Contract under test, one module per area:
//! * `storability`: what a shared cache may store (RFC 9111 §3, §3.5, §4.2.1, §4.2.2, §4.2.4).
//! * `freshness`: `Age` on hits (§5.1), `Date` added when the origin omits it (RFC 9110 §6.6.1),
//!   no default TTL without freshness information or validators.
//! * `validation`: revalidation with a 304 (§4.3) and client conditionals answered from the
//!   store (RFC 9110 §13.2).
//! * `serving`: `HEAD` from a stored `GET`, byte ranges (RFC 9110 §14), `Vary` (§4.1).
//! * `invalidation`: unsafe methods invalidate (§4.4).
//! * `request_directives`: request Cache-Control (§5.2.1).
//! * `targeted`: RFC 9213 targeted cache-control fields.
//! * `host`: `node.default_host` for HTTP/1.0 requests without `Host`.
//! * `interim`: 1xx responses relayed before the final one, never stored (RFC 9110 §15.2).

mod support;

#[path = "rfc9111/freshness.rs"]
mod freshness;
#[path = "rfc9111/host.rs"]
mod host;
#[path = "rfc9111/interim.rs"]
mod interim;
#[path = "rfc9111/invalidation.rs"]
mod invalidation;
#[path = "rfc9111/request_directives.rs"]
mod request_directives;
#[path = "rfc9111/serving.rs"]
mod serving;
#[path = "rfc9111/storability.rs"]
mod storability;
#[path = "rfc9111/targeted.rs"]
mod targeted;
#[path = "rfc9111/validation.rs"]
mod validation;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::{get, Node, Origin, Resp};

/// A test origin and a node in front of it with `extra` config tables.
pub fn start(extra: &str) -> (Origin, Node) {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], extra);
    (origin, node)
}

/// GET `path`, expect the answer to be stored, and wait until the store holds it: a fill leaves
/// the fill table just before its object enters the store, so a request sent at once could
/// still miss both (a documented, rare duplicate fetch).
pub fn fill(node: &Node, path: &str, headers: &[(&str, &str)]) -> Resp {
    let before = node.counter("stored_objects");
    let r = get(node.addr, path, headers);
    assert!(
        r.cache_status().contains("; stored"),
        "{path}: {}",
        r.cache_status()
    );
    let stored = support::wait_until(Duration::from_secs(5), || {
        node.counter("stored_objects") > before
    });
    assert!(stored, "{path} was not stored");
    r
}

/// Wait until no fill is in flight. A revalidation answers its client before its fill leaves
/// the fill table, and a request arriving meanwhile is coalesced onto it (see the ignored
/// `validation::no_cache_object_is_revalidated_for_a_pipelined_request`).
pub fn settle(node: &Node) {
    let idle = support::wait_until(Duration::from_secs(5), || {
        node.counter("fills_in_flight") == 0
    });
    assert!(idle, "fills still in flight");
}

/// The `ttl=` member of the response's Cache-Status.
pub fn ttl_of(r: &Resp) -> i64 {
    r.cache_status()
        .split(';')
        .map(str::trim)
        .find_map(|m| m.strip_prefix("ttl="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no ttl in Cache-Status {:?}", r.cache_status()))
}

/// The response's `Age` in seconds.
pub fn age_of(r: &Resp) -> u64 {
    r.header("age")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no valid Age in {:?}", r.headers))
}

/// Poll with `only-if-cached` until the node no longer has a fresh copy of `path` (it answers
/// 504 for a stale one without contacting the origin).
pub fn wait_stale(node: &Node, path: &str) {
    let stale = support::wait_until(Duration::from_secs(5), || {
        get(node.addr, path, &[("Cache-Control", "only-if-cached")]).status == 504
    });
    assert!(stale, "{path} did not become stale");
}

/// An IMF-fixdate (RFC 9110 §5.6.7) for `t`.
pub fn http_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t
        .duration_since(UNIX_EPOCH)
        .expect("a time after 1970")
        .as_secs();
    let mut days = secs / 86_400;
    let weekday = DAYS[(days % 7) as usize];
    let mut year = 1970u64;
    loop {
        let len = if is_leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let feb = if is_leap(year) { 29 } else { 28 };
    let lengths = [31, feb, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month = 0;
    while days >= lengths[month] {
        days -= lengths[month];
        month += 1;
    }
    let rem = secs % 86_400;
    format!(
        "{weekday}, {:02} {} {year} {:02}:{:02}:{:02} GMT",
        days + 1,
        MONTHS[month],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn is_leap(y: u64) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

/// `s` percent-encoded for a query parameter value (every byte but unreserved ones).
pub fn q(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date_formats_known_instants() {
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        let t = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        assert_eq!(http_date(t), "Thu, 01 Jan 2026 00:00:00 GMT");
        let t = UNIX_EPOCH + Duration::from_secs(951_825_599);
        assert_eq!(http_date(t), "Tue, 29 Feb 2000 11:59:59 GMT");
    }

    #[test]
    fn q_escapes_reserved_bytes() {
        assert_eq!(
            q("max-age=0, s-maxage=60"),
            "max-age%3D0%2C%20s-maxage%3D60"
        );
    }
}
