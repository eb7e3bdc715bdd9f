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
//! ([`head`]), else sent to the origin. A pooled connection that turns out closed is retried
//! once on a fresh one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::AGE;
use http::{Response, StatusCode};

use super::body::ProxyBody;
use super::ctx::{Ctx, ReqHead, Runtime};
use super::fill::{lead as lead_fill, Keep, Lead};
use super::respond;
use crate::cluster::frame::{Answer, Frame, Lookup, LookupMethod, Push};
use crate::cluster::peer::{PeerConn, PeerError};
use crate::cluster::wire;
use crate::cluster::Owner;
use crate::fault::Fault;
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::{upstream_member, CacheStatus, Fwd};
use crate::policy::headers::{age_value, append_via};
use crate::stats::bump;
use crate::store::fill::{FillWriter, Fills, Join};
use crate::store::object::FillHead;

/// Time allowed on top of the coalesce timeout for the owner's answer to a `Lookup`.
const ANSWER_MARGIN: Duration = Duration::from_secs(2);
/// Longest wait for the owner's word that it stored a pushed object.
const PUSH_ACK_WAIT: Duration = Duration::from_secs(2);
/// Longest wait between two frames of a body streamed by the owner.
pub const BODY_IDLE: Duration = Duration::from_secs(30);

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

/// A HEAD for a key `owner` owns: the owner's stored object answers it (its headers, no
/// body); a miss there, or a peer that cannot answer, sends it to the origin as any HEAD miss
/// (nothing is stored from a HEAD).
pub(super) async fn head(
    ctx: Arc<Ctx>,
    req: ReqHead,
    key: String,
    owner: Owner,
) -> Response<ProxyBody> {
    let lookup = Lookup {
        key: key.clone(),
        method: LookupMethod::Head,
        uri: req.uri.to_string(),
        headers: wire::header_lines(&req.headers),
        hops: 1,
        flags: 0,
    };
    let wait = ctx.rt.load().coalesce_timeout + ANSWER_MARGIN;
    match ask(&ctx, &owner, lookup, wait).await {
        Ok((mut c, Frame::Hit(h))) => {
            // A HEAD hit has no body: its End follows at once.
            match c.recv(BODY_IDLE).await {
                Ok(Frame::End { complete: true }) => {
                    if let Some(cl) = &ctx.cluster {
                        cl.peers.put(c);
                    }
                }
                Ok(other) => peer_failed(&ctx, &PeerError::Unexpected(c.addr, other.name())),
                Err(e) => peer_failed(&ctx, &e),
            }
            match wire::to_fill(&h, Fwd::Miss) {
                Ok(fill) => {
                    bump(&ctx.counters.remote_hit);
                    head_hit(&ctx, &req, &key, fill)
                }
                Err(why) => {
                    tracing::debug!(reason = %why, "owner sent an invalid object head");
                    peer_failed(&ctx, &PeerError::Unexpected(owner.addr, "invalid Hit head"));
                    super::pass::forward_uncached(ctx, req, key, Fwd::Miss).await
                }
            }
        }
        Ok((c, Frame::Miss(_))) => {
            bump(&ctx.counters.remote_miss);
            if let Some(cl) = &ctx.cluster {
                cl.peers.put(c);
            }
            super::pass::forward_uncached(ctx, req, key, Fwd::Miss).await
        }
        Ok((c, other)) => {
            peer_failed(&ctx, &PeerError::Unexpected(c.addr, other.name()));
            super::pass::forward_uncached(ctx, req, key, Fwd::Miss).await
        }
        Err(e) => {
            peer_failed(&ctx, &e);
            super::pass::forward_uncached(ctx, req, key, Fwd::Miss).await
        }
    }
}

/// The answer to a HEAD from the owner's object head (client conditionals apply as to a hit).
fn head_hit(ctx: &Ctx, req: &ReqHead, key: &str, mut fill: FillHead) -> Response<ProxyBody> {
    if let Some(meta) = fill.meta.take() {
        fill.headers
            .insert(AGE, age_value(meta.current_age(SystemTime::now())));
    }
    append_via(&mut fill.headers, http::Version::HTTP_11, &ctx.node_id);
    let mut cs = CacheStatus::fwd(&ctx.node_id, Fwd::Miss);
    cs.detail = Some("peer".to_string());
    cs.upstream = fill.upstream.take();
    // An empty fill of its own carries the head to the response builder.
    let fills: Fills<FillHead> = Fills::new();
    let Join::Lead(mut w) = fills.join(key) else {
        return respond::error(
            ctx,
            StatusCode::INTERNAL_SERVER_ERROR,
            "fill table inconsistent",
            None,
        );
    };
    let head = Arc::new(fill);
    let reader = w.reader();
    w.publish(Arc::clone(&head), false);
    let _ = w.finish();
    respond::fill(ctx, req, &head, reader, &cs)
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

/// Reads the body the owner streams (`Data`* then `End`, `len` bytes or any when unknown)
/// into the fill `w`, then gives the connection back to the pool; anything else aborts the
/// fill (the client sees its body cut short) and drops the connection.
async fn relay_body(
    ctx: Arc<Ctx>,
    mut c: PeerConn,
    mut w: FillWriter<FillHead>,
    len: u64,
    wait: Duration,
) {
    let mut total: u64 = 0;
    loop {
        match c.recv(wait).await {
            Ok(Frame::Data(b)) => {
                total += b.len() as u64;
                if !wire::body_fits(total, len, u64::MAX) {
                    let e = PeerError::Unexpected(c.addr, "body longer than announced");
                    peer_failed(&ctx, &e);
                    w.abort();
                    return;
                }
                w.push(b).await;
            }
            Ok(Frame::End { complete: true }) if wire::body_complete(total, len) => {
                let _ = w.finish();
                if let Some(cl) = &ctx.cluster {
                    cl.peers.put(c);
                }
                return;
            }
            Ok(other) => {
                peer_failed(&ctx, &PeerError::Unexpected(c.addr, other.name()));
                w.abort();
                return;
            }
            Err(e) => {
                peer_failed(&ctx, &e);
                w.abort();
                return;
            }
        }
    }
}

/// Relays the owner's own answer (a stale object it served or revalidated, an error) to the
/// client; nothing is stored here, and requests coalesced here go their own way (they ask
/// the owner again).
fn owner_answer(
    ctx: &Arc<Ctx>,
    req: &ReqHead,
    mut w: FillWriter<FillHead>,
    c: PeerConn,
    a: &Answer,
    wait: Duration,
) -> Response<ProxyBody> {
    let Some(status) = StatusCode::from_u16(a.status)
        .ok()
        .filter(|s| (100..=599).contains(&s.as_u16()))
    else {
        return invalid_answer(ctx, w, &c, &format!("status {}", a.status));
    };
    let mut headers = match wire::header_map(&a.headers) {
        Ok(h) => h,
        Err(why) => return invalid_answer(ctx, w, &c, &why),
    };
    append_via(&mut headers, http::Version::HTTP_11, &ctx.node_id);
    // The owner's member is the last one (the origin may have sent members of its own).
    let hit = headers
        .get_all(crate::policy::cache_status::CACHE_STATUS)
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(", ").next())
        .is_some_and(|m| m.split(';').any(|p| p.trim() == "hit"));
    bump(if hit {
        &ctx.counters.remote_hit
    } else {
        &ctx.counters.remote_miss
    });
    let head = Arc::new(FillHead {
        status,
        headers,
        vary: Vec::new(),
        variant_id: Vec::new(),
        meta: None,
        content_length: (a.body_len != wire::UNKNOWN_LEN).then_some(a.body_len),
        fwd: Fwd::Miss,
        fwd_status: None,
        has_targeted: false,
        upstream: None,
    });
    let reader = w.reader();
    w.publish(Arc::clone(&head), false);
    tokio::spawn(relay_body(Arc::clone(ctx), c, w, a.body_len, wait));
    let mut cs = CacheStatus::fwd(&ctx.node_id, Fwd::Miss);
    cs.detail = Some("peer".to_string());
    respond::fill(ctx, req, &head, reader, &cs)
}

fn invalid_answer(
    ctx: &Ctx,
    w: FillWriter<FillHead>,
    c: &PeerConn,
    why: &str,
) -> Response<ProxyBody> {
    peer_failed(ctx, &PeerError::Unexpected(c.addr, "invalid answer"));
    tracing::warn!(reason = %why, "owner sent an invalid answer");
    w.abort();
    respond::error(
        ctx,
        StatusCode::BAD_GATEWAY,
        "invalid answer from peer",
        None,
    )
}

/// Streams the owner's object to the client through this node's fill (not stored here).
fn remote_hit(
    ctx: &Arc<Ctx>,
    req: &ReqHead,
    mut w: FillWriter<FillHead>,
    c: PeerConn,
    head: &crate::cluster::frame::ObjectHead,
    wait: Duration,
) -> Response<ProxyBody> {
    let mut fill = match wire::to_fill(head, Fwd::Miss) {
        Ok(f) => f,
        Err(why) => {
            peer_failed(ctx, &PeerError::Unexpected(c.addr, "invalid Hit head"));
            tracing::warn!(reason = %why, "owner sent an invalid object head");
            w.abort();
            return respond::error(
                ctx,
                StatusCode::BAD_GATEWAY,
                "invalid answer from peer",
                None,
            );
        }
    };
    if let Some(meta) = fill.meta.take() {
        fill.headers
            .insert(AGE, age_value(meta.current_age(SystemTime::now())));
    }
    // No meta: nothing of this fill is stored here (requests coalesced on it say so).
    append_via(&mut fill.headers, http::Version::HTTP_11, &ctx.node_id);
    let fill = Arc::new(fill);
    let reader = w.reader();
    w.publish(Arc::clone(&fill), true);
    let mut cs = CacheStatus::fwd(&ctx.node_id, Fwd::Miss);
    cs.detail = Some("peer".to_string());
    cs.upstream = fill.upstream.clone();
    tokio::spawn(relay_body(Arc::clone(ctx), c, w, head.body_len, wait));
    respond::fill(ctx, req, &fill, reader, &cs)
}

/// The owner's fill lease: what this node fetches goes to the owner too.
pub(super) struct PushSink {
    conn: PeerConn,
    lease: u64,
    ctx: Arc<Ctx>,
    /// The owner's Cache-Status member from its `Miss`.
    pub owner_member: Option<String>,
}

impl PushSink {
    /// Sends the object's head; None when the owner can no longer be reached.
    pub async fn head(mut self, key: &str, head: &FillHead) -> Option<PushSink> {
        let wire_head = wire::from_fill(head, String::new())?;
        let push = Frame::Push(Push {
            key: key.to_owned(),
            lease: self.lease,
            head: wire_head,
        });
        match self.conn.send(push).await {
            Ok(()) => Some(self),
            Err(e) => {
                peer_failed(&self.ctx, &e);
                None
            }
        }
    }

    /// The response is not storable: the lease is given back unused.
    pub async fn decline(mut self) {
        match self.conn.send(Frame::End { complete: false }).await {
            Ok(()) => self.release(),
            Err(e) => peer_failed(&self.ctx, &e),
        }
    }

    /// Sends a body chunk; false when the owner can no longer be reached.
    pub async fn data(&mut self, chunk: bytes::Bytes) -> bool {
        match self.conn.send(Frame::Data(chunk)).await {
            Ok(()) => true,
            Err(e) => {
                peer_failed(&self.ctx, &e);
                false
            }
        }
    }

    /// The body was cut short (or outgrew what may be stored): the owner discards it.
    pub async fn abort(mut self) {
        if self.conn.send(Frame::End { complete: false }).await.is_ok() {
            self.release();
        }
    }

    /// The whole body (`total` bytes) was sent: waits (at most [`PUSH_ACK_WAIT`]) for the
    /// owner to say it stored it, so that this node's client sees the end of its body only once
    /// any node asked again finds the object at the owner.
    pub async fn end(mut self, total: u64) {
        if let Err(e) = self.conn.send(Frame::End { complete: true }).await {
            return peer_failed(&self.ctx, &e);
        }
        match self.conn.recv(PUSH_ACK_WAIT).await {
            Ok(Frame::Count(n)) if n == total => self.release(),
            Ok(other) => peer_failed(
                &self.ctx,
                &PeerError::Unexpected(self.conn.addr, other.name()),
            ),
            Err(e) => peer_failed(&self.ctx, &e),
        }
    }

    fn release(self) {
        if let Some(cl) = &self.ctx.cluster {
            cl.peers.put(self.conn);
        }
    }
}
