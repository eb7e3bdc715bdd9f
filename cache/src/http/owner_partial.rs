//! The owner's side of partial content for peers (under `cache.partial`): a peer's range
//! request ([`Lookup::RANGE`]) is answered here as for a client of this node's, from the key's
//! partial object kept here; a peer's GET for a key whose parts are held here is completed
//! here (`partial::complete`) instead of leased. See `owner.rs` for the exchange.

use std::sync::Arc;

use super::ctx::{Ctx, ReqHead, Runtime};
use super::fill::{lead, Lead};
use super::handler::{answer_for_peer, peer_request};
use super::owner::send_answer;
use super::partial::completable;
use crate::cluster::frame::{Frame, Lookup};
use crate::cluster::peer::{PeerConn, PeerError};
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::Fwd;
use crate::stats::bump;
use crate::store::fill::FillWriter;
use crate::store::object::FillHead;

/// A range request under `cache.partial` ([`Lookup::RANGE`]): answered as this node would
/// answer it for a client of its own (from its complete object, from the key's partial
/// object, or fetching what is missing and keeping it here), `Wait` first.
pub(super) async fn answer_range(
    ctx: &Arc<Ctx>,
    c: &mut PeerConn,
    l: Lookup,
    headers: http::HeaderMap,
) -> Result<(), PeerError> {
    c.send(Frame::Wait).await?;
    match answer_for_peer(Arc::clone(ctx), &l.uri, headers, l.key).await {
        Some(resp) => {
            bump(&ctx.counters.peer_answers);
            send_answer(c, resp).await
        }
        None => {
            c.send(Frame::Error {
                code: 400,
                message: "Lookup: unusable uri or Host".into(),
            })
            .await
        }
    }
}

/// The peer's GET as a request of this node's, when a fill of its key would be completed
/// from a fresh partial object held here (`partial::completable`).
pub(super) fn completes_from_parts(
    ctx: &Ctx,
    rt: &Runtime,
    l: &Lookup,
    headers: &http::HeaderMap,
    req_cc: &CacheControl,
) -> Option<ReqHead> {
    rt.partial_slice?;
    let req = peer_request(ctx, &l.uri, headers.clone())?;
    completable(ctx, &l.key, &req, req_cc).map(|_| req)
}

/// Leads the fill `w` of `key` here, for `req` (a peer's GET), in a task of its own; the
/// fill's readers get its answer.
pub(super) fn lead_here(ctx: &Arc<Ctx>, req: ReqHead, key: String, w: FillWriter<FillHead>) {
    let ctx = Arc::clone(ctx);
    tokio::spawn(async move {
        let rt = ctx.rt.load_full();
        let cc = CacheControl::from_headers(&req.headers);
        let job = Lead::own_miss(&ctx, &rt, req, &key, Fwd::Miss, &cc);
        // This node's own reader of the fill is not needed: the peer's follows it.
        drop(Box::pin(lead(job, w)).await);
    });
}
