//! The checks the fuzz targets (`fuzz/fuzz_targets/*.rs`, `cargo fuzz`) run on arbitrary
//! bytes, shared with the plain `cargo test` replay of saved inputs
//! (`cache/tests/fuzz_regressions.rs`). Not part of the API.
//!
//! Contract: as `strait_lb::fuzzing`: every `check_*` takes any bytes, panics when an
//! invariant of its parser or codec fails (or the code under test panics) and returns
//! otherwise; [`TARGETS`] names them as the fuzz targets and the corpus directories are named.

use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, DATE, EXPIRES, LAST_MODIFIED};
use http::{HeaderMap, Method, StatusCode};
use strait_lb::fuzzing::{config_text, diagnostics_in, Check, Input};

use crate::cluster::frame::{
    Answer, Frame, Limits, Lookup, LookupMethod, Miss, ObjectHead, PeerCodec, Push, WireHit,
    WireMeta,
};
use crate::http::fast::{self, Parse};
use crate::http::lite;
use crate::origin::h1::chunked::{Decoder, Step};
use crate::origin::h1::head::{self, Framing, MAX_HEAD};
use crate::policy::cache_control::{response_directives, CacheControl, DELTA_SECONDS_MAX};
use crate::policy::cache_status::Fwd;
use crate::policy::conditional::client_not_modified;
use crate::policy::freshness::{corrected_initial_age, http_date, FreshnessParams};
use crate::policy::range::{content_range, evaluate_range, RangeOutcome};
use crate::policy::storable::{storability, StoreParams};
use crate::policy::vary::{variant_id, vary_of, Vary};

/// The cache crate's targets and their checks.
pub const TARGETS: &[(&str, Check)] = &[
    ("fast_parse", check_fast_parse),
    ("lite_parts", check_lite_parts),
    ("response_head", check_response_head),
    ("chunked", check_chunked),
    ("chunked_whole", check_chunked_whole),
    ("cache_control", check_cache_control),
    ("range", check_range),
    ("vary", check_vary),
    ("dates", check_dates),
    ("peer_frame", check_peer_frame),
    ("wire_check", check_wire_check),
    ("node_config", check_node_config),
    ("pass_lane_head", check_pass_lane_head),
    ("pass_lane_relay", check_pass_lane_relay),
];

/// The hit fast path's parser: a fast request's head lies in the buffer, its target is in
/// origin form and the head alone parses the same; no shorter prefix of the head is a fast
/// request; its path is in normal form; the general path's `lite::parts` reads the same head as
/// a GET/HEAD of that target.
/// An upload (`Parse::Upload`) likewise, and its framing is the one the general path reads:
/// `admit`'s framing check passes; with a length, no `Transfer-Encoding` and the same
/// `Content-Length` (none for 0 only); chunked, one `Transfer-Encoding: chunked` and no
/// `Content-Length`; and `lite::parts` reads a POST, PUT, PATCH or DELETE.
pub fn check_fast_parse(data: &[u8]) {
    let (req, upload) = match fast::parse(data) {
        Parse::Fast(req) => (req, None),
        Parse::Upload(req, framing) => (req, Some(framing)),
        _ => return,
    };
    assert!(req.head_len <= data.len() && req.head_len > 0);
    assert!(req.target.starts_with('/'));
    assert!(req.target.starts_with(req.path) && !req.path.contains('?'));
    assert!(req.target.len() == req.path.len() || req.target[req.path.len()..].starts_with('?'));
    // A path the general path would normalise never takes the fast path.
    let normal = crate::policy::target::normalize_path(req.path);
    assert_eq!(
        normal.as_deref(),
        Some(req.path),
        "a path that is not normal"
    );
    let head = &data[..req.head_len];
    let again = match upload {
        None => Parse::Fast(fast::FastReq { ..req }),
        Some(len) => Parse::Upload(fast::FastReq { ..req }, len),
    };
    assert_eq!(fast::parse(head), again);
    for cut in [req.head_len - 1, req.head_len / 2] {
        assert!(
            matches!(fast::parse(&data[..cut]), Parse::Partial | Parse::Fallback),
            "a prefix of {cut} bytes is a whole request"
        );
    }
    let Some(parts) = lite::parts(head) else {
        return;
    };
    let host = parts.headers.get(http::header::HOST).map(|h| h.as_bytes());
    assert_eq!(host, Some(req.host.as_bytes()), "Host");
    let Some(len) = upload else {
        let method = if req.head { Method::HEAD } else { Method::GET };
        assert_eq!(parts.method, method);
        return;
    };
    assert!([Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(&parts.method));
    assert!(!req.head);
    let h = &parts.headers;
    assert!(crate::policy::headers::check_request_framing(h).is_ok());
    let declared = crate::policy::headers::content_length(h);
    match len {
        fast::Framing::Length(len) => {
            assert!(!h.contains_key(http::header::TRANSFER_ENCODING));
            assert!(
                declared == Some(len) || (declared.is_none() && len == 0),
                "{declared:?} {len}"
            );
        }
        fast::Framing::Chunked => {
            let te: Vec<_> = h.get_all(http::header::TRANSFER_ENCODING).iter().collect();
            assert!(te.len() == 1 && te[0].as_bytes().eq_ignore_ascii_case(b"chunked"));
            assert_eq!(declared, None);
        }
    }
}

/// `http::chunked` on any bytes: what [`whole`](crate::http::chunked::whole) takes ends within
/// them, its data is what `copy_data` appends (as long as it says), the same bytes cut
/// anywhere short of its end are not whole, and more bytes after it change nothing.
pub fn check_chunked_whole(data: &[u8]) {
    use crate::http::chunked::{copy_data, whole};
    let mut input = Input::new(data);
    let max = u64::from(input.byte()) * 64;
    let raw = input.rest();
    let mut out = b"x".to_vec();
    copy_data(raw, max, &mut out);
    let Some(w) = whole(raw, max) else {
        assert_eq!(out, b"x", "data appended from a body not taken");
        return;
    };
    assert!(w.consumed <= raw.len() && w.len <= max);
    assert_eq!(out.len() as u64 - 1, w.len);
    assert_eq!(whole(&raw[..w.consumed], max), Some(w));
    for cut in [w.consumed - 1, w.consumed / 2, 0] {
        assert_eq!(whole(&raw[..cut], max), None, "cut at {cut}");
    }
    // Every data byte is in the body: a body of n bytes of data is n bytes at least.
    assert!(w.consumed as u64 >= w.len + 5);
}

/// `lite::parts` on any bytes: the parts it returns are of a GET, HEAD, POST, PUT, PATCH or
/// DELETE over HTTP/1.1, and carry every field line of the head.
pub fn check_lite_parts(data: &[u8]) {
    let Some(parts) = lite::parts(data) else {
        return;
    };
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    assert!(methods.contains(&parts.method));
    assert_eq!(parts.version, http::Version::HTTP_11);
    let mut fields = [httparse::EMPTY_HEADER; fast::MAX_FAST_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    assert!(matches!(req.parse(data), Ok(httparse::Status::Complete(_))));
    assert_eq!(parts.headers.len(), req.headers.len(), "field lines");
}

/// The origin response head parser: after a mode byte (bit 0: the request was HEAD), the
/// bytes. A complete head lies in the buffer and within [`MAX_HEAD`], parses the same on its
/// own bytes, and no shorter prefix of it is complete; its framing follows RFC 9112 §6.3
/// (HEAD and bodyless statuses empty, `Transfer-Encoding` with `Content-Length` never reused,
/// a read-to-close body never reused).
pub fn check_response_head(data: &[u8]) {
    let mut input = Input::new(data);
    let head_request = input.byte() & 1 == 1;
    let buf = input.rest();
    let Ok(Some(h)) = head::parse_response(buf, head_request) else {
        return;
    };
    assert!(h.len <= buf.len() && h.len <= MAX_HEAD && h.len > 0);
    // Every field line, in order, with its value's bytes (values are slices of one copy).
    let mut fields = [httparse::EMPTY_HEADER; head::MAX_FIELDS];
    let mut resp = httparse::Response::new(&mut fields);
    assert!(matches!(resp.parse(buf), Ok(httparse::Status::Complete(n)) if n == h.len));
    assert_eq!(h.headers.len(), resp.headers.len(), "field lines");
    for f in resp.headers.iter() {
        let values: Vec<&[u8]> = h
            .headers
            .get_all(f.name)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        assert!(
            values.contains(&f.value),
            "{}: {:?} not in {values:?}",
            f.name,
            f.value
        );
    }
    let again = head::parse_response(&buf[..h.len], head_request);
    let Ok(Some(again)) = again else {
        panic!("the head alone: {again:?}");
    };
    assert_eq!(
        (again.len, again.status, again.framing, again.reusable),
        (h.len, h.status, h.framing, h.reusable)
    );
    assert!(
        !matches!(
            head::parse_response(&buf[..h.len - 1], head_request),
            Ok(Some(_))
        ),
        "a prefix is a whole head"
    );
    let bodyless = head_request
        || h.status.is_informational()
        || h.status == StatusCode::NO_CONTENT
        || h.status == StatusCode::NOT_MODIFIED;
    if bodyless {
        assert_eq!(h.framing, Framing::Empty);
        return;
    }
    let te = h.headers.contains_key(http::header::TRANSFER_ENCODING);
    if te && h.headers.contains_key(http::header::CONTENT_LENGTH) {
        assert!(!h.reusable, "TE and CL on a reused connection");
    }
    match h.framing {
        Framing::UntilClose => assert!(!h.reusable),
        Framing::Length(n) => assert!(n > 0 && !te),
        Framing::Chunked => assert!(te),
        Framing::Empty => assert!(!te),
    }
}

/// How one decoding run ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// `Done` after this many bytes of the input.
    Done(usize),
    /// Still asking for more at the end of the input.
    More,
    /// Refused.
    Error,
}

/// Decodes `raw` fed in pieces of the sizes `pieces` gives (cycled; 0 counts as 1): the body
/// and how it ended.
fn decode_chunked(raw: &[u8], pieces: &[u8]) -> (Vec<u8>, End) {
    decode_chunked_with(Decoder::default(), raw, pieces)
}

/// [`decode_chunked`] with the given decoder.
fn decode_chunked_with(mut d: Decoder, raw: &[u8], pieces: &[u8]) -> (Vec<u8>, End) {
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    let mut fed = 0;
    let mut turn = 0;
    loop {
        match d.step(&mut buf) {
            Err(_) => return (body, End::Error),
            Ok(Step::Data(b)) => {
                assert!(!b.is_empty(), "an empty Data step");
                body.extend_from_slice(&b);
            }
            Ok(Step::Done) => return (body, End::Done(fed - buf.len())),
            Ok(Step::More) if fed >= raw.len() => return (body, End::More),
            Ok(Step::More) => {
                let piece = match pieces.get(turn % pieces.len().max(1)) {
                    Some(&p) => usize::from(p).max(1),
                    None => raw.len(),
                };
                turn += 1;
                let end = (fed + piece).min(raw.len());
                buf.extend_from_slice(&raw[fed..end]);
                fed = end;
            }
        }
    }
}

/// The chunked decoder: after a byte for a limit, a byte counting piece sizes and those
/// sizes, the body bytes. Decoded at once and in those pieces, the result is the same (body,
/// end, bytes consumed); the body is never longer than the input; `Done` comes only after the
/// last chunk's CRLF and the trailer section's empty line, so the input cut one byte short is
/// never `Done`. With a limit, the body never passes it, a body within it decodes as without
/// one, and what `http::chunked::declares_over` sees over it never ends `Done`.
pub fn check_chunked(data: &[u8]) {
    let mut input = Input::new(data);
    let limit = u64::from(input.byte()) * 4;
    let n = usize::from(input.byte() % 16);
    let pieces = input.bytes(n);
    let raw = input.rest();
    let whole = decode_chunked(raw, &[]);
    let split = decode_chunked(raw, pieces);
    assert_eq!(whole, split, "split at {pieces:?}");
    let ones = decode_chunked(raw, &[1]);
    assert_eq!(whole, ones, "byte by byte");
    let limited = decode_chunked_with(Decoder::with_limit(limit), raw, pieces);
    assert!(limited.0.len() as u64 <= limit, "past the limit");
    if matches!(whole.1, End::Done(_)) && whole.0.len() as u64 <= limit {
        assert_eq!(limited, whole, "a body within the limit");
    }
    if crate::http::chunked::declares_over(raw, limit) {
        assert!(
            !matches!(limited.1, End::Done(_)),
            "declared over, yet Done"
        );
    }
    let (body, end) = whole;
    assert!(body.len() <= raw.len());
    if let End::Done(used) = end {
        // At least `0\r\n\r\n` besides the data, ending in the blank line.
        assert!(raw[..used].ends_with(b"\r\n"));
        assert!(
            body.len() + 5 <= used,
            "{} body bytes in {used}",
            body.len()
        );
        let short = decode_chunked(&raw[..used - 1], &[]);
        assert!(!matches!(short.1, End::Done(_)), "Done on a cut body");
    }
}

/// Header lines of the input: `name:value` lines (split at LF, CR trimmed); lines that are
/// not a valid field are skipped.
fn header_lines(data: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        h.append(name, value);
    }
    h
}

/// Cache-Control and targeted fields: every line of the input is a field value (the first
/// line may be a `Cache-Control` or a `CDN-Cache-Control`, the mode byte says which fields
/// get which lines). Parsing never panics, delta-seconds saturate at [`DELTA_SECONDS_MAX`],
/// parsing is deterministic, a targeted field that parses replaces Cache-Control, and the
/// lines parsed one by one, first one winning, agree with the list on every flag.
pub fn check_cache_control(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte();
    let mut h = HeaderMap::new();
    let cdn = HeaderName::from_static("cdn-cache-control");
    let mut values = Vec::new();
    for (i, line) in input.rest().split(|b| *b == b'\n').enumerate() {
        let Ok(v) = HeaderValue::from_bytes(line) else {
            continue;
        };
        let name = if (mode >> (i % 8)) & 1 == 1 {
            cdn.clone()
        } else {
            CACHE_CONTROL
        };
        if name == CACHE_CONTROL {
            values.push(v.clone());
        }
        h.append(name, v);
    }
    let cc = CacheControl::from_headers(&h);
    assert_eq!(cc, CacheControl::parse(values.iter()));
    for d in [
        cc.max_age,
        cc.s_maxage,
        cc.min_fresh,
        cc.stale_while_revalidate,
        cc.stale_if_error,
    ] {
        assert!(d.is_none_or(|d| d <= DELTA_SECONDS_MAX));
    }
    let mut flags = CacheControl::default();
    for v in &values {
        let one = CacheControl::parse([v]);
        flags.no_store |= one.no_store;
        flags.no_cache |= one.no_cache;
        flags.private |= one.private;
        flags.public |= one.public;
        flags.must_revalidate |= one.must_revalidate;
        flags.immutable |= one.immutable;
    }
    assert_eq!(
        (flags.no_store, flags.no_cache, flags.private, flags.public),
        (cc.no_store, cc.no_cache, cc.private, cc.public),
        "flags of the lines one by one"
    );
    let (targeted, by) = response_directives(&h, std::slice::from_ref(&cdn));
    match &by {
        None => assert_eq!(targeted, cc),
        Some(name) => {
            assert_eq!(*name, cdn);
            assert!(targeted.max_age.is_none_or(|d| d <= DELTA_SECONDS_MAX));
        }
    }
    assert_eq!(response_directives(&h, &[cdn]), (targeted, by));
}

/// Range: after a mode byte and a representation length (u16), header lines for the request
/// (`Range`, `If-Range`) and the stored response (`ETag`, `Last-Modified`), one map. A
/// partial answer lies inside the representation, and its `Content-Range` value is valid.
pub fn check_range(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte();
    let len = if mode & 1 == 1 {
        u64::from(input.u16())
    } else {
        input.u64()
    };
    let h = header_lines(input.rest());
    match evaluate_range(&h, &h, len) {
        RangeOutcome::Full | RangeOutcome::Unsatisfiable => {}
        RangeOutcome::Partial { start, end } => {
            assert!(start <= end && end < len, "{start}-{end}/{len}");
            let v = content_range(start, end, len);
            assert_eq!(
                v.to_str().ok(),
                Some(format!("bytes {start}-{end}/{len}").as_str())
            );
        }
    }
}

/// The values of `fields` in `req` as `variant_id` promises to tell them apart: absent, or
/// the trimmed non-empty list members of all lines in order.
fn normal_values(fields: &[HeaderName], req: &HeaderMap) -> Vec<Option<Vec<Vec<u8>>>> {
    fields
        .iter()
        .map(|name| {
            req.contains_key(name).then(|| {
                req.get_all(name)
                    .iter()
                    .flat_map(|v| v.as_bytes().split(|b| *b == b','))
                    .map(|m| m.trim_ascii().to_vec())
                    .filter(|m| !m.is_empty())
                    .collect()
            })
        })
        .collect()
}

/// Vary: the input holds a response's header lines, then (after a line `--`) two requests'
/// header lines separated by another `--`. `vary_of` gives sorted, deduplicated lowercase
/// names; two requests get the same variant id exactly when their selecting values are the
/// same (absent differs from empty).
pub fn check_vary(data: &[u8]) {
    let mut parts = data.split(|b| *b == 0);
    let resp = header_lines(parts.next().unwrap_or_default());
    let a = header_lines(parts.next().unwrap_or_default());
    let b = header_lines(parts.next().unwrap_or_default());
    let Vary::Fields(fields) = vary_of(&resp) else {
        return;
    };
    assert!(!fields.is_empty());
    assert!(fields.windows(2).all(|w| w[0].as_str() < w[1].as_str()));
    let (ia, ib) = (variant_id(&fields, &a), variant_id(&fields, &b));
    let (na, nb) = (normal_values(&fields, &a), normal_values(&fields, &b));
    assert_eq!(ia == ib, na == nb, "ids {ia:?} {ib:?} for {na:?} {nb:?}");
}

/// Dates and freshness: after a status (u16) and three times (u32 seconds after 2000 for the
/// request, the response's delay, the lookup's delay), response header lines (and the
/// request's, after a NUL). An HTTP-date that parses formats back to itself; `storability`
/// never panics on any dates; a stored response's ttl is negative exactly when it is stale
/// and its age never less than the corrected initial age; a 304 decision never panics.
pub fn check_dates(data: &[u8]) {
    let mut input = Input::new(data);
    let status = StatusCode::from_u16(100 + input.u16() % 500).unwrap_or(StatusCode::OK);
    let epoch = SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_800);
    let request_time = epoch + Duration::from_secs(u64::from(input.u32()));
    let response_time = request_time + Duration::from_millis(u64::from(input.u16()));
    let now = response_time + Duration::from_secs(u64::from(input.u32()));
    let mut parts = input.rest().splitn(2, |b| *b == 0);
    let resp = header_lines(parts.next().unwrap_or_default());
    let req = header_lines(parts.next().unwrap_or_default());
    for name in [DATE, EXPIRES, LAST_MODIFIED] {
        if let Some(t) = http_date(&resp, name) {
            let text = httpdate::fmt_http_date(t);
            let mut again = HeaderMap::new();
            again.insert(
                DATE,
                HeaderValue::from_str(&text).unwrap_or_else(|e| panic!("{e}")),
            );
            assert_eq!(http_date(&again, DATE), Some(t), "{text}");
        }
    }
    let age = corrected_initial_age(&resp, request_time, response_time);
    let targets = [HeaderName::from_static("cdn-cache-control")];
    let params = StoreParams {
        freshness: FreshnessParams {
            heuristic_percent: 10,
            heuristic_max: Duration::from_secs(86_400),
        },
        targets: &targets,
        default_ttl: None,
    };
    let req_cc = CacheControl::from_headers(&req);
    let stored = storability(
        &Method::GET,
        &req,
        &req_cc,
        status,
        &resp,
        request_time,
        response_time,
        &params,
    );
    if let Ok(meta) = stored {
        assert_eq!(meta.corrected_initial_age, age);
        assert!(meta.current_age(now) >= meta.corrected_initial_age);
        assert_eq!(
            meta.ttl(now) < 0,
            !meta.is_fresh(now),
            "ttl {}",
            meta.ttl(now)
        );
        let _ = meta.staleness(now);
    }
    let _ = client_not_modified(&Method::GET, &req, status, &resp, None);
}

/// A frame built from the input (a kind byte, then its fields).
fn frame_of(input: &mut Input<'_>) -> Frame {
    let text = |input: &mut Input<'_>| String::from_utf8_lossy(input.short_bytes()).into_owned();
    let fields = |input: &mut Input<'_>| {
        let n = usize::from(input.byte() % 8);
        (0..n)
            .map(|_| {
                (
                    Bytes::copy_from_slice(input.short_bytes()),
                    Bytes::copy_from_slice(input.short_bytes()),
                )
            })
            .collect::<Vec<_>>()
    };
    let opt = |input: &mut Input<'_>| {
        let v = input.u64();
        (v & 1 == 1).then_some(v >> 1)
    };
    let object_head = |input: &mut Input<'_>| ObjectHead {
        status: input.u16(),
        headers: fields(input),
        meta: WireMeta {
            request_time_ms: input.u64(),
            response_time_ms: input.u64(),
            corrected_initial_age_ms: input.u64(),
            freshness_lifetime_ms: input.u64(),
            no_cache: input.byte() & 1 == 1,
            must_revalidate: input.byte() & 1 == 1,
            stale_while_revalidate_ms: opt(input),
            stale_if_error_ms: opt(input),
        },
        vary: (0..input.byte() % 4).map(|_| text(input)).collect(),
        variant_id: Bytes::copy_from_slice(input.short_bytes()),
        has_targeted: input.byte() & 1 == 1,
        body_len: input.u64(),
        cache_status: text(input),
    };
    match input.byte() % 18 {
        0 => Frame::Hello {
            version: input.byte(),
            node: text(input),
            nonce: input.array(),
        },
        1 => Frame::Lookup(Lookup {
            key: text(input),
            method: if input.byte() & 1 == 0 {
                LookupMethod::Get
            } else {
                LookupMethod::Head
            },
            uri: text(input),
            headers: fields(input),
            hops: input.byte(),
            flags: input.byte() & Lookup::KNOWN_FLAGS,
        }),
        2 => Frame::Hit(Box::new(object_head(input))),
        3 => Frame::Miss(Miss {
            lease: opt(input),
            cache_status: text(input),
        }),
        4 => Frame::Push(Box::new(Push {
            key: text(input),
            lease: input.u64(),
            head: object_head(input),
        })),
        5 => Frame::Data(Bytes::copy_from_slice(input.short_bytes())),
        6 => Frame::End {
            complete: input.byte() & 1 == 1,
        },
        7 => Frame::Purge { url: text(input) },
        8 => Frame::Ban {
            prefix: text(input),
        },
        9 => Frame::Count(input.u64()),
        10 => Frame::Error {
            code: input.u16(),
            message: text(input),
        },
        11 => Frame::Answer(Answer {
            status: input.u16(),
            headers: fields(input),
            body_len: input.u64(),
        }),
        12 => Frame::ConfigGet {
            version: input.u64(),
            hash: input.array(),
        },
        13 => Frame::Config {
            version: input.u64(),
            hash: input.array(),
            text: text(input),
        },
        14 => Frame::Wait,
        15 => Frame::Reset,
        16 => {
            let head = object_head(input);
            // The body inline (its length announced) or following, as the flag byte says.
            // (An empty body inline is no body inline: the same bytes, decoded as None.)
            let body = (input.byte() & 1 == 1)
                .then(|| Bytes::copy_from_slice(input.short_bytes()))
                .filter(|b| !b.is_empty());
            Frame::WireHit(Box::new(WireHit {
                wire: Bytes::copy_from_slice(input.short_bytes()),
                meta: head.meta,
                body_len: body.as_ref().map_or(head.body_len, |b| b.len() as u64),
                cache_status: head.cache_status.into(),
                body,
            }))
        }
        _ => Frame::Credit(input.u32()),
    }
}

/// Tight limits (so the fuzzer reaches them) or the defaults, by the mode byte.
fn limits_of(mode: u8) -> Limits {
    if mode & 2 == 0 {
        return Limits::default();
    }
    Limits {
        max_data_frame: 64,
        max_frame: 200,
        max_headers: 4,
        max_field: 32,
        max_node_id: 8,
    }
}

/// The peer frame codec. Mode byte: bit 0 decode the rest as received bytes, else build
/// frames from it; bit 1 tight limits; bit 2 authenticated (both ends keyed alike).
/// Decoding arbitrary bytes never panics (nor asks for room beyond the frame limits), and
/// every frame decoded encodes back to exactly the bytes it came from (on its stream); a
/// frame built from the input that encodes decodes to itself, whole, from any split of its
/// bytes; a received object head becomes an object or a fill head, or an error, without a
/// panic.
pub fn check_peer_frame(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte();
    let limits = limits_of(mode);
    let (mut tx, mut rx) = (PeerCodec::new(limits), PeerCodec::new(limits));
    let auth = mode & 4 != 0;
    if mode & 1 == 1 {
        let rest = input.rest();
        raw_lookup_matches(limits, rest);
        let mut src = BytesMut::from(rest);
        for _ in 0..64 {
            let before = src.clone();
            // What the reader reserves for a frame begun is bounded by the frame's limit.
            let need = rx.still_needed(&src);
            assert!(
                need <= 8 + limits.max_data_frame.max(limits.max_frame),
                "{need} bytes asked for"
            );
            match rx.decode_on(&mut src) {
                Ok(Some((stream, frame))) => {
                    let used = before.len() - src.len();
                    let mut again = BytesMut::new();
                    tx.encode_on(stream, &frame, &mut again)
                        .unwrap_or_else(|e| panic!("decoded {frame:?} does not encode: {e}"));
                    assert_eq!(&again[..], &before[..used], "{frame:?} re-encoded");
                    received_head(&frame);
                }
                Ok(None) | Err(_) => break,
            }
        }
        return;
    }
    if auth {
        let (c, s) = ([1u8; 16], [2u8; 16]);
        tx.enable_auth(b"fuzzing secret", &c, &s, true);
        rx.enable_auth(b"fuzzing secret", &c, &s, false);
    }
    let mut wire = BytesMut::new();
    let mut sent = Vec::new();
    while !input.is_empty() && sent.len() < 8 {
        let stream = u32::from(input.byte());
        let frame = frame_of(&mut input);
        if tx.encode_on(stream, &frame, &mut wire).is_ok() {
            sent.push((stream, frame));
        }
    }
    let cut = usize::from(mode >> 3) * 7;
    let mut src = BytesMut::from(&wire[..cut.min(wire.len())]);
    let mut rest = &wire[cut.min(wire.len())..];
    let mut got = Vec::new();
    loop {
        match rx.decode_on(&mut src) {
            Ok(Some(f)) => got.push(f),
            Ok(None) if rest.is_empty() => break,
            Ok(None) => {
                src.extend_from_slice(rest);
                rest = &[];
            }
            Err(e) => panic!("own frames refused after {} of {sent:?}: {e}", got.len()),
        }
    }
    assert!(src.is_empty(), "{} bytes left", src.len());
    assert_eq!(got, sent);
}

/// `raw` as a client's request head: a `Lookup` encoded straight from it (`Fields::Raw`, the
/// lean remote hit's) is the same bytes as one encoded from the fields read out of it, or
/// both are refused (leaving nothing behind).
fn raw_lookup_matches(limits: Limits, raw: &[u8]) {
    use crate::cluster::frame::{Fields, Lookup, LookupMethod};
    let codec = PeerCodec::new(limits);
    let fields = crate::policy::headers::request_fields(raw)
        .map(|(n, v)| (Bytes::copy_from_slice(n), Bytes::copy_from_slice(v)))
        .collect();
    let owned = Lookup {
        key: "http://k/".into(),
        method: LookupMethod::Get,
        uri: "/".into(),
        headers: fields,
        hops: 1,
        flags: Lookup::WIRE,
    };
    let mut from_fields = BytesMut::new();
    let a = codec.encode_untagged(1, &Frame::Lookup(owned.clone()), &mut from_fields);
    let mut from_raw = BytesMut::new();
    let out = crate::cluster::frame::LookupOut {
        headers: Fields::Raw(raw),
        ..owned.out()
    };
    let b = codec.encode_lookup(1, &out, &mut from_raw);
    match (a, b) {
        (Ok(()), Ok(())) => assert_eq!(from_raw, from_fields, "raw lookup"),
        (Err(_), Err(_)) => assert!(from_raw.is_empty() && from_fields.is_empty()),
        (a, b) => panic!("from the fields {a:?}, from the raw head {b:?}"),
    }
}

/// A received `Hit` or `Push` head turned into an object (with a body of its announced
/// length, when small) and into a fill head: any outcome but a panic.
fn received_head(frame: &Frame) {
    let head = match frame {
        Frame::Hit(h) => h,
        Frame::Push(p) => &p.head,
        _ => return,
    };
    let _ = crate::cluster::wire::to_fill(head, Fwd::Miss);
    if head.body_len <= 1024 {
        let body = Bytes::from(vec![b'x'; head.body_len as usize]);
        let _ = head.clone().into_object(body);
    }
}

/// Node config: TOML text (cut at the first invalid UTF-8 byte; texts naming device or
/// `/proc` paths are skipped, see `strait_lb::fuzzing::config_text`) to a validated config or
/// diagnostics inside the text, never a panic; the shared part of a text is canonical (it
/// passes `parse_shared` with the same hash) and merges into the text.
pub fn check_node_config(data: &[u8]) {
    let Some(text) = config_text(data) else {
        return;
    };
    let _ = crate::config::ConfigKind::of(text);
    if let Err(diags) = crate::config::parse(text) {
        diagnostics_in(text, &diags);
    }
    let Ok(part) = crate::config::shared::shared_part(text) else {
        return;
    };
    let again = crate::config::shared::parse_shared(&part.text)
        .unwrap_or_else(|e| panic!("canonical text {:?} refused: {e}", part.text));
    assert_eq!(again.hash, part.hash);
    let _ = crate::config::shared::merge(text, &part.text);
}

/// The asking node's check of an owner's wire head (`http::remote::wirecheck`): the input is
/// an 8-byte big-endian body length, then the head. A head it accepts, written as the answer
/// with this node's fields, parses as one complete HTTP/1.1 response head of the same status,
/// with exactly one `Content-Length` (the body's) and the added `Cache-Status` value where
/// the writer says it is.
pub fn check_wire_check(data: &[u8]) {
    use crate::http::remote::wirecheck::{check, write_answer};
    if data.len() < 8 {
        return;
    }
    let len = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
    let wire = &data[8..];
    let Ok(checked) = check(wire, len) else {
        return;
    };
    let mut out = Vec::new();
    let cs = write_answer(
        &mut out,
        wire,
        &checked,
        7,
        "1.1 a (strait)",
        &[b"b; hit", b", ", b"a; fwd=miss"],
        true,
    );
    assert_eq!(&out[cs], b"b; hit, a; fwd=miss");
    let mut lines = [httparse::EMPTY_HEADER; 128];
    let mut resp = httparse::Response::new(&mut lines);
    assert_eq!(
        resp.parse(&out).expect("the answer parses"),
        httparse::Status::Complete(out.len())
    );
    assert_eq!(resp.code, Some(checked.status));
    let lengths: Vec<&[u8]> = resp
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| h.value)
        .collect();
    assert_eq!(lengths, [len.to_string().as_bytes()]);
}

/// The pass lane's request to the origin (`http::passlane::head::origin_head`, and
/// `origin_head_of` for the upload lane): the input's first byte picks the client's address
/// family, the rest is a client's request head. The head of every plain fast-path GET, and of
/// every plain upload (`Parse::Upload`) with its method, is taken; what is written parses as
/// one complete request of that method and the same target over HTTP/1.1 whose fields are the
/// client's, in order, without `Connection`, then this node's `Via`, `X-Forwarded-For` and
/// `Forwarded`; a refused head leaves the output as it was.
pub fn check_pass_lane_head(data: &[u8]) {
    use crate::http::passlane::head::origin_head_of;
    let mut input = Input::new(data);
    let client: std::net::IpAddr = if input.byte() & 1 == 1 {
        "2001:db8::7".parse().expect("address")
    } else {
        "192.0.2.7".parse().expect("address")
    };
    let raw = input.rest();
    let mut method = "GET";
    let raw = match fast::parse(raw) {
        Parse::Fast(req) => {
            let head = &raw[..req.head_len];
            let mut out = Vec::new();
            let taken = origin_head_of(&mut out, head, method, "n1", client);
            if req.plain && !req.head {
                assert!(taken, "a plain fast GET is refused");
            }
            head
        }
        Parse::Upload(req, _) => {
            let head = &raw[..req.head_len];
            let first = fast::method_of(head);
            method = std::str::from_utf8(first).expect("an upload's method is ASCII");
            let mut out = Vec::new();
            let taken = origin_head_of(&mut out, head, method, "n1", client);
            assert_eq!(
                taken, req.plain,
                "a plain upload is refused, or another taken"
            );
            head
        }
        _ => raw,
    };
    let mut out = b"before".to_vec();
    if !origin_head_of(&mut out, raw, method, "n1", client) {
        assert_eq!(out, b"before");
        return;
    }
    let out = &out[6..];
    let mut theirs = [httparse::EMPTY_HEADER; fast::MAX_FAST_HEADERS];
    let mut client_req = httparse::Request::new(&mut theirs);
    assert!(matches!(
        client_req.parse(raw),
        Ok(httparse::Status::Complete(_))
    ));
    let mut ours = [httparse::EMPTY_HEADER; fast::MAX_FAST_HEADERS + 4];
    let mut sent = httparse::Request::new(&mut ours);
    assert!(matches!(sent.parse(out), Ok(httparse::Status::Complete(n)) if n == out.len()));
    assert_eq!((sent.method, sent.version), (Some(method), Some(1)));
    assert_eq!(sent.path, client_req.path);
    let kept: Vec<(&str, &[u8])> = client_req
        .headers
        .iter()
        .filter(|f| !f.name.eq_ignore_ascii_case("connection"))
        .map(|f| (f.name, f.value))
        .collect();
    let got: Vec<(&str, &[u8])> = sent.headers.iter().map(|f| (f.name, f.value)).collect();
    assert_eq!(
        got.len(),
        kept.len() + 3,
        "the client's fields and three of ours"
    );
    assert_eq!(&got[..kept.len()], &kept[..]);
    let ip = client.to_string();
    let forwarded = match client {
        std::net::IpAddr::V4(_) => format!("for={ip};proto=http"),
        std::net::IpAddr::V6(_) => format!("for=\"[{ip}]\";proto=http"),
    };
    assert_eq!(
        &got[kept.len()..],
        &[
            ("via", &b"1.1 n1 (strait)"[..]),
            ("x-forwarded-for", ip.as_bytes()),
            ("forwarded", forwarded.as_bytes()),
        ]
    );
}

/// The pass lane's answer head written from an origin's raw head
/// (`http::passlane::relay_head::Relay`) against the general stages' way (the head as a map,
/// `strip_hop_by_hop`, `ensure_date`, `append_via`, the targeted fields removed, `append_fwd`,
/// the persistence cookie, `h1::encode_head`): after a mode byte (bits 0–1: which names the
/// route strips, 2: a cookie, 3: the client closes, 4–5: the body's exact length unknown, 0 or
/// 7), an origin head. Every final head `parse_response_raw` takes is also taken by
/// `parse_response` with the same status, framing and reuse, and the two ways write the same
/// bytes; the storage decision reads the same of the few fields
/// (`Relay::decision_fields`) as of the whole map, and a refusal on the directives alone
/// (`NoStoreReason::by_directives`) is the whole map's refusal.
pub fn check_pass_lane_relay(data: &[u8]) {
    use crate::http::h1;
    use crate::http::passlane::relay_head::Relay;
    use crate::policy::cache_status::{append_fwd, own_fwd_value};
    use crate::policy::headers::{append_via, ensure_date, strip_hop_by_hop};
    let mut input = Input::new(data);
    let mode = input.byte();
    let buf = input.rest();
    let raw = head::parse_response_raw(buf, false);
    let map = head::parse_response(buf, false);
    let outline = |r: &Result<Option<head::Head>, head::HeadError>| match r {
        Ok(Some(h)) => Ok(Some((h.status, h.version, h.framing, h.reusable, h.len))),
        Ok(None) => Ok(None),
        Err(e) => Err(*e),
    };
    assert_eq!(outline(&raw), outline(&map), "raw and map readings differ");
    let (Ok(Some(h)), Ok(Some(m))) = (raw, map) else {
        return;
    };
    if h.status.is_informational() {
        return;
    }
    let kept = h.raw.expect("kept raw");
    // What an upload's invalidation reads of the raw head (`RawHead::first_values`) is what it
    // read of the map: each name's first value.
    let names = [
        http::header::LOCATION,
        http::header::CONTENT_LOCATION,
        HeaderName::from_static("x-strip"),
    ];
    let first = kept.first_values(&names);
    for name in &names {
        assert_eq!(first.get(name), m.headers.get(name), "first {name}");
    }
    let strips: [&[HeaderName]; 4] = [
        &[],
        &[HeaderName::from_static("x-strip"), http::header::VIA],
        &[
            HeaderName::from_static("cache-status"),
            HeaderName::from_static("x-strip"),
        ],
        &[
            HeaderName::from_static("cdn-cache-control"),
            http::header::CONTENT_LENGTH,
        ],
    ];
    let strip = strips[usize::from(mode & 3)];
    let cookie = (mode & 4 != 0).then_some("srv=ab; Path=/");
    let close = mode & 8 != 0;
    let exact = [None, Some(0), Some(7), None][usize::from((mode >> 4) & 3)];
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let date = httpdate::fmt_http_date(now);
    let node = "n1";
    // The general stages' way.
    let mut full = m.headers;
    strip_hop_by_hop(&mut full);
    ensure_date(&mut full, now);
    let decided = full.clone();
    append_via(&mut full, m.version, node);
    if strip.iter().any(|t| full.contains_key(t)) {
        for t in strip {
            full.remove(t);
        }
    }
    append_fwd(&mut full, node, Fwd::Miss);
    if let Some(c) = cookie {
        full.append(http::header::SET_COOKIE, HeaderValue::from_static(c));
    }
    let framing = h1::framing(false, m.status, &full, exact);
    let mut want = Vec::new();
    h1::encode_head(
        &mut want,
        m.status,
        &full,
        framing,
        close || h1::says_close(&full),
    );
    // The lane's.
    let mut relay = Relay::new(
        &kept.bytes,
        &kept.lines,
        (h.status, h.version),
        date.as_bytes(),
    );
    let targets = [HeaderName::from_static("cdn-cache-control")];
    let decide = |fields: &HeaderMap| {
        let params = StoreParams {
            freshness: FreshnessParams {
                heuristic_percent: 10,
                heuristic_max: Duration::from_secs(86400),
            },
            targets: &targets,
            default_ttl: None,
        };
        storability(
            &Method::GET,
            &HeaderMap::new(),
            &CacheControl::default(),
            h.status,
            fields,
            now,
            now,
            &params,
        )
    };
    let whole = decide(&decided);
    let few = relay.decision_fields(&kept.bytes, &targets);
    assert_eq!(decide(&few), whole, "the few fields decide otherwise");
    assert_eq!(
        few.contains_key(http::header::SET_COOKIE),
        decided.contains_key(http::header::SET_COOKIE)
    );
    assert_eq!(
        crate::policy::headers::content_length(&few),
        crate::policy::headers::content_length(&decided)
    );
    if let Err(r) = decide(&relay.directive_fields(&kept.bytes, &targets)) {
        if r.by_directives() {
            assert_eq!(
                whole,
                Err(r),
                "refused on the directives alone, not on the whole"
            );
        }
    }
    let own = own_fwd_value(node, Fwd::Miss).expect("own member");
    let mut got = Vec::new();
    let got_framing = relay.client_head(
        node,
        own.as_bytes(),
        strip,
        cookie.map(str::as_bytes),
        (exact, close),
        &mut got,
    );
    assert_eq!(got_framing, framing);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want),
        "the lane's head differs"
    );
}
