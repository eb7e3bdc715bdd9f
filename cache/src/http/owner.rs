//! The owner's side of the peer protocol: answers `Lookup`s from this node's store and fill
//! table, takes `Push`ed objects under the fill leases it granted, applies `Purge`/`Ban`.
//!
//! Contract (per `Lookup`, see `frame` for the frames):
//! * a stored variant that may be served fresh for the requester's headers → `Hit` + body;
//! * a stored variant that may not be served fresh (stale, `no-cache`, …), for a GET that may
//!   lease → `Answer`: this node answers as it would answer its own client (serves it under
//!   stale-while-revalidate and refreshes it, revalidates it with the origin, serves it under
//!   stale-if-error when the origin fails), status, headers and body relayed as they are;
//! * else, with the probe flag (or without the lease flag) → `Miss { lease: None }`;
//! * else, a fill of the key under way here (a local request's, or another peer's lease) →
//!   the requester waits on it (bounded by the coalesce timeout) and gets `Hit` + the body
//!   while it arrives, or `Miss { lease: None }` when that fill is not shareable;
//! * a GET with [`Lookup::RANGE`] (a range under `cache.partial`) → `Wait`, then `Answer`:
//!   this node answers it as it would for a client of its own — from its complete object,
//!   from the key's partial object, or fetching what is missing from its origin pool and
//!   keeping it here (`partial`) — so the parts of a key live at its owner only;
//! * else, in this node's handover window after it joined (`handover`), the key's previous
//!   owner is probed first: its object is taken over (stored here) and sent as a `Hit`;
//! * else, nobody filling the key and a fresh partial object of it held here
//!   (`partial::completable`) → this node leads the fill itself, fetching only the missing
//!   byte runs (`partial::complete`), and the requester follows it as below (a `WIRE`
//!   requester is answered `Miss` without a lease and asks again);
//! * else this node leads a fill for the key and grants the lease: `Miss { lease: Some(n) }`,
//!   then waits (bounded) for the requester's `Push` of lease n and stores what it sends
//!   (acknowledged with `Count` once stored, before the requester ends its own client's body); every
//!   request for the key meanwhile, local or remote, follows that fill. A lease that ends
//!   without a whole body (`End { complete: false }`, a bad frame, a timeout, a closed
//!   connection) ends the lease. `End { complete: false }` (the holder's origin failed, or its
//!   answer is not storable) aborts the fill: nothing is stored and its followers go forward
//!   alone. A holder that died or stalled — its connection closed or broke, or silent for
//!   `lease_timeout` (after its origin's first-byte time for the head) — loses the lease to
//!   the requests waiting here: this node takes the fill over (`lease`), from scratch or
//!   resumed at the byte the holder stopped at, and the waiters keep waiting on it.
//! * Before each slow step (revalidating a held object, probing the previous owner, following
//!   a fill) the owner sends `Wait` once, at once: the requester waits `peer_timeout` for the
//!   first frame, and longer only after a `Wait`.
//! * The owner never forwards a `Lookup` itself: one hop at most.
//!
//! Each stream of a peer connection is one exchange (`cluster::peer`), handled in a task of
//! its own. Anything else as a stream's first frame is answered with `Error` and the stream
//! reset.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::body::ProxyBody;
use super::ctx::Ctx;
use super::handler::answer_for_peer;
use super::handover::take_over;
use super::lease::Leased;
use super::owner_inline::INLINE_BODY;
use super::owner_partial::{answer_range, completes_from_parts, lead_here};
use crate::cluster::frame::{Answer, Frame, Lookup, LookupMethod, Miss, WireHit, WireMeta};
use crate::cluster::peer::{Link, PeerConn, PeerError, Quick};
use crate::cluster::wire;
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::{CacheStatus, Fwd};
use crate::policy::headers::append_via;
use crate::policy::reuse::{reuse, Reuse};
use crate::policy::vary::variant_id;
use crate::stats::{add, bump};
use crate::store::fill::{FillReader, FillWriter, Join};
use crate::store::object::{FillHead, Object};

/// Largest body chunk sent in one `Data` frame.
pub const CHUNK: usize = 256 * 1024;

static LEASES: AtomicU64 = AtomicU64::new(1);

/// Accepts peer connections until `stop` turns true.
pub async fn serve(listener: TcpListener, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let mut backoff = strait_lb::admin::backoff::AcceptBackoff::default();
    loop {
        tokio::select! {
            _ = stop.changed() => {
                if *stop.borrow() {
                    return;
                }
            }
            accepted = listener.accept() => {
                let (stream, addr) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        bump(&ctx.counters.accept_errors);
                        backoff.wait("peer", &e).await;
                        continue;
                    }
                };
                backoff.accepted("peer");
                let ctx = Arc::clone(&ctx);
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, addr, &ctx).await {
                        bump(&ctx.counters.peer_errors);
                        tracing::info!(peer = %addr, error = %e, "peer connection closed");
                    }
                });
            }
        }
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    addr: SocketAddr,
    ctx: &Arc<Ctx>,
) -> Result<(), PeerError> {
    let Some(cluster) = ctx.cluster.as_ref() else {
        return Ok(());
    };
    // Lean lookups for small fresh objects are answered on the reader task (`owner_inline`).
    let quick: Quick = {
        let ctx = Arc::clone(ctx);
        Arc::new(move |first, reply| super::owner_inline::quick(&ctx, first, reply))
    };
    let (link, mut streams) = Link::accept(
        stream,
        addr,
        &ctx.node_id,
        cluster.secret.as_deref(),
        cluster.limits,
        Some(quick),
    )
    .await?;
    // Each stream the requester opens is one exchange, handled in its own task; its frames
    // go out through the connection's writer, batched with the other streams'. (A lean
    // lookup the quick path answered never opens a stream; one it declined, for want of
    // the writer's room, is answered here as any other.)
    while let Some(mut c) = streams.recv().await {
        let ctx = Arc::clone(ctx);
        tokio::spawn(async move {
            match exchange(&ctx, &mut c).await {
                Ok(()) => c.end(),
                Err(e) => {
                    bump(&ctx.counters.peer_errors);
                    tracing::info!(peer = %c.addr, error = %e, "peer exchange failed");
                }
            }
        });
    }
    match link.take_failure() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One exchange: the stream's first frame and what follows it.
async fn exchange(ctx: &Arc<Ctx>, c: &mut PeerConn) -> Result<(), PeerError> {
    let Some(cluster) = ctx.cluster.as_ref() else {
        return Ok(());
    };
    let addr = c.addr;
    let Some(f) = c.next_request().await? else {
        return Ok(());
    };
    match f {
        Frame::Lookup(l) => lookup(ctx, c, l).await?,
        Frame::Purge { url } => {
            let n = super::purge_url(ctx, &url);
            add(&ctx.counters.invalidated, n as u64);
            c.send(Frame::Count(n as u64)).await?;
        }
        Frame::Ban { prefix } => match crate::policy::ban::checked_ban_prefix(&prefix) {
            // Refused where it was asked too; a member sending it anyway is not obeyed (emptying
            // the cache is `BanAll`, never a prefix).
            Err(why) => {
                tracing::warn!(%addr, peer = %c.node, prefix, reason = why.message(), "peer's ban refused");
                c.send(Frame::Error {
                    code: 400,
                    message: why.message().into(),
                })
                .await?;
            }
            Ok(prefix) => {
                let n = super::ban_prefix(ctx, &prefix);
                add(&ctx.counters.invalidated, n as u64);
                tracing::info!(peer = %c.node, prefix, removed = n, "ban asked by a member");
                c.send(Frame::Count(n as u64)).await?;
            }
        },
        Frame::BanAll => {
            let n = super::ban_prefix(ctx, "");
            add(&ctx.counters.invalidated, n as u64);
            tracing::warn!(peer = %c.node, removed = n, "every object removed (ban --all asked by a member)");
            c.send(Frame::Count(n as u64)).await?;
        }
        Frame::ConfigGet { version, hash } => {
            c.send(crate::cluster::confdist::answer(
                &cluster.config,
                version,
                hash,
            ))
            .await?;
        }
        other => {
            let what = other.name();
            let _ = c
                .send(Frame::Error {
                    code: 400,
                    message: format!("{what} outside an exchange"),
                })
                .await;
            return Err(PeerError::Unexpected(addr, what));
        }
    }
    Ok(())
}

/// The steps a fresh hit does not take are boxed (`Box::pin`): the task of every exchange
/// stays small, so a hit allocates no large future (large allocations freed at once are
/// given back to the OS and faulted in again by the next one).
async fn lookup(ctx: &Arc<Ctx>, c: &mut PeerConn, l: Lookup) -> Result<(), PeerError> {
    bump(&ctx.counters.peer_lookups);
    let headers = match wire::header_map(&l.headers) {
        Ok(h) => h,
        Err(why) => {
            c.send(Frame::Error {
                code: 400,
                message: format!("Lookup: {why}"),
            })
            .await?;
            return Ok(());
        }
    };
    if l.wants_range() && l.method == LookupMethod::Get && !l.is_probe() {
        return Box::pin(answer_range(ctx, c, l, headers)).await;
    }
    let node = ctx.node_id.as_str();
    let now = SystemTime::now();
    let req_cc = CacheControl::from_headers(&headers);
    let found = ctx.store.get(&l.key, |o| {
        o.vary.is_empty() || variant_id(&o.vary, &headers) == o.variant_id
    });
    if let Some(obj) = found {
        if reuse(&obj.meta, &req_cc, false, now) == Reuse::Fresh {
            bump(&ctx.counters.peer_hits);
            let cs = CacheStatus::hit(node, obj.meta.ttl(now)).to_member();
            if l.wants_wire() {
                if let Some(wire) = &obj.wire {
                    bump(&ctx.counters.peer_wire_hits);
                    return send_wire(c, &obj, wire.clone(), cs, l.method).await;
                }
            }
            return send_object(c, &obj, cs, l.method).await;
        }
        // Held, but not to be served fresh: this node has the validators and the stale copy,
        // so it answers as it would answer a client of its own.
        if l.may_lease() && !l.is_probe() && l.method == LookupMethod::Get {
            if l.wants_wire() {
                // The lean requester asks again, ready to wait.
                return c.send(miss_frame(node, None)).await;
            }
            let key = l.key.clone();
            // May revalidate with the origin first: the requester is told to wait.
            c.send(Frame::Wait).await?;
            if let Some(resp) =
                Box::pin(answer_for_peer(Arc::clone(ctx), &l.uri, headers, key)).await
            {
                bump(&ctx.counters.peer_answers);
                return Box::pin(send_answer(c, resp)).await;
            }
            return c
                .send(Frame::Error {
                    code: 400,
                    message: "Lookup: unusable uri or Host".into(),
                })
                .await;
        }
    }
    let miss = |lease| miss_frame(node, lease);
    if l.is_probe() || !l.may_lease() || l.method == LookupMethod::Head {
        return c.send(miss(None)).await;
    }
    // A requester on its lean path never waits here: where the answer would need a slow step
    // first (a stale object, a handover probe, a fill to follow), it asks again as usual.
    let lean = l.wants_wire();
    if lean
        && ctx
            .cluster
            .as_ref()
            .and_then(|cl| cl.previous_owner(&l.key))
            .is_some()
    {
        return c.send(miss(None)).await;
    }
    // The requester allows a slow answer once told to wait (`Frame::Wait`, sent once).
    let mut waiting = false;
    if let Some(prev) = ctx
        .cluster
        .as_ref()
        .and_then(|cl| cl.previous_owner(&l.key))
    {
        c.send(Frame::Wait).await?;
        waiting = true;
        if let Some(t) = Box::pin(take_over(ctx, &l.key, &l.uri, &headers, &prev)).await {
            let mut cs = CacheStatus::fwd(node, Fwd::Miss);
            cs.stored = true;
            cs.detail = Some("peer".to_string());
            cs.upstream = t.upstream;
            return send_object(c, &t.object, members(&cs), l.method).await;
        }
    }
    let rt = ctx.rt.load_full();
    match ctx.fills.join(&l.key) {
        Join::Follow(_) if lean => c.send(miss(None)).await,
        Join::Follow(reader) => {
            if !waiting {
                c.send(Frame::Wait).await?;
            }
            Box::pin(follow(c, reader, &headers, rt.coalesce_timeout, node, true)).await
        }
        Join::Lead(w) => {
            // A fresh partial object here: this node completes it itself (fetching only the
            // missing byte runs) and the requester follows that fill.
            if let Some(req) = completes_from_parts(ctx, &rt, &l, &headers, &req_cc) {
                if lean {
                    drop(w);
                    return c.send(miss(None)).await;
                }
                if !waiting {
                    c.send(Frame::Wait).await?;
                }
                let reader = w.reader();
                lead_here(ctx, req, l.key.clone(), w);
                return Box::pin(follow(
                    c,
                    reader,
                    &headers,
                    rt.coalesce_timeout,
                    node,
                    false,
                ))
                .await;
            }
            let lease = LEASES.fetch_add(1, Ordering::Relaxed);
            c.send(miss(Some(lease))).await?;
            bump(&ctx.counters.peer_leases);
            let job = Leased::new(ctx, &l.key, lease, &l.uri, headers);
            Box::pin(take_push(ctx, c, w, job, rt.max_object_size)).await
        }
    }
}

/// The Cache-Status members of `cs` (its upstream ones first), as one list.
fn members(cs: &CacheStatus) -> String {
    match &cs.upstream {
        Some(up) => format!("{up}, {}", cs.to_member()),
        None => cs.to_member(),
    }
}

/// Streams this node's own answer (status, headers as for a client, body) to the requester.
pub(super) async fn send_answer(
    c: &mut PeerConn,
    resp: http::Response<ProxyBody>,
) -> Result<(), PeerError> {
    let (parts, mut body) = resp.into_parts();
    let body_len = body.size_hint().exact().unwrap_or(wire::UNKNOWN_LEN);
    c.feed(Frame::Answer(Answer {
        status: parts.status.as_u16(),
        headers: wire::header_lines(&parts.headers),
        body_len,
    }))
    .await?;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return c.send(Frame::End { complete: false }).await;
        };
        let Ok(b) = frame.into_data() else { continue };
        feed_body(c, &b).await?;
        c.flush().await?;
    }
    c.send(Frame::End { complete: true }).await
}

/// Queues `body` as `Data` frames of at most [`CHUNK`] bytes (zero-copy slices).
async fn feed_body(c: &mut PeerConn, body: &Bytes) -> Result<(), PeerError> {
    let mut at = 0;
    while at < body.len() {
        let end = (at + CHUNK).min(body.len());
        c.feed(Frame::Data(body.slice(at..end))).await?;
        at = end;
    }
    Ok(())
}

/// Streams a stored object to the requester.
async fn send_object(
    c: &mut PeerConn,
    obj: &Object,
    cs: String,
    method: LookupMethod,
) -> Result<(), PeerError> {
    let head = wire::from_object(obj, cs);
    if method == LookupMethod::Head {
        c.feed(Frame::Hit(Box::new(head))).await?;
        return c.send(Frame::End { complete: true }).await;
    }
    c.feed(Frame::Hit(Box::new(head))).await?;
    feed_body(c, &obj.body).await?;
    c.send(Frame::End { complete: true }).await
}

/// Streams a stored object to the requester with its head in the wire form it keeps
/// (`WireHit`: no header list is built); a body up to [`INLINE_BODY`] in the frame, a longer
/// one as `Data` ending at its length, without `End`.
async fn send_wire(
    c: &mut PeerConn,
    obj: &Object,
    wire: Bytes,
    cs: String,
    method: LookupMethod,
) -> Result<(), PeerError> {
    // A small body goes in the frame itself (one frame), a larger one as `Data` after it.
    let get = method == LookupMethod::Get;
    let inline = get && !obj.body.is_empty() && obj.body.len() <= INLINE_BODY;
    c.feed(Frame::WireHit(Box::new(WireHit {
        wire,
        meta: WireMeta::from(&obj.meta),
        body_len: obj.body.len() as u64,
        cache_status: cs.into(),
        body: inline.then(|| obj.body.clone()),
    })))
    .await?;
    if get && !inline {
        feed_body(c, &obj.body).await?;
    }
    c.flush().await
}

/// This node's `Miss`, granting `lease` (or none).
fn miss_frame(node: &str, lease: Option<u64>) -> Frame {
    Frame::Miss(Miss {
        lease,
        cache_status: CacheStatus::fwd(node, Fwd::Miss).to_member(),
    })
}

/// The requester waits here on a fill of the key under way at this node (`collapsed`: one
/// that another request started).
async fn follow(
    c: &mut PeerConn,
    mut reader: FillReader<FillHead>,
    headers: &http::HeaderMap,
    wait: Duration,
    node: &str,
    collapsed: bool,
) -> Result<(), PeerError> {
    let head = match reader.head(wait).await {
        Ok(h) => h,
        Err(_) => return c.send(miss_frame(node, None)).await,
    };
    let matches = head.vary.is_empty() || variant_id(&head.vary, headers) == head.variant_id;
    let mut cs = CacheStatus::fwd(node, head.fwd);
    cs.collapsed = collapsed;
    cs.stored = true;
    let wire_head = matches
        .then(|| wire::from_fill(&head, cs.to_member()))
        .flatten();
    let Some(wire_head) = wire_head else {
        return c.send(miss_frame(node, None)).await;
    };
    c.feed(Frame::Hit(Box::new(wire_head))).await?;
    loop {
        match reader.next_chunk().await {
            Some(Ok(b)) => {
                feed_body(c, &b).await?;
                c.flush().await?;
            }
            Some(Err(_)) => return c.send(Frame::End { complete: false }).await,
            None => return c.send(Frame::End { complete: true }).await,
        }
    }
}

/// Takes the requester's `Push` under `job`'s lease into the fill `w`, and stores it when
/// whole; a holder that dies or stalls loses the fill to this node (`Leased::regrant`).
async fn take_push(
    ctx: &Arc<Ctx>,
    c: &mut PeerConn,
    mut w: FillWriter<FillHead>,
    job: Leased,
    max_object_size: u64,
) -> Result<(), PeerError> {
    let (key, lease) = (job.key.clone(), job.lease);
    let key = key.as_str();
    // The holder asks its origin first: its head may take the origin's first-byte time.
    let first = match c.recv(job.head_wait).await {
        Ok(f) => f,
        Err(e) => {
            job.regrant(ctx, w, None, &e);
            return Err(e);
        }
    };
    let head = match first {
        Frame::Push(p) if p.key == key && p.lease == lease => p.head,
        // The requester could not fill the key storably: nothing to take.
        Frame::End { .. } => {
            w.abort();
            return Ok(());
        }
        other => {
            w.abort();
            let what = other.name();
            let _ = c
                .send(Frame::Error {
                    code: 400,
                    message: format!("expected Push of lease {lease}, got {what}"),
                })
                .await;
            return Err(PeerError::Unexpected(c.addr, what));
        }
    };
    let fits = head.body_len == wire::UNKNOWN_LEN || head.body_len <= max_object_size;
    let fill = match wire::to_fill(&head, Fwd::Miss) {
        Ok(f) if fits => f,
        Ok(_) | Err(_) => {
            w.abort();
            let _ = c
                .send(Frame::Error {
                    code: 400,
                    message: "Push head refused".into(),
                })
                .await;
            return Err(PeerError::Unexpected(c.addr, "Push head refused"));
        }
    };
    let mut fill = fill;
    // The stored response passed through this node too (RFC 9110 §7.6.3).
    append_via(&mut fill.headers, http::Version::HTTP_11, &ctx.node_id);
    let fill = Arc::new(fill);
    w.publish(Arc::clone(&fill), true);
    let mut total: u64 = 0;
    loop {
        let f = match c.recv(job.frame_wait).await {
            Ok(f) => f,
            Err(e) => {
                job.regrant(ctx, w, Some(fill), &e);
                return Err(e);
            }
        };
        match f {
            Frame::Data(b) => {
                total += b.len() as u64;
                if !wire::body_fits(total, head.body_len, max_object_size) {
                    w.abort();
                    return Err(PeerError::Unexpected(
                        c.addr,
                        "Push body longer than announced",
                    ));
                }
                w.push(b).await;
            }
            Frame::End { complete: true } if wire::body_complete(total, head.body_len) => {
                store(ctx, w, key, &fill);
                bump(&ctx.counters.peer_pushes);
                // Stored: the requester lets its own client see the end of the body only now,
                // so a client that has it all and asks any node again finds it here.
                return c.send(Frame::Count(total)).await;
            }
            Frame::End { complete: true } => {
                // Said whole, but shorter than its head announced: not stored, and the
                // requester (waiting for `Count`) is told at once.
                w.abort();
                return c
                    .send(Frame::Error {
                        code: 400,
                        message: "Push body shorter than announced".into(),
                    })
                    .await;
            }
            Frame::End { complete: false } => {
                w.abort();
                return Ok(());
            }
            other => {
                w.abort();
                return Err(PeerError::Unexpected(c.addr, other.name()));
            }
        }
    }
}

/// Ends the fill and stores its object.
pub(super) fn store(ctx: &Ctx, w: FillWriter<FillHead>, key: &str, head: &FillHead) {
    w.finish_with(None, |body: Option<Bytes>| {
        let (Some(body), Some(meta)) = (body, head.meta.clone()) else {
            return;
        };
        // Already an exact-size copy of its own (`finish_with`).
        let mut headers = head.headers.clone();
        headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(body.len()),
        );
        let obj = Object::new(
            head.status,
            headers,
            body,
            meta,
            head.vary.clone(),
            head.variant_id.clone(),
            head.has_targeted,
        );
        ctx.store.insert(key, Arc::new(obj));
    });
}
