//! When the fill does not store a new answer: the origin said 304 (the stored object is
//! refreshed), or failed (an error, or the stale object where RFC 5861 stale-if-error allows).

use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, Method, Response, StatusCode};

use super::lead::Times;
use super::Lead;
use crate::fault::Fault;
use crate::http::body::ProxyBody;
use crate::http::ctx::{Ctx, ReqHead};
use crate::http::forward::{fault_response, has_any};
use crate::http::respond;
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::{CacheStatus, Fwd};
use crate::policy::conditional::merge_not_modified;
use crate::policy::reuse::may_serve_stale_on_error;
use crate::policy::storable::{storability, StoreParams};
use crate::stats::bump;
use crate::store::fill::FillWriter;
use crate::store::object::{FillHead, Object};

/// The origin answered 304 to a revalidation: the stored object's headers are refreshed
/// (RFC 9111 §4.3.4) and its body served; the coalesced requests get it too.
pub(super) async fn revalidated(
    job: &Lead<'_>,
    mut w: FillWriter<FillHead>,
    stale: &Arc<Object>,
    not_modified: &HeaderMap,
    times: Times,
) -> Response<ProxyBody> {
    let (ctx, rt, req, key) = (job.ctx, job.rt, &job.req, job.key);
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
        times.request,
        times.response,
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
    let has_targeted = has_any(&merged, &rt.strip);
    let obj = Arc::new(Object::new(
        stale.status,
        super::drive::with_length(&merged, stale.body.len() as u64),
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

/// The head published when the origin failed: releases the coalesced requests.
pub(super) fn error_head(status: StatusCode, fwd: Fwd) -> FillHead {
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
pub(super) struct Failure<'a> {
    pub fwd: Fwd,
    pub stale: Option<&'a Arc<Object>>,
    pub req_cc: &'a CacheControl,
    pub background: bool,
}

/// The origin could not be reached or answered nothing usable.
pub(super) fn origin_failed(
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
pub(super) fn serve_stale(
    ctx: &Ctx,
    req: &ReqHead,
    s: &Object,
    fwd_status: u16,
) -> Response<ProxyBody> {
    bump(&ctx.counters.stale_served);
    let now = SystemTime::now();
    let mut cs = CacheStatus::hit(&ctx.node_id, s.meta.ttl(now));
    cs.fwd = Some(Fwd::Stale);
    cs.fwd_status = Some(fwd_status);
    cs.detail = Some("stale-if-error".to_string());
    respond::object(ctx, req, s, &cs, now)
}
