//! Building the origin's responses: pure functions of the route, the knobs, the request
//! header fields and `now`, then one step that picks the body framing.
//!
//! Contract:
//! * `/obj/` answers `304 Not Modified` when the response would otherwise be 2xx and the
//!   request's precondition says the client's copy is current (RFC 9110 §13.2.1, §13.2.2):
//!   `If-None-Match` when present (weak comparison, §13.1.2), else `If-Modified-Since`
//!   against the fixed Last-Modified (§13.1.3). The 304 carries Date, ETag, Cache-Control,
//!   Vary and the `hdr=` fields (§15.4.5), no Content-Type, Last-Modified or body.
//! * Every knob-shaped reply gets `Vary` (when `vary=`), the `cc=` override and the `hdr=`
//!   fields (appended, so they may repeat a field).
//! * [`Reply::into_response`] sets `Content-Length` unless the body is chunked or the status
//!   forbids content (204, 304); HEAD gets the same fields and no body (RFC 9110 §9.3.2).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, DATE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED, VARY,
};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

use super::body::{CutSignal, OriginBody};
use super::content::{
    etag, if_none_match_matches, last_modified, not_modified_since, object_bytes, variant_key,
};
use super::knobs::{Knobs, CHUNK_SIZE};

const OCTET_STREAM: &str = "application/octet-stream";
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
const NO_STORE: &str = "no-store";

/// A response before body framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Header fields (without Content-Length, added by [`Reply::into_response`]).
    pub headers: HeaderMap,
    /// The full body.
    pub body: Bytes,
}

impl Reply {
    /// A plain-text reply with only `Date` and `Content-Type`.
    pub fn text(status: StatusCode, body: impl Into<Bytes>, now: SystemTime) -> Reply {
        let mut headers = dated(now);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
        Reply {
            status,
            headers,
            body: body.into(),
        }
    }

    /// A JSON reply that no cache may store.
    pub fn json(body: Vec<u8>, now: SystemTime) -> Reply {
        let mut headers = dated(now);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
        Reply {
            status: StatusCode::OK,
            headers,
            body: body.into(),
        }
    }

    /// `/obj/<name>` (see the module doc for the conditional rules).
    pub fn object(name: &str, knobs: &Knobs, request: &HeaderMap, now: SystemTime) -> Reply {
        let values: Vec<String> = knobs
            .vary
            .iter()
            .map(|field| field_values(request, field))
            .collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let key = variant_key(name, &refs);
        let tag = etag(&key, knobs.size);
        let status = knobs.status.unwrap_or(StatusCode::OK);

        let mut headers = dated(now);
        let max_age = format!("max-age={}", knobs.ttl_secs);
        set_cache_control(&mut headers, &max_age, knobs);
        if knobs.etag {
            insert_str(&mut headers, ETAG, &tag);
        }
        decorate(&mut headers, knobs);

        let current = if !status.is_success() {
            false
        } else if request.contains_key(IF_NONE_MATCH) {
            let ours = if knobs.etag { tag.as_str() } else { "" };
            request
                .get_all(IF_NONE_MATCH)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| if_none_match_matches(v, ours))
        } else {
            knobs.last_modified
                && request
                    .get(IF_MODIFIED_SINCE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| not_modified_since(v, last_modified()))
        };
        if current {
            return Reply {
                status: StatusCode::NOT_MODIFIED,
                headers,
                body: Bytes::new(),
            };
        }
        if knobs.last_modified {
            insert_str(
                &mut headers,
                LAST_MODIFIED,
                &httpdate::fmt_http_date(last_modified()),
            );
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM));
        Reply {
            status,
            headers,
            body: object_bytes(&key, knobs.size).into(),
        }
    }

    /// `/dyn/<name>`, the `n`-th request counted for its path.
    pub fn dynamic(name: &str, n: u64, knobs: &Knobs, now: SystemTime) -> Reply {
        Self::shaped(format!("dyn {name} {n}\n"), knobs, now)
    }

    /// Any method other than GET and HEAD: an echo of what was received.
    pub fn echo(
        method: &Method,
        path: &str,
        body_len: u64,
        knobs: &Knobs,
        now: SystemTime,
    ) -> Reply {
        Self::shaped(
            format!("method {method} path {path} body {body_len}\n"),
            knobs,
            now,
        )
    }

    /// A text reply shaped by the knobs, `no-store` unless `cc=` says otherwise.
    fn shaped(body: String, knobs: &Knobs, now: SystemTime) -> Reply {
        let mut reply = Reply::text(knobs.status.unwrap_or(StatusCode::OK), body, now);
        set_cache_control(&mut reply.headers, NO_STORE, knobs);
        decorate(&mut reply.headers, knobs);
        reply
    }

    /// The hyper response: framing from `shape` (`chunked=`, `chunk_delay=`, `cut=`), no body
    /// for HEAD (`head_only`), 204 and 304. `cut` is the connection's signal.
    pub fn into_response(
        self,
        head_only: bool,
        shape: &Knobs,
        cut: &Arc<CutSignal>,
    ) -> Response<OriginBody> {
        let Reply {
            status,
            mut headers,
            body,
        } = self;
        let forbids_content = matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED);
        if !forbids_content && !shape.chunked {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len() as u64));
        }
        let body = if head_only || forbids_content {
            OriginBody::empty()
        } else {
            let paced = if shape.chunked || !shape.chunk_delay.is_zero() {
                // With a Content-Length too (`chunk_delay=` alone): a slow body of known length.
                OriginBody::paced(body, CHUNK_SIZE, shape.chunk_delay)
            } else if shape.cut.is_some() {
                OriginBody::paced(body.clone(), body.len(), Duration::ZERO)
            } else {
                OriginBody::full(body)
            };
            match shape.cut {
                Some(keep) => paced.cut_after(keep, cut.clone()),
                None => paced,
            }
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }
}

/// A header map holding only `Date: now`.
fn dated(now: SystemTime) -> HeaderMap {
    let mut headers = HeaderMap::new();
    insert_str(&mut headers, DATE, &httpdate::fmt_http_date(now));
    headers
}

/// Inserts `value`; our values are generated ASCII, so the invalid case cannot happen and is
/// skipped rather than panicking.
fn insert_str(headers: &mut HeaderMap, name: http::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// The default Cache-Control, or the `cc=` override (`cc=` empty: none).
fn set_cache_control(headers: &mut HeaderMap, default: &str, knobs: &Knobs) {
    match &knobs.cache_control {
        None => insert_str(headers, CACHE_CONTROL, default),
        Some(v) if v.is_empty() => {}
        Some(v) => {
            headers.insert(CACHE_CONTROL, v.clone());
        }
    }
}

/// `Vary` and the `hdr=` fields.
fn decorate(headers: &mut HeaderMap, knobs: &Knobs) {
    if !knobs.vary.is_empty() {
        let names: Vec<&str> = knobs.vary.iter().map(|n| n.as_str()).collect();
        insert_str(headers, VARY, &names.join(", "));
    }
    for (name, value) in &knobs.extra_headers {
        headers.append(name.clone(), value.clone());
    }
}

/// All values of request field `name`, joined with `, ` (empty when absent).
fn field_values(request: &HeaderMap, name: &http::HeaderName) -> String {
    let values: Vec<&str> = request
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    values.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000)
    }

    fn knobs(query: &str) -> Knobs {
        Knobs::parse(Some(query)).unwrap()
    }

    fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
        r.headers.get(name).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn object_has_all_default_fields() {
        let r = Reply::object("a", &knobs("size=10"), &HeaderMap::new(), now());
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, object_bytes("a", 10));
        assert_eq!(header(&r, "cache-control"), Some("max-age=3600"));
        assert_eq!(header(&r, "etag"), Some(etag("a", 10).as_str()));
        assert_eq!(
            header(&r, "last-modified"),
            Some("Thu, 01 Jan 2026 00:00:00 GMT")
        );
        assert_eq!(header(&r, "content-type"), Some("application/octet-stream"));
        assert_eq!(
            header(&r, "date"),
            Some(httpdate::fmt_http_date(now()).as_str())
        );
        assert_eq!(header(&r, "vary"), None);
    }

    #[test]
    fn matching_if_none_match_gives_304_with_validators_only() {
        let mut req = HeaderMap::new();
        req.insert(
            IF_NONE_MATCH,
            HeaderValue::from_str(&etag("a", 1024)).unwrap(),
        );
        let r = Reply::object("a", &knobs("hdr=X-T:1"), &req, now());
        assert_eq!(r.status, StatusCode::NOT_MODIFIED);
        assert!(r.body.is_empty());
        assert_eq!(header(&r, "etag"), Some(etag("a", 1024).as_str()));
        assert_eq!(header(&r, "cache-control"), Some("max-age=3600"));
        assert_eq!(header(&r, "x-t"), Some("1"));
        assert!(r.headers.contains_key(DATE));
        assert!(!r.headers.contains_key(CONTENT_TYPE));
        assert!(!r.headers.contains_key(LAST_MODIFIED));
    }

    #[test]
    fn if_none_match_wins_over_if_modified_since() {
        let mut req = HeaderMap::new();
        req.insert(IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        req.insert(
            IF_MODIFIED_SINCE,
            HeaderValue::from_static("Fri, 02 Jan 2026 00:00:00 GMT"),
        );
        assert_eq!(
            Reply::object("a", &knobs(""), &req, now()).status,
            StatusCode::OK
        );
        req.remove(IF_NONE_MATCH);
        let r = Reply::object("a", &knobs(""), &req, now());
        assert_eq!(r.status, StatusCode::NOT_MODIFIED);
        let r = Reply::object("a", &knobs("lm=0"), &req, now());
        assert_eq!(r.status, StatusCode::OK);
    }

    #[test]
    fn no_304_when_status_knob_is_not_2xx_or_etag_is_off() {
        let mut req = HeaderMap::new();
        req.insert(
            IF_NONE_MATCH,
            HeaderValue::from_str(&etag("a", 1024)).unwrap(),
        );
        let r = Reply::object("a", &knobs("status=503"), &req, now());
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        let r = Reply::object("a", &knobs("status=203"), &req, now());
        assert_eq!(r.status, StatusCode::NOT_MODIFIED);
        let r = Reply::object("a", &knobs("etag=0"), &req, now());
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(header(&r, "etag"), None);
        req.insert(IF_NONE_MATCH, HeaderValue::from_static("*"));
        let r = Reply::object("a", &knobs("etag=0"), &req, now());
        assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn vary_changes_content_and_etag_per_request_value() {
        let k = knobs("vary=Accept-Encoding&size=32");
        let mut req = HeaderMap::new();
        req.insert("accept-encoding", HeaderValue::from_static("gzip"));
        let gz = Reply::object("a", &k, &req, now());
        let plain = Reply::object("a", &k, &HeaderMap::new(), now());
        assert_eq!(header(&gz, "vary"), Some("accept-encoding"));
        assert_eq!(gz.body, object_bytes(&variant_key("a", &["gzip"]), 32));
        assert_eq!(plain.body, object_bytes(&variant_key("a", &[""]), 32));
        assert_ne!(header(&gz, "etag"), header(&plain, "etag"));
    }

    #[test]
    fn cc_knob_replaces_or_removes_cache_control() {
        let r = Reply::object("a", &knobs("cc=private"), &HeaderMap::new(), now());
        assert_eq!(header(&r, "cache-control"), Some("private"));
        let r = Reply::dynamic("d", 1, &knobs("cc="), now());
        assert_eq!(header(&r, "cache-control"), None);
        let r = Reply::dynamic("d", 1, &knobs(""), now());
        assert_eq!(header(&r, "cache-control"), Some("no-store"));
    }

    #[test]
    fn dynamic_and_echo_bodies() {
        let r = Reply::dynamic("d", 7, &knobs("status=201"), now());
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.body, "dyn d 7\n");
        let m = Method::from_bytes(b"M-SEARCH").unwrap();
        let r = Reply::echo(&m, "/x", 3, &knobs(""), now());
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, "method M-SEARCH path /x body 3\n");
        assert_eq!(header(&r, "cache-control"), Some("no-store"));
    }

    #[test]
    fn extra_headers_are_appended() {
        let r = Reply::dynamic(
            "d",
            1,
            &knobs("hdr=X-A:1&hdr=X-A:2&hdr=Cache-Control:public"),
            now(),
        );
        let xs: Vec<&str> = r
            .headers
            .get_all("x-a")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(xs, vec!["1", "2"]);
        assert_eq!(r.headers.get_all(CACHE_CONTROL).iter().count(), 2);
    }

    #[test]
    fn into_response_frames_the_body() {
        use hyper::body::Body;
        let cut = Arc::new(CutSignal::default());
        let reply = || Reply::text(StatusCode::OK, "hello", now());
        let r = reply().into_response(false, &Knobs::default(), &cut);
        assert_eq!(r.headers()[CONTENT_LENGTH], "5");
        assert_eq!(r.body().size_hint().exact(), Some(5));
        let r = reply().into_response(true, &Knobs::default(), &cut);
        assert_eq!(r.headers()[CONTENT_LENGTH], "5");
        assert!(r.body().is_end_stream());
        let r = reply().into_response(false, &knobs("chunked=1"), &cut);
        assert!(!r.headers().contains_key(CONTENT_LENGTH));
        assert_eq!(r.body().size_hint().exact(), None);
        let r = reply().into_response(false, &knobs("cut=2"), &cut);
        assert_eq!(r.headers()[CONTENT_LENGTH], "5");
        assert_eq!(r.body().size_hint().exact(), None);
        let r = Reply::text(StatusCode::NOT_MODIFIED, "x", now()).into_response(
            false,
            &Knobs::default(),
            &cut,
        );
        assert!(!r.headers().contains_key(CONTENT_LENGTH));
        assert!(r.body().is_end_stream());
    }
}
