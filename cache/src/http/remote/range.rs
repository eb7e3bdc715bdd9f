//! The asking node's side of a range request for a key a peer owns, under `cache.partial`:
//! the owner keeps the key's partial object, so it answers the range itself.
//!
//! * The `Lookup` carries [`Lookup::RANGE`] (peer protocol 8) and no lease flag: the owner
//!   answers as it would answer the range for a client of its own — from its complete object,
//!   from its partial object, or fetching the window's gaps from its origin pool and keeping
//!   them (`Wait` first, then `Answer`) — so the cluster holds one copy of the parts and the
//!   origin is asked for each window once, at the owner.
//! * `Answer` → relayed to the client as it arrives (`relay::owner_answer`), stored nowhere
//!   here; counted a remote hit when the owner's member says `hit`, else a remote miss.
//! * Anything else — an owner suspect here, unreachable or hung, an `Error`, another frame —
//!   → None: the general path takes the request (`remote::lead`), which asks again or goes to
//!   the key's next node as for any GET.
//!
//! Range requests are not coalesced here: each asks the owner, whose partial path coalesces
//! the misses of one window.

use std::sync::Arc;

use http::Response;

use super::relay::{owner_answer, BODY_IDLE};
use super::{ask, peer_failed, ANSWER_MARGIN};
use crate::cluster::frame::{Frame, Lookup, LookupMethod};
use crate::cluster::peer::PeerError;
use crate::cluster::suspect::Admit;
use crate::cluster::{wire, Owner};
use crate::http::body::ProxyBody;
use crate::http::ctx::{Ctx, ReqHead};

/// Asks `owner` to answer the range request `req` for `key` (see the module doc); None: the
/// general path takes it.
pub(in crate::http) async fn ask_range(
    ctx: &Arc<Ctx>,
    req: &ReqHead,
    key: &str,
    owner: &Owner,
) -> Option<Response<ProxyBody>> {
    let cl = ctx.cluster.as_ref()?;
    if cl.suspects.admit(&owner.id) == Admit::Skip {
        return None;
    }
    let lookup = Lookup {
        key: key.to_owned(),
        method: LookupMethod::Get,
        uri: req.uri.to_string(),
        headers: wire::header_lines(&req.headers),
        hops: 1,
        flags: Lookup::RANGE,
    };
    let wait = ctx.rt.load().coalesce_timeout + ANSWER_MARGIN;
    match ask(ctx, owner, lookup.out(), wait).await {
        Ok((c, Frame::Answer(a))) => {
            // A fill of this request's own, which nobody joins: the body is relayed through it.
            let w = ctx.fills.alone(key);
            Some(owner_answer(ctx, req, w, c, &a, BODY_IDLE))
        }
        Ok((c, other)) => {
            peer_failed(ctx, &PeerError::Unexpected(c.addr, other.name()));
            None
        }
        Err(e) => {
            peer_failed(ctx, &e);
            None
        }
    }
}
