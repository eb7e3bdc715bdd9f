//! A HEAD for a key a peer owns: answered from the owner's object head when it has one, else
//! sent to the origin and stored nowhere — as it is when the owner does not answer within
//! `peer_timeout` or is suspect here of hanging (`cluster::suspect`).

use std::sync::Arc;
use std::time::SystemTime;

use http::header::AGE;
use http::{Response, StatusCode};

use crate::cluster::frame::{Frame, Lookup, LookupMethod};
use crate::cluster::peer::PeerError;
use crate::cluster::suspect::Admit;
use crate::cluster::wire;
use crate::cluster::Owner;
use crate::http::body::ProxyBody;
use crate::http::ctx::{Ctx, ReqHead};
use crate::http::respond;
use crate::policy::cache_status::{CacheStatus, Fwd};
use crate::policy::headers::{age_value, append_via};
use crate::stats::bump;
use crate::store::fill::{Fills, Join};
use crate::store::object::FillHead;

use super::relay::BODY_IDLE;
use super::{ask, peer_failed, ANSWER_MARGIN};

/// A HEAD for a key `owner` owns: the owner's stored object answers it (its headers, no
/// body); a miss there, or a peer that cannot answer, sends it to the origin as any HEAD miss
/// (nothing is stored from a HEAD).
pub(in crate::http) async fn head(
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
    let suspect = ctx
        .cluster
        .as_ref()
        .is_some_and(|cl| cl.suspects.admit(&owner.id) == Admit::Skip);
    if suspect {
        // The owner hangs, as far as this node knows: the origin answers, as for a miss.
        bump(&ctx.counters.peer_suspect_skips);
        return crate::http::pass::forward_uncached(ctx, req, key, Fwd::Miss).await;
    }
    match ask(&ctx, &owner, lookup.out(), wait).await {
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
                    crate::http::pass::forward_uncached(ctx, req, key, Fwd::Miss).await
                }
            }
        }
        Ok((c, Frame::Miss(_))) => {
            bump(&ctx.counters.remote_miss);
            if let Some(cl) = &ctx.cluster {
                cl.peers.put(c);
            }
            crate::http::pass::forward_uncached(ctx, req, key, Fwd::Miss).await
        }
        Ok((c, other)) => {
            peer_failed(&ctx, &PeerError::Unexpected(c.addr, other.name()));
            crate::http::pass::forward_uncached(ctx, req, key, Fwd::Miss).await
        }
        Err(e) => {
            peer_failed(&ctx, &e);
            crate::http::pass::forward_uncached(ctx, req, key, Fwd::Miss).await
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
