//! Reusing a stored response (RFC 9111 §4, §4.2.4, §5.2.1) and serving stale content
//! (RFC 5861).
//!
//! Contract of [`reuse`], in order:
//! 1. request `no-store`, request `no-cache` (or `Pragma: no-cache` when the request has no
//!    Cache-Control, §5.4) and response `no-cache` -> [`Reuse::Revalidate`];
//! 2. request `max-age=N` with `age > N`, or `min-fresh=N` with `ttl < N` -> Revalidate;
//! 3. fresh -> [`Reuse::Fresh`];
//! 4. stale: never served with `must_revalidate`; served as is ([`Reuse::Fresh`]) within the
//!    request's `max-stale`; otherwise served while a background refresh runs
//!    ([`Reuse::StaleWhileRevalidate`]) when `staleness <= stale-while-revalidate`;
//!    otherwise Revalidate. Windows include their upper edge.

use std::time::{Duration, SystemTime};

use super::cache_control::{CacheControl, MaxStale};
use super::meta::StoredMeta;

/// How a stored response may be used for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Serve it now without contacting the origin.
    Fresh,
    /// Serve it now (stale) and refresh it in the background (RFC 5861 §3).
    StaleWhileRevalidate,
    /// Validate with the origin before using it.
    Revalidate,
}

/// Can `meta`'s response be served for a request with directives `req_cc` at `now`?
pub fn reuse(
    meta: &StoredMeta,
    req_cc: &CacheControl,
    pragma_no_cache: bool,
    now: SystemTime,
) -> Reuse {
    let pragma = pragma_no_cache && req_cc.is_empty();
    if req_cc.no_store || req_cc.no_cache || pragma || meta.no_cache {
        return Reuse::Revalidate;
    }
    let age = meta.current_age(now);
    if req_cc.max_age.is_some_and(|n| age > Duration::from_secs(n)) {
        return Reuse::Revalidate;
    }
    if let Some(n) = req_cc.min_fresh {
        if meta.ttl(now) < i64::try_from(n).unwrap_or(i64::MAX) {
            return Reuse::Revalidate;
        }
    }
    if meta.is_fresh(now) {
        return Reuse::Fresh;
    }
    if meta.must_revalidate {
        return Reuse::Revalidate;
    }
    let staleness = meta.staleness(now);
    let client_accepts = match req_cc.max_stale {
        Some(MaxStale::Any) => true,
        Some(MaxStale::Secs(n)) => staleness <= Duration::from_secs(n),
        None => false,
    };
    if client_accepts {
        return Reuse::Fresh;
    }
    if meta
        .stale_while_revalidate
        .is_some_and(|window| staleness <= window)
    {
        return Reuse::StaleWhileRevalidate;
    }
    Reuse::Revalidate
}

/// RFC 5861 §4: may the stale stored response be served because the origin failed? Allowed
/// within the response's or the request's `stale-if-error` window, never with
/// `must_revalidate` or `no-cache` (RFC 9111 §4.2.4). A fresh response may always be served.
pub fn may_serve_stale_on_error(meta: &StoredMeta, req_cc: &CacheControl, now: SystemTime) -> bool {
    if meta.must_revalidate || meta.no_cache {
        return false;
    }
    if meta.is_fresh(now) {
        return true;
    }
    let staleness = meta.staleness(now);
    let request_window = req_cc.stale_if_error.map(Duration::from_secs);
    [meta.stale_if_error, request_window]
        .into_iter()
        .flatten()
        .any(|window| staleness <= window)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::meta::tests::{meta, t};
    use http::HeaderValue;

    fn req(v: &'static str) -> CacheControl {
        CacheControl::parse([HeaderValue::from_static(v)].iter())
    }

    fn none() -> CacheControl {
        CacheControl::default()
    }

    #[test]
    fn fresh_then_revalidate() {
        let m = meta(0, 60);
        assert_eq!(reuse(&m, &none(), false, t(59)), Reuse::Fresh);
        assert_eq!(reuse(&m, &none(), false, t(60)), Reuse::Revalidate);
    }

    #[test]
    fn request_no_cache_no_store_and_pragma_force_revalidation() {
        let m = meta(0, 60);
        assert_eq!(reuse(&m, &req("no-cache"), false, t(1)), Reuse::Revalidate);
        assert_eq!(reuse(&m, &req("no-store"), false, t(1)), Reuse::Revalidate);
        assert_eq!(reuse(&m, &none(), true, t(1)), Reuse::Revalidate);
    }

    #[test]
    fn pragma_is_ignored_when_cache_control_is_present() {
        let m = meta(0, 60);
        assert_eq!(reuse(&m, &req("max-age=100"), true, t(1)), Reuse::Fresh);
    }

    #[test]
    fn response_no_cache_always_revalidates() {
        let mut m = meta(0, 60);
        m.no_cache = true;
        m.stale_while_revalidate = Some(Duration::from_secs(100));
        assert_eq!(reuse(&m, &none(), false, t(1)), Reuse::Revalidate);
        assert_eq!(
            reuse(&m, &req("max-stale"), false, t(70)),
            Reuse::Revalidate
        );
    }

    #[test]
    fn request_max_age_limits_age() {
        let m = meta(0, 60);
        assert_eq!(reuse(&m, &req("max-age=10"), false, t(10)), Reuse::Fresh);
        assert_eq!(
            reuse(&m, &req("max-age=10"), false, t(11)),
            Reuse::Revalidate
        );
        assert_eq!(reuse(&m, &req("max-age=0"), false, t(1)), Reuse::Revalidate);
    }

    #[test]
    fn min_fresh_requires_remaining_ttl() {
        let m = meta(0, 60);
        assert_eq!(reuse(&m, &req("min-fresh=20"), false, t(40)), Reuse::Fresh);
        assert_eq!(
            reuse(&m, &req("min-fresh=20"), false, t(41)),
            Reuse::Revalidate
        );
    }

    #[test]
    fn max_stale_serves_stale_within_bound() {
        let m = meta(0, 60);
        assert_eq!(reuse(&m, &req("max-stale=10"), false, t(70)), Reuse::Fresh);
        assert_eq!(
            reuse(&m, &req("max-stale=10"), false, t(71)),
            Reuse::Revalidate
        );
        assert_eq!(
            reuse(&m, &req("max-stale"), false, t(100_000)),
            Reuse::Fresh
        );
    }

    #[test]
    fn must_revalidate_blocks_stale() {
        let mut m = meta(0, 60);
        m.must_revalidate = true;
        m.stale_while_revalidate = Some(Duration::from_secs(30));
        assert_eq!(reuse(&m, &none(), false, t(59)), Reuse::Fresh);
        assert_eq!(
            reuse(&m, &req("max-stale"), false, t(61)),
            Reuse::Revalidate
        );
        assert_eq!(reuse(&m, &none(), false, t(61)), Reuse::Revalidate);
    }

    #[test]
    fn stale_while_revalidate_window_edges() {
        let mut m = meta(0, 60);
        m.stale_while_revalidate = Some(Duration::from_secs(30));
        assert_eq!(reuse(&m, &none(), false, t(59)), Reuse::Fresh);
        assert_eq!(
            reuse(&m, &none(), false, t(60)),
            Reuse::StaleWhileRevalidate
        );
        assert_eq!(
            reuse(&m, &none(), false, t(90)),
            Reuse::StaleWhileRevalidate
        );
        assert_eq!(reuse(&m, &none(), false, t(91)), Reuse::Revalidate);
    }

    #[test]
    fn stale_while_revalidate_yields_to_request_max_age() {
        let mut m = meta(0, 60);
        m.stale_while_revalidate = Some(Duration::from_secs(30));
        assert_eq!(
            reuse(&m, &req("max-age=65"), false, t(70)),
            Reuse::Revalidate
        );
    }

    #[test]
    fn initial_age_counts() {
        let m = meta(50, 60);
        assert_eq!(reuse(&m, &none(), false, t(9)), Reuse::Fresh);
        assert_eq!(reuse(&m, &none(), false, t(10)), Reuse::Revalidate);
    }

    #[test]
    fn stale_if_error_response_window() {
        let mut m = meta(0, 60);
        assert!(may_serve_stale_on_error(&m, &none(), t(30)));
        assert!(!may_serve_stale_on_error(&m, &none(), t(61)));
        m.stale_if_error = Some(Duration::from_secs(100));
        assert!(may_serve_stale_on_error(&m, &none(), t(160)));
        assert!(!may_serve_stale_on_error(&m, &none(), t(161)));
    }

    #[test]
    fn stale_if_error_request_window() {
        let mut m = meta(0, 60);
        m.stale_if_error = Some(Duration::from_secs(10));
        assert!(may_serve_stale_on_error(
            &m,
            &req("stale-if-error=300"),
            t(300)
        ));
        assert!(!may_serve_stale_on_error(
            &m,
            &req("stale-if-error=5"),
            t(75)
        ));
    }

    #[test]
    fn stale_if_error_never_with_must_revalidate_or_no_cache() {
        let mut m = meta(0, 60);
        m.stale_if_error = Some(Duration::from_secs(100));
        m.must_revalidate = true;
        assert!(!may_serve_stale_on_error(&m, &none(), t(70)));
        m.must_revalidate = false;
        m.no_cache = true;
        assert!(!may_serve_stale_on_error(&m, &none(), t(70)));
    }
}
