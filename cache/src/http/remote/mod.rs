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
//! * The owner unreachable (no connection), or hung (no handshake or no first frame within
//!   `peer_timeout`; it sends `Wait` first when its answer will take long), or suspect here
//!   of hanging (`cluster::suspect`: skipped without asking): the key's next owner by
//!   rendezvous rank takes over at once — this node (a local miss, stored here) or the
//!   runner-up peer (asked as above) — as it will once gossip declares the owner dead.
//! * `Miss { lease: None }`, or a peer answering garbage → this node fetches and stores
//!   nothing. `peer_errors` counts every failed exchange.
//!
//! A HEAD for a key a peer owns is answered from the owner's object head when it has one
//! (`head`), else sent to the origin. A range request under `cache.partial` is the owner's to
//! answer from its partial object (`range`). A pooled connection that turns out closed is retried
//! once on a fresh one. The owner's bodies are relayed by `relay`; what this node fetches under
//! the owner's lease goes to it through `push`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::Response;

use super::body::ProxyBody;
use super::ctx::{Ctx, ReqHead, Runtime};
use super::fill::{lead as lead_fill, Keep, Lead};
use crate::cluster::frame::{Frame, Lookup, LookupMethod, LookupOut};
use crate::cluster::peer::{PeerConn, PeerError};
use crate::cluster::suspect::Admit;
use crate::cluster::wire;
use crate::cluster::Owner;
use crate::fault::Fault;
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::{upstream_member, Fwd};
use crate::stats::bump;
use crate::store::fill::FillWriter;
use crate::store::object::FillHead;

pub(crate) mod flights;
mod head;
pub(crate) mod hot;
mod lean;
mod push;
mod range;
mod relay;
pub(crate) mod wirecheck;

pub(super) use head::head;
pub(in crate::http) use lean::{ask_owner, relay_rest, Lean, WireAnswer};
pub(super) use push::PushSink;
pub(super) use range::ask_range;
use relay::{next_chunk, owner_answer, read_body, remote_hit, small_body, BODY_IDLE};

/// The owner's answer to a request's `Lookup`, received by the lean path (`lean`) and handed
/// to the general path with the request, so that it does not ask again.
pub(in crate::http) struct Preasked {
    key: String,
    owner: Arc<str>,
    conn: PeerConn,
    frame: Frame,
}

tokio::task_local! {
    /// Around a request the lean path gives to the general path with the owner's answer.
    pub(in crate::http) static PREASKED: std::cell::RefCell<Option<Box<Preasked>>>;
}

/// The answer the lean path received for `key` from `owner`, when there is one.
fn take_preasked(key: &str, owner: &Owner) -> Option<(PeerConn, Frame)> {
    let p = PREASKED
        .try_with(|p| p.borrow_mut().take())
        .ok()
        .flatten()?;
    (p.key == key && p.owner == owner.id).then_some((p.conn, p.frame))
}

/// Time allowed on top of the coalesce timeout for the owner's answer to a `Lookup` after its
/// `Wait`.
pub(super) const ANSWER_MARGIN: Duration = Duration::from_secs(2);
/// Nodes considered for a key: its owner and the two that would own it next.
const CANDIDATES: usize = 3;
/// Most peers asked for one request (each may cost `peer_timeout`).
const MAX_ASKED: usize = 2;

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
    // The owner's first frame comes within peer_timeout; after a `Wait` (it follows a fill,
    // or revalidates), its answer within its coalesce timeout and a margin.
    let wait = rt.coalesce_timeout + ANSWER_MARGIN;
    let Some(cl) = &ctx.cluster else {
        return origin_miss(ctx, rt, req, key, w, req_cc, Keep::Nowhere).await;
    };
    // The owner, then the nodes that would own the key without it: an owner that cannot be
    // asked (refuses, hangs, or is locally suspect of hanging) hands the key to the next one
    // at once — this node itself (a local miss, stored here) or a peer — as gossip will once
    // it declares the owner dead. At most two peers are asked.
    let mut answer = take_preasked(key, &owner).map(Ok);
    let next = cl.ranked(key, CANDIDATES).into_iter().skip(1);
    let candidates = answer
        .is_none()
        .then_some(std::iter::once(Some(owner)).chain(next));
    let mut asked = 0;
    for candidate in candidates.into_iter().flatten() {
        let Some(peer) = candidate else {
            bump(&ctx.counters.local_miss);
            return origin_miss(ctx, rt, req, key, w, req_cc, Keep::Local).await;
        };
        if cl.suspects.admit(&peer.id) == Admit::Skip {
            bump(&ctx.counters.peer_suspect_skips);
            continue;
        }
        let a = ask(ctx, &peer, lookup.out(), wait).await;
        asked += 1;
        match a {
            Err(e) if unreachable(&e) && asked < MAX_ASKED => peer_failed(ctx, &e),
            a => {
                answer = Some(a);
                break;
            }
        }
    }
    let Some(answer) = answer else {
        // Every candidate peer is suspect here: fetch, store nowhere.
        return origin_miss(ctx, rt, req, key, w, req_cc, Keep::Nowhere).await;
    };
    match answer {
        Ok((mut c, Frame::Hit(head))) => {
            // A small body is read whole here, before anyone sees the head: one task, one
            // write to the client, and a peer that fails mid-way costs an origin fetch
            // instead of a cut body.
            let body = match small_body(&head) {
                Some(len) => match read_body(&mut c, len, BODY_IDLE).await {
                    Ok(chunks) => Some(chunks),
                    Err(e) => {
                        peer_failed(ctx, &e);
                        return origin_miss(ctx, rt, req, key, w, req_cc, Keep::Nowhere).await;
                    }
                },
                None => None,
            };
            bump(&ctx.counters.remote_hit);
            remote_hit(ctx, &req, w, c, &head, BODY_IDLE, body).await
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
    // Boxed: the origin's path is large, and a remote hit (the common case) does not take it.
    Box::pin(lead_fill(job, w)).await
}

/// The peer could not be reached at all, or did not answer within `peer_timeout` (as
/// opposed to answering badly, or slowly after its `Wait`).
fn unreachable(e: &PeerError) -> bool {
    matches!(
        e,
        PeerError::Connect(..)
            | PeerError::ConnectTimeout(_)
            | PeerError::Closed(_)
            | PeerError::Hung(..)
    )
}

/// The peer hangs (or its host does not answer a TCP connect).
fn hung(e: &PeerError) -> bool {
    matches!(e, PeerError::Hung(..) | PeerError::ConnectTimeout(_))
}

/// `peer` did not answer within `peer_timeout`: counted, and suspected here for a while
/// (`cluster::suspect`); the first mark is logged as a warning.
pub(in crate::http) fn note_hung(ctx: &Ctx, peer: &Owner, reached: &str) {
    let Some(cl) = &ctx.cluster else { return };
    bump(&ctx.counters.peer_timeouts);
    let (new, mark) = cl.suspects.timed_out(&peer.id);
    if new {
        tracing::warn!(
            peer = %peer.id,
            addr = %peer.addr,
            peer_timeout = ?cl.peer_timeout,
            reached,
            skip_for = ?mark,
            "peer did not answer within peer_timeout; suspect here: its keys go to their next node"
        );
    } else {
        tracing::debug!(peer = %peer.id, skip_for = ?mark, "suspect peer still does not answer");
    }
}

/// `peer` answered: it is no longer suspect here (logged when it was).
pub(in crate::http) fn note_answered(ctx: &Ctx, peer: &Owner) {
    let Some(cl) = &ctx.cluster else { return };
    if cl.suspects.answered(&peer.id) {
        tracing::info!(peer = %peer.id, "suspect peer answers again; asking it for its keys");
    }
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
    if matches!(e, PeerError::Hung(..)) {
        // `note_hung` logged the transition to suspect; each further one is a debug line.
        tracing::debug!(error = %e, fault = fault.as_str(), "peer exchange failed");
        return;
    }
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

/// Sends `lookup` to the owner and reads the answer: its first frame within `peer_timeout`
/// (or about a tick later, `deadline`; dial and handshake included; a pooled connection
/// that turns out closed is retried once on a fresh one), or [`PeerError::Hung`] and the
/// owner is suspected here; after a `Wait`, the answer within `wait`. A connection that timed
/// out is dropped, never pooled.
async fn ask(
    ctx: &Ctx,
    owner: &Owner,
    lookup: LookupOut<'_>,
    wait: Duration,
) -> Result<(PeerConn, Frame), PeerError> {
    let Some(cl) = &ctx.cluster else {
        return Err(PeerError::Unexpected(owner.addr, "no cluster"));
    };
    let limit = cl.peer_timeout;
    let reached = Progress::default();
    // Pinned where it is made: moved into the timeout, the exchange's future (1 KiB or more)
    // would be copied whole at each step on the way.
    let exchange = std::pin::pin!(first_frame(cl, owner, lookup, &reached));
    // A coarse bound (`deadline`): a timer per exchange cost more than the rest of `ask`.
    let first = crate::deadline::within(limit, exchange)
        .await
        .unwrap_or(Err(PeerError::Hung(owner.addr, limit)))
        .map_err(|e| match e {
            // The answer's wait ran out (rather than the whole exchange's): the same.
            PeerError::Timeout(a, d) => PeerError::Hung(a, d),
            e => e,
        });
    let (mut c, f) = match first {
        Ok(got) => got,
        Err(e) => {
            if hung(&e) {
                note_hung(ctx, owner, reached.get().as_str());
            }
            return Err(e);
        }
    };
    note_answered(ctx, owner);
    match f {
        Frame::Wait => {
            let f = c.recv(wait).await?;
            Ok((c, f))
        }
        f => Ok((c, f)),
    }
}

/// How far an exchange got when `peer_timeout` ran out (the hung warning names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Reached {
    /// Getting a connection: a pooled one, or dialling and the handshake.
    Connection,
    /// Writing the lookup: waiting for room in the connection's write window.
    Write,
    /// The lookup went out; waiting for the owner's first frame.
    Answer,
}

/// The step an exchange reached (a `Send` cell: the exchange's future crosses threads).
#[derive(Default)]
struct Progress(std::sync::atomic::AtomicU8);

impl Progress {
    fn set(&self, r: Reached) {
        self.0.store(r as u8, Ordering::Relaxed);
    }

    fn get(&self) -> Reached {
        match self.0.load(Ordering::Relaxed) {
            0 => Reached::Connection,
            1 => Reached::Write,
            _ => Reached::Answer,
        }
    }
}

impl Reached {
    fn as_str(self) -> &'static str {
        match self {
            Reached::Connection => "no connection to it",
            Reached::Write => "no room to write the lookup",
            Reached::Answer => "no answer to the lookup",
        }
    }
}

async fn first_frame(
    cl: &crate::cluster::Cluster,
    owner: &Owner,
    lookup: LookupOut<'_>,
    reached: &Progress,
) -> Result<(PeerConn, Frame), PeerError> {
    // Bounded by the caller (`ask`: peer_timeout for the whole of it).
    let (mut c, pooled) = cl.peers.get(owner.addr).await?;
    // Encoded from the borrowed fields for each try: nothing is copied for a retry that
    // seldom comes.
    let first = exchange(&mut c, &lookup, reached).await;
    match first {
        Ok(f) => Ok((c, f)),
        Err(PeerError::Closed(_) | PeerError::Io(..)) if pooled => {
            reached.set(Reached::Connection);
            let mut c = cl.peers.dial(owner.addr).await?;
            let f = exchange(&mut c, &lookup, reached).await?;
            Ok((c, f))
        }
        Err(e) => Err(e),
    }
}

/// Sends `lookup` and reads the first frame of the answer, noting in `reached` how far it
/// got; the caller bounds the whole exchange.
async fn exchange(
    c: &mut PeerConn,
    lookup: &LookupOut<'_>,
    reached: &Progress,
) -> Result<Frame, PeerError> {
    // A `WIRE` lookup is the lean path's: it reads a small body whole and writes it out at
    // once, copying what a client that stalls would hold (`conn::write_lean`), so the body
    // need not be copied out of the connection's read buffer first. It turns this off when
    // the stream goes elsewhere (a long body relayed, the general path).
    c.share_payloads(lookup.flags & Lookup::WIRE != 0);
    reached.set(Reached::Write);
    c.send_lookup(lookup).await?;
    reached.set(Reached::Answer);
    c.recv_untimed().await
}
