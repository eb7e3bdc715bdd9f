//! The bytes of one exchange's heads: the request head the node writes to an origin server,
//! and the response head it reads back, with the body's framing (RFC 9112 §6.3) and whether
//! the connection may carry another request afterwards.
//!
//! Pure: no I/O. The response side is strict where a lax reading would let one response be
//! read as two (a `Content-Length` that is not one number, a `Transfer-Encoding` beside a
//! `Content-Length`): those heads are refused (RFC 9112 §6.3 ¶3: "ought to be handled as an
//! error"), and the connection they came on is not reused.

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

use super::framing::Framer;

/// Fields a response head may carry; more is a broken response.
pub const MAX_FIELDS: usize = 128;
/// Bytes a response head may take; more is a broken response.
pub const MAX_HEAD: usize = 64 * 1024;

/// How a response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304, or `Content-Length: 0`).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// A complete response head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// The connection may carry another request once this body is read.
    pub reusable: bool,
    /// Bytes of the head (the body starts after them).
    pub len: usize,
    /// The head as received, when it was read by [`parse_response_raw`] (`headers` is then
    /// empty).
    pub raw: Option<Box<RawHead>>,
}

/// Why a response head is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// Not HTTP/1.x syntax (httparse's reason).
    Syntax(&'static str),
    TooLarge,
    TooManyFields,
    /// A field name or value the `http` types refuse.
    BadField,
    /// `Content-Length` that is not one non-negative number.
    BadLength,
    /// `101 Switching Protocols`, never asked for.
    UnaskedUpgrade,
    /// `Transfer-Encoding` and `Content-Length` together: the sender may have meant either.
    LengthWithCoding,
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Syntax(why) => write!(f, "malformed response head: {why}"),
            HeadError::TooLarge => write!(f, "response head larger than {MAX_HEAD} bytes"),
            HeadError::TooManyFields => write!(f, "more than {MAX_FIELDS} response fields"),
            HeadError::BadField => write!(f, "invalid response field"),
            HeadError::BadLength => write!(f, "invalid Content-Length"),
            HeadError::UnaskedUpgrade => write!(f, "101 Switching Protocols was not asked for"),
            HeadError::LengthWithCoding => {
                write!(f, "both Transfer-Encoding and Content-Length")
            }
        }
    }
}

/// Append the head of a bodyless request: request line, `fields` as given (the caller put
/// `Host` among them), blank line.
pub fn encode_request(out: &mut Vec<u8>, method: &Method, target: &str, fields: &HeaderMap) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in fields {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Room left in a parsed head's field map for the fields the node adds before relaying it
/// (`Via`, `Cache-Status`, `Date`, `Age`), so adding them does not grow the map.
const ADDED_FIELDS: usize = 4;

/// A response head's bytes as received, for a caller that relays them itself (the pass lane)
/// instead of reading a field map: [`parse_response_raw`] checked them as
/// [`parse_response`] checks every head.
#[derive(Debug, Clone)]
pub struct RawHead {
    /// The status line, the field lines and the blank line.
    pub bytes: bytes::Bytes,
    /// The first `Content-Length` value, as `policy::headers::content_length` reads it.
    pub content_length: Option<u64>,
    /// Where each field line's name and value are in `bytes`, in order.
    pub lines: Vec<Line>,
}

impl RawHead {
    /// The first value of each of `names` the head has, as the map [`parse_response`] makes
    /// would give them (`HeaderMap::get`); what the head's `Connection` lists is not removed.
    pub fn first_values(&self, names: &[HeaderName]) -> HeaderMap {
        let mut map = HeaderMap::new();
        let part = |at: u16, n: u16| self.bytes.get(at as usize..at as usize + n as usize);
        for &[name_at, name_len, value_at, value_len] in &self.lines {
            let Some(name) = part(name_at, name_len) else {
                continue;
            };
            let Some(known) = names
                .iter()
                .find(|k| name.eq_ignore_ascii_case(k.as_str().as_bytes()))
            else {
                continue;
            };
            if map.contains_key(known) {
                continue;
            }
            let value = part(value_at, value_len).unwrap_or_default();
            if let Ok(v) = HeaderValue::from_bytes(value) {
                map.insert(known.clone(), v);
            }
        }
        map
    }
}

/// A field line in a [`RawHead`]: its name's offset and length, its value's (as httparse
/// reads it: without the blanks around it). A head is at most [`MAX_HEAD`] bytes: they fit.
pub type Line = [u16; 4];

/// A complete head's status line and field lines, checked for what every head must be.
struct Scanned<'b> {
    status: StatusCode,
    version: Version,
    len: usize,
    fields: &'b [httparse::Header<'b>],
}

/// The head at the start of `buf` as httparse reads it (which also keeps every field name a
/// token and every value bytes `HeaderValue` takes: `tests::the_raw_reading_refuses_what_the_map_refuses`),
/// within [`MAX_HEAD`] and [`MAX_FIELDS`], not a 101: Ok(None) while it is incomplete.
fn scan<'b>(
    buf: &'b [u8],
    fields: &'b mut [std::mem::MaybeUninit<httparse::Header<'b>>; MAX_FIELDS],
) -> Result<Option<Scanned<'b>>, HeadError> {
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, fields);
    let len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyFields),
        Err(e) => return Err(HeadError::Syntax(syntax(e))),
    };
    if len > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let code = resp.code.ok_or(HeadError::Syntax("no status"))?;
    let status = StatusCode::from_u16(code).map_err(|_| HeadError::Syntax("status"))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(HeadError::UnaskedUpgrade);
    }
    let version = if resp.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let fields: &'b mut [httparse::Header<'b>] = std::mem::take(&mut resp.headers);
    Ok(Some(Scanned {
        status,
        version,
        len,
        fields,
    }))
}

/// Parse the response head at the start of `buf`: Ok(None) while it is incomplete. An interim
/// (1xx) head comes back like any other; the caller skips it.
pub fn parse_response(buf: &[u8], head_request: bool) -> Result<Option<Head>, HeadError> {
    // Filled by httparse as it parses (nothing to initialise first).
    let mut fields = [std::mem::MaybeUninit::uninit(); MAX_FIELDS];
    let Some(head) = scan(buf, &mut fields)? else {
        return Ok(None);
    };
    let len = head.len;
    let mut headers = HeaderMap::with_capacity(head.fields.len() + ADDED_FIELDS);
    let mut framer = Framer::default();
    // One copy of the head; the values are slices of it (no allocation per field).
    let shared = bytes::Bytes::copy_from_slice(&buf[..len]);
    for f in head.fields.iter() {
        let name = HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| HeadError::BadField)?;
        let at = (f.value.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
        let value = match at.checked_add(f.value.len()) {
            Some(end) if end <= len && !f.value.is_empty() => {
                HeaderValue::from_maybe_shared(shared.slice(at..end))
            }
            _ => HeaderValue::from_bytes(f.value),
        }
        .map_err(|_| HeadError::BadField)?;
        framer.field(f.name.as_bytes(), f.value);
        headers.append(name, value);
    }
    let (framing, reusable) = framer.finish(head.status, head.version, head_request)?;
    Ok(Some(Head {
        status: head.status,
        version: head.version,
        headers,
        framing,
        reusable,
        len,
        raw: None,
    }))
}

/// [`parse_response`] without the field map: the same checks and framing, the head's bytes
/// kept as received ([`Head::raw`]) and `headers` left empty.
pub fn parse_response_raw(buf: &[u8], head_request: bool) -> Result<Option<Head>, HeadError> {
    let mut fields = [std::mem::MaybeUninit::uninit(); MAX_FIELDS];
    let Some(head) = scan(buf, &mut fields)? else {
        return Ok(None);
    };
    let mut framer = Framer::default();
    let mut content_length = None;
    let mut length_seen = false;
    let mut lines = Vec::with_capacity(head.fields.len());
    let at = |s: &[u8]| u16::try_from((s.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize));
    for f in head.fields.iter() {
        let name = f.name.as_bytes();
        let line = (|| {
            let n = u16::try_from(name.len()).ok()?;
            let v = u16::try_from(f.value.len()).ok()?;
            let value_at = if f.value.is_empty() {
                0
            } else {
                at(f.value).ok()?
            };
            Some([at(name).ok()?, n, value_at, v])
        })();
        lines.push(line.ok_or(HeadError::TooLarge)?);
        if framer.field(name, f.value) && !length_seen {
            length_seen = true;
            content_length = crate::policy::headers::length_value(f.value);
        }
    }
    let (framing, reusable) = framer.finish(head.status, head.version, head_request)?;
    Ok(Some(Head {
        status: head.status,
        version: head.version,
        headers: HeaderMap::new(),
        framing,
        reusable,
        len: head.len,
        raw: Some(Box::new(RawHead {
            bytes: bytes::Bytes::copy_from_slice(&buf[..head.len]),
            content_length,
            lines,
        })),
    }))
}

fn syntax(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "field name",
        httparse::Error::HeaderValue => "field value",
        httparse::Error::NewLine => "line ending",
        httparse::Error::Status => "status",
        httparse::Error::Token => "token",
        httparse::Error::Version => "version",
        _ => "syntax",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Option<Head>, HeadError> {
        parse_response(raw.as_bytes(), false)
    }

    fn head(raw: &str) -> Head {
        parse(raw).unwrap().expect("complete")
    }

    #[test]
    fn the_request_head_is_the_line_the_fields_and_a_blank_line() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("a.example"));
        h.append("x-two", HeaderValue::from_static("1"));
        h.append("x-two", HeaderValue::from_static("2"));
        let mut out = Vec::new();
        encode_request(&mut out, &Method::GET, "/p?q=1", &h);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /p?q=1 HTTP/1.1\r\nhost: a.example\r\nx-two: 1\r\nx-two: 2\r\n\r\n"
        );
    }

    #[test]
    fn a_length_frames_the_body_and_keeps_the_connection() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello");
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.reusable);
        assert_eq!(h.len, 44);
        assert_eq!(h.headers["x"], "y");
    }

    #[test]
    fn an_incomplete_head_asks_for_more_and_a_huge_one_is_refused() {
        assert!(parse("HTTP/1.1 200 OK\r\nContent-Le").unwrap().is_none());
        let huge = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX_HEAD + 1));
        assert_eq!(parse(&huge).unwrap_err(), HeadError::TooLarge);
        let many: String = (0..MAX_FIELDS + 1)
            .map(|i| format!("X{i}: 1\r\n"))
            .collect();
        let raw = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert_eq!(parse(&raw).unwrap_err(), HeadError::TooManyFields);
    }

    #[test]
    fn no_body_for_head_204_304_and_1xx_whatever_the_length() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        let h = parse_response(raw, true).unwrap().unwrap();
        assert_eq!(h.framing, Framing::Empty);
        assert!(h.reusable);
        for s in ["204 No Content", "304 Not Modified", "103 Early Hints"] {
            let h = head(&format!("HTTP/1.1 {s}\r\nContent-Length: 5\r\n\r\n"));
            assert_eq!(h.framing, Framing::Empty, "{s}");
        }
        assert_eq!(
            parse("HTTP/1.1 101 Switching Protocols\r\n\r\n").unwrap_err(),
            HeadError::UnaskedUpgrade
        );
    }

    #[test]
    fn chunked_frames_the_body_and_beside_a_length_is_refused() {
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!((h.framing, h.reusable), (Framing::Chunked, true));
        for both in [
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nTransfer-Encoding: identity\r\n\r\n",
        ] {
            assert_eq!(
                parse(both).unwrap_err(),
                HeadError::LengthWithCoding,
                "{both}"
            );
        }
        // No body to frame: nothing to disagree about.
        let h = head(
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        assert_eq!(h.framing, Framing::Empty);
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
        assert_eq!((h.framing, h.reusable), (Framing::UntilClose, false));
        let h = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked \r\n\r\n",
        );
        assert_eq!(h.framing, Framing::Chunked);
    }

    #[test]
    fn lengths_must_agree_and_be_numbers() {
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n").framing,
            Framing::Length(7)
        );
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n");
        assert_eq!(h.framing, Framing::Length(7));
        for bad in [
            "7, 8",
            "-1",
            "+7",
            "0x10",
            "",
            "1 2",
            "99999999999999999999",
        ] {
            let raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n");
            assert_eq!(parse(&raw).unwrap_err(), HeadError::BadLength, "{bad:?}");
        }
        let raw = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n";
        assert_eq!(parse(raw).unwrap_err(), HeadError::BadLength);
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").framing,
            Framing::Empty
        );
    }

    #[test]
    fn no_framing_reads_to_the_close() {
        let h = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!((h.framing, h.reusable), (Framing::UntilClose, false));
    }

    #[test]
    fn connection_close_and_http_1_0_decide_reuse() {
        assert!(
            !head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n").reusable
        );
        assert!(
            !head("HTTP/1.1 200 OK\r\nConnection: x, Close\r\nContent-Length: 1\r\n\r\n").reusable
        );
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n");
        assert_eq!(h.version, Version::HTTP_10);
        assert!(!h.reusable);
        assert!(
            head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n").reusable
        );
    }

    #[test]
    fn first_values_are_what_the_maps_get_gives() {
        use http::header::{CONTENT_LOCATION, LOCATION};
        let heads = [
            "HTTP/1.1 201 Created\r\nLocation: /a\r\nlocation: /b\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nCONTENT-LOCATION: http://h/c\r\nConnection: location\r\nLOCATION:\r\nLocation: /d\r\n\r\n",
            "HTTP/1.1 303 See Other\r\nX-Location: /x\r\nContent-Location: café\r\n\r\n",
            "HTTP/1.1 204 No Content\r\n\r\n",
        ];
        let names = [LOCATION, CONTENT_LOCATION];
        for raw in heads {
            let map = parse_response(raw.as_bytes(), false)
                .unwrap()
                .unwrap()
                .headers;
            let got = parse_response_raw(raw.as_bytes(), false).unwrap().unwrap();
            let first = got.raw.unwrap().first_values(&names);
            for name in &names {
                assert_eq!(first.get(name), map.get(name), "{raw:?} {name}");
            }
            assert_eq!(
                first.len(),
                names.iter().filter(|n| map.contains_key(*n)).count()
            );
        }
    }

    #[test]
    fn the_raw_reading_refuses_what_the_map_refuses() {
        let mut heads: Vec<Vec<u8>> = Vec::new();
        for b in 0..=255u8 {
            let mut name = b"HTTP/1.1 200 OK\r\nX".to_vec();
            name.extend_from_slice(&[b, b'y', b':', b' ', b'v', b'\r', b'\n', b'\r', b'\n']);
            heads.push(name);
            let mut value = b"HTTP/1.1 200 OK\r\nX: a".to_vec();
            value.extend_from_slice(&[b, b'b', b'\r', b'\n', b'\r', b'\n']);
            heads.push(value);
        }
        for raw in [
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
            "HTTP/1.1 200 OK\r\n: empty\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
            "HTTP/1.1 200 OK\nX: a\n\n",
            "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
            "HTTP/1.0 304 Not Modified\r\nConnection: keep-alive\r\n\r\n",
        ] {
            heads.push(raw.as_bytes().to_vec());
        }
        let many: String = (0..MAX_FIELDS + 1)
            .map(|i| format!("X{i}: 1\r\n"))
            .collect();
        heads.push(format!("HTTP/1.1 200 OK\r\n{many}\r\n").into_bytes());
        heads.push(format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD)).into_bytes());
        for raw in &heads {
            for head_request in [false, true] {
                let map = parse_response(raw, head_request);
                let bytes = parse_response_raw(raw, head_request);
                let outline = |r: &Result<Option<Head>, HeadError>| match r {
                    Ok(Some(h)) => Ok(Some((h.status, h.version, h.framing, h.reusable, h.len))),
                    Ok(None) => Ok(None),
                    Err(e) => Err(*e),
                };
                assert_eq!(
                    outline(&map),
                    outline(&bytes),
                    "{:?}",
                    String::from_utf8_lossy(raw)
                );
                if let Ok(Some(h)) = bytes {
                    let kept = h.raw.unwrap();
                    assert_eq!(&kept.bytes[..], &raw[..h.len]);
                    let map = map.unwrap().unwrap().headers;
                    assert_eq!(
                        kept.content_length,
                        crate::policy::headers::content_length(&map)
                    );
                    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
                    let mut resp = httparse::Response::new(&mut fields);
                    assert!(resp.parse(raw).unwrap().is_complete());
                    assert_eq!(kept.lines.len(), resp.headers.len());
                    for ([na, nl, va, vl], f) in kept.lines.iter().zip(resp.headers.iter()) {
                        let at = |a: &u16, l: &u16| &raw[*a as usize..][..*l as usize];
                        assert_eq!(at(na, nl), f.name.as_bytes());
                        assert_eq!(at(va, vl), f.value);
                    }
                }
            }
        }
    }

    #[test]
    fn broken_heads_are_refused() {
        assert!(matches!(
            parse("HTTP/2 200 OK\r\n\r\n"),
            Err(HeadError::Syntax(_))
        ));
        assert!(matches!(
            parse("HTTP/1.1 2000 OK\r\n\r\n"),
            Err(HeadError::Syntax(_))
        ));
        assert!(matches!(
            parse("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"),
            Err(HeadError::Syntax(_))
        ));
        assert!(matches!(
            parse("HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n"),
            Err(HeadError::Syntax(_))
        ));
    }
}
