//! RFC 9111 policy: pure functions of request, response and `now`.
//!
//! Nothing here does I/O or reads the clock; callers pass `now`, `request_time` and
//! `response_time`. strait is a shared cache, so the shared-cache rules apply everywhere.
//!
//! * `cache_control` (+ private `targeted`): directives, RFC 9213 targeted fields.
//! * `freshness`, `meta`: lifetime and age (§4.2).
//! * `storable`: may a response be stored (§3), `status`: the status codes it understands;
//!   `reuse`: may a stored one be served (§4).
//! * `conditional`, `etag`: validation (§4.3) and client preconditions (RFC 9110 §13).
//! * `vary`, `key`: secondary and primary cache keys; `invalidate`: §4.4; `ban`: what an
//!   operator's ban may name.
//! * `range`: single byte ranges from stored objects (RFC 9110 §14); `partial`: storing and
//!   combining 206 parts (RFC 9111 §3.3-3.4).
//! * `date`: HTTP-dates in the forms and cases a recipient must accept.
//! * `headers`: hop-by-hop, Via, Age, Date, request framing; `cache_status`: RFC 9211.

pub mod ban;
pub mod cache_control;
pub mod cache_status;
pub mod conditional;
pub mod date;
pub mod etag;
pub mod freshness;
pub mod headers;
pub mod invalidate;
pub mod key;
pub mod meta;
pub mod partial;
pub mod range;
pub mod reuse;
pub mod status;
pub mod storable;
pub mod target;
mod targeted;
pub mod vary;

pub use meta::StoredMeta;

/// Test helper: a header map from (name, value) pairs, in order (repeated names appended).
#[cfg(test)]
pub(crate) fn test_map(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, http::HeaderValue::from_static(v));
    }
    h
}
