//! The client's answers on the partial path: 206 from held bytes (or 304 to its
//! conditionals), 416 past the known end, and a 206 the origin sent that is not kept — cut to
//! the client's range, from memory or as it arrives.

use std::time::SystemTime;

use bytes::Bytes;
use http::header::{HeaderValue, AGE, CONTENT_LENGTH, CONTENT_RANGE};
use http::{HeaderMap, Response, StatusCode};

use super::Part;
use crate::http::body::ProxyBody;
use crate::http::ctx::{Ctx, ReqHead};
use crate::http::respond::build;
use crate::origin::body::OriginBody;
use crate::policy::cache_status::{append_cache_status, CacheStatus};
use crate::policy::conditional::{client_not_modified, not_modified_headers};
use crate::policy::headers::age_value;
use crate::policy::partial::{content_range_of, ContentRange};
use crate::policy::range::{content_range, evaluate_range, unsatisfied_range, RangeOutcome};
use crate::stats::{add, bump};

/// A hit: client conditionals (RFC 9110 §13.2) answered 304, else 206 with the held bytes.
pub(super) fn hit(
    ctx: &Ctx,
    req: &ReqHead,
    part: &Part,
    range: (u64, u64),
    bytes: Bytes,
    cs: &CacheStatus,
    now: SystemTime,
) -> Response<ProxyBody> {
    let age = age_value(part.meta.current_age(now));
    if client_not_modified(
        &req.method,
        &req.headers,
        StatusCode::OK,
        &part.headers,
        Some(part.meta.response_time),
    ) {
        bump(&ctx.counters.not_modified);
        let mut h = not_modified_headers(&part.headers);
        h.insert(AGE, age);
        append_cache_status(&mut h, cs);
        return build(StatusCode::NOT_MODIFIED, h, ProxyBody::Empty);
    }
    add(&ctx.counters.traffic.hit_bytes, bytes.len() as u64);
    partial_response(ctx, part, range, bytes, cs, Some(age))
}

/// 206 with `bytes` as `first..=last` of the representation.
pub(super) fn partial_response(
    ctx: &Ctx,
    part: &Part,
    (first, last): (u64, u64),
    bytes: Bytes,
    cs: &CacheStatus,
    age: Option<HeaderValue>,
) -> Response<ProxyBody> {
    let mut headers = part.headers.clone();
    if part.has_targeted {
        ctx.strip_targeted(&mut headers);
    }
    headers.insert(CONTENT_RANGE, content_range(first, last, part.pieces.len()));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len() as u64));
    if let Some(age) = age {
        headers.insert(AGE, age);
    }
    append_cache_status(&mut headers, cs);
    build(StatusCode::PARTIAL_CONTENT, headers, ProxyBody::full(bytes))
}

/// 416 for a range past the end of a representation of `len` bytes.
pub(super) fn unsatisfiable(
    ctx: &Ctx,
    part: &Part,
    len: u64,
    cs: &CacheStatus,
    now: SystemTime,
) -> Response<ProxyBody> {
    let mut headers = part.headers.clone();
    if part.has_targeted {
        ctx.strip_targeted(&mut headers);
    }
    headers.insert(AGE, age_value(part.meta.current_age(now)));
    headers.insert(CONTENT_RANGE, unsatisfied_range(len));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(0u64));
    headers.remove(http::header::ETAG);
    append_cache_status(&mut headers, cs);
    build(StatusCode::RANGE_NOT_SATISFIABLE, headers, ProxyBody::Empty)
}

/// The client's range (`first..=last` of the representation) when the origin's 206 range
/// `cr` holds all of it.
fn client_cut(req: &ReqHead, headers: &HeaderMap, cr: ContentRange) -> Option<(u64, u64)> {
    match evaluate_range(&req.headers, headers, cr.complete) {
        RangeOutcome::Partial { start, end } if cr.first <= start && end <= cr.last => {
            Some((start, end))
        }
        _ => None,
    }
}

/// A 206 that may not be kept, for this client: the client's range cut from it when it holds
/// all of it, else the origin's part as it came.
pub(super) fn unstored(
    ctx: &Ctx,
    req: &ReqHead,
    mut headers: HeaderMap,
    bytes: Bytes,
    cs: &CacheStatus,
) -> Response<ProxyBody> {
    let cut = content_range_of(&headers)
        .filter(|cr| bytes.len() as u64 == cr.last - cr.first + 1)
        .and_then(|cr| Some((cr, client_cut(req, &headers, cr)?)));
    let body = match cut {
        Some((cr, (first, last))) => {
            let at = (first - cr.first) as usize;
            headers.insert(CONTENT_RANGE, content_range(first, last, cr.complete));
            bytes.slice(at..at + (last - first + 1) as usize)
        }
        None => bytes,
    };
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len() as u64));
    let has_targeted = crate::http::forward::has_any(&headers, &ctx.rt.load().strip);
    if has_targeted {
        ctx.strip_targeted(&mut headers);
    }
    append_cache_status(&mut headers, cs);
    build(StatusCode::PARTIAL_CONTENT, headers, ProxyBody::full(body))
}

/// A 206 longer than `max_object_size` (never kept), for this client: the client's range cut
/// from its body as it arrives. None when it does not hold the client's whole range.
pub(super) fn large(
    ctx: &Ctx,
    req: &ReqHead,
    parts: http::response::Parts,
    body: OriginBody,
    cs: &CacheStatus,
) -> Option<Response<ProxyBody>> {
    let mut headers = parts.headers;
    let cr = content_range_of(&headers)?;
    let (first, last) = client_cut(req, &headers, cr)?;
    headers.insert(CONTENT_RANGE, content_range(first, last, cr.complete));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(last - first + 1));
    if crate::http::forward::has_any(&headers, &ctx.rt.load().strip) {
        ctx.strip_targeted(&mut headers);
    }
    append_cache_status(&mut headers, cs);
    let body = ProxyBody::Ranged {
        inner: Box::new(ProxyBody::Upstream(body)),
        skip: first - cr.first,
        remaining: last - first + 1,
    };
    Some(build(StatusCode::PARTIAL_CONTENT, headers, body))
}
