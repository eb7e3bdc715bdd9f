//! Requests the cache does not keep: other methods (bodies streamed both ways, with RFC 9111
//! §4.4 invalidation after unsafe methods), HEAD misses, `no-store` requests and routes with
//! `cache = false`.

use std::sync::Arc;

use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_LOCATION, LOCATION, TRANSFER_ENCODING};
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::{Either, Empty};

use super::body::ProxyBody;
use super::ctx::{Ctx, ReqHead, Runtime};
use super::forward::{
    clean_response_headers, fault_response, forward_headers, has_any, invalidate_url,
    path_and_query, pick_input, respond_upstream, with_cookie,
};
use crate::fault::Fault;
use crate::interim::InterimSink;
use crate::origin::h1::head::RawHead;
use crate::origin::pool::{OutRequest, Pool, Sent};
use crate::origin::upload::{ClientBody, Upload};
use crate::origin::PickInput;
use crate::policy::cache_status::{CacheStatus, Fwd};
use crate::policy::invalidate::{invalidates, invalidation_keys};
use crate::stats::{add, bump};

/// Forward without storing (HEAD misses, `no-store` requests).
pub async fn forward_uncached(
    ctx: Arc<Ctx>,
    req: ReqHead,
    _key: String,
    fwd: Fwd,
) -> Response<ProxyBody> {
    let rt = ctx.rt.load_full();
    let out = OutRequest {
        method: req.method.clone(),
        path_and_query: path_and_query(&req),
        headers: forward_headers(&ctx, &req),
        body: Either::Left(Empty::new()),
        upload: None,
        interim: req.interim.clone(),
        raw_response: false,
        body_in_head: false,
    };
    let cs = CacheStatus::fwd(&ctx.node_id, fwd);
    send_and_stream(&ctx, &rt, Trip::of(&req), out, cs, None).await
}

/// Any other method (or a GET/HEAD with a body): forward with the body streamed both ways; after
/// a non-error answer to an unsafe method, invalidate the target (RFC 9111 §4.4).
pub async fn pass(
    ctx: Arc<Ctx>,
    req: ReqHead,
    body: ClientBody<'_>,
    key: String,
) -> Response<ProxyBody> {
    bump(&ctx.counters.passed);
    let rt = ctx.rt.load_full();
    let limits = rt.limits;
    let (upload, watch) = Upload::new(body, limits.max_request_body, limits.body_timeout);
    let out = OutRequest {
        method: req.method.clone(),
        path_and_query: path_and_query(&req),
        headers: forward_headers(&ctx, &req),
        body: Either::Right(upload),
        upload: Some(watch),
        interim: req.interim.clone(),
        raw_response: false,
        body_in_head: false,
    };
    let fwd = if req.method == Method::GET || req.method == Method::HEAD {
        Fwd::Bypass
    } else {
        Fwd::Method
    };
    let cs = CacheStatus::fwd(&ctx.node_id, fwd);
    send_and_stream(&ctx, &rt, Trip::of(&req), out, cs, Some(&key)).await
}

/// A request with a body whose head goes upstream as already encoded (the upload lane's
/// `plain` requests, `passlane::head::origin_head_of`), as [`pass`] passes it.
pub(super) struct Encoded<'a> {
    /// Not GET or HEAD (`Cache-Status: fwd=method`).
    pub method: Method,
    /// The origin request's head, its `Content-Length` (if any) the client's, or the client's
    /// `Transfer-Encoding: chunked` for a body streamed chunked.
    pub raw: &'a [u8],
    /// The body's length (0 without a `Content-Length`); None for a body of unknown length,
    /// sent chunked (the head says so).
    pub len: Option<u64>,
    pub pool: &'a Pool,
    pub input: PickInput<'a>,
    /// The URL's primary key (invalidated after a non-error answer).
    pub key: &'a str,
    pub interim: Option<InterimSink>,
}

/// What [`pass_encoded`] brings back.
pub(super) enum Passed {
    /// An answer made here (a fault's).
    Made(Response<ProxyBody>),
    /// The origin's answer and its head as received, the target invalidated already: written
    /// from those bytes (`passlane::relay`, `Cache-Status: <node>; fwd=method`).
    Raw(Sent, Box<RawHead>),
}

/// [`pass`] for an [`Encoded`] request: the same upload, trip and invalidation; the answer's
/// head is kept as received, for `passlane::relay` to write as [`pass`]'s answer is written.
/// `body` None: the whole body is in `req.raw` already, after the head (the client had sent
/// it with its head), and goes out with it in one write.
pub(super) async fn pass_encoded(
    ctx: &Arc<Ctx>,
    rt: &Runtime,
    req: Encoded<'_>,
    body: Option<ClientBody<'_>>,
) -> Passed {
    bump(&ctx.counters.passed);
    let limits = rt.limits;
    // Only the framing: the head is `raw`.
    let mut headers = HeaderMap::with_capacity(1);
    match req.len {
        Some(len) => headers.insert(CONTENT_LENGTH, HeaderValue::from(len)),
        None => headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked")),
    };
    let (body, upload) = match body {
        Some(body) => {
            let (upload, watch) = Upload::new(body, limits.max_request_body, limits.body_timeout);
            (Either::Right(upload), Some(watch))
        }
        None => (Either::Left(Empty::new()), None),
    };
    let body_in_head = upload.is_none();
    let out = OutRequest {
        method: req.method.clone(),
        path_and_query: PathAndQuery::from_static("/"),
        headers,
        body,
        upload,
        interim: req.interim,
        raw_response: true,
        body_in_head,
    };
    let sent = req
        .pool
        .send_with(out, &req.input, &ctx.counters, Some(req.raw))
        .await;
    let mut sent = match sent {
        Ok(s) => s,
        Err(fault) => {
            let mut cs = CacheStatus::fwd(&ctx.node_id, Fwd::Method);
            return Passed::Made(fault_response(ctx, fault, &mut cs));
        }
    };
    let Some(raw) = sent.raw_head.take() else {
        // The origin client keeps the head raw when asked: not reached.
        let mut cs = CacheStatus::fwd(&ctx.node_id, Fwd::Method);
        return Passed::Made(fault_response(ctx, Fault::OriginBroken, &mut cs));
    };
    let status = sent.response.status();
    if invalidates(&req.method, status) {
        let fields = raw.first_values(&[LOCATION, CONTENT_LOCATION]);
        invalidate(ctx, &req.method, status, req.key, &fields).await;
    }
    Passed::Raw(sent, raw)
}

/// Invalidate the objects an answer of `status` with fields `resp` to an unsafe `method` on
/// the URL of `key` makes stale (RFC 9111 §4.4), here and at their owners; counted.
async fn invalidate(ctx: &Ctx, method: &Method, status: StatusCode, key: &str, resp: &HeaderMap) {
    let mut n = 0;
    for k in invalidation_keys(method, status, key, resp) {
        n += invalidate_url(ctx, &k);
        invalidate_at_owner(ctx, &k).await;
    }
    add(&ctx.counters.invalidated, n as u64);
}

/// In a cluster the URL's object is stored at its owner, not here: the owner removes it too
/// before the answer goes out (`cluster::invalidate::purge_at_owner`), so that a client that
/// reads after it writes, through any node, does not get the object its write replaced. A
/// failure is counted (`peer_errors`) and logged; the object then ages out at the owner.
async fn invalidate_at_owner(ctx: &Ctx, url: &str) {
    let Some(cl) = &ctx.cluster else {
        return;
    };
    if let Err(e) = crate::cluster::invalidate::purge_at_owner(cl, url).await {
        bump(&ctx.counters.peer_errors);
        tracing::info!(url, error = %e, "could not invalidate the owner's object after an unsafe request");
    }
}

/// What the trip to the origin needs of the request it passes.
struct Trip<'a> {
    method: &'a Method,
    pool: &'a Pool,
    input: PickInput<'a>,
    /// The head, already encoded.
    raw: Option<&'a [u8]>,
    head_request: bool,
}

impl<'a> Trip<'a> {
    fn of(req: &'a ReqHead) -> Trip<'a> {
        Trip {
            method: &req.method,
            pool: &req.route.pool,
            input: pick_input(req),
            raw: None,
            head_request: req.method == Method::HEAD,
        }
    }
}

async fn send_and_stream(
    ctx: &Arc<Ctx>,
    rt: &Runtime,
    trip: Trip<'_>,
    out: OutRequest<'_>,
    mut cs: CacheStatus,
    invalidate_key: Option<&str>,
) -> Response<ProxyBody> {
    let sent = trip
        .pool
        .send_with(out, &trip.input, &ctx.counters, trip.raw)
        .await;
    let Sent {
        response: resp,
        set_cookie,
        server,
        ..
    } = match sent {
        Ok(r) => r,
        Err(fault) => return fault_response(ctx, fault, &mut cs),
    };
    let (mut rparts, incoming) = resp.into_parts();
    if let Some(key) = invalidate_key {
        invalidate(ctx, trip.method, rparts.status, key, &rparts.headers).await;
    }
    clean_response_headers(ctx, &mut rparts.headers, rparts.version);
    let has_targeted = has_any(&rparts.headers, &rt.strip);
    let head = (rparts.status, rparts.headers, has_targeted);
    let mut resp = respond_upstream(ctx, trip.head_request, head, incoming, &cs);
    crate::access::note_server(ctx, &mut resp, server.addr);
    with_cookie(resp, set_cookie)
}
