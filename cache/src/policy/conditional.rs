//! Conditional requests: validating a stored response with the origin (RFC 9111 §4.3) and
//! answering a client's conditional GET/HEAD from the cache (RFC 9110 §13.1, §13.2).
//!
//! Contract:
//! * [`revalidation_headers`]: `If-None-Match` from `ETag` and `If-Modified-Since` from
//!   `Last-Modified`, each when present (§4.3.1).
//! * [`merge_not_modified`]: §3.2/§4.3.4 header update by a 304; framing, coding and hop-by-hop
//!   fields of the 304 are not copied.
//! * [`client_not_modified`]: only for GET/HEAD on a stored 2xx; `If-None-Match` (weak
//!   comparison) takes precedence over `If-Modified-Since`; a malformed `If-None-Match` never
//!   matches, an invalid `If-Modified-Since` is ignored. `If-Modified-Since` is compared with
//!   the stored `Last-Modified`, else its `Date`, else the time the response was received
//!   (RFC 9111 §4.3.2); with none of these it never matches.

use http::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_LOCATION, CONTENT_RANGE, DATE, ETAG,
    EXPIRES, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE,
    LAST_MODIFIED, TRANSFER_ENCODING, VARY,
};
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, Method, StatusCode};

use super::etag::{parse_condition, Condition, EntityTag};
use super::freshness::http_date;
use super::headers::{connection_tokens, is_hop_by_hop};

/// Validators to send when revalidating `stored` (§4.3.1).
pub fn revalidation_headers(stored: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    if let Some(etag) = stored.get(ETAG) {
        out.insert(IF_NONE_MATCH, etag.clone());
    }
    if let Some(lm) = stored.get(LAST_MODIFIED) {
        out.insert(IF_MODIFIED_SINCE, lm.clone());
    }
    out
}

/// True when the stored response carries a validator (ETag or Last-Modified).
pub fn has_validator(stored: &HeaderMap) -> bool {
    stored.contains_key(ETAG) || stored.contains_key(LAST_MODIFIED)
}

/// The stored headers updated by a 304 (§4.3.4): each field of the 304 replaces the stored
/// field of that name, except Content-Length, Content-Encoding, Transfer-Encoding,
/// Content-Range and hop-by-hop fields (including those named by the 304's Connection).
pub fn merge_not_modified(stored: &HeaderMap, not_modified: &HeaderMap) -> HeaderMap {
    let named = connection_tokens(not_modified);
    let mut out = stored.clone();
    for name in not_modified.keys() {
        let excluded = [
            CONTENT_LENGTH,
            CONTENT_ENCODING,
            TRANSFER_ENCODING,
            CONTENT_RANGE,
        ];
        if excluded.contains(name) || is_hop_by_hop(name) || named.contains(name) {
            continue;
        }
        out.remove(name);
        for value in not_modified.get_all(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// RFC 9110 §13.2: should the cache answer this GET/HEAD with 304 from the stored response?
/// `received` is when the stored response was received (None: unknown).
pub fn client_not_modified(
    method: &Method,
    req: &HeaderMap,
    stored_status: StatusCode,
    stored: &HeaderMap,
    received: Option<SystemTime>,
) -> bool {
    if (method != Method::GET && method != Method::HEAD) || !stored_status.is_success() {
        return false;
    }
    if req.contains_key(IF_NONE_MATCH) {
        let current = stored
            .get(ETAG)
            .and_then(|v| EntityTag::parse(v.as_bytes()));
        return req
            .get_all(IF_NONE_MATCH)
            .iter()
            .any(|v| match parse_condition(v.as_bytes()) {
                Some(Condition::Any) => true,
                Some(Condition::Tags(tags)) => {
                    current.is_some_and(|cur| tags.iter().any(|t| t.weak_eq(&cur)))
                }
                None => false,
            });
    }
    // §13.1.3: ignored unless exactly one valid HTTP-date.
    if req.get_all(IF_MODIFIED_SINCE).iter().count() != 1 {
        return false;
    }
    let Some(since) = http_date(req, IF_MODIFIED_SINCE) else {
        return false;
    };
    // RFC 9111 §4.3.2: Last-Modified, else Date, else the time the response was received.
    let reference = http_date(stored, LAST_MODIFIED)
        .or_else(|| http_date(stored, DATE))
        .or(received);
    reference.is_some_and(|modified| modified <= since)
}

/// Fields a 304 sent to the client carries (RFC 9110 §15.4.5), copied from the stored response.
pub fn not_modified_headers(stored: &HeaderMap) -> HeaderMap {
    let kept: [HeaderName; 7] = [
        CACHE_CONTROL,
        CONTENT_LOCATION,
        DATE,
        ETAG,
        EXPIRES,
        VARY,
        LAST_MODIFIED,
    ];
    let mut out = HeaderMap::new();
    for name in kept {
        for value in stored.get_all(&name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Removes client preconditions before an unconditional fill from the origin.
pub fn strip_conditionals(h: &mut HeaderMap) {
    for name in [
        IF_NONE_MATCH,
        IF_MODIFIED_SINCE,
        IF_MATCH,
        IF_UNMODIFIED_SINCE,
        IF_RANGE,
    ] {
        h.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::policy::test_map as map;

    fn cnm(m: &Method, req: &HeaderMap, status: StatusCode, stored: &HeaderMap) -> bool {
        client_not_modified(m, req, status, stored, None)
    }

    const LM: &str = "Tue, 14 Nov 2023 22:13:20 GMT";
    const BEFORE: &str = "Tue, 14 Nov 2023 22:13:19 GMT";
    const AFTER: &str = "Tue, 14 Nov 2023 22:13:21 GMT";

    #[test]
    fn revalidation_uses_both_validators() {
        let h = revalidation_headers(&map(&[("etag", "\"v1\""), ("last-modified", LM)]));
        assert_eq!(h.get(IF_NONE_MATCH).unwrap(), "\"v1\"");
        assert_eq!(h.get(IF_MODIFIED_SINCE).unwrap(), LM);
        assert_eq!(h.len(), 2);
        assert!(revalidation_headers(&map(&[("date", LM)])).is_empty());
    }

    #[test]
    fn validator_presence() {
        assert!(has_validator(&map(&[("etag", "\"v\"")])));
        assert!(has_validator(&map(&[("last-modified", LM)])));
        assert!(!has_validator(&map(&[("date", LM)])));
    }

    #[test]
    fn merge_replaces_fields_but_keeps_framing() {
        let stored = map(&[
            ("content-length", "10"),
            ("content-encoding", "gzip"),
            ("cache-control", "max-age=1"),
            ("x-a", "1"),
            ("x-a", "2"),
            ("etag", "\"v1\""),
        ]);
        let nm = map(&[
            ("content-length", "0"),
            ("content-encoding", "br"),
            ("cache-control", "max-age=60"),
            ("x-a", "3"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
        ]);
        let m = merge_not_modified(&stored, &nm);
        assert_eq!(m.get("content-length").unwrap(), "10");
        assert_eq!(m.get("content-encoding").unwrap(), "gzip");
        assert_eq!(m.get("cache-control").unwrap(), "max-age=60");
        let xa: Vec<_> = m.get_all("x-a").iter().collect();
        assert_eq!(xa, ["3"]);
        assert_eq!(m.get("etag").unwrap(), "\"v1\"");
        assert!(!m.contains_key("x-hop") && !m.contains_key("keep-alive"));
        assert!(!m.contains_key("connection"));
    }

    #[test]
    fn if_none_match_weak_comparison() {
        let stored = map(&[("etag", "\"v1\"")]);
        let get = Method::GET;
        let ok = StatusCode::OK;
        assert!(cnm(
            &get,
            &map(&[("if-none-match", "W/\"v1\"")]),
            ok,
            &stored
        ));
        assert!(cnm(
            &get,
            &map(&[("if-none-match", "\"x\", \"v1\"")]),
            ok,
            &stored
        ));
        assert!(cnm(&get, &map(&[("if-none-match", "*")]), ok, &stored));
        assert!(!cnm(
            &get,
            &map(&[("if-none-match", "\"v2\"")]),
            ok,
            &stored
        ));
        assert!(!cnm(&get, &map(&[("if-none-match", "v1")]), ok, &stored));
    }

    #[test]
    fn if_none_match_takes_precedence_over_ims() {
        let stored = map(&[("etag", "\"v1\""), ("last-modified", LM)]);
        let req = map(&[("if-none-match", "\"v2\""), ("if-modified-since", AFTER)]);
        assert!(!cnm(&Method::GET, &req, StatusCode::OK, &stored));
    }

    #[test]
    fn if_modified_since_against_last_modified_or_date() {
        let ok = StatusCode::OK;
        let with_lm = map(&[("last-modified", LM), ("date", AFTER)]);
        assert!(cnm(
            &Method::HEAD,
            &map(&[("if-modified-since", LM)]),
            ok,
            &with_lm
        ));
        let before = map(&[("if-modified-since", BEFORE)]);
        assert!(!cnm(&Method::GET, &before, ok, &with_lm));
        let date_only = map(&[("date", LM)]);
        assert!(cnm(
            &Method::GET,
            &map(&[("if-modified-since", AFTER)]),
            ok,
            &date_only
        ));
        assert!(!cnm(&Method::GET, &before, ok, &date_only));
        let bad = map(&[("if-modified-since", "yesterday")]);
        assert!(!cnm(&Method::GET, &bad, ok, &with_lm));
    }

    #[test]
    fn if_modified_since_against_the_time_received_without_dates() {
        let received = crate::policy::date::parse(LM);
        let (get, ok, none) = (&Method::GET, StatusCode::OK, map(&[("etag", "\"v\"")]));
        let after = map(&[("if-modified-since", AFTER)]);
        let before = map(&[("if-modified-since", BEFORE)]);
        assert!(client_not_modified(get, &after, ok, &none, received));
        assert!(!client_not_modified(get, &before, ok, &none, received));
        assert!(!client_not_modified(get, &after, ok, &none, None));
        // A Date present wins over the time received.
        let dated = map(&[("date", AFTER)]);
        let (at_lm, at_after) = (map(&[("if-modified-since", LM)]), after);
        assert!(!client_not_modified(get, &at_lm, ok, &dated, received));
        assert!(client_not_modified(get, &at_after, ok, &dated, received));
    }

    #[test]
    fn only_get_or_head_on_success() {
        let stored = map(&[("etag", "\"v1\"")]);
        let req = map(&[("if-none-match", "\"v1\"")]);
        assert!(!cnm(&Method::POST, &req, StatusCode::OK, &stored));
        assert!(!cnm(&Method::GET, &req, StatusCode::NOT_FOUND, &stored));
        assert!(!cnm(&Method::GET, &map(&[]), StatusCode::OK, &stored));
    }

    #[test]
    fn not_modified_carries_listed_fields_only() {
        let stored = map(&[
            ("cache-control", "max-age=5"),
            ("etag", "\"v\""),
            ("vary", "accept"),
            ("content-type", "text/plain"),
            ("content-length", "5"),
            ("last-modified", LM),
        ]);
        let h = not_modified_headers(&stored);
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["cache-control", "etag", "last-modified", "vary"]);
    }

    #[test]
    fn strips_every_precondition() {
        let mut h = map(&[
            ("if-none-match", "\"a\""),
            ("if-modified-since", LM),
            ("if-match", "*"),
            ("if-unmodified-since", LM),
            ("if-range", "\"a\""),
            ("accept", "*/*"),
        ]);
        strip_conditionals(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }
}
