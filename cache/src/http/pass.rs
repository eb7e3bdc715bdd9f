//! Requests the cache does not keep: other methods (bodies streamed both ways, with RFC 9111
//! §4.4 invalidation after unsafe methods), HEAD misses, `no-store` requests and routes with
//! `cache = false`.

use std::sync::Arc;

use http::{Method, Response};
use http_body_util::{Either, Empty};

use super::body::ProxyBody;
use super::ctx::{Ctx, ReqHead, Runtime};
use super::forward::{
    clean_response_headers, fault_response, forward_headers, has_any, invalidate_url,
    path_and_query, pick_input, respond_upstream, with_cookie,
};
use crate::origin::pool::{OutRequest, Sent};
use crate::origin::upload::{ClientBody, Upload};
use crate::policy::cache_status::{CacheStatus, Fwd};
use crate::policy::invalidate::invalidation_keys;
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
    };
    let cs = CacheStatus::fwd(&ctx.node_id, fwd);
    send_and_stream(&ctx, &rt, &req, out, cs, None).await
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
    };
    let fwd = if req.method == Method::GET || req.method == Method::HEAD {
        Fwd::Bypass
    } else {
        Fwd::Method
    };
    let cs = CacheStatus::fwd(&ctx.node_id, fwd);
    send_and_stream(&ctx, &rt, &req, out, cs, Some(&key)).await
}

async fn send_and_stream(
    ctx: &Arc<Ctx>,
    rt: &Runtime,
    req: &ReqHead,
    out: OutRequest<'_>,
    mut cs: CacheStatus,
    invalidate_key: Option<&str>,
) -> Response<ProxyBody> {
    let Sent {
        response: resp,
        set_cookie,
        server,
    } = match req
        .route
        .pool
        .send(out, &pick_input(req), &ctx.counters)
        .await
    {
        Ok(r) => r,
        Err(fault) => return fault_response(ctx, fault, &mut cs),
    };
    let (mut rparts, incoming) = resp.into_parts();
    if let Some(key) = invalidate_key {
        let mut n = 0;
        for k in invalidation_keys(&req.method, rparts.status, key, &rparts.headers) {
            n += invalidate_url(ctx, &k);
        }
        add(&ctx.counters.invalidated, n as u64);
    }
    clean_response_headers(ctx, &mut rparts.headers, rparts.version);
    let has_targeted = has_any(&rparts.headers, &rt.strip);
    let head = (rparts.status, rparts.headers, has_targeted);
    let mut resp = respond_upstream(ctx, req, head, incoming, &cs);
    crate::access::note_server(ctx, &mut resp, server.addr);
    with_cookie(resp, set_cookie)
}
