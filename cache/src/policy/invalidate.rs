//! Invalidation after unsafe requests (RFC 9111 §4.4).
//!
//! Contract: after a 2xx or 3xx response to a method other than GET, HEAD, OPTIONS and TRACE
//! (unknown extension methods count as unsafe), the target key and the same-origin keys of
//! Location and Content-Location must be invalidated; other origins are never touched
//! (denial-of-service protection, §4.4). Keys are deduplicated, target first.

use http::header::{CONTENT_LOCATION, LOCATION};
use http::{HeaderMap, Method, StatusCode};

use super::key::same_origin_key;

/// Whether an answer of `status` to `method` invalidates anything.
pub fn invalidates(method: &Method, status: StatusCode) -> bool {
    let safe = [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE];
    !safe.contains(method) && (status.is_success() || status.is_redirection())
}

/// The keys to invalidate after `method` got `status` with headers `resp` for `target_key`.
pub fn invalidation_keys(
    method: &Method,
    status: StatusCode,
    target_key: &str,
    resp: &HeaderMap,
) -> Vec<String> {
    if !invalidates(method, status) {
        return Vec::new();
    }
    let mut keys = vec![target_key.to_owned()];
    for name in [LOCATION, CONTENT_LOCATION] {
        let Some(value) = resp.get(name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        if let Some(key) = same_origin_key(target_key, value) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const TARGET: &str = "http://h/items/1";

    fn resp(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn safe_methods_invalidate_nothing() {
        for m in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
            assert!(invalidation_keys(&m, StatusCode::OK, TARGET, &resp(&[])).is_empty());
        }
    }

    #[test]
    fn unsafe_and_unknown_methods_invalidate_target() {
        let purge = Method::from_bytes(b"PURGE").unwrap();
        for m in [
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            purge,
        ] {
            let keys = invalidation_keys(&m, StatusCode::NO_CONTENT, TARGET, &resp(&[]));
            assert_eq!(keys, [TARGET], "{m}");
        }
    }

    #[test]
    fn error_responses_invalidate_nothing() {
        for s in [
            StatusCode::BAD_REQUEST,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::CONTINUE,
        ] {
            assert!(invalidation_keys(&Method::POST, s, TARGET, &resp(&[])).is_empty());
        }
        let keys = invalidation_keys(&Method::POST, StatusCode::SEE_OTHER, TARGET, &resp(&[]));
        assert_eq!(keys, [TARGET]);
    }

    #[test]
    fn same_origin_location_and_content_location() {
        let h = resp(&[
            ("location", "/items/2"),
            ("content-location", "http://h/items/3"),
        ]);
        let keys = invalidation_keys(&Method::POST, StatusCode::CREATED, TARGET, &h);
        assert_eq!(keys, [TARGET, "http://h/items/2", "http://h/items/3"]);
    }

    #[test]
    fn other_origins_and_duplicates_skipped() {
        let h = resp(&[
            ("location", "http://evil/items/2"),
            ("content-location", "1"),
        ]);
        let keys = invalidation_keys(&Method::PUT, StatusCode::OK, TARGET, &h);
        assert_eq!(keys, [TARGET]);
    }
}
