//! The owner's answer to a lean requester's `Lookup` (`Lookup::WIRE`) for a small fresh
//! object it keeps in wire form, written on the connection's reader task before any stream
//! opens ([`quick`], the quick path of `peer::reply`): no stream, no task, no timer, no
//! header map. Anything else — another frame, a request that carries `Cache-Control` or
//! `Pragma`, an object not held, not fresh, without a wire form or with a body over
//! [`INLINE_BODY`], or no room in the writer now — opens its stream and goes to the exchange
//! task (`owner::exchange`), which answers a `WIRE` lookup the same way, only slower.

use std::time::SystemTime;

use crate::cluster::frame::{Frame, Lookup, LookupMethod, WireHit, WireMeta};
use crate::cluster::peer::{PeerError, Reply};
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::CacheStatus;
use crate::policy::reuse::{reuse, Reuse};
use crate::stats::bump;

use super::ctx::Ctx;

/// Bodies up to this long are answered inline (in the `WireHit` frame itself).
pub const INLINE_BODY: usize = 64 * 1024;

/// The quick path's answer (`peer::reply`): a `Lookup` answered on the connection's reader
/// task, with no stream opened, when [`wire_hit`] can; false (nothing counted) otherwise.
pub fn quick(ctx: &Ctx, first: &Frame, reply: &mut Reply<'_>) -> bool {
    match first {
        Frame::Lookup(l) => matches!(wire_hit(ctx, reply, l), Ok(true)),
        _ => false,
    }
}

/// Encodes the `WireHit` answer to `l` into `to` when the store has what it needs and `to`
/// takes it now; false (nothing encoded or counted) otherwise.
fn wire_hit(ctx: &Ctx, to: &mut Reply<'_>, l: &Lookup) -> Result<bool, PeerError> {
    if !l.wants_wire() || l.is_probe() || touches_cache_control(l) {
        return Ok(false);
    }
    let Some(obj) = ctx.store.get(&l.key, |o| o.vary.is_empty()) else {
        return Ok(false);
    };
    let Some(wire) = obj.wire.clone() else {
        return Ok(false);
    };
    let now = SystemTime::now();
    if obj.body.len() > INLINE_BODY
        || reuse(&obj.meta, &CacheControl::default(), false, now) != Reuse::Fresh
    {
        return Ok(false);
    }
    // The head frame and the body (copied in when short, `Batch`), in one buffer.
    if !to.room_for(wire.len() + 96 + ctx.node_id.len(), obj.body.len()) {
        return Ok(false);
    }
    // The body inline (protocol version 10): one frame, nothing after it.
    let hit = Frame::WireHit(Box::new(WireHit {
        wire,
        meta: WireMeta::from(&obj.meta),
        body_len: obj.body.len() as u64,
        cache_status: CacheStatus::hit(&ctx.node_id, obj.meta.ttl(now)).to_member_bytes(),
        body: (l.method == LookupMethod::Get && !obj.body.is_empty()).then(|| obj.body.clone()),
    }));
    // A fresh stream has the whole window of credit: a small body always fits.
    if !to.feed_now(&hit)? {
        return Err(PeerError::Unexpected(
            to.peer_addr(),
            "no credit on a new stream",
        ));
    }
    bump(&ctx.counters.peer_lookups);
    bump(&ctx.counters.peer_hits);
    bump(&ctx.counters.peer_wire_hits);
    Ok(true)
}

/// Whether the request carries a field that changes what the cache may answer with.
fn touches_cache_control(l: &Lookup) -> bool {
    l.headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(b"cache-control") || n.eq_ignore_ascii_case(b"pragma"))
}
