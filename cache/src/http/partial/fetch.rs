//! One origin request for part of a representation (`Range` as [`Ask`] says, with `If-Range`
//! when parts of it are held already), and what came back: a part that may be kept
//! ([`Fetched::Part`]), a 206 that may not ([`Fetched::Unstored`]), a 206 larger than
//! `max_object_size` ([`Fetched::Large`], its body not read), or any other answer, relayed as
//! it is ([`Fetched::Other`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_RANGE, IF_RANGE, RANGE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Either, Empty};

use super::Part;
use crate::fault::Fault;
use crate::http::ctx::{Ctx, ReqHead, Runtime};
use crate::http::forward::{
    clean_response_headers, forward_headers, has_any, path_and_query, pick_input,
};
use crate::origin::body::OriginBody;
use crate::origin::pool::{OutRequest, Sent, Server};
use crate::policy::cache_control::CacheControl;
use crate::policy::conditional::strip_conditionals;
use crate::policy::headers::content_length;
use crate::policy::meta::StoredMeta;
use crate::policy::partial::{content_range_of, strong_validator, Ask, ContentRange, Validator};
use crate::policy::storable::{storability, StoreParams};
use crate::policy::vary::{vary_of, Vary};
use crate::stats::{add, bump};
use crate::store::pieces::Pieces;

/// What one part request brought back.
pub(super) enum Fetched {
    /// A 206 that may be kept: one run of the representation, its head and validator.
    Part(Part),
    /// A 206 that may not be kept (weak or no validator, no complete length, not storable):
    /// its head and bytes, for this client only.
    Unstored(HeaderMap, Bytes),
    /// A 206 whose range is longer than `max_object_size`: never kept, its body unread (for
    /// this client only, as it arrives).
    Large(http::response::Parts, OriginBody),
    /// Any other status: relayed as it is, stored nowhere.
    Other(http::response::Parts, OriginBody),
    /// The origin failed (connect, timeout, broken or oversized body).
    Failed(Fault),
}

/// The result, the persistence cookie to add to the client's response, if any, and the server
/// that answered (for the access log).
pub(super) struct Answer {
    pub fetched: Fetched,
    pub set_cookie: Option<HeaderValue>,
    pub server: Option<SocketAddr>,
}

/// Ask the origin for `ask` of the client's target (see the module doc). A 206 body is read
/// whole, bounded by `max_object_size`.
pub(super) async fn fetch(
    ctx: &Arc<Ctx>,
    rt: &Runtime,
    req: &ReqHead,
    req_cc: &CacheControl,
    ask: Ask,
    held: Option<&Validator>,
) -> Answer {
    let (sent, times) = send(ctx, req, ask, held).await;
    let Sent {
        response,
        server,
        set_cookie,
        ..
    } = match sent {
        Ok(s) => s,
        Err(fault) => {
            return Answer {
                fetched: Fetched::Failed(fault),
                set_cookie: None,
                server: None,
            }
        }
    };
    let (mut parts, body) = response.into_parts();
    clean_response_headers(ctx, &mut parts.headers, parts.version);
    let answer = |fetched| Answer {
        fetched,
        set_cookie,
        server: Some(server.addr),
    };
    if parts.status != StatusCode::PARTIAL_CONTENT {
        return answer(Fetched::Other(parts, body));
    }
    let large = content_range_of(&parts.headers)
        .is_some_and(|cr| cr.last - cr.first + 1 > rt.max_object_size);
    if large {
        return answer(Fetched::Large(parts, body));
    }
    let Some(bytes) = read_body(body, rt.max_object_size, &server, &parts.headers).await else {
        return answer(Fetched::Failed(Fault::OriginBroken));
    };
    let fetched = match keepable(rt, req, req_cc, parts.headers, &bytes, times) {
        Ok(part) => Fetched::Part(part),
        Err(headers) => {
            bump(&ctx.counters.uncacheable);
            Fetched::Unstored(*headers, bytes)
        }
    };
    answer(fetched)
}

/// Sends the range request `ask` for the client's target (its conditionals removed;
/// `If-Range: held` when given); with when it was sent and when its answer's head came.
pub(in crate::http) async fn send(
    ctx: &Arc<Ctx>,
    req: &ReqHead,
    ask: Ask,
    held: Option<&Validator>,
) -> (Result<Sent, Fault>, (SystemTime, SystemTime)) {
    let mut headers = forward_headers(ctx, req);
    strip_conditionals(&mut headers);
    headers.insert(RANGE, ask.value());
    if let Some(v) = held {
        headers.insert(IF_RANGE, v.if_range());
    }
    let out = OutRequest {
        method: Method::GET,
        path_and_query: path_and_query(req),
        headers,
        body: Either::Left(Empty::new()),
        upload: None,
        // The client's own request reaches the origin here: its interims are relayed.
        interim: req.interim.clone(),
        raw_response: false,
        body_in_head: false,
    };
    let request_time = SystemTime::now();
    let sent = req
        .route
        .pool
        .send(out, &pick_input(req), &ctx.counters)
        .await;
    (sent, (request_time, SystemTime::now()))
}

/// The whole body; None when it fails or grows past `limit` (the caller counts the fault).
async fn read_body(
    mut body: OriginBody,
    limit: u64,
    server: &Server,
    headers: &HeaderMap,
) -> Option<Bytes> {
    let expected = content_length(headers).filter(|&n| n <= limit).unwrap_or(0);
    let mut buf = BytesMut::with_capacity(usize::try_from(expected).unwrap_or(0));
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Ok(data) = f.into_data() {
                    if (buf.len() + data.len()) as u64 > limit {
                        tracing::debug!(limit, "partial answer larger than max_object_size");
                        return None;
                    }
                    buf.extend_from_slice(&data);
                }
            }
            Err(e) => {
                // Counted, and logged at warn, by the body (`origin::body`).
                tracing::debug!(error = %e, "origin body of a range cut short; not stored");
                return None;
            }
        }
    }
    if content_length(headers).is_none() {
        add(&server.bytes, buf.len() as u64);
    }
    // A stored part must not pin spare capacity: keep an exact-size copy.
    if buf.capacity() == buf.len() {
        Some(buf.freeze())
    } else {
        Some(Bytes::copy_from_slice(&buf))
    }
}

/// A 206's head as the head of a part that may be kept: the representation's fields (no
/// `Content-Range`, no `Content-Length`), its freshness, strong validator and range.
pub(in crate::http) struct PartHead {
    pub headers: HeaderMap,
    pub meta: StoredMeta,
    pub validator: Validator,
    pub range: ContentRange,
    pub has_targeted: bool,
}

/// The 206's head when a part of it may be kept, or the head back when not: RFC 9111 §3 as
/// for the whole representation (its `Cache-Control`/`Expires` govern), `Set-Cookie` as the
/// route says, no `Vary`, and §3.3-3.4: one range with a complete length and a strong
/// validator.
pub(in crate::http) fn part_head(
    rt: &Runtime,
    req: &ReqHead,
    req_cc: &CacheControl,
    mut headers: HeaderMap,
    (request_time, response_time): (SystemTime, SystemTime),
) -> Result<PartHead, Box<HeaderMap>> {
    let params = StoreParams {
        freshness: rt.freshness,
        targets: &rt.targets,
        default_ttl: req.route.ttl,
    };
    // Freshness of the representation: judged as its 200 would be (the 206 carries its fields).
    let meta = storability(
        &Method::GET,
        &req.headers,
        req_cc,
        StatusCode::OK,
        &headers,
        request_time,
        response_time,
        &params,
    );
    let cookie_ok = req.route.store_set_cookie || !headers.contains_key(http::header::SET_COOKIE);
    let range = content_range_of(&headers);
    let validator = strong_validator(&headers);
    let (Ok(meta), true, Vary::None, Some(range), Some(validator)) =
        (meta, cookie_ok, vary_of(&headers), range, validator)
    else {
        return Err(Box::new(headers));
    };
    headers.remove(CONTENT_RANGE);
    headers.remove(CONTENT_LENGTH);
    Ok(PartHead {
        has_targeted: has_any(&headers, &rt.strip),
        headers,
        meta,
        validator,
        range,
    })
}

/// The 206 as a part that may be kept ([`part_head`], and a body of exactly its range's
/// length), or its head back when it may not.
fn keepable(
    rt: &Runtime,
    req: &ReqHead,
    req_cc: &CacheControl,
    headers: HeaderMap,
    body: &Bytes,
    times: (SystemTime, SystemTime),
) -> Result<Part, Box<HeaderMap>> {
    let original = headers.clone();
    let head = part_head(rt, req, req_cc, headers, times)?;
    let cr = head.range;
    if body.len() as u64 != cr.last - cr.first + 1 {
        return Err(Box::new(original));
    }
    let mut pieces = Pieces::new(cr.complete);
    pieces.insert(cr.first, body.clone());
    Ok(Part {
        has_targeted: head.has_targeted,
        headers: head.headers,
        pieces,
        meta: head.meta,
        validator: head.validator,
    })
}
