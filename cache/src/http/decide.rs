//! The decide stage: what to do with what the look-up found in this node's store.
//!
//! * A stored object ([`decide`], `policy::reuse`, RFC 9111 §4 and RFC 5861): fresh (or stale
//!   within the request's `max-stale`) → serve it; stale within `stale-while-revalidate` →
//!   serve it and refresh it in the background; else revalidate it with the origin (the fill
//!   stage, which also serves it on error under `stale-if-error`).
//! * Nothing suitable (`miss`): `only-if-cached` → 504; HEAD or `no-store` → passed to the
//!   origin and not stored; else filled, from the key's previous owner first after a join
//!   (`handover`), then from the origin pool (`fill`).

use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, Method, Response, StatusCode};

use super::body::ProxyBody;
use super::ctx::{Ctx, ReqHead};
use super::fill;
use super::handover::take_over;
use super::lookup::Stored;
use super::pass;
use super::respond;
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::{CacheStatus, Fwd};
use crate::policy::reuse::{reuse, Reuse};
use crate::stats::bump;

/// Serve, refresh or revalidate the object the look-up found here (the variant that matches
/// the request), or handle the miss when there is none.
pub(super) async fn decide(
    ctx: Arc<Ctx>,
    req: ReqHead,
    key: String,
    req_cc: CacheControl,
    stored: Stored,
) -> Response<ProxyBody> {
    let Stored { object, now } = stored;
    let node = ctx.node_id.as_str();
    if let Some(obj) = object {
        let pragma = pragma_no_cache(&req.headers, &req_cc);
        match reuse(&obj.meta, &req_cc, pragma, now) {
            Reuse::Fresh => {
                bump(&ctx.counters.local_hit);
                let ttl = obj.meta.ttl(now);
                let mut cs = CacheStatus::hit(node, ttl);
                if !obj.meta.is_fresh(now) {
                    // served stale because the request allowed it (max-stale)
                    bump(&ctx.counters.stale_served);
                    cs.fwd = Some(Fwd::Stale);
                }
                return respond::object(&ctx, &req, &obj, &cs, now);
            }
            Reuse::StaleWhileRevalidate => {
                bump(&ctx.counters.local_hit);
                bump(&ctx.counters.stale_served);
                let mut cs = CacheStatus::hit(node, obj.meta.ttl(now));
                cs.fwd = Some(Fwd::Stale);
                let resp = respond::object(&ctx, &req, &obj, &cs, now);
                fill::refresh_in_background(Arc::clone(&ctx), req, key, obj);
                return resp;
            }
            Reuse::Revalidate => {
                if req_cc.only_if_cached {
                    return only_if_cached(&ctx);
                }
                bump(&ctx.counters.local_miss);
                return fill::miss(ctx, req, key, Fwd::Stale, Some(obj), req_cc, None).await;
            }
        }
    }
    miss(ctx, req, key, req_cc).await
}

/// Nothing suitable stored here: 504 for `only-if-cached`, a pass for HEAD and `no-store`,
/// else a fill (the previous owner first after a join, then the origin pool).
async fn miss(
    ctx: Arc<Ctx>,
    req: ReqHead,
    key: String,
    req_cc: CacheControl,
) -> Response<ProxyBody> {
    if req_cc.only_if_cached {
        return only_if_cached(&ctx);
    }
    bump(&ctx.counters.local_miss);
    let fwd = if req_cc.no_cache || pragma_no_cache(&req.headers, &req_cc) {
        Fwd::Request
    } else if ctx.store.get(&key, |_| true).is_some() {
        Fwd::VaryMiss
    } else {
        Fwd::Miss
    };
    if req.method == Method::HEAD || req_cc.no_store {
        // Not stored: HEAD can't fill a GET object, and `no-store` forbids keeping the answer.
        return pass::forward_uncached(ctx, req, key, fwd).await;
    }
    if fwd == Fwd::Miss {
        if let Some(prev) = ctx.cluster.as_ref().and_then(|c| c.previous_owner(&key)) {
            let uri = req.uri.to_string();
            if let Some(t) = take_over(&ctx, &key, &uri, &req.headers, &prev).await {
                let mut cs = CacheStatus::fwd(ctx.node_id.as_str(), Fwd::Miss);
                cs.stored = true;
                cs.detail = Some("peer".to_string());
                cs.upstream = t.upstream;
                return respond::object(&ctx, &req, &t.object, &cs, SystemTime::now());
            }
        }
    }
    fill::miss(ctx, req, key, fwd, None, req_cc, None).await
}

/// `Pragma: no-cache` counts only when the request has no Cache-Control (RFC 9111 §5.4).
pub(super) fn pragma_no_cache(h: &HeaderMap, cc: &CacheControl) -> bool {
    cc.is_empty()
        && !h.contains_key(http::header::CACHE_CONTROL)
        && h.get_all(http::header::PRAGMA)
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(b"no-cache"))
}

/// RFC 9111 §5.2.1.7: nothing suitable stored -> 504.
fn only_if_cached(ctx: &Ctx) -> Response<ProxyBody> {
    let mut cs = CacheStatus::fwd(&ctx.node_id, Fwd::Miss);
    cs.detail = Some("only-if-cached".to_string());
    respond::error(
        ctx,
        StatusCode::GATEWAY_TIMEOUT,
        "only-if-cached: not in cache",
        Some(&cs),
    )
}
