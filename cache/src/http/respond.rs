//! Building client responses: from a stored object, from a fill head, and errors.
//!
//! Everything a hit needs is here: client conditionals answered 304 (RFC 9110 §13.2), `HEAD`
//! from a stored `GET`, single byte ranges (206/416, RFC 9110 §14), `Age` (RFC 9111 §5.1) and
//! `Cache-Status` (RFC 9211).

use std::sync::Arc;
use std::time::SystemTime;

use http::header::{HeaderValue, AGE, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use http::{HeaderMap, Method, Response, StatusCode};

use super::body::ProxyBody;
use super::ctx::{Ctx, ReqHead};
use crate::policy::cache_status::{append_cache_status, CacheStatus};
use crate::policy::conditional::{client_not_modified, not_modified_headers};
use crate::policy::headers::age_value;
use crate::policy::range::{content_range, evaluate_range, unsatisfied_range, RangeOutcome};
use crate::stats::{add, bump};
use crate::store::fill::FillReader;
use crate::store::object::{FillHead, Object};

/// A response served from a stored object.
pub fn object(
    ctx: &Ctx,
    req: &ReqHead,
    obj: &Object,
    status: &CacheStatus,
    now: SystemTime,
) -> Response<ProxyBody> {
    let age = age_value(obj.meta.current_age(now));
    let stored = obj.headers();
    if client_not_modified(
        &req.method,
        &req.headers,
        obj.status,
        &stored,
        Some(obj.meta.response_time),
    ) {
        bump(&ctx.counters.not_modified);
        let mut h = not_modified_headers(&stored);
        h.insert(AGE, age);
        append_cache_status(&mut h, status);
        return build(StatusCode::NOT_MODIFIED, h, ProxyBody::Empty);
    }
    let range_req = obj.status == StatusCode::OK
        && req.method == Method::GET
        && req.headers.contains_key(http::header::RANGE);
    let range = range_req.then(|| evaluate_range(&req.headers, &stored, obj.body.len() as u64));
    let mut headers = stored.into_owned();
    if obj.has_targeted {
        ctx.strip_targeted(&mut headers);
    }
    headers.insert(AGE, age);
    append_cache_status(&mut headers, status);
    let len = obj.body.len() as u64;
    // RFC 9110 §14.2: Range is only meaningful for GET.
    if let Some(range) = range {
        match range {
            RangeOutcome::Partial { start, end } => {
                headers.insert(CONTENT_RANGE, content_range(start, end, len));
                headers.insert(CONTENT_LENGTH, HeaderValue::from(end - start + 1));
                let body = ProxyBody::full(obj.body.slice(start as usize..(end + 1) as usize));
                add(&ctx.counters.traffic.hit_bytes, end - start + 1);
                return build(StatusCode::PARTIAL_CONTENT, headers, body);
            }
            RangeOutcome::Unsatisfiable => return unsatisfiable(headers, len),
            RangeOutcome::Full => {}
        }
    }
    let body = if req.method == Method::HEAD {
        ProxyBody::Empty
    } else {
        add(&ctx.counters.traffic.hit_bytes, len);
        ProxyBody::Full(Some(obj.body.clone()))
    };
    build(obj.status, headers, body)
}

/// A response whose body is read while a fill writes it.
pub fn fill(
    ctx: &Ctx,
    req: &ReqHead,
    head: &Arc<FillHead>,
    reader: FillReader<FillHead>,
    status: &CacheStatus,
) -> Response<ProxyBody> {
    if client_not_modified(
        &req.method,
        &req.headers,
        head.status,
        &head.headers,
        head.meta.as_ref().map(|m| m.response_time),
    ) {
        bump(&ctx.counters.not_modified);
        let mut h = not_modified_headers(&head.headers);
        append_cache_status(&mut h, status);
        return build(StatusCode::NOT_MODIFIED, h, ProxyBody::Empty);
    }
    let mut headers = head.headers.clone();
    if head.has_targeted {
        ctx.strip_targeted(&mut headers);
    }
    append_cache_status(&mut headers, status);
    if req.method == Method::HEAD {
        return build(head.status, headers, ProxyBody::Empty);
    }
    if let (StatusCode::OK, Some(len)) = (head.status, head.content_length) {
        if req.headers.contains_key(http::header::RANGE) {
            match evaluate_range(&req.headers, &head.headers, len) {
                RangeOutcome::Partial { start, end } => {
                    headers.insert(CONTENT_RANGE, content_range(start, end, len));
                    headers.insert(CONTENT_LENGTH, HeaderValue::from(end - start + 1));
                    let body = ProxyBody::Ranged {
                        inner: Box::new(ProxyBody::Fill {
                            reader,
                            len: Some(len),
                        }),
                        skip: start,
                        remaining: end - start + 1,
                    };
                    return build(StatusCode::PARTIAL_CONTENT, headers, body);
                }
                RangeOutcome::Unsatisfiable => return unsatisfiable(headers, len),
                RangeOutcome::Full => {}
            }
        }
    }
    let len = head.content_length;
    build(head.status, headers, ProxyBody::Fill { reader, len })
}

fn unsatisfiable(mut headers: HeaderMap, len: u64) -> Response<ProxyBody> {
    headers.insert(CONTENT_RANGE, unsatisfied_range(len));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(0u64));
    headers.remove(http::header::ETAG);
    build(StatusCode::RANGE_NOT_SATISFIABLE, headers, ProxyBody::Empty)
}

/// An error generated by the node: a short text body, `<code> <reason phrase>: <message>` (e.g.
/// `502 Bad Gateway: the origin server did not answer properly`), `Cache-Status` when the
/// request was proxied. `message` is for any client to read: a fixed text that names no address,
/// pool or error (`Fault::message`); the details go to the log where the failure is seen.
pub fn error(
    ctx: &Ctx,
    status: StatusCode,
    message: &str,
    cache_status: Option<&CacheStatus>,
) -> Response<ProxyBody> {
    bump(&ctx.counters.errors);
    let mut h = HeaderMap::new();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    if let Some(cs) = cache_status {
        append_cache_status(&mut h, cs);
    }
    let body = format!(
        "{} {}: {message}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    build(status, h, ProxyBody::full(body))
}

/// Assemble a response.
pub fn build(status: StatusCode, headers: HeaderMap, body: ProxyBody) -> Response<ProxyBody> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}
