//! Going forward to the origin for what the cache keeps: coalesced fills (misses and
//! revalidations), background refreshes, stale-if-error. Passes live in `pass`.
//!
//! A fill's leader sends one request; the requests coalesced on it wait (bounded) for the
//! head and then read the body while it arrives. A response that cannot be stored releases them
//! at once and they go forward on their own.

use std::sync::Arc;
use std::time::SystemTime;

use http::header::{HeaderValue, CONTENT_LENGTH};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::{BodyExt, Either, Empty};
use hyper::body::Incoming;

use super::body::ProxyBody;
use super::ctx::{Ctx, ReqHead, Runtime};
use super::forward::{
    clean_response_headers, fault_response, forward_headers, has_any, path_and_query, pick_input,
    respond_upstream, with_cookie,
};
use super::object::{FillHead, Object};
use super::remote::PushSink;
use super::respond;
use crate::cluster::Owner;
use crate::fault::Fault;
use crate::origin::pool::{OutRequest, Sent, Server};
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::{CacheStatus, Fwd};
use crate::policy::conditional::{merge_not_modified, revalidation_headers, strip_conditionals};
use crate::policy::headers::content_length;
use crate::policy::reuse::may_serve_stale_on_error;
use crate::policy::storable::{storability, StoreParams};
use crate::policy::vary::{variant_id, vary_of, Vary};
use crate::stats::{add, bump};
use crate::store::fill::{FillWriter, Fills, Join};

/// A GET miss or a revalidation: coalesced on the key. With `owner` (a peer owns the key) the
/// leader asks the owner first (`remote::lead`) and nothing is stored here.
pub async fn miss(
    ctx: Arc<Ctx>,
    req: ReqHead,
    key: String,
    fwd: Fwd,
    stale: Option<Arc<Object>>,
    req_cc: CacheControl,
    owner: Option<Owner>,
) -> Response<ProxyBody> {
    let rt = ctx.rt.load_full();
    match ctx.fills.join(&key) {
        // The fill runs in its own task: a client that goes away does not cancel what other
        // clients (and peers) wait on.
        Join::Lead(w) => {
            let task = tokio::spawn(async move {
                match owner {
                    Some(o) => super::remote::lead(&ctx, &rt, req, &key, w, &req_cc, o).await,
                    None => lead(&ctx, &rt, req, &key, w, fwd, stale, &req_cc, Keep::Local).await,
                }
            });
            match task.await {
                Ok(resp) => resp,
                Err(e) => {
                    tracing::error!(error = %e, "fill task failed");
                    respond::build(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        HeaderMap::new(),
                        ProxyBody::Empty,
                    )
                }
            }
        }
        Join::Follow(mut reader) => {
            bump(&ctx.counters.coalesced);
            match reader.head(rt.coalesce_timeout).await {
                Ok(head) => {
                    let matches = head.vary.is_empty()
                        || variant_id(&head.vary, &req.headers) == head.variant_id;
                    let error = head.status.is_server_error();
                    if let (true, Some(s)) = (error, &stale) {
                        if may_serve_stale_on_error(&s.meta, &req_cc, SystemTime::now()) {
                            return serve_stale(&ctx, &req, s, head.status.as_u16());
                        }
                    }
                    if matches {
                        let mut cs = CacheStatus::fwd(&ctx.node_id, head.fwd);
                        cs.fwd_status = head.fwd_status;
                        cs.stored = head.meta.is_some();
                        cs.collapsed = true;
                        cs.upstream = head.upstream.clone();
                        if cs.upstream.is_some() {
                            cs.detail = Some("peer".to_string());
                        }
                        return respond::fill(&ctx, &req, &head, reader, &cs);
                    }
                    drop(reader);
                    let keep = Keep::unless_owned(&owner);
                    solo(&ctx, &rt, req, &key, Fwd::VaryMiss, stale, &req_cc, keep).await
                }
                Err(e) => {
                    tracing::debug!(key = %key, reason = e.as_str(), "coalesced request goes forward alone");
                    drop(reader);
                    let keep = Keep::unless_owned(&owner);
                    solo(&ctx, &rt, req, &key, fwd, stale, &req_cc, keep).await
                }
            }
        }
    }
}

/// Go forward without joining the shared fill table (released or timed-out followers), still
/// storing what is storable where `keep` says.
#[allow(clippy::too_many_arguments)]
async fn solo(
    ctx: &Arc<Ctx>,
    rt: &Arc<Runtime>,
    req: ReqHead,
    key: &str,
    fwd: Fwd,
    stale: Option<Arc<Object>>,
    req_cc: &CacheControl,
    keep: Keep,
) -> Response<ProxyBody> {
    let private: Fills<FillHead> = ctx.fills.private();
    match private.join(key) {
        Join::Lead(w) => lead(ctx, rt, req, key, w, fwd, stale, req_cc, keep).await,
        Join::Follow(_) => respond::error(
            ctx,
            StatusCode::INTERNAL_SERVER_ERROR,
            "fill table inconsistent",
            None,
        ),
    }
}

/// RFC 5861 stale-while-revalidate: refresh once in the background (a refresh already under way
/// for the key is joined, not repeated).
pub fn refresh_in_background(ctx: Arc<Ctx>, req: ReqHead, key: String, stale: Arc<Object>) {
    let Join::Lead(w) = ctx.fills.join(&key) else {
        return;
    };
    tokio::spawn(async move {
        let rt = ctx.rt.load_full();
        let cc = CacheControl::default();
        let keep = Keep::Background;
        let resp = lead(&ctx, &rt, req, &key, w, Fwd::Stale, Some(stale), &cc, keep).await;
        // The body (if any) is read by the fill's own driver; the response is dropped.
        drop(resp);
    });
}

/// Where a fill's object is kept once whole.
pub(super) enum Keep {
    /// In this node's store (it owns the key, or there is no cluster).
    Local,
    /// In this node's store, a background refresh (its failures are not logged).
    Background,
    /// At the owner: pushed under the owner's fill lease, not stored here.
    Push(Box<PushSink>),
    /// Nowhere: a peer owns the key but granted no lease, or could not be asked.
    Nowhere,
}

impl Keep {
    /// `Local`, or `Nowhere` when a peer owns the key.
    fn unless_owned(owner: &Option<Owner>) -> Keep {
        if owner.is_some() {
            Keep::Nowhere
        } else {
            Keep::Local
        }
    }

    fn stores_here(&self) -> bool {
        matches!(self, Keep::Local | Keep::Background)
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn lead(
    ctx: &Arc<Ctx>,
    rt: &Arc<Runtime>,
    req: ReqHead,
    key: &str,
    mut w: FillWriter<FillHead>,
    fwd: Fwd,
    stale: Option<Arc<Object>>,
    req_cc: &CacheControl,
    keep: Keep,
) -> Response<ProxyBody> {
    let background = matches!(keep, Keep::Background);
    let mut headers = forward_headers(ctx, &req);
    strip_conditionals(&mut headers);
    headers.remove(http::header::RANGE);
    if let Some(s) = &stale {
        for (name, value) in revalidation_headers(&s.headers()).iter() {
            headers.insert(name.clone(), value.clone());
        }
        bump(&ctx.counters.revalidated);
    }
    let out = OutRequest {
        method: Method::GET,
        path_and_query: path_and_query(&req),
        headers,
        body: Either::Left(Empty::new()),
        upload: None,
    };
    let request_time = SystemTime::now();
    let sent = req
        .route
        .pool
        .send(out, &pick_input(&req), &ctx.counters)
        .await;
    let response_time = SystemTime::now();
    let node = ctx.node_id.as_str();
    let Sent {
        response: resp,
        server,
        set_cookie,
    } = match sent {
        Ok(r) => r,
        Err(e) => {
            let fail = Failure {
                fwd,
                stale: stale.as_ref(),
                req_cc,
                background,
            };
            return origin_failed(ctx, &req, w, e, fail);
        }
    };
    let (mut rparts, incoming) = resp.into_parts();
    clean_response_headers(ctx, &mut rparts.headers, rparts.version);

    // A 304 to our revalidation: refresh the stored object's headers, serve its body.
    if let (StatusCode::NOT_MODIFIED, Some(s)) = (rparts.status, &stale) {
        return revalidated(
            ctx,
            rt,
            &req,
            key,
            w,
            s,
            &rparts.headers,
            request_time,
            response_time,
        )
        .await;
    }
    if rparts.status.is_server_error() {
        if let Some(s) = &stale {
            if may_serve_stale_on_error(&s.meta, req_cc, SystemTime::now()) {
                w.publish(Arc::new(error_head(rparts.status, fwd)), false);
                return serve_stale(ctx, &req, s, rparts.status.as_u16());
            }
        }
    }

    let params = StoreParams {
        freshness: rt.freshness,
        targets: &rt.targets,
        default_ttl: req.route.ttl,
    };
    let clen = content_length(&rparts.headers);
    let decision = storability(
        &Method::GET,
        &req.headers,
        req_cc,
        rparts.status,
        &rparts.headers,
        request_time,
        response_time,
        &params,
    );
    let too_big = clen.is_some_and(|n| n > rt.max_object_size);
    // Set-Cookie answers are personal unless the route says they may be shared.
    let decision = match decision {
        Ok(_)
            if !req.route.store_set_cookie
                && rparts.headers.contains_key(http::header::SET_COOKIE) =>
        {
            tracing::debug!(key = %key, "not stored: Set-Cookie on a route without store_set_cookie");
            Err(crate::policy::storable::NoStoreReason::SetCookie)
        }
        d => d,
    };
    let vary = match vary_of(&rparts.headers) {
        Vary::Fields(f) => f,
        _ => Vec::new(),
    };
    let vid = variant_id(&vary, &req.headers);
    let has_targeted = has_any(&rparts.headers, &rt.targets);
    let meta = match decision {
        Ok(m) if !too_big => Some(m),
        Ok(_) => {
            tracing::debug!(key = %key, "not stored: larger than max_object_size");
            None
        }
        Err(reason) => {
            tracing::debug!(key = %key, reason = reason.as_str(), "not stored");
            None
        }
    };
    let head = Arc::new(FillHead {
        status: rparts.status,
        headers: rparts.headers,
        vary,
        variant_id: vid,
        meta,
        content_length: clen,
        fwd,
        fwd_status: stale.as_ref().map(|_| rparts.status.as_u16()),
        has_targeted,
        upstream: match &keep {
            Keep::Push(sink) => sink.owner_member.clone(),
            _ => None,
        },
    });
    let mut cs = CacheStatus::fwd(node, fwd);
    cs.fwd_status = head.fwd_status;
    cs.upstream = head.upstream.clone();
    if !matches!(keep, Keep::Local | Keep::Background) {
        cs.detail = Some("peer".to_string());
    }
    // Kept at the owner: it takes the head now, so its own followers start at once.
    let keep = match keep {
        Keep::Push(sink) if head.meta.is_some() => match sink.head(key, &head).await {
            Some(sink) => Keep::Push(Box::new(sink)),
            None => Keep::Nowhere,
        },
        Keep::Push(sink) => {
            sink.decline().await;
            Keep::Nowhere
        }
        k => k,
    };
    if head.meta.is_none() {
        bump(&ctx.counters.uncacheable);
        w.publish(Arc::clone(&head), false);
        if stale.is_some() && rparts.status == StatusCode::OK {
            // The new representation can't be stored: the stale one must not be served again.
            ctx.store.remove_variant(key, &head.variant_id);
        }
        return with_cookie(
            respond_upstream(ctx, &req, &head, incoming, &cs),
            set_cookie,
        );
    }
    let head = if matches!(keep, Keep::Nowhere) {
        // Storable, but kept nowhere: followers read this fill, told it is not stored.
        match Arc::try_unwrap(head) {
            Ok(h) => Arc::new(FillHead { meta: None, ..h }),
            Err(shared) => shared,
        }
    } else {
        cs.stored = true;
        head
    };
    let reader = w.reader();
    w.publish(Arc::clone(&head), true);
    tokio::spawn(drive(
        Arc::clone(ctx),
        w,
        incoming,
        key.to_string(),
        Arc::clone(&head),
        (rt.max_object_size, server),
        keep,
    ));
    with_cookie(respond::fill(ctx, &req, &head, reader, &cs), set_cookie)
}

/// Read the origin body into the fill (and to the owner, when it keeps the object), then
/// store it here when it arrived whole and this node keeps it.
async fn drive(
    ctx: Arc<Ctx>,
    mut w: FillWriter<FillHead>,
    mut incoming: Incoming,
    key: String,
    head: Arc<FillHead>,
    (max_object_size, server): (u64, Arc<Server>),
    keep: Keep,
) {
    let mut total: u64 = 0;
    let mut storing = true;
    let mut last = None;
    let stores_here = keep.stores_here();
    let mut sink = match keep {
        Keep::Push(s) => Some(s),
        _ => None,
    };
    loop {
        match incoming.frame().await {
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                total += data.len() as u64;
                if storing && total > max_object_size {
                    storing = false;
                    w.stream_only();
                    if let Some(s) = sink.take() {
                        s.abort().await;
                    }
                }
                if let Some(s) = sink.as_mut() {
                    if !s.data(data.clone()).await {
                        sink = None;
                    }
                }
                if storing && head.content_length == Some(total) {
                    // The last bytes: held back until the object is stored (`finish_with`),
                    // so a client that has them all and asks again gets a hit.
                    last = Some(data);
                    break;
                }
                w.push(data).await;
                if sink.is_none() && w.is_orphaned() {
                    // Streaming to nobody (every client left or was detached), stored nowhere.
                    tracing::debug!(key = %key, received = total, "stream has no reader left; origin read stopped");
                    w.abort();
                    return;
                }
            }
            Some(Err(e)) => {
                bump(&ctx.counters.origin_errors);
                tracing::warn!(key = %key, error = %e, received = total, "origin body cut short; not stored");
                if let Some(s) = sink.take() {
                    s.abort().await;
                }
                w.abort();
                return;
            }
            None => break,
        }
    }
    if head.content_length.is_none() {
        add(&server.bytes, total);
    }
    if let Some(s) = sink.take() {
        s.end(total).await;
    }
    w.finish_with(last, |body| {
        let Some(body) = body else {
            return;
        };
        if !stores_here || !storing || head.content_length.is_some_and(|n| n != body.len() as u64) {
            return;
        }
        let Some(meta) = head.meta.clone() else {
            return;
        };
        // `finish_with` made the body one exact-size copy (the chunks were slices of hyper's
        // read buffers, which a stored object must not pin); readers still reading share it.
        let obj = Object::new(
            head.status,
            with_length(&head.headers, body.len() as u64),
            body,
            meta,
            head.vary.clone(),
            head.variant_id.clone(),
            head.has_targeted,
        );
        ctx.store.insert(&key, Arc::new(obj));
    });
}

fn with_length(h: &HeaderMap, len: u64) -> HeaderMap {
    let mut h = h.clone();
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    h
}

#[allow(clippy::too_many_arguments)]
async fn revalidated(
    ctx: &Arc<Ctx>,
    rt: &Runtime,
    req: &ReqHead,
    key: &str,
    mut w: FillWriter<FillHead>,
    stale: &Arc<Object>,
    not_modified: &HeaderMap,
    request_time: SystemTime,
    response_time: SystemTime,
) -> Response<ProxyBody> {
    let merged = merge_not_modified(&stale.headers(), not_modified);
    let params = StoreParams {
        freshness: rt.freshness,
        targets: &rt.targets,
        default_ttl: req.route.ttl,
    };
    let req_cc = CacheControl::from_headers(&req.headers);
    let decision = storability(
        &Method::GET,
        &req.headers,
        &req_cc,
        stale.status,
        &merged,
        request_time,
        response_time,
        &params,
    );
    let meta = match decision {
        Ok(m) => m,
        Err(reason) => {
            tracing::debug!(key = %key, reason = reason.as_str(), "revalidated object no longer storable");
            ctx.store.remove_variant(key, &stale.variant_id);
            let mut m = stale.meta.clone();
            m.freshness_lifetime = std::time::Duration::ZERO;
            m
        }
    };
    let has_targeted = has_any(&merged, &rt.targets);
    let obj = Arc::new(Object::new(
        stale.status,
        with_length(&merged, stale.body.len() as u64),
        stale.body.clone(),
        meta.clone(),
        stale.vary.clone(),
        stale.variant_id.clone(),
        has_targeted,
    ));
    if meta.freshness_lifetime > std::time::Duration::ZERO || meta.no_cache {
        ctx.store.insert(key, Arc::clone(&obj));
    }
    // Requests coalesced on this revalidation get the refreshed object too.
    let head = Arc::new(FillHead {
        status: obj.status,
        headers: obj.headers().into_owned(),
        vary: obj.vary.clone(),
        variant_id: obj.variant_id.clone(),
        meta: Some(meta),
        content_length: Some(obj.body.len() as u64),
        fwd: Fwd::Stale,
        fwd_status: Some(304),
        has_targeted,
        upstream: None,
    });
    // The body is in memory: complete the fill before answering, so that a request arriving
    // after this answer starts its own revalidation instead of joining this one.
    w.publish(head, true);
    w.push(obj.body.clone()).await;
    let _ = w.finish();
    let mut cs = CacheStatus::fwd(&ctx.node_id, Fwd::Stale);
    cs.fwd_status = Some(304);
    cs.ttl = Some(obj.meta.ttl(SystemTime::now()));
    respond::object(ctx, req, &obj, &cs, SystemTime::now())
}

fn error_head(status: StatusCode, fwd: Fwd) -> FillHead {
    FillHead {
        status,
        headers: HeaderMap::new(),
        vary: Vec::new(),
        variant_id: Vec::new(),
        meta: None,
        content_length: Some(0),
        fwd,
        fwd_status: None,
        has_targeted: false,
        upstream: None,
    }
}

/// What `origin_failed` needs to know about the request that failed.
struct Failure<'a> {
    fwd: Fwd,
    stale: Option<&'a Arc<Object>>,
    req_cc: &'a CacheControl,
    background: bool,
}

/// The origin could not be reached or answered nothing usable.
fn origin_failed(
    ctx: &Arc<Ctx>,
    req: &ReqHead,
    mut w: FillWriter<FillHead>,
    e: Fault,
    f: Failure<'_>,
) -> Response<ProxyBody> {
    let status = e.status().unwrap_or(StatusCode::BAD_GATEWAY);
    if !f.background {
        tracing::debug!(fault = e.as_str(), "fill failed");
    }
    if let Some(s) = f.stale {
        if may_serve_stale_on_error(&s.meta, f.req_cc, SystemTime::now()) {
            w.publish(Arc::new(error_head(status, Fwd::Stale)), false);
            return serve_stale(ctx, req, s, status.as_u16());
        }
    }
    w.publish(Arc::new(error_head(status, f.fwd)), false);
    let mut cs = CacheStatus::fwd(&ctx.node_id, f.fwd);
    fault_response(ctx, e, &mut cs)
}

/// RFC 5861 stale-if-error: serve the stale object because the origin failed.
fn serve_stale(ctx: &Ctx, req: &ReqHead, s: &Object, fwd_status: u16) -> Response<ProxyBody> {
    bump(&ctx.counters.stale_served);
    let now = SystemTime::now();
    let mut cs = CacheStatus::hit(&ctx.node_id, s.meta.ttl(now));
    cs.fwd = Some(Fwd::Stale);
    cs.fwd_status = Some(fwd_status);
    cs.detail = Some("stale-if-error".to_string());
    respond::object(ctx, req, s, &cs, now)
}
