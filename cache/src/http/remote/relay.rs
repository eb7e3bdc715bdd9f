//! Relaying what the owner streams back (a `Hit`, or its own `Answer`) to this node's client
//! and to the requests coalesced here; nothing is stored here.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::AGE;
use http::{Response, StatusCode};

use crate::cluster::frame::{Answer, Frame};
use crate::cluster::peer::{PeerConn, PeerError};
use crate::cluster::wire;
use crate::http::body::ProxyBody;
use crate::http::ctx::{Ctx, ReqHead};
use crate::http::respond;
use crate::policy::cache_status::{CacheStatus, Fwd};
use crate::policy::headers::{age_value, append_via};
use crate::stats::bump;
use crate::store::fill::FillWriter;
use crate::store::object::FillHead;

use super::peer_failed;

/// Longest wait between two frames of a body streamed by the owner.
pub(super) const BODY_IDLE: Duration = Duration::from_secs(30);

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
        match next_chunk(&mut c, &mut total, len, wait).await {
            Ok(Some(b)) => w.push(b).await,
            Ok(None) => {
                let _ = w.finish();
                if let Some(cl) = &ctx.cluster {
                    cl.peers.put(c);
                }
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

/// The next chunk of a body of `len` bytes (or any when unknown) the owner streams, `total`
/// counting what came before it; None at its complete end. Anything else is an error: a
/// longer body, an end short of `len`, another frame, a wait over `wait`.
pub(super) async fn next_chunk(
    c: &mut PeerConn,
    total: &mut u64,
    len: u64,
    wait: Duration,
) -> Result<Option<bytes::Bytes>, PeerError> {
    match c.recv(wait).await? {
        Frame::Data(b) => {
            *total += b.len() as u64;
            if !wire::body_fits(*total, len, u64::MAX) {
                return Err(PeerError::Unexpected(c.addr, "body longer than announced"));
            }
            Ok(Some(b))
        }
        Frame::End { complete: true } if wire::body_complete(*total, len) => Ok(None),
        other => Err(PeerError::Unexpected(c.addr, other.name())),
    }
}

/// Relays the owner's own answer (a stale object it served or revalidated, an error) to the
/// client; nothing is stored here, and requests coalesced here go their own way (they ask
/// the owner again).
pub(super) fn owner_answer(
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

/// Bodies of at most this many bytes are read whole before the head is published.
pub(super) const INLINE_MAX: u64 = 64 * 1024;

/// The length of a `Hit`'s body when it is small enough to read whole first.
pub(super) fn small_body(head: &crate::cluster::frame::ObjectHead) -> Option<u64> {
    small_body_len(head.body_len)
}

/// `len` when a body of that length is small enough to read whole first.
pub(super) fn small_body_len(len: u64) -> Option<u64> {
    (len != wire::UNKNOWN_LEN && len <= INLINE_MAX).then_some(len)
}

/// Reads a body of exactly `len` bytes (`Data`* then `End`), each frame within `wait`.
pub(super) async fn read_body(
    c: &mut PeerConn,
    len: u64,
    wait: Duration,
) -> Result<Vec<bytes::Bytes>, PeerError> {
    let mut chunks = Vec::new();
    let mut total: u64 = 0;
    while let Some(b) = next_chunk(c, &mut total, len, wait).await? {
        chunks.push(b);
    }
    Ok(chunks)
}

/// Streams the owner's object to the client through this node's fill (not stored here);
/// `body`: the whole body, already read (`read_body`), else it is relayed as it arrives.
pub(super) async fn remote_hit(
    ctx: &Arc<Ctx>,
    req: &ReqHead,
    mut w: FillWriter<FillHead>,
    c: PeerConn,
    head: &crate::cluster::frame::ObjectHead,
    wait: Duration,
    body: Option<Vec<bytes::Bytes>>,
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
    match body {
        Some(chunks) => {
            if let Some(cl) = &ctx.cluster {
                cl.peers.put(c);
            }
            // The chunks are taken without waiting on the window: this task's own reader
            // reads them only once the response is returned (a push taken at its first poll
            // and not awaited only skips that wait).
            for b in chunks {
                let _ = futures_util::FutureExt::now_or_never(w.push(b));
            }
            let _ = w.finish();
        }
        None => {
            tokio::spawn(relay_body(Arc::clone(ctx), c, w, head.body_len, wait));
        }
    }
    respond::fill(ctx, req, &fill, reader, &cs)
}
