//! The HTTP/1.1 fast path for fresh hits: decide from the raw request head whether a request
//! is a plain one the store can answer byte for byte, and build that answer.
//!
//! Contract: [`parse`] accepts only HTTP/1.1 `GET`/`HEAD` requests in origin form with one
//! `Host`, no body, no `Expect`/`Upgrade`, and none of the fields that change what the cache
//! must do (`Cache-Control`, `Pragma`, conditionals, `Range`, `Authorization` is fine), and —
//! as [`Parse::Upload`], for the upload lane (`upload_lane`) — `POST`/`PUT`/`PATCH`/`DELETE`
//! requests of the same form with either at most one `Content-Length`, a plain number (digits
//! only, no leading zero, at most 19), or one `Transfer-Encoding: chunked` (then no
//! `Content-Length`), at most one `Expect: 100-continue` and no other, and no
//! `Upgrade` or `TE` (the cache fields do not matter to them: they are passed). Any other
//! request — or any doubt — is [`Parse::Fallback`]: the connection is handed, with every byte
//! read so far, to the general (hyper) path, which makes the same decision slowly. The answer
//! written by [`write_hit`] is what the general path sends for a fresh hit; the stored head it
//! starts from is the object's wire form (`store::object::wire_head`).

use std::time::SystemTime;

use crate::store::object::Object;

/// Request header fields parsed per request on the fast path; more falls back.
pub const MAX_FAST_HEADERS: usize = 64;

/// A request the fast path may answer.
#[derive(Debug, PartialEq, Eq)]
pub struct FastReq<'a> {
    /// Bytes of the request head (the request ends there: no body).
    pub head_len: usize,
    /// `HEAD` (no body in the answer).
    pub head: bool,
    pub host: &'a str,
    pub target: &'a str,
    /// The target without its query (what routes match).
    pub path: &'a str,
    /// The client asked to close after this response.
    pub close: bool,
    /// None of `Via`, `X-Forwarded-For`, `Forwarded`, `Authorization` and the hop-by-hop
    /// `Proxy-Authorization`, `Proxy-Authenticate`, `Trailer`: the fields can go upstream as
    /// they are, without `Connection`, with this node's own added (`passlane`, `upload_lane`).
    pub plain: bool,
    /// An upload with `Expect: 100-continue` (its client may wait for a 100 before its body).
    pub expect_continue: bool,
}

/// What the fast path makes of the bytes read so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse<'a> {
    /// The head is not complete yet.
    Partial,
    Fast(FastReq<'a>),
    /// A `POST`, `PUT`, `PATCH` or `DELETE` with a body framed so: the upload lane's
    /// (`upload_lane`). `head_len` ends the head, not the body.
    Upload(FastReq<'a>, Framing),
    /// Anything else: the general path takes the connection.
    Fallback,
}

/// How an upload's body is framed.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Framing {
    /// Its `Content-Length` (0 when it has none).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Decide on the request head at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parse<'_> {
    // Filled by httparse as it parses (nothing to initialise first).
    let mut headers = [std::mem::MaybeUninit::uninit(); MAX_FAST_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parse::Partial,
        Err(_) => return Parse::Fallback,
    };
    let (head, upload) = match req.method {
        Some("GET") => (false, false),
        Some("HEAD") => (true, false),
        Some("POST" | "PUT" | "PATCH" | "DELETE") => (false, true),
        _ => return Parse::Fallback,
    };
    if req.version != Some(1) {
        return Parse::Fallback;
    }
    let Some(target) = req.path.filter(|p| p.starts_with('/')) else {
        return Parse::Fallback;
    };
    // A path the general path would normalise (`//`, escapes, dot segments) is routed and
    // keyed there, once normalised.
    let path = crate::policy::target::before(target, b'?');
    if !crate::policy::target::is_plainly_normal(path) {
        return Parse::Fallback;
    }
    let mut host = None;
    let mut close = false;
    let mut plain = true;
    let mut length = None;
    let mut chunked = false;
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"host") {
            if host.is_some() {
                return Parse::Fallback;
            }
            match std::str::from_utf8(h.value) {
                Ok(v) => host = Some(v),
                Err(_) => return Parse::Fallback,
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if !h.value.eq_ignore_ascii_case(b"keep-alive") {
                return Parse::Fallback;
            }
        } else if upload && name.eq_ignore_ascii_case(b"content-length") {
            // One field, one plain number: anything else is hyper's to judge.
            if length.is_some() {
                return Parse::Fallback;
            }
            match crate::policy::headers::plain_length(h.value) {
                Some(n) => length = Some(n),
                None => return Parse::Fallback,
            }
        } else if upload && name.eq_ignore_ascii_case(b"transfer-encoding") {
            // One field, `chunked` alone: any other coding or list is hyper's to judge.
            if chunked || !h.value.eq_ignore_ascii_case(b"chunked") {
                return Parse::Fallback;
            }
            chunked = true;
        } else if upload && name.eq_ignore_ascii_case(b"expect") {
            // One field, `100-continue` alone: any other expectation is hyper's (417).
            if expect_continue || !h.value.eq_ignore_ascii_case(b"100-continue") {
                return Parse::Fallback;
            }
            expect_continue = true;
        } else if is_framing(name) || (!upload && is_cache_decision(name)) {
            return Parse::Fallback;
        } else if plain && is_forwarding(name) {
            plain = false;
        }
    }
    let Some(host) = host else {
        return Parse::Fallback;
    };
    let req = FastReq {
        head_len,
        head,
        host,
        target,
        path,
        close,
        plain,
        expect_continue,
    };
    if upload {
        return match (chunked, length) {
            // Both: a possible smuggling attempt, refused on the general path.
            (true, Some(_)) => Parse::Fallback,
            (true, None) => Parse::Upload(req, Framing::Chunked),
            // No `Content-Length` (and no `Transfer-Encoding`): no body (RFC 9112 §6.3).
            (false, length) => Parse::Upload(req, Framing::Length(length.unwrap_or(0))),
        };
    }
    Parse::Fast(req)
}

/// The method token of a request head `parse` took (the empty lines it may start with, which
/// the parser skips, skipped too).
pub(crate) fn method_of(head: &[u8]) -> &[u8] {
    let start = head.iter().position(|&b| b != b'\r' && b != b'\n');
    let line = &head[start.unwrap_or(head.len())..];
    line.split(|&b| b == b' ').next().unwrap_or_default()
}

/// The complete request head at the start of `buf` carries both `Content-Length` and
/// `Transfer-Encoding` (RFC 9112 §6.1: a possible smuggling attempt). hyper would read such a
/// request as chunked and drop the length, so the connection answers 400 before handing it
/// over.
pub fn has_length_and_coding(buf: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; super::server::MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(buf), Ok(httparse::Status::Complete(_))) {
        return false;
    }
    let has = |n: &str| req.headers.iter().any(|h| h.name.eq_ignore_ascii_case(n));
    has("content-length") && has("transfer-encoding")
}

/// Fields a proxy merges its own into, that make an answer's storability depend on the
/// request, or that are hop-by-hop (never forwarded; the rest of them fall back): their
/// requests are not `plain`.
pub(crate) fn is_forwarding(name: &[u8]) -> bool {
    const FORWARDING: &[&[u8]] = &[
        b"via",
        b"x-forwarded-for",
        b"forwarded",
        b"authorization",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"trailer",
    ];
    FORWARDING.iter().any(|s| name.eq_ignore_ascii_case(s))
}

/// Fields that change the cache decision: GET and HEAD requests with them take the general
/// path (a request with a body is passed whatever they say).
fn is_cache_decision(name: &[u8]) -> bool {
    const CACHE: &[&[u8]] = &[
        b"cache-control",
        b"pragma",
        b"if-none-match",
        b"if-modified-since",
        b"if-match",
        b"if-unmodified-since",
        b"if-range",
        b"range",
        b"content-length",
    ];
    CACHE.iter().any(|s| name.eq_ignore_ascii_case(s))
}

/// Fields that change framing or the connection: their requests take the general path.
fn is_framing(name: &[u8]) -> bool {
    const SPECIAL: &[&[u8]] = &[
        b"transfer-encoding",
        b"expect",
        b"upgrade",
        b"te",
        b"keep-alive",
        b"proxy-connection",
        b"http2-settings",
    ];
    SPECIAL.iter().any(|s| name.eq_ignore_ascii_case(s))
}

/// Append a fresh hit's answer head to `out` (the body, unless HEAD, follows separately):
/// the stored head, `Age`, `Cache-Status`, `Connection: close` when asked. None when the
/// object can't be answered here (not fresh, must revalidate, no wire head); else the ttl
/// written in `Cache-Status`.
pub fn write_hit(
    out: &mut Vec<u8>,
    obj: &Object,
    node: &str,
    close: bool,
    now: SystemTime,
) -> Option<i64> {
    let wire = obj.wire.as_ref()?;
    if obj.meta.no_cache || !obj.meta.is_fresh(now) {
        return None;
    }
    let mut num = itoa::Buffer::new();
    // The stored wire head ends with the blank line; Age and Cache-Status go before it.
    out.extend_from_slice(wire.strip_suffix(b"\r\n").unwrap_or(wire));
    out.extend_from_slice(b"age: ");
    out.extend_from_slice(num.format(obj.meta.current_age(now).as_secs()).as_bytes());
    out.extend_from_slice(b"\r\ncache-status: ");
    out.extend_from_slice(node.as_bytes());
    out.extend_from_slice(b"; hit; ttl=");
    let ttl = obj.meta.ttl(now);
    out.extend_from_slice(num.format(ttl).as_bytes());
    if close {
        out.extend_from_slice(b"\r\nconnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
    Some(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(buf: &[u8]) -> FastReq<'_> {
        match parse(buf) {
            Parse::Fast(f) => f,
            other => panic!("not fast: {other:?}"),
        }
    }

    #[test]
    fn a_plain_get_is_fast() {
        let raw = b"GET /obj/a?x=1 HTTP/1.1\r\nHost: Example.com\r\nUser-Agent: t\r\nAccept: */*\r\n\r\nGET";
        let f = fast(raw);
        assert_eq!(f.target, "/obj/a?x=1");
        assert_eq!(f.host, "Example.com");
        assert_eq!(f.head_len, raw.len() - 3);
        assert!(!f.head && !f.close);
        let f = fast(b"HEAD / HTTP/1.1\r\nhost: a\r\nConnection: close\r\n\r\n");
        assert!(f.head && f.close);
    }

    #[test]
    fn a_length_beside_a_coding_is_seen() {
        let both = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\ncontent-length: 3\r\n\r\n";
        assert!(has_length_and_coding(both));
        assert!(!has_length_and_coding(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"
        ));
        assert!(!has_length_and_coding(&both[..both.len() - 2]));
    }

    #[test]
    fn incomplete_heads_wait_for_more_bytes() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n"), Parse::Partial);
        assert_eq!(parse(b""), Parse::Partial);
    }

    #[test]
    fn anything_unusual_falls_back() {
        let cases: &[&[u8]] = &[
            b"OPTIONS / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            b"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
            b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nCache-Control: no-cache\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=0-1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"x\"\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET / HTTP/1.1\r\nHo st: a\r\n\r\n",
            b"GET //api/me HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /%61pi/me HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /a/../api HTTP/1.1\r\nHost: a\r\n\r\n",
            b"\x16\x03\x01\x02\x00",
        ];
        for c in cases {
            assert_eq!(parse(c), Parse::Fallback, "{}", String::from_utf8_lossy(c));
        }
    }

    fn upload(buf: &[u8]) -> (FastReq<'_>, u64) {
        match parse(buf) {
            Parse::Upload(f, Framing::Length(n)) => (f, n),
            other => panic!("not an upload with a length: {other:?}"),
        }
    }

    #[test]
    fn an_upload_may_expect_100_continue() {
        let raw =
            b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n";
        let (f, n) = upload(raw);
        assert!(f.expect_continue && f.plain && n == 5);
        let raw = b"PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
        assert!(!upload(raw).0.expect_continue);
        // A chunked one too: the lane sends the 100 before it reads the body as it comes.
        let raw = b"PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
        match parse(raw) {
            Parse::Upload(f, Framing::Chunked) => assert!(f.expect_continue && f.plain),
            other => panic!("not a chunked upload: {other:?}"),
        }
    }

    #[test]
    fn a_body_request_with_one_chunked_coding_is_a_chunked_upload() {
        for te in ["chunked", "Chunked", "CHUNKED"] {
            let raw =
                format!("PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n");
            match parse(raw.as_bytes()) {
                Parse::Upload(f, Framing::Chunked) => {
                    assert_eq!(f.head_len, raw.len() - 5, "the head ends before the body");
                    assert!(f.plain);
                }
                other => panic!("{te}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_body_request_with_one_plain_length_is_an_upload() {
        let raw = b"POST /api?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET";
        let (f, n) = upload(raw);
        assert_eq!((f.target, f.path, f.host, n), ("/api?x=1", "/api", "a", 5));
        assert_eq!(f.head_len, raw.len() - 8, "the head ends before the body");
        assert!(!f.head && !f.close && f.plain);
        for m in ["PUT", "PATCH", "DELETE"] {
            let raw = format!("{m} / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
            assert_eq!(upload(raw.as_bytes()).1, 0, "{m}");
        }
        // No length: no body.
        assert_eq!(upload(b"DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n").1, 0);
        // Fields that only change a cache decision do not matter to a pass.
        let raw = b"PUT /x HTTP/1.1\r\nHost: a\r\nIf-Match: \"v1\"\r\nCache-Control: no-cache\r\n\
                    Connection: close\r\nAuthorization: Bearer t\r\nContent-Length: 18446744073\r\n\r\n";
        let (f, n) = upload(raw);
        assert!(f.close && !f.plain);
        assert_eq!(n, 18_446_744_073);
        assert_eq!(
            upload(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999999\r\n\r\n").1,
            9_999_999_999_999_999_999
        );
    }

    #[test]
    fn the_method_is_read_past_the_empty_lines_the_parser_skips() {
        let raw = b"\r\n\nPUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n";
        let (f, _) = upload(raw);
        assert_eq!(method_of(&raw[..f.head_len]), b"PUT");
        assert_eq!(method_of(b"GET / HTTP/1.1\r\n"), b"GET");
        assert_eq!(method_of(b""), b"");
    }

    #[test]
    fn uploads_with_doubtful_framing_fall_back() {
        let cases: &[&[u8]] = &[
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 05\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000000000000000\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
            b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\nExpect: 100-continue\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue, x\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: something\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nUpgrade: h2c\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: upgrade\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTE: trailers\r\n\r\n",
            b"POST / HTTP/1.0\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
            b"POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
            b"POST /a/../b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
            b"post / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
        ];
        for c in cases {
            assert_eq!(parse(c), Parse::Fallback, "{}", String::from_utf8_lossy(c));
        }
    }
}
