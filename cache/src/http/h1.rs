//! HTTP/1.1 response heads for the connection's own request loop (`lite`): the status line,
//! the fields, and the body's framing, chosen as hyper's server chooses it.
//!
//! Contract: [`framing`] says how a response's body is delimited on the wire: none for `HEAD`
//! requests and for 1xx/204/304 answers, the response's own `Content-Length` when it has one,
//! else the body's exact length when known (the field is added), else chunked (the field is
//! added). [`encode_head`] writes the status line and the fields in order, adds `date` when
//! the response has none and `connection: close` when the connection ends after it, and ends
//! the head. [`chunk_head`] and [`LAST_CHUNK`] are the chunked coding's delimiters.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, StatusCode};

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body on the wire.
    None,
    /// `Content-Length: n`; `add` when the field is not among the response's own.
    Length { n: u64, add: bool },
    /// `Transfer-Encoding: chunked`; `add` when the field is not among the response's own.
    Chunked { add: bool },
}

/// The framing of a response with `status` and `headers` to a `HEAD` request or not, whose
/// body has `exact` bytes when known.
pub fn framing(
    head_request: bool,
    status: StatusCode,
    headers: &HeaderMap,
    exact: Option<u64>,
) -> Framing {
    let coded = headers.contains_key(http::header::TRANSFER_ENCODING);
    let length = headers.get(http::header::CONTENT_LENGTH);
    framing_of(
        head_request,
        status,
        coded,
        length.map(|v| v.as_bytes()),
        exact,
    )
}

/// [`framing`] from what it reads of the fields: whether there is a `Transfer-Encoding`, and
/// the first `Content-Length` value (for a caller that holds the fields as bytes).
pub fn framing_of(
    head_request: bool,
    status: StatusCode,
    coded: bool,
    length: Option<&[u8]>,
    exact: Option<u64>,
) -> Framing {
    if head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Framing::None;
    }
    if coded {
        return Framing::Chunked { add: false };
    }
    // As `HeaderValue::to_str` then `str::parse`.
    let declared = length
        .filter(|v| v.iter().all(|&b| b == b'\t' || (32..127).contains(&b)))
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<u64>().ok());
    match (declared, exact) {
        (Some(n), _) => Framing::Length { n, add: false },
        (None, Some(n)) => Framing::Length { n, add: true },
        (None, None) => Framing::Chunked { add: true },
    }
}

/// Writes the head of a response: status line, fields, the framing field when it is added,
/// `date` when absent, `connection: close` when `close`, and the blank line.
pub fn encode_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    framing: Framing,
    close: bool,
) {
    status_line(out, status);
    let mut has_close = false;
    for (name, value) in headers {
        if name == http::header::CONNECTION {
            has_close |= value.as_bytes().eq_ignore_ascii_case(b"close");
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    end_head(
        out,
        framing,
        !headers.contains_key(http::header::DATE),
        close && !has_close,
    );
}

/// The status line [`encode_head`] writes: `HTTP/1.1`, the code and its canonical reason.
pub fn status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// What [`encode_head`] writes after the response's own fields: the framing field when it is
/// added, `date` when `date`, `connection: close` when `close`, and the blank line.
pub fn end_head(out: &mut Vec<u8>, framing: Framing, date: bool, close: bool) {
    match framing {
        Framing::Length { n, add: true } => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked { add: true } => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        _ => {}
    }
    if date {
        out.extend_from_slice(b"date: ");
        with_date(|d| out.extend_from_slice(d));
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The response itself says the connection ends after it.
pub fn says_close(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
}

/// The delimiter before a chunk of `len` bytes (not 0).
pub fn chunk_head(out: &mut Vec<u8>, len: usize) {
    use std::io::Write;
    let _ = write!(out, "{len:x}\r\n");
}

/// The end of a chunk.
pub const CHUNK_END: &[u8] = b"\r\n";
/// The last chunk and the end of the (empty) trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

thread_local! {
    /// The IMF-fixdate of the current second, formatted once per second per thread.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Calls `f` with the IMF-fixdate of the current second (formatted once per second per
/// thread).
pub fn with_date(f: impl FnOnce(&[u8])) {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut d = cell.borrow_mut();
        if d.0 != secs {
            *d = (secs, httpdate::fmt_http_date(now));
        }
        f(d.1.as_bytes());
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn framing_follows_the_response_and_the_request() {
        let none = HeaderMap::new();
        let ok = StatusCode::OK;
        assert_eq!(framing(true, ok, &none, Some(5)), Framing::None);
        assert_eq!(
            framing(false, StatusCode::NO_CONTENT, &none, None),
            Framing::None
        );
        assert_eq!(
            framing(false, StatusCode::NOT_MODIFIED, &none, None),
            Framing::None
        );
        assert_eq!(
            framing(false, StatusCode::CONTINUE, &none, None),
            Framing::None
        );
        assert_eq!(
            framing(false, ok, &none, Some(5)),
            Framing::Length { n: 5, add: true }
        );
        assert_eq!(
            framing(false, ok, &none, None),
            Framing::Chunked { add: true }
        );
        let cl = headers(&[("content-length", "7")]);
        assert_eq!(
            framing(false, ok, &cl, None),
            Framing::Length { n: 7, add: false }
        );
        let te = headers(&[("transfer-encoding", "chunked")]);
        assert_eq!(
            framing(false, ok, &te, Some(3)),
            Framing::Chunked { add: false }
        );
    }

    #[test]
    fn a_head_parses_back_with_its_fields_in_map_order() {
        let h = headers(&[("x-a", "1"), ("x-b", "2"), ("x-a", "3")]);
        let mut out = Vec::new();
        encode_head(
            &mut out,
            StatusCode::OK,
            &h,
            Framing::Length { n: 4, add: true },
            true,
        );
        let mut fields = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut fields);
        let n = match resp.parse(&out).unwrap() {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => panic!("partial head"),
        };
        assert_eq!(n, out.len());
        assert_eq!(
            (resp.code, resp.reason, resp.version),
            (Some(200), Some("OK"), Some(1))
        );
        let got: Vec<(&str, &[u8])> = resp.headers.iter().map(|f| (f.name, f.value)).collect();
        assert_eq!(
            &got[..4],
            &[
                ("x-a", &b"1"[..]),
                ("x-a", &b"3"[..]),
                ("x-b", &b"2"[..]),
                ("content-length", &b"4"[..]),
            ]
        );
        assert_eq!(got[4].0, "date");
        assert!(httpdate::parse_http_date(std::str::from_utf8(got[4].1).unwrap()).is_ok());
        assert_eq!(got[5], ("connection", &b"close"[..]));
    }

    #[test]
    fn a_response_that_has_date_and_close_keeps_its_own() {
        let h = headers(&[
            ("date", "Sun, 06 Dec 2026 10:00:00 GMT"),
            ("connection", "close"),
        ]);
        let mut out = Vec::new();
        encode_head(
            &mut out,
            StatusCode::BAD_GATEWAY,
            &h,
            Framing::Chunked { add: true },
            true,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{text}");
        assert_eq!(text.matches("date: ").count(), 1, "{text}");
        assert_eq!(text.matches("connection: close").count(), 1, "{text}");
        assert!(
            text.ends_with("transfer-encoding: chunked\r\n\r\n"),
            "{text}"
        );
        assert!(says_close(&h));
    }

    #[test]
    fn chunk_delimiters() {
        let mut out = Vec::new();
        chunk_head(&mut out, 4096);
        assert_eq!(out, b"1000\r\n");
    }
}
