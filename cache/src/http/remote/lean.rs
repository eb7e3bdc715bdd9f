//! The asking node's lean remote hit: a plain GET or HEAD the connection's own HTTP/1.1 loop
//! read (`conn`, `fast::parse`), for a key a peer owns, asked from the owner straight from the
//! raw request and answered straight from the owner's wire head (`WireHit`), with no header
//! map, no fill table and no response object in between.
//!
//! * The `Lookup` carries [`Lookup::WIRE`] (and, for a GET, [`Lookup::MAY_LEASE`], as the
//!   general path's does): the owner answers a fresh object it keeps in wire form with
//!   `WireHit`, a fresh one it does not with `Hit`, and grants the fill lease when nobody
//!   fills the key; where its answer would need a slow step (a stale object, a handover
//!   probe, a fill to follow) it answers `Miss` without a lease at once instead of `Wait`,
//!   and the general path asks again — so that requests at this node for a key being filled
//!   wait together in this node's fill table, one exchange for all of them.
//! * `WireHit` → the head is checked (`wirecheck`) and written with this node's `Via`, `Age`
//!   and `Cache-Status`; a body that came in the frame itself (the owner's small objects,
//!   protocol version 10) is whole at once; one of at most `relay::INLINE_MAX` bytes that
//!   follows as `Data` is read whole first (a peer that fails mid-way costs the general
//!   path's exchange, never a cut body), a longer one is relayed as it arrives
//!   ([`relay_rest`]).
//! * Any other answer to a GET (`Hit` for an object with Vary or a targeted field, `Miss`
//!   granting the lease, the owner's own `Answer`) → the general path takes the request
//!   with the answer already received ([`Preasked`]; `remote::lead` uses it instead of asking):
//!   one exchange per request either way. Should the general path not reach the owner with it
//!   (the request follows a fill of the key already running here), the stream is dropped: the
//!   owner sees it reset, as when a requester goes away, and a lease it granted is given up.
//! * A `Miss` without a lease (a slow step first, or a HEAD), an owner that cannot be asked (suspect here, unreachable, hung) or a
//!   `WireHit` that fails its checks → the general path, which asks again (or goes to the
//!   next node).
//!
//! Requests coalesce at the owner (its store, its fill table), not here: concurrent requests
//! for one hot key each make their own exchange.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::flights::{follow, Join, Landing, Shared};
use super::relay::{small_body_len, BODY_IDLE};
use super::wirecheck;
use super::{ask, next_chunk, peer_failed, Preasked, ANSWER_MARGIN};
use crate::cluster::frame::{Fields, Frame, Lookup, LookupMethod, LookupOut};
use crate::cluster::peer::{PeerConn, PeerError};
use crate::cluster::suspect::Admit;
use crate::cluster::Owner;
use crate::http::ctx::Ctx;
use crate::http::fast::FastReq;
use crate::policy::cache_status::{upstream_member_bytes, CacheStatus, Fwd};
use crate::policy::meta::StoredMeta;
use crate::stats::bump;

/// A remote hit ready to write: its head is in the caller's buffer.
pub(in crate::http) struct WireAnswer {
    pub status: u16,
    /// The whole body (a GET's, at most `relay::INLINE_MAX` bytes), or what is still to come in
    /// `rest`.
    pub body: Vec<Bytes>,
    pub body_len: u64,
    /// The owner's stream still carrying the body (`relay_rest`), for a longer one.
    pub rest: Option<PeerConn>,
    /// Where the `Cache-Status` value sits in the head (the access log's `cache`).
    pub cache_status: Range<usize>,
}

/// What the lean path made of a request.
pub(in crate::http) enum Lean {
    Answer(WireAnswer),
    /// The general path takes the request (with the owner's `Hit` when one came).
    General(Option<Box<Preasked>>),
}

/// Asks `owner` for the request `req` (raw head `raw`, key `key`); on a `WireHit`, the answer's
/// head is written to `out` (cleared first).
pub(in crate::http) async fn ask_owner(
    ctx: &Arc<Ctx>,
    owner: Owner,
    req: &FastReq<'_>,
    raw: &[u8],
    key: &str,
    out: &mut Vec<u8>,
) -> Lean {
    let Some(cl) = &ctx.cluster else {
        return Lean::General(None);
    };
    let rt = ctx.rt.load();
    // A hot copy of the key (`hot`): answered here, the owner not asked (also while the owner
    // is suspect here).
    if !rt.hot_ttl.is_zero() {
        if let Some(s) = ctx.hot.get(key, Instant::now()) {
            bump(&ctx.counters.hot_hits);
            return Lean::Answer(answer_hot(ctx, &s, req, out));
        }
    }
    if cl.suspects.admit(&owner.id) == Admit::Skip {
        return Lean::General(None);
    }
    let method = if req.head {
        LookupMethod::Head
    } else {
        LookupMethod::Get
    };
    let hot_ttl = rt.hot_ttl;
    let wait = rt.coalesce_timeout + ANSWER_MARGIN;
    drop(rt);
    // Requests for a key whose lookup is out wait on it (`flights`).
    let leader = match method {
        LookupMethod::Head => None,
        LookupMethod::Get => match ctx.lean.join(key) {
            Join::Lead(l) => Some(l),
            Join::Follow(rx) => {
                return match follow(rx, wait).await {
                    Landing::Hit(s) => {
                        bump(&ctx.counters.remote_hit);
                        bump(&ctx.counters.coalesced);
                        Lean::Answer(answer_from(ctx, &s, req.close, out))
                    }
                    Landing::General => Lean::General(None),
                };
            }
        },
    };
    // Encoded straight from the raw request: nothing copied first.
    let lookup = LookupOut {
        key,
        method,
        uri: req.target,
        headers: Fields::Raw(raw),
        hops: 1,
        flags: match method {
            LookupMethod::Get => Lookup::WIRE | Lookup::MAY_LEASE,
            LookupMethod::Head => Lookup::WIRE,
        },
    };
    // Pinned where it is made, not moved (its future is over a KiB).
    let asked = {
        let asked = std::pin::pin!(ask(ctx, &owner, lookup, wait));
        asked.await
    };
    let (c, mut head) = match asked {
        Ok((c, Frame::WireHit(h))) => (c, h),
        // Not now (a slow step first, or a HEAD): the general path asks again, without the bit.
        Ok((c, Frame::Miss(m))) if m.lease.is_none() => {
            cl.peers.put(c);
            return Lean::General(None);
        }
        // Any other answer to a GET (a `Hit`, a `Miss` granting the lease, the owner's own
        // `Answer`) is the general path's to act on: it takes it instead of asking again.
        Ok((mut c, frame)) if method == LookupMethod::Get => {
            c.share_payloads(false);
            let key = key.to_owned();
            let owner = owner.id;
            return Lean::General(Some(Box::new(Preasked {
                key,
                owner,
                conn: c,
                frame,
            })));
        }
        // A HEAD for an object without a wire form: the general path asks for its head.
        Ok((_, Frame::Hit(_))) => return Lean::General(None),
        Ok((c, other)) => {
            peer_failed(ctx, &PeerError::Unexpected(c.addr, other.name()));
            return Lean::General(None);
        }
        Err(e) => {
            peer_failed(ctx, &e);
            return Lean::General(None);
        }
    };
    let checked = match ctx.verdicts.check(&head.wire, head.body_len) {
        Ok(checked) => checked,
        Err(why) => {
            peer_failed(ctx, &PeerError::Unexpected(c.addr, "invalid WireHit"));
            tracing::warn!(reason = why, peer = %owner.id, "owner sent an invalid wire head");
            return Lean::General(None);
        }
    };
    let meta = match StoredMeta::try_from(&head.meta) {
        Ok(m) => m,
        Err(e) => {
            peer_failed(ctx, &PeerError::Unexpected(c.addr, "invalid WireHit meta"));
            tracing::warn!(reason = %e, peer = %owner.id, "owner sent an invalid meta");
            return Lean::General(None);
        }
    };
    // An inline body is whole in hand (the codec checked its length), whatever its size.
    let small = method == LookupMethod::Head
        || head.body.is_some()
        || small_body_len(head.body_len).is_some();
    bump(&ctx.counters.remote_hit);
    let upstream = upstream_member_bytes(&head.cache_status);
    if !small {
        // A long body is relayed to this client alone; followers take the general path.
        drop(leader);
        let mut c = c;
        // Relayed frame by frame as the client takes it: none stays in the read buffer.
        c.share_payloads(false);
        let shared = Shared {
            wire: head.wire,
            checked,
            meta,
            upstream,
            body: Vec::new(),
            body_len: head.body_len,
        };
        let mut a = answer_from(ctx, &shared, req.close, out);
        a.rest = Some(c);
        return Lean::Answer(a);
    }
    let mut c = c;
    let len = if method == LookupMethod::Head {
        0
    } else {
        head.body_len
    };
    let body = match head.body.take() {
        // In the frame (protocol version 10): nothing follows it.
        Some(b) if len > 0 => {
            cl.peers.put(c);
            vec![b]
        }
        _ => match read_whole(&mut c, len).await {
            Ok(chunks) => {
                cl.peers.put(c);
                chunks
            }
            Err(e) => {
                peer_failed(ctx, &e);
                return Lean::General(None);
            }
        },
    };
    let shared = Arc::new(Shared {
        wire: head.wire,
        checked,
        meta,
        upstream,
        body,
        body_len: len,
    });
    // (The clocks are read only when hot copies are on.)
    if method == LookupMethod::Get && !hot_ttl.is_zero() {
        ctx.hot
            .put(key, &shared, hot_ttl, (Instant::now(), SystemTime::now()));
    }
    if let Some(leader) = leader {
        leader.land(Landing::Hit(Arc::clone(&shared)));
    }
    Lean::Answer(answer_from(ctx, &shared, req.close, out))
}

/// The answer to one client from a remote hit (its own or its leader's): the head written to
/// `out` (cleared first) with this node's `Via`, `Age` now and `Cache-Status`.
fn answer_from(ctx: &Ctx, s: &Shared, close: bool, out: &mut Vec<u8>) -> WireAnswer {
    answer(ctx, s, close, false, None, out)
}

/// The answer to one client from a hot copy: as [`answer_from`], with this node's own hit as
/// its `Cache-Status` (the owner was not asked), and no body for a HEAD.
fn answer_hot(ctx: &Ctx, s: &Shared, req: &FastReq<'_>, out: &mut Vec<u8>) -> WireAnswer {
    let mut cs = CacheStatus::hit(&ctx.node_id, s.meta.ttl(SystemTime::now()));
    cs.detail = Some("hot".to_string());
    answer(ctx, s, req.close, req.head, Some(&cs.to_member()), out)
}

/// The head written to `out` (cleared first) with this node's `Via`, `Age` now and
/// `Cache-Status`: `own_status` when given, else the owner's member then this node's remote-hit one.
fn answer(
    ctx: &Ctx,
    s: &Shared,
    close: bool,
    head_only: bool,
    own_status: Option<&str>,
    out: &mut Vec<u8>,
) -> WireAnswer {
    let age = s.meta.current_age(SystemTime::now()).as_secs();
    out.clear();
    let cache_status = OWN.with(|own| {
        let mut own = own.borrow_mut();
        if own.node != ctx.node_id {
            *own = Own::of(&ctx.node_id);
        }
        let value: &[&[u8]] = match (own_status, &s.upstream) {
            (Some(mine), _) => &[mine.as_bytes()],
            (None, Some(up)) => &[up, b", ", own.member.as_bytes()],
            (None, None) => &[own.member.as_bytes()],
        };
        wirecheck::write_answer(out, &s.wire, &s.checked, age, &own.via, value, close)
    });
    let (body, body_len) = if head_only {
        (Vec::new(), 0)
    } else {
        (s.body.clone(), s.body_len)
    };
    WireAnswer {
        status: s.checked.status,
        body,
        body_len,
        rest: None,
        cache_status,
    }
}

/// This node's `Via` entry and `Cache-Status` member for a remote hit, made once per thread.
struct Own {
    node: String,
    via: String,
    member: String,
}

impl Own {
    fn of(node: &str) -> Own {
        let mut cs = CacheStatus::fwd(node, Fwd::Miss);
        cs.detail = Some("peer".to_string());
        Own {
            node: node.to_owned(),
            via: format!("1.1 {node} (strait)"),
            member: cs.to_member(),
        }
    }
}

thread_local! {
    static OWN: std::cell::RefCell<Own> = const { std::cell::RefCell::new(Own {
        node: String::new(),
        via: String::new(),
        member: String::new(),
    }) };
}

/// Reads a small body of exactly `len` bytes (`Data` frames; a `WireHit`'s body has no `End`),
/// the whole of it within `BODY_IDLE` (one timer for the body, not one per frame; none when
/// the body came with its head, as a small one usually does: the frames already queued are
/// taken first).
async fn read_whole(c: &mut PeerConn, len: u64) -> Result<Vec<Bytes>, PeerError> {
    let addr = c.addr;
    let mut body = Body {
        chunks: Vec::new(),
        total: 0,
        len,
    };
    if len == 0 {
        return Ok(body.chunks);
    }
    while let Some(f) = c.try_recv_now() {
        if body.take(addr, f)? {
            return Ok(body.chunks);
        }
    }
    let read = async {
        loop {
            if body.take(addr, c.recv_untimed().await?)? {
                return Ok(());
            }
        }
    };
    match tokio::time::timeout(BODY_IDLE, read).await {
        Ok(Ok(())) => Ok(body.chunks),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(PeerError::Timeout(addr, BODY_IDLE)),
    }
}

/// A small body read so far.
struct Body {
    chunks: Vec<Bytes>,
    total: u64,
    len: u64,
}

impl Body {
    /// Takes the next frame of the body: true once it is whole (`len` bytes).
    fn take(&mut self, addr: std::net::SocketAddr, f: Frame) -> Result<bool, PeerError> {
        match f {
            Frame::Data(b) => {
                self.total += b.len() as u64;
                if self.total > self.len {
                    return Err(PeerError::Unexpected(addr, "body longer than announced"));
                }
                self.chunks.push(b);
                Ok(self.total == self.len)
            }
            Frame::Error { code, message } => Err(PeerError::Remote(addr, code, message)),
            other => Err(PeerError::Unexpected(addr, other.name())),
        }
    }
}

/// Relays the rest of a long body (`len` bytes, ending at that length: a `WireHit`'s has no
/// `End`) from the owner's stream to the client; an error (the peer's or the client's) ends
/// the client's connection: its body is cut short.
pub(in crate::http) async fn relay_rest<W: AsyncWrite + Unpin>(
    ctx: &Ctx,
    mut c: PeerConn,
    len: u64,
    io: &mut W,
) -> std::io::Result<()> {
    let mut total = 0;
    while total < len {
        match next_chunk(&mut c, &mut total, len, BODY_IDLE).await {
            Ok(Some(b)) => io.write_all(&b).await?,
            // An `End` before the length: the body is cut.
            Ok(None) => {
                let e = PeerError::Unexpected(c.addr, "End");
                peer_failed(ctx, &e);
                return Err(std::io::Error::other("the owner's body was cut short"));
            }
            Err(e) => {
                peer_failed(ctx, &e);
                return Err(std::io::Error::other("the owner's body was cut short"));
            }
        }
    }
    if let Some(cl) = &ctx.cluster {
        cl.peers.put(c);
    }
    Ok(())
}
