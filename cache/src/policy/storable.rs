//! May a response be stored by a shared cache, and with which meta (RFC 9111 §3, §3.5)?
//!
//! Contract, checked in this order (the first failing rule is the reason):
//! 1. only responses to GET are stored (HEAD is answered from a stored GET by the caller);
//! 2. the status is final, not 206 (complete responses only) and not 304;
//! 3. no `no-store` in the request;
//! 4. with `must-understand` (§5.2.2.3), only a status the cache understands
//!    ([`is_understood`]);
//! 5. no `no-store` in the response directives (RFC 9213 targeted fields replace Cache-Control
//!    and Expires when present), unless `must-understand` accompanies it and the status is
//!    understood (§5.2.2.3: the cache then ignores `no-store`);
//! 6. no `private` (shared cache);
//! 7. a request with Authorization only with `public`, `s-maxage` or `must-revalidate`;
//! 8. no `Vary: *`;
//! 9. a status the cache does not understand needs explicit freshness (`max-age`, `s-maxage`
//!    or Expires, from Cache-Control or the targeted field) (§3); one that isn't heuristically
//!    cacheable needs that or `public`;
//! 10. an explicit freshness lifetime, else `default_ttl` (a route's `ttl`), else a heuristic
//!     one, else a validator (stored with lifetime 0: always revalidated), else not stored.

use std::time::{Duration, SystemTime};

use http::header::{AUTHORIZATION, EXPIRES};
use http::{HeaderMap, HeaderName, Method, StatusCode};

use super::cache_control::{response_directives, CacheControl};
use super::conditional::has_validator;
use super::freshness::FreshnessParams;
use super::freshness::{corrected_initial_age, date_of, is_heuristically_cacheable, lifetime};
use super::meta::StoredMeta;
use super::status::is_understood;
use super::vary::{vary_of, Vary};

/// Why a response is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoStoreReason {
    Method,
    Status,
    RequestNoStore,
    ResponseNoStore,
    Private,
    Authorization,
    NoFreshnessInfo,
    VaryStar,
    Partial,
    /// `Set-Cookie` on a route that doesn't allow storing it (decided by the caller).
    SetCookie,
}

impl NoStoreReason {
    /// Found by the rules (1–6) that read nothing of the response but its status and its
    /// directives (`Cache-Control` and the targeted fields): a map of only those fields gives
    /// such a reason exactly when the whole head does.
    pub fn by_directives(&self) -> bool {
        matches!(
            self,
            NoStoreReason::Method
                | NoStoreReason::Partial
                | NoStoreReason::Status
                | NoStoreReason::RequestNoStore
                | NoStoreReason::ResponseNoStore
                | NoStoreReason::Private
        )
    }

    /// Stable name for logs and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            NoStoreReason::Method => "method",
            NoStoreReason::Status => "status",
            NoStoreReason::RequestNoStore => "request_no_store",
            NoStoreReason::ResponseNoStore => "response_no_store",
            NoStoreReason::Private => "private",
            NoStoreReason::Authorization => "authorization",
            NoStoreReason::NoFreshnessInfo => "no_freshness_info",
            NoStoreReason::VaryStar => "vary_star",
            NoStoreReason::Partial => "partial",
            NoStoreReason::SetCookie => "set_cookie",
        }
    }
}

/// Inputs of the storage decision that come from configuration.
#[derive(Debug, Clone)]
pub struct StoreParams<'a> {
    pub freshness: FreshnessParams,
    /// RFC 9213 targeted fields in priority order.
    pub targets: &'a [HeaderName],
    /// Lifetime for responses with no freshness information (route override); None = none.
    pub default_ttl: Option<Duration>,
}

/// §3 + §3.5 for a shared cache: may this response to this request be stored, and with
/// which meta? See the module contract for the rules and their order.
#[allow(clippy::too_many_arguments)]
pub fn storability(
    method: &Method,
    req_headers: &HeaderMap,
    req_cc: &CacheControl,
    status: StatusCode,
    resp_headers: &HeaderMap,
    request_time: SystemTime,
    response_time: SystemTime,
    params: &StoreParams,
) -> Result<StoredMeta, NoStoreReason> {
    if method != Method::GET {
        return Err(NoStoreReason::Method);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        return Err(NoStoreReason::Partial);
    }
    if status.is_informational() || status == StatusCode::NOT_MODIFIED {
        return Err(NoStoreReason::Status);
    }
    if req_cc.no_store {
        return Err(NoStoreReason::RequestNoStore);
    }
    let (cc, target) = response_directives(resp_headers, params.targets);
    let understood = is_understood(status);
    if cc.must_understand && !understood {
        return Err(NoStoreReason::Status);
    }
    if cc.no_store && !(cc.must_understand && understood) {
        return Err(NoStoreReason::ResponseNoStore);
    }
    if cc.private {
        return Err(NoStoreReason::Private);
    }
    if req_headers.contains_key(AUTHORIZATION)
        && !(cc.public || cc.s_maxage.is_some() || cc.must_revalidate)
    {
        return Err(NoStoreReason::Authorization);
    }
    if vary_of(resp_headers) == Vary::Star {
        return Err(NoStoreReason::VaryStar);
    }
    let use_expires = target.is_none();
    let explicit = cc.max_age.is_some()
        || cc.s_maxage.is_some()
        || (use_expires && resp_headers.contains_key(EXPIRES));
    if !explicit && (!understood || !(is_heuristically_cacheable(status) || cc.public)) {
        return Err(NoStoreReason::NoFreshnessInfo);
    }
    let date = date_of(resp_headers).unwrap_or(response_time);
    let life = lifetime(
        status,
        resp_headers,
        &cc,
        date,
        &params.freshness,
        use_expires,
    );
    // A route's ttl stands in for missing *explicit* freshness: it beats the heuristic.
    let life = match (explicit, params.default_ttl) {
        (false, Some(ttl)) => Some(ttl),
        _ => life,
    };
    let freshness_lifetime = match (life, params.default_ttl) {
        (Some(life), _) => life,
        (None, Some(ttl)) => ttl,
        (None, None) if has_validator(resp_headers) => Duration::ZERO,
        (None, None) => return Err(NoStoreReason::NoFreshnessInfo),
    };
    Ok(StoredMeta {
        request_time,
        response_time,
        corrected_initial_age: corrected_initial_age(resp_headers, request_time, response_time),
        freshness_lifetime,
        no_cache: cc.no_cache,
        must_revalidate: cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage.is_some(),
        stale_while_revalidate: cc.stale_while_revalidate.map(Duration::from_secs),
        stale_if_error: cc.stale_if_error.map(Duration::from_secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::meta::tests::t;
    use http::HeaderValue;

    const PARAMS: StoreParams<'static> = StoreParams {
        freshness: FreshnessParams {
            heuristic_percent: 10,
            heuristic_max: Duration::from_secs(86400),
        },
        targets: &[],
        default_ttl: None,
    };

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn decide(
        method: Method,
        req: &[(&'static str, &'static str)],
        status: u16,
        resp: &[(&'static str, &'static str)],
    ) -> Result<StoredMeta, NoStoreReason> {
        decide_with(method, req, status, resp, &PARAMS)
    }

    fn decide_with(
        method: Method,
        req: &[(&'static str, &'static str)],
        status: u16,
        resp: &[(&'static str, &'static str)],
        params: &StoreParams,
    ) -> Result<StoredMeta, NoStoreReason> {
        let req = map(req);
        let req_cc = CacheControl::from_headers(&req);
        let status = StatusCode::from_u16(status).unwrap();
        storability(
            &method,
            &req,
            &req_cc,
            status,
            &map(resp),
            t(0),
            t(2),
            params,
        )
    }

    fn reason(r: Result<StoredMeta, NoStoreReason>) -> NoStoreReason {
        r.expect_err("expected the response not to be stored")
    }

    const MAX_AGE: (&str, &str) = ("cache-control", "max-age=60");

    #[test]
    fn stores_get_with_max_age() {
        let m = decide(Method::GET, &[], 200, &[MAX_AGE]).unwrap();
        assert_eq!(m.freshness_lifetime, Duration::from_secs(60));
        assert_eq!(m.corrected_initial_age, Duration::from_secs(2));
        assert_eq!((m.request_time, m.response_time), (t(0), t(2)));
        assert!(!m.no_cache && !m.must_revalidate);
    }

    #[test]
    fn only_get_is_stored() {
        for m in [Method::HEAD, Method::POST, Method::PUT, Method::OPTIONS] {
            assert_eq!(
                reason(decide(m, &[], 200, &[MAX_AGE])),
                NoStoreReason::Method
            );
        }
    }

    #[test]
    fn status_must_be_final_and_complete() {
        assert_eq!(
            reason(decide(Method::GET, &[], 206, &[MAX_AGE])),
            NoStoreReason::Partial
        );
        for s in [100, 103, 304] {
            assert_eq!(
                reason(decide(Method::GET, &[], s, &[MAX_AGE])),
                NoStoreReason::Status,
                "{s}"
            );
        }
    }

    #[test]
    fn unknown_status_is_stored_only_with_explicit_freshness() {
        let targets = [HeaderName::from_static("cdn-cache-control")];
        let targeted = StoreParams {
            targets: &targets,
            ..PARAMS
        };
        let cdn = [("cdn-cache-control", "max-age=30")];
        for s in [299, 599] {
            let m = decide(Method::GET, &[], s, &[MAX_AGE]).unwrap();
            assert_eq!(m.freshness_lifetime, Duration::from_secs(60));
            assert!(decide(Method::GET, &[], s, &[("cache-control", "s-maxage=5")]).is_ok());
            assert!(decide(Method::GET, &[], s, &[("expires", "0")]).is_ok());
            assert!(decide_with(Method::GET, &[], s, &cdn, &targeted).is_ok());
            for resp in [&[("cache-control", "public")][..], &[("etag", "\"v\"")]] {
                let r = decide_with(
                    Method::GET,
                    &[],
                    s,
                    resp,
                    &StoreParams {
                        default_ttl: Some(Duration::from_secs(30)),
                        ..PARAMS
                    },
                );
                assert_eq!(reason(r), NoStoreReason::NoFreshnessInfo, "{s}");
            }
        }
    }

    #[test]
    fn must_understand_stores_only_understood_statuses_and_overrides_no_store() {
        let mu = [("cache-control", "max-age=60, must-understand, no-store")];
        assert!(decide(Method::GET, &[], 200, &mu).is_ok());
        assert!(decide(Method::GET, &[], 404, &mu).is_ok());
        for s in [299, 599, 207] {
            assert_eq!(
                reason(decide(Method::GET, &[], s, &mu)),
                NoStoreReason::Status
            );
        }
        let mu = [("cache-control", "max-age=60, must-understand")];
        assert_eq!(
            reason(decide(Method::GET, &[], 299, &mu)),
            NoStoreReason::Status
        );
        let req = [("cache-control", "no-store")];
        assert_eq!(
            reason(decide(Method::GET, &req, 200, &mu)),
            NoStoreReason::RequestNoStore
        );
    }

    #[test]
    fn no_store_in_request_or_response() {
        let req = [("cache-control", "no-store")];
        assert_eq!(
            reason(decide(Method::GET, &req, 200, &[MAX_AGE])),
            NoStoreReason::RequestNoStore
        );
        let resp = [("cache-control", "max-age=60, no-store")];
        assert_eq!(
            reason(decide(Method::GET, &[], 200, &resp)),
            NoStoreReason::ResponseNoStore
        );
    }

    #[test]
    fn private_is_never_stored_qualified_or_not() {
        for cc in ["private, max-age=60", "private=\"set-cookie\", max-age=60"] {
            let resp = [("cache-control", cc)];
            assert_eq!(
                reason(decide(Method::GET, &[], 200, &resp)),
                NoStoreReason::Private
            );
        }
    }

    #[test]
    fn authorization_needs_explicit_permission() {
        let req = [("authorization", "Bearer x")];
        assert_eq!(
            reason(decide(Method::GET, &req, 200, &[MAX_AGE])),
            NoStoreReason::Authorization
        );
        for cc in [
            "public, max-age=60",
            "s-maxage=60",
            "must-revalidate, max-age=60",
        ] {
            let resp = [("cache-control", cc)];
            assert!(decide(Method::GET, &req, 200, &resp).is_ok(), "{cc}");
        }
    }

    #[test]
    fn vary_star_is_not_stored() {
        let resp = [MAX_AGE, ("vary", "accept, *")];
        assert_eq!(
            reason(decide(Method::GET, &[], 200, &resp)),
            NoStoreReason::VaryStar
        );
        let resp = [MAX_AGE, ("vary", "accept")];
        assert!(decide(Method::GET, &[], 200, &resp).is_ok());
    }

    #[test]
    fn no_freshness_and_no_validator_is_not_stored() {
        let resp = [("content-type", "text/plain")];
        assert_eq!(
            reason(decide(Method::GET, &[], 200, &resp)),
            NoStoreReason::NoFreshnessInfo
        );
        let resp = [("cache-control", "no-cache")];
        assert_eq!(
            reason(decide(Method::GET, &[], 200, &resp)),
            NoStoreReason::NoFreshnessInfo
        );
    }

    #[test]
    fn validator_without_freshness_is_stored_stale() {
        let m = decide(Method::GET, &[], 200, &[("etag", "\"v\"")]).unwrap();
        assert_eq!(m.freshness_lifetime, Duration::ZERO);
    }

    #[test]
    fn default_ttl_applies_only_without_freshness_info() {
        let params = StoreParams {
            default_ttl: Some(Duration::from_secs(30)),
            ..PARAMS
        };
        let m = decide_with(Method::GET, &[], 200, &[], &params).unwrap();
        assert_eq!(m.freshness_lifetime, Duration::from_secs(30));
        let m = decide_with(Method::GET, &[], 200, &[MAX_AGE], &params).unwrap();
        assert_eq!(m.freshness_lifetime, Duration::from_secs(60));
    }

    #[test]
    fn heuristic_lifetime_from_last_modified() {
        let resp = [
            ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("last-modified", "Tue, 14 Nov 2023 21:13:20 GMT"),
        ];
        let m = decide(Method::GET, &[], 200, &resp).unwrap();
        assert_eq!(m.freshness_lifetime, Duration::from_secs(360));
    }

    #[test]
    fn other_statuses_need_explicit_freshness_or_public() {
        let lm = ("last-modified", "Tue, 14 Nov 2023 21:13:20 GMT");
        assert_eq!(
            reason(decide(Method::GET, &[], 302, &[lm])),
            NoStoreReason::NoFreshnessInfo
        );
        assert_eq!(
            reason(decide(Method::GET, &[], 500, &[("etag", "\"v\"")])),
            NoStoreReason::NoFreshnessInfo
        );
        assert!(decide(Method::GET, &[], 302, &[MAX_AGE]).is_ok());
        assert!(decide(Method::GET, &[], 302, &[("expires", "0")]).is_ok());
        assert!(decide(Method::GET, &[], 302, &[lm, ("cache-control", "public")]).is_ok());
    }

    #[test]
    fn revalidation_flags_and_windows() {
        let resp = [(
            "cache-control",
            "max-age=60, no-cache, stale-while-revalidate=5, stale-if-error=9",
        )];
        let m = decide(Method::GET, &[], 200, &resp).unwrap();
        assert!(m.no_cache && !m.must_revalidate);
        assert_eq!(m.stale_while_revalidate, Some(Duration::from_secs(5)));
        assert_eq!(m.stale_if_error, Some(Duration::from_secs(9)));
        for cc in [
            "max-age=1, must-revalidate",
            "max-age=1, proxy-revalidate",
            "s-maxage=1",
        ] {
            let m = decide(Method::GET, &[], 200, &[("cache-control", cc)]).unwrap();
            assert!(m.must_revalidate, "{cc}");
        }
    }

    #[test]
    fn targeted_field_replaces_cache_control_and_expires() {
        let targets = [HeaderName::from_static("cdn-cache-control")];
        let params = StoreParams {
            targets: &targets,
            ..PARAMS
        };
        let resp = [
            ("cache-control", "no-store"),
            ("cdn-cache-control", "max-age=120"),
        ];
        let m = decide_with(Method::GET, &[], 200, &resp, &params).unwrap();
        assert_eq!(m.freshness_lifetime, Duration::from_secs(120));
        let resp = [
            ("cdn-cache-control", "public"),
            ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("expires", "Tue, 14 Nov 2023 23:13:20 GMT"),
            ("etag", "\"v\""),
        ];
        let m = decide_with(Method::GET, &[], 200, &resp, &params).unwrap();
        assert_eq!(m.freshness_lifetime, Duration::ZERO);
        let m = decide(Method::GET, &[], 200, &resp).unwrap();
        assert_eq!(m.freshness_lifetime, Duration::from_secs(3600));
        let resp = [("cdn-cache-control", "private")];
        assert_eq!(
            reason(decide_with(Method::GET, &[], 200, &resp, &params)),
            NoStoreReason::Private
        );
    }

    #[test]
    fn reason_names() {
        assert_eq!(NoStoreReason::Method.as_str(), "method");
        assert_eq!(NoStoreReason::NoFreshnessInfo.as_str(), "no_freshness_info");
        assert_eq!(NoStoreReason::VaryStar.as_str(), "vary_star");
    }
}
