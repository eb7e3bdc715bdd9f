//! The fill stage: going to the origin (or the key's owner) for what the cache keeps, once per
//! key however many clients ask — coalesced misses and revalidations, background refreshes.
//! Passes (what is never kept) live in `pass`.
//!
//! A fill's leader (`lead`) sends one request; the requests coalesced on it wait (bounded) for
//! the head and then read the body while it arrives (`drive` reads it and stores it). A
//! response that cannot be stored releases them at once and they go forward on their own. The
//! answers that store nothing new (304, stale-if-error, failures) are in `fallback`.

mod drive;
mod fallback;
mod lead;

use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, Response, StatusCode};

use super::body::ProxyBody;
use super::ctx::{Ctx, ReqHead, Runtime};
use super::remote::PushSink;
use super::respond;
use crate::cluster::Owner;
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::{CacheStatus, Fwd};
use crate::policy::reuse::may_serve_stale_on_error;
use crate::policy::vary::variant_id;
use crate::stats::bump;
use crate::store::fill::Join;
use crate::store::object::Object;
use fallback::serve_stale;
pub(super) use lead::{ask_origin, lead, refused_by_directives, store_decision, Times};

/// One fill's leader: the request, its key, and what to do with the answer.
pub(super) struct Lead<'a> {
    pub ctx: &'a Arc<Ctx>,
    pub rt: &'a Arc<Runtime>,
    pub req: ReqHead,
    pub key: &'a str,
    /// How the answer is reported (`Cache-Status: fwd=`).
    pub fwd: Fwd,
    /// The stored object being revalidated, if any.
    pub stale: Option<Arc<Object>>,
    pub req_cc: &'a CacheControl,
    /// Where the object is kept once whole.
    pub keep: Keep,
}

impl<'a> Lead<'a> {
    /// A plain miss of a key this node keeps (no stale object to revalidate).
    pub(in crate::http) fn own_miss(
        ctx: &'a Arc<Ctx>,
        rt: &'a Arc<Runtime>,
        req: ReqHead,
        key: &'a str,
        fwd: Fwd,
        req_cc: &'a CacheControl,
    ) -> Lead<'a> {
        Lead {
            ctx,
            rt,
            req,
            key,
            fwd,
            stale: None,
            req_cc,
            keep: Keep::Local,
        }
    }
}

tokio::task_local! {
    /// Set (true) around a request whose future is always polled to its end (the connection's
    /// own loop, `lite`): its fill may run inline instead of in a task of its own.
    pub static RUN_TO_END: bool;
}

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
    // A key of this node's whose last answer could not be stored: fetched alone, at once.
    if owner.is_none()
        && stale.is_none()
        && ctx.uncacheable.is_marked(&key, std::time::Instant::now())
    {
        bump(&ctx.counters.hit_for_miss);
        return solo(Lead::own_miss(&ctx, &rt, req, &key, fwd, &req_cc)).await;
    }
    match ctx.fills.join(&key) {
        Join::Lead(w) => {
            let fill = async move {
                match owner {
                    Some(o) => super::remote::lead(&ctx, &rt, req, &key, w, &req_cc, o).await,
                    None => {
                        let job = Lead {
                            ctx: &ctx,
                            rt: &rt,
                            req,
                            key: &key,
                            fwd,
                            stale,
                            req_cc: &req_cc,
                            keep: Keep::Local,
                        };
                        Box::pin(lead(job, w)).await
                    }
                }
            };
            // A client that goes away must not cancel what other clients (and peers) wait on:
            // the fill runs in its own task, unless this request is driven to its end anyway.
            if RUN_TO_END.try_with(|v| *v).unwrap_or(false) {
                return fill.await;
            }
            match tokio::spawn(fill).await {
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
            // Released by a variant that is not this request's, or not served the fill's head:
            // forward alone (`fwd` says which).
            let alone = match reader.head(rt.coalesce_timeout).await {
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
                    Fwd::VaryMiss
                }
                Err(e) => {
                    tracing::debug!(key = %key, reason = e.as_str(), "coalesced request goes forward alone");
                    fwd
                }
            };
            drop(reader);
            let job = Lead {
                ctx: &ctx,
                rt: &rt,
                req,
                key: &key,
                fwd: alone,
                stale,
                req_cc: &req_cc,
                keep: Keep::unless_owned(&owner),
            };
            solo(job).await
        }
    }
}

/// Go forward without joining the shared fill table (released or timed-out followers), still
/// storing what is storable where `keep` says.
async fn solo(job: Lead<'_>) -> Response<ProxyBody> {
    let w = job.ctx.fills.alone(job.key);
    lead(job, w).await
}

/// RFC 5861 stale-while-revalidate: refresh once in the background (a refresh already under way
/// for the key is joined, not repeated).
pub fn refresh_in_background(ctx: Arc<Ctx>, mut req: ReqHead, key: String, stale: Arc<Object>) {
    let Join::Lead(w) = ctx.fills.join(&key) else {
        return;
    };
    // Its client is answered from the store: the refresh's interims are no one's.
    req.interim = None;
    tokio::spawn(async move {
        let rt = ctx.rt.load_full();
        let cc = CacheControl::default();
        let job = Lead {
            ctx: &ctx,
            rt: &rt,
            req,
            key: &key,
            fwd: Fwd::Stale,
            stale: Some(stale),
            req_cc: &cc,
            keep: Keep::Background,
        };
        let resp = lead(job, w).await;
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

    /// Kept in this node's store.
    fn stores_here(&self) -> bool {
        matches!(self, Keep::Local | Keep::Background)
    }
}
