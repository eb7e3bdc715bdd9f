//! The look-up stage: where the answer to a cacheable request is, if anywhere.
//!
//! A GET or HEAD for a key a peer owns is the owner's to answer ([`Found::Owner`]; the asking
//! side is `remote`, the owner's side is `owner`), except `no-store` and `only-if-cached`
//! requests, which stay here (nothing of theirs would be stored anyway). Every other request,
//! and a peer's GET for a key this node owns, reads this node's store: the variant that
//! matches the request's `Vary` fields (RFC 9111 §4.1). What is found here, or not, goes to
//! the decide stage (`decide`).

use std::sync::Arc;
use std::time::SystemTime;

use super::ctx::{Ctx, ReqHead};
use crate::cluster::Owner;
use crate::policy::cache_control::CacheControl;
use crate::policy::vary::variant_id;
use crate::store::object::Object;

/// Where the look-up sent a request.
pub(super) enum Found {
    /// A peer owns the key: ask it.
    Owner(Owner),
    /// This node answers, from what its store holds.
    Here(Stored),
}

/// What this node's store holds for a request.
pub(super) struct Stored {
    /// The stored variant that matches the request, if any.
    pub object: Option<Arc<Object>>,
    /// When the store was read; the decide stage judges freshness at this time.
    pub now: SystemTime,
}

/// Look up a cacheable GET or HEAD: at the key's owner when a peer owns it, else here.
pub(super) fn lookup(ctx: &Ctx, req: &ReqHead, key: &str, req_cc: &CacheControl) -> Found {
    if !req_cc.no_store && !req_cc.only_if_cached {
        if let Some(owner) = ctx.cluster.as_ref().and_then(|c| c.owner(key)) {
            return Found::Owner(owner);
        }
    }
    Found::Here(local(ctx, req, key))
}

/// This node's store (the key is this node's, or no peer is asked).
pub(super) fn local(ctx: &Ctx, req: &ReqHead, key: &str) -> Stored {
    let now = SystemTime::now();
    let object = ctx.store.get(key, |o| {
        o.vary.is_empty() || variant_id(&o.vary, &req.headers) == o.variant_id
    });
    Stored { object, now }
}
