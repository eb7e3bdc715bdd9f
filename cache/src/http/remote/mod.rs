//! The requester's side of the cluster paths: a GET for a key a peer owns asks the owner
//! (`Lookup`) instead of this node's store.
//!
//! * `Hit` → remote hit: the owner's object is streamed to the client (and to requests
//!   coalesced here), not stored here; `Cache-Status: b; hit; ttl=N, a; fwd=miss; detail=peer`.
//! * `Answer` → the owner held the key but could not serve it fresh, and answered as it would
//!   its own client (stale-while-revalidate, revalidation, stale-if-error): relayed as it is,
//!   counted a remote hit when the owner's member says `hit`, else a remote miss.
//! * `Miss { lease: Some }` → remote miss: this node fetches from its origin pool, answers its
//!   client, and pushes the object to the owner as it arrives (`Push`, `Data`, `End`), which
//!   stores it: `b; fwd=miss, a; fwd=miss; stored; detail=peer`.
//! * The owner unreachable (no connection): the key's next owner by rendezvous rank takes over
//!   at once — this node (a local miss, stored here) or the runner-up peer (asked as above) —
//!   as it will once gossip declares the owner dead.
//! * `Miss { lease: None }`, or a peer answering garbage → this node fetches and stores
//!   nothing. `peer_errors` counts every failed exchange.
//!
//! A HEAD for a key a peer owns is answered from the owner's object head when it has one
//! (`head`), else sent to the origin. A pooled connection that turns out closed is retried
//! once on a fresh one. The owner's bodies are relayed by `relay`; what this node fetches under
//! the owner's lease goes to it through `push`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::Response;

use super::body::ProxyBody;
use super::ctx::{Ctx, ReqHead, Runtime};
use super::fill::{lead as lead_fill, Keep, Lead};
use crate::cluster::frame::{Frame, Lookup, LookupMethod};
use crate::cluster::peer::{PeerConn, PeerError};
use crate::cluster::wire;
use crate::cluster::Owner;
use crate::fault::Fault;
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::{upstream_member, Fwd};
use crate::stats::bump;
use crate::store::fill::FillWriter;
use crate::store::object::FillHead;

mod head;
mod push;
mod relay;

pub(super) use head::head;
pub(super) use push::PushSink;
use relay::{owner_answer, remote_hit, BODY_IDLE};

/// Time allowed on top of the coalesce timeout for the owner's answer to a `Lookup`.
pub(super) const ANSWER_MARGIN: Duration = Duration::from_secs(2);

/// The leader of a fill for a key `owner` owns.
pub(super) async fn lead(
    ctx: &Arc<Ctx>,
    rt: &Arc<Runtime>,
    req: ReqHead,
    key: &str,
    w: FillWriter<FillHead>,
    req_cc: &CacheControl,
    owner: Owner,
) -> Response<ProxyBody> {
    let lookup = Lookup {
        key: key.to_owned(),
        method: LookupMethod::Get,
        uri: req.uri.to_string(),
        headers: wire::header_lines(&req.headers),
        hops: 1,
        flags: Lookup::MAY_LEASE,
    };
    // The owner answers at once, or after waiting (bounded by its coalesce timeout) on a fill.
    let wait = rt.coalesce_timeout + ANSWER_MARGIN;
    let mut answer = ask(ctx, &owner, lookup.clone(), wait).await;
    if let Err(e) = &answer {
        if unreachable(e) {
            // The owner is gone (gossip will say so shortly): the key's next owner takes over
            // now, this node itself or the runner-up peer.
            peer_failed(ctx, e);
            let next = ctx
                .cluster
                .as_ref()
                .and_then(|c| c.ranked(key, 2).into_iter().nth(1));
            match next {
                Some(None) => {
                    bump(&ctx.counters.local_miss);
                    let keep = Keep::Local;
                    return origin_miss(ctx, rt, req, key, w, req_cc, keep).await;
                }
                Some(Some(runner_up)) => answer = ask(ctx, &runner_up, lookup, wait).await,
                None => {}
            }
        }
    }
    match answer {
        Ok((c, Frame::Hit(head))) => {
            bump(&ctx.counters.remote_hit);
            remote_hit(ctx, &req, w, c, &head, BODY_IDLE)
        }
        Ok((c, Frame::Answer(a))) => owner_answer(ctx, &req, w, c, &a, BODY_IDLE),
        Ok((c, Frame::Miss(m))) => {
            bump(&ctx.counters.remote_miss);
            let keep = match m.lease {
                Some(lease) => Keep::Push(Box::new(PushSink {
                    conn: c,
                    lease,
                    ctx: Arc::clone(ctx),
                    owner_member: upstream_member(&m.cache_status),
                })),
                None => {
                    if let Some(cl) = &ctx.cluster {
                        cl.peers.put(c);
                    }
                    Keep::Nowhere
                }
            };
            origin_miss(ctx, rt, req, key, w, req_cc, keep).await
        }
        Ok((c, other)) => {
            let what = other.name();
            peer_failed(ctx, &PeerError::Unexpected(c.addr, what));
            origin_miss(ctx, rt, req, key, w, req_cc, Keep::Nowhere).await
        }
        Err(e) => {
            peer_failed(ctx, &e);
            origin_miss(ctx, rt, req, key, w, req_cc, Keep::Nowhere).await
        }
    }
}

/// The owner could not be used: this node fetches from its origin pool, keeping the object
/// where `keep` says (here when it is the key's next owner, at the owner under its lease, or
/// nowhere).
async fn origin_miss(
    ctx: &Arc<Ctx>,
    rt: &Arc<Runtime>,
    req: ReqHead,
    key: &str,
    w: FillWriter<FillHead>,
    req_cc: &CacheControl,
    keep: Keep,
) -> Response<ProxyBody> {
    let job = Lead {
        ctx,
        rt,
        req,
        key,
        fwd: Fwd::Miss,
        stale: None,
        req_cc,
        keep,
    };
    lead_fill(job, w).await
}

/// The peer could not be reached at all (as opposed to answering badly).
fn unreachable(e: &PeerError) -> bool {
    matches!(
        e,
        PeerError::Connect(..) | PeerError::ConnectTimeout(_) | PeerError::Closed(_)
    )
}

/// Counts a failed peer exchange; logs it as a warning at most once a second (a dead owner
/// fails every request for its keys until gossip declares it dead), the others at debug.
fn peer_failed(ctx: &Ctx, e: &PeerError) {
    let fault = if unreachable(e) {
        Fault::PeerUnreachable
    } else {
        Fault::PeerBroken
    };
    ctx.counters.fault(fault);
    static LAST_WARN_MS: AtomicU64 = AtomicU64::new(0);
    let now = ctx.started.elapsed().as_millis() as u64 + 1000;
    let last = LAST_WARN_MS.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= 1000
        && LAST_WARN_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(error = %e, fault = fault.as_str(), "peer exchange failed; going on without the peer (peer_errors counts each)");
    } else {
        tracing::debug!(error = %e, fault = fault.as_str(), "peer exchange failed");
    }
}

/// Sends `lookup` to the owner and reads the answer (retrying once on a fresh connection
/// when a pooled one was closed).
async fn ask(
    ctx: &Ctx,
    owner: &Owner,
    lookup: Lookup,
    wait: Duration,
) -> Result<(PeerConn, Frame), PeerError> {
    let Some(cl) = &ctx.cluster else {
        return Err(PeerError::Unexpected(owner.addr, "no cluster"));
    };
    let (mut c, pooled) = cl.peers.get(owner.addr).await?;
    let first = exchange(&mut c, Frame::Lookup(lookup.clone()), wait).await;
    match first {
        Ok(f) => Ok((c, f)),
        Err(PeerError::Closed(_) | PeerError::Io(..)) if pooled => {
            let mut c = cl.peers.dial(owner.addr).await?;
            let f = exchange(&mut c, Frame::Lookup(lookup), wait).await?;
            Ok((c, f))
        }
        Err(e) => Err(e),
    }
}

async fn exchange(c: &mut PeerConn, f: Frame, wait: Duration) -> Result<Frame, PeerError> {
    c.send(f).await?;
    c.recv(wait).await
}
