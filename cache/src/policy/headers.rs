//! Header hygiene for a proxy: hop-by-hop fields (RFC 9110 §7.6.1), Via (§7.6.3), Age
//! (RFC 9111 §5.1), Date (RFC 9110 §6.6.1) and request framing checks (RFC 9112 §6.3).
//!
//! Contract:
//! * [`strip_hop_by_hop`] removes Connection, every field it names, and the fixed hop-by-hop set.
//! * [`append_via`] keeps existing Via entries first and emits one combined field line.
//! * [`check_request_framing`] rejects messages whose body length is ambiguous, so a request
//!   can't be read one way here and another way upstream (request smuggling).

use std::time::{Duration, SystemTime};

use http::header::{
    CONNECTION, CONTENT_LENGTH, DATE, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER,
    TRANSFER_ENCODING, UPGRADE, VIA,
};
use http::{HeaderMap, HeaderName, HeaderValue, Version};

use super::cache_control::DELTA_SECONDS_MAX;

/// Fields that are hop-by-hop whether or not Connection lists them (the raw relay,
/// `http::passlane::relay_head`, is tested against this list).
pub(crate) static HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
];

/// Whether `name` is one of [`HOP_BY_HOP`].
pub(crate) fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.iter().any(|h| h == name)
}

/// The field names listed in Connection (invalid tokens skipped).
pub(crate) fn connection_tokens(h: &HeaderMap) -> Vec<HeaderName> {
    h.get_all(CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .filter_map(|token| HeaderName::from_bytes(token.trim_ascii()).ok())
        .collect()
}

/// Removes hop-by-hop fields: Connection and every field it names, Keep-Alive,
/// Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Authenticate and
/// Proxy-Authorization.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    if h.contains_key(CONNECTION) {
        for name in connection_tokens(h) {
            h.remove(name);
        }
    }
    // Most messages carry none: look before collecting.
    if !h.keys().any(is_hop_by_hop) {
        return;
    }
    let fixed: Vec<HeaderName> = h.keys().filter(|n| is_hop_by_hop(n)).cloned().collect();
    for name in fixed {
        h.remove(name);
    }
}

/// Appends `"<proto> <node_id> (strait)"` to Via (`proto` is "1.0", "1.1", "2" ...). Existing
/// entries stay first; all are combined in one field line. A `node_id` that can't appear in a
/// header value leaves `h` unchanged (config validation rejects such ids).
pub fn append_via(h: &mut HeaderMap, version: Version, node_id: &str) {
    let proto = match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    };
    if !h.contains_key(VIA) {
        // The usual case: this node's entry alone, made once per thread and then shared.
        if let Some(value) = own_via(proto, node_id) {
            h.insert(VIA, value);
        }
        return;
    }
    let entry = format!("{proto} {node_id} (strait)");
    if let Some(value) = append_list_member(h, &VIA, entry.as_bytes()) {
        h.insert(VIA, value);
    }
}

/// `"<proto> <node_id> (strait)"` as a field value, kept per thread for the last node id seen.
fn own_via(proto: &'static str, node_id: &str) -> Option<HeaderValue> {
    use std::cell::RefCell;
    thread_local! {
        static OWN: RefCell<(String, Vec<(&'static str, HeaderValue)>)> =
            const { RefCell::new((String::new(), Vec::new())) };
    }
    OWN.with(|own| {
        let mut own = own.borrow_mut();
        if own.0 != node_id {
            own.0 = node_id.to_string();
            own.1.clear();
        }
        if let Some((_, v)) = own.1.iter().find(|(p, _)| *p == proto) {
            return Some(v.clone());
        }
        let text = format!("{proto} {node_id} (strait)");
        let value = HeaderValue::from_maybe_shared(bytes::Bytes::from(text)).ok()?;
        own.1.push((proto, value.clone()));
        Some(value)
    })
}

/// The value of the `name` list with `member` appended, all field lines combined with ", ".
pub(crate) fn append_list_member(
    h: &HeaderMap,
    name: &HeaderName,
    member: &[u8],
) -> Option<HeaderValue> {
    let mut combined = Vec::new();
    for value in h.get_all(name) {
        let value = value.as_bytes().trim_ascii();
        if value.is_empty() {
            continue;
        }
        combined.extend_from_slice(value);
        combined.extend_from_slice(b", ");
    }
    combined.extend_from_slice(member);
    HeaderValue::from_bytes(&combined).ok()
}

/// The `Content-Length` value, when present and a number.
pub fn content_length(h: &HeaderMap) -> Option<u64> {
    length_value(h.get(http::header::CONTENT_LENGTH)?.as_bytes())
}

/// A `Content-Length` field value read as [`content_length`] reads its first one: visible
/// ASCII (as `HeaderValue::to_str`), a number once trimmed; for callers that hold the bytes.
pub fn length_value(v: &[u8]) -> Option<u64> {
    if !v.iter().all(|&b| b == b'\t' || (32..127).contains(&b)) {
        return None;
    }
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// The field lines of a raw request head (request line, field lines, then an empty line), as
/// name and value: the request line skipped, the value trimmed of spaces and tabs, a line
/// without a colon skipped, `Connection` left out (it is this hop's); the head ends at the
/// first empty line. Bare LF line ends read as CRLF. The head is one a request parser
/// accepted: nothing is checked here.
pub fn request_fields(raw: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    // memchr over the head, not a byte-at-a-time scan: this runs for every request a peer
    // is asked (the lean remote hit encodes its `Lookup` from it).
    let mut rest = match memchr::memchr(b'\n', raw) {
        Some(nl) => &raw[nl + 1..],
        None => &[][..],
    };
    std::iter::from_fn(move || loop {
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(nl) => (&rest[..nl], &rest[nl + 1..]),
            None => (rest, &[][..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            rest = &[][..];
            return None;
        }
        rest = next;
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = &line[..colon];
        if !name.eq_ignore_ascii_case(b"connection") {
            return Some((name, trim_ows(&line[colon + 1..])));
        }
    })
}

/// `v` without leading and trailing spaces and tabs.
fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    &v[start..end.max(start)]
}

/// A `Content-Length` value in its one plain spelling — decimal digits only (no sign, space or
/// list), no leading zero, at most 19 of them — as this node's store writes it and as hyper
/// and `admit` read it; None for any other spelling (left to a slower path, or refused).
pub fn plain_length(v: &[u8]) -> Option<u64> {
    let plain = !v.is_empty()
        && v.len() <= 19
        && v.iter().all(u8::is_ascii_digit)
        && (v[0] != b'0' || v.len() == 1);
    plain.then(|| v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// The Age value for `age`: whole seconds, capped at 2^31 (RFC 9111 §1.2.2).
pub fn age_value(age: Duration) -> HeaderValue {
    HeaderValue::from(age.as_secs().min(DELTA_SECONDS_MAX))
}

/// Adds a Date field for `now` when the message has none.
pub fn ensure_date(h: &mut HeaderMap, now: SystemTime) {
    if h.contains_key(DATE) {
        return;
    }
    // An IMF-fixdate is always visible ASCII, so this conversion does not fail.
    if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(now)) {
        h.insert(DATE, value);
    }
}

/// Why a request's framing is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramingError {
    /// Ambiguous or invalid: 400.
    Bad(&'static str),
    /// A transfer coding this node does not implement (only `chunked` is): 501
    /// (RFC 9112 §6.1). Dropping it on the way upstream would change the body.
    Unsupported(&'static str),
}

/// Request framing checks: Bad when both Content-Length and Transfer-Encoding are present,
/// when Content-Length values are not all the same valid number, or when Transfer-Encoding is
/// present but its final coding is not `chunked` (or chunked is applied twice); Unsupported
/// when any coding other than `chunked` is listed.
pub fn check_request_framing(h: &HeaderMap) -> Result<(), FramingError> {
    use FramingError::{Bad, Unsupported};
    let has_te = h.contains_key(TRANSFER_ENCODING);
    if has_te && h.contains_key(CONTENT_LENGTH) {
        return Err(Bad("both Content-Length and Transfer-Encoding"));
    }
    let mut length = None;
    for value in h.get_all(CONTENT_LENGTH) {
        for member in value.as_bytes().split(|&b| b == b',') {
            let member = member.trim_ascii();
            if member.is_empty() || member.len() > 19 || !member.iter().all(u8::is_ascii_digit) {
                return Err(Bad("invalid Content-Length"));
            }
            let n = member
                .iter()
                .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
            if length.is_some_and(|l| l != n) {
                return Err(Bad("conflicting Content-Length values"));
            }
            length = Some(n);
        }
    }
    if has_te {
        let codings: Vec<Vec<u8>> = h
            .get_all(TRANSFER_ENCODING)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .map(|c| {
                let name = c.split(|&b| b == b';').next().unwrap_or_default();
                name.trim_ascii().to_ascii_lowercase()
            })
            .filter(|c| !c.is_empty())
            .collect();
        let chunked = codings
            .iter()
            .filter(|c| c.as_slice() == b"chunked")
            .count();
        if codings.last().map(Vec::as_slice) != Some(b"chunked".as_slice()) || chunked != 1 {
            return Err(Bad("Transfer-Encoding must end with a single chunked"));
        }
        if codings.len() != 1 {
            return Err(Unsupported(
                "transfer codings other than chunked are not supported",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-at-a-time reading `request_fields` replaced, kept as its reference.
    fn fields_by_split(raw: &[u8]) -> Vec<(&[u8], &[u8])> {
        let fields = match raw.iter().position(|&b| b == b'\n') {
            Some(nl) => &raw[nl + 1..],
            None => &[][..],
        };
        fields
            .split(|&b| b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .take_while(|line| !line.is_empty())
            .filter_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                let name = &line[..colon];
                (!name.eq_ignore_ascii_case(b"connection"))
                    .then(|| (name, trim_ows(&line[colon + 1..])))
            })
            .collect()
    }

    #[test]
    fn request_fields_read_every_head_as_the_plain_split_does() {
        // Heads built from pieces that matter to the reading: line ends (CRLF, LF, a lone
        // CR), colons, spaces, `Connection` in both cases, empty lines, a missing request
        // line end; every combination of up to four pieces.
        let pieces: [&[u8]; 12] = [
            b"GET / HTTP/1.1\r\n",
            b"Host: a\r\n",
            b"X:  b \t\r\n",
            b"connection: close\r\n",
            b"CONNECTION:x\n",
            b"no colon\r\n",
            b"\r\n",
            b"\n",
            b"K:v\r",
            b":\n",
            b"A: x:y\n",
            b"\r",
        ];
        let mut n = 0;
        for a in 0..pieces.len() {
            for b in 0..pieces.len() {
                for c in 0..pieces.len() {
                    for d in 0..pieces.len() {
                        let raw = [pieces[a], pieces[b], pieces[c], pieces[d]].concat();
                        let got: Vec<_> = request_fields(&raw).collect();
                        assert_eq!(
                            got,
                            fields_by_split(&raw),
                            "{:?}",
                            String::from_utf8_lossy(&raw)
                        );
                        n += 1;
                    }
                }
            }
        }
        assert_eq!(n, 12 * 12 * 12 * 12);
    }

    #[test]
    fn request_fields_are_the_lines_after_the_request_line_without_connection() {
        let raw = b"GET /a HTTP/1.1\r\nHost: x.example\r\nAccept-Encoding:  gzip \r\nConnection: close\r\nX-Empty:\r\nno colon\r\n\r\nAfter: the head\r\n";
        let got: Vec<_> = request_fields(raw).collect();
        assert_eq!(
            got,
            [
                (&b"Host"[..], &b"x.example"[..]),
                (b"Accept-Encoding", b"gzip"),
                (b"X-Empty", b""),
            ]
        );
        // Bare LF line ends (which httparse accepts) read the same.
        let got: Vec<_> = request_fields(b"GET / HTTP/1.1\nHost: y\n\n").collect();
        assert_eq!(got, [(&b"Host"[..], &b"y"[..])]);
        assert_eq!(request_fields(b"GET / HTTP/1.1").count(), 0);
        assert_eq!(trim_ows(b" \t "), b"");
    }

    use crate::policy::test_map as map;

    #[test]
    fn strips_fixed_and_connection_named_fields() {
        let mut h = map(&[
            ("connection", "close, X-Trace"),
            ("connection", "x-other"),
            ("x-trace", "1"),
            ("x-other", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("proxy-authenticate", "Basic"),
            ("proxy-authorization", "Basic eA=="),
            ("content-type", "text/plain"),
            ("cache-control", "max-age=1"),
        ]);
        strip_hop_by_hop(&mut h);
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["cache-control", "content-type"]);
    }

    #[test]
    fn via_is_appended_after_upstream_entries() {
        let mut h = map(&[("via", "1.1 b (strait)")]);
        append_via(&mut h, Version::HTTP_11, "a");
        assert_eq!(h.get_all(VIA).iter().count(), 1);
        assert_eq!(h.get(VIA).unwrap(), "1.1 b (strait), 1.1 a (strait)");
        let mut h = HeaderMap::new();
        append_via(&mut h, Version::HTTP_2, "a");
        assert_eq!(h.get(VIA).unwrap(), "2 a (strait)");
        let mut h = HeaderMap::new();
        append_via(&mut h, Version::HTTP_10, "a");
        assert_eq!(h.get(VIA).unwrap(), "1.0 a (strait)");
    }

    #[test]
    fn via_with_invalid_node_id_is_skipped() {
        let mut h = HeaderMap::new();
        append_via(&mut h, Version::HTTP_11, "bad\nid");
        assert!(h.is_empty());
    }

    #[test]
    fn age_is_whole_seconds_and_capped() {
        assert_eq!(age_value(Duration::from_millis(1999)), "1");
        assert_eq!(age_value(Duration::from_secs(u64::MAX)), "2147483648");
    }

    #[test]
    fn date_added_only_when_missing() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        ensure_date(&mut h, now);
        assert_eq!(h.get(DATE).unwrap(), "Tue, 14 Nov 2023 22:13:20 GMT");
        let mut h = map(&[("date", "Mon, 01 Jan 2024 00:00:00 GMT")]);
        ensure_date(&mut h, now);
        assert_eq!(h.get(DATE).unwrap(), "Mon, 01 Jan 2024 00:00:00 GMT");
    }

    #[test]
    fn framing_accepts_plain_messages() {
        assert_eq!(check_request_framing(&map(&[])), Ok(()));
        assert_eq!(
            check_request_framing(&map(&[("content-length", "10")])),
            Ok(())
        );
        let same = map(&[("content-length", "10, 10"), ("content-length", "10")]);
        assert_eq!(check_request_framing(&same), Ok(()));
        let te = map(&[("transfer-encoding", "Chunked")]);
        assert_eq!(check_request_framing(&te), Ok(()));
    }

    #[test]
    fn framing_refuses_codings_it_would_have_to_drop() {
        let te = map(&[
            ("transfer-encoding", "gzip"),
            ("transfer-encoding", "Chunked"),
        ]);
        assert!(matches!(
            check_request_framing(&te),
            Err(FramingError::Unsupported(_))
        ));
        let te = map(&[("transfer-encoding", "x-custom;q=1, chunked")]);
        assert!(matches!(
            check_request_framing(&te),
            Err(FramingError::Unsupported(_))
        ));
    }

    #[test]
    fn framing_rejects_ambiguous_lengths() {
        let both = map(&[("content-length", "3"), ("transfer-encoding", "chunked")]);
        assert!(check_request_framing(&both).is_err());
        for bad in ["10, 11", "-1", "1 0", "", "0x10", "99999999999999999999"] {
            let h = map(&[("content-length", bad)]);
            assert!(check_request_framing(&h).is_err(), "{bad:?}");
        }
        let two = map(&[("content-length", "3"), ("content-length", "4")]);
        assert!(check_request_framing(&two).is_err());
    }

    #[test]
    fn framing_rejects_non_chunked_final_coding() {
        for bad in ["gzip", "chunked, gzip", "chunked, chunked", "", "chunkedx"] {
            let h = map(&[("transfer-encoding", bad)]);
            assert!(
                matches!(check_request_framing(&h), Err(FramingError::Bad(_))),
                "{bad:?}"
            );
        }
    }
}
