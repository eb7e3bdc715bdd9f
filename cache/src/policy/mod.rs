//! RFC 9111 policy: pure functions of request, response and `now`.
//!
//! Nothing here does I/O or reads the clock; callers pass `now`, `request_time` and
//! `response_time`. strait is a shared cache, so the shared-cache rules apply everywhere.
//!
//! * `cache_control` (+ private `targeted`): directives, RFC 9213 targeted fields.
//! * `freshness`, `meta`: lifetime and age (§4.2).
//! * `storable`: may a response be stored (§3); `reuse`: may a stored one be served (§4).
//! * `conditional`, `etag`: validation (§4.3) and client preconditions (RFC 9110 §13).
//! * `vary`, `key`: secondary and primary cache keys; `invalidate`: §4.4.
//! * `range`: single byte ranges from stored objects (RFC 9110 §14).
//! * `headers`: hop-by-hop, Via, Age, Date, request framing; `cache_status`: RFC 9211.

pub mod cache_control;
pub mod cache_status;
pub mod conditional;
pub mod etag;
pub mod freshness;
pub mod headers;
pub mod invalidate;
pub mod key;
pub mod meta;
pub mod range;
pub mod reuse;
pub mod storable;
pub mod target;
mod targeted;
pub mod vary;

pub use cache_control::{response_directives, CacheControl, MaxStale};
pub use cache_status::{append_cache_status, CacheStatus, Fwd, CACHE_STATUS};
pub use conditional::{
    client_not_modified, has_validator, merge_not_modified, not_modified_headers,
    revalidation_headers, strip_conditionals,
};
pub use freshness::{
    corrected_initial_age, date_of, freshness_lifetime, is_heuristically_cacheable, FreshnessParams,
};
pub use headers::{age_value, append_via, check_request_framing, ensure_date, strip_hop_by_hop};
pub use invalidate::invalidation_keys;
pub use key::{primary_key, same_origin_key};
pub use meta::StoredMeta;
pub use range::{content_range, evaluate_range, unsatisfied_range, RangeOutcome};
pub use reuse::{may_serve_stale_on_error, reuse, Reuse};
pub use storable::{storability, NoStoreReason, StoreParams};
pub use vary::{variant_id, vary_of, Vary};

/// Test helper: a header map from (name, value) pairs, in order (repeated names appended).
#[cfg(test)]
pub(crate) fn test_map(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, http::HeaderValue::from_static(v));
    }
    h
}
