//! Handover after a join: a node that joined the cluster less than `handover_window` ago owns
//! keys that another member held until then (a member that had been running for
//! `handover_min_lead` when this node started; nodes started together skip this). On a miss of such a key it first asks the
//! member that owned it before (`Cluster::previous_owner`: the runner-up, the owner without
//! this node) with a probe `Lookup` (no wait, no lease); a hit is taken over — stored here,
//! served — so a join does not send a share of the keys back to the origin.
//!
//! Contract: [`take_over`] returns the object stored here, or None (the previous owner missed,
//! did not start answering within `peer_timeout` — it is then suspected here like a hung
//! owner, and skipped while suspect —, did not send the object within [`PROBE_TIMEOUT`], or
//! sent something invalid: the caller goes on as for any miss). The object is read whole before it is stored (bounded by the node's
//! `max_object_size`; a longer one is not taken).

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use http::HeaderMap;

use super::ctx::Ctx;
use super::remote::{note_answered, note_hung};
use crate::cluster::frame::{Frame, Lookup, LookupMethod};
use crate::cluster::peer::PeerError;
use crate::cluster::suspect::Admit;
use crate::cluster::{wire, Owner};
use crate::policy::cache_status::Fwd;
use crate::policy::headers::append_via;
use crate::stats::bump;
use crate::store::object::Object;

/// Time the previous owner has to answer the probe and send the object.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// An object taken over from the previous owner, and that owner's Cache-Status member.
pub struct Taken {
    pub object: Arc<Object>,
    pub upstream: Option<String>,
}

/// Asks `previous` for `key` (see the module doc).
pub async fn take_over(
    ctx: &Ctx,
    key: &str,
    uri: &str,
    headers: &HeaderMap,
    previous: &Owner,
) -> Option<Taken> {
    let cluster = ctx.cluster.as_ref()?;
    let max = ctx.rt.load().max_object_size;
    let lookup = Lookup {
        key: key.to_owned(),
        method: LookupMethod::Get,
        uri: uri.to_owned(),
        headers: wire::header_lines(headers),
        hops: 1,
        flags: Lookup::PROBE,
    };
    if cluster.suspects.admit(&previous.id) == Admit::Skip {
        bump(&ctx.counters.peer_suspect_skips);
        return None;
    }
    let got = tokio::time::timeout(
        PROBE_TIMEOUT,
        fetch(cluster, previous, lookup, (max, &ctx.node_id)),
    )
    .await;
    let taken = match got {
        Ok(Ok(t)) => {
            note_answered(ctx, previous);
            t?
        }
        Ok(Err(e)) => {
            bump(&ctx.counters.peer_errors);
            if matches!(e, PeerError::Hung(..) | PeerError::ConnectTimeout(_)) {
                note_hung(ctx, previous, "no answer to the probe");
            }
            tracing::info!(error = %e, "handover probe failed; going on as a miss");
            return None;
        }
        Err(_) => {
            bump(&ctx.counters.peer_errors);
            tracing::info!(peer = %previous.id, "handover probe timed out; going on as a miss");
            return None;
        }
    };
    ctx.store.insert(key, Arc::clone(&taken.object));
    bump(&ctx.counters.handover_hits);
    Some(taken)
}

async fn fetch(
    cluster: &crate::cluster::Cluster,
    previous: &Owner,
    lookup: Lookup,
    (max, self_id): (u64, &str),
) -> Result<Option<Taken>, PeerError> {
    let addr = previous.addr;
    // A probe is answered at once (never `Wait`): its first frame within peer_timeout.
    let first = async {
        let (mut c, _) = cluster.peers.get(addr).await?;
        c.send(Frame::Lookup(lookup)).await?;
        let f = c.recv(cluster.peer_timeout).await?;
        Ok::<_, PeerError>((c, f))
    };
    let (mut c, first) = tokio::time::timeout(cluster.peer_timeout, first)
        .await
        .unwrap_or(Err(PeerError::Hung(addr, cluster.peer_timeout)))
        .map_err(|e| match e {
            PeerError::Timeout(a, d) => PeerError::Hung(a, d),
            e => e,
        })?;
    let head = match first {
        Frame::Hit(h) => h,
        Frame::Miss(_) => {
            cluster.peers.put(c);
            return Ok(None);
        }
        other => return Err(PeerError::Unexpected(addr, other.name())),
    };
    if head.body_len != wire::UNKNOWN_LEN && head.body_len > max {
        return Ok(None);
    }
    let fill = wire::to_fill(&head, Fwd::Miss)
        .map_err(|_| PeerError::Unexpected(addr, "invalid Hit head"))?;
    let mut body = BytesMut::new();
    loop {
        match c.recv(PROBE_TIMEOUT).await? {
            Frame::Data(b) => {
                if !wire::body_fits((body.len() + b.len()) as u64, head.body_len, max) {
                    return Err(PeerError::Unexpected(addr, "body longer than announced"));
                }
                body.extend_from_slice(&b);
            }
            Frame::End { complete: true }
                if wire::body_complete(body.len() as u64, head.body_len) =>
            {
                break
            }
            other => return Err(PeerError::Unexpected(addr, other.name())),
        }
    }
    cluster.peers.put(c);
    let Some(meta) = fill.meta else {
        return Ok(None);
    };
    let mut headers = fill.headers;
    headers.insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from(body.len()),
    );
    append_via(&mut headers, http::Version::HTTP_11, self_id);
    let object = Object::new(
        fill.status,
        headers,
        body.freeze(),
        meta,
        fill.vary,
        fill.variant_id,
        fill.has_targeted,
    );
    Ok(Some(Taken {
        object: Arc::new(object),
        upstream: fill.upstream,
    }))
}
