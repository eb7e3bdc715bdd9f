//! Fill leases under faults: the owner's side of a lease whose holder died or stalled.
//!
//! The owner granted a peer the lease on a key's fill (`owner`): the holder fetches from its
//! origin and pushes the object here while every other request for the key, local or from
//! other peers (`follow`), reads the owner's fill. When the holder goes silent — its
//! connection closed or broke, or no frame of its push for `lease_timeout` once its origin
//! answered — the owner takes the lease back and gives it to the requests waiting on the fill:
//! it leads the fill itself (an ordinary owner-side origin fetch, stored here), so the waiters
//! keep waiting on the same fill and nobody goes back to the origin on their own.
//!
//! * Before the holder's head (`Push`): the fill has no head yet; the owner leads it from
//!   scratch (`fill::lead`, kept here), as if the key had been missed here. The wait for the
//!   head is the origin's first-byte timeout plus `lease_timeout`: the holder itself waits that
//!   long for its origin, so a slow origin is not mistaken for a stalled holder (a closed
//!   connection is seen at once).
//! * Mid-body: the waiters have the holder's head and some bytes of its body. The owner asks
//!   the origin for the whole object again and continues the same fill at the byte where the
//!   holder stopped (`store::fill::resume`) only if the answer is the same representation
//!   (same status, the same strong `ETag`, or no `ETag` and the same `Last-Modified` and
//!   `Content-Length`); then every waiter sees one continuous body, and the object is stored
//!   here when whole. Otherwise (another representation, the origin failing, a body cut or of
//!   another length) the fill is aborted: every waiter's body ends incomplete (a cut
//!   connection, never a complete-looking body), as before this existed.
//!
//! Counted: `lease_regranted` (each take-over), `fill_resumed` (mid-body, completed),
//! `fill_resume_refused` (mid-body, not completed); each is logged.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

use super::ctx::{Ctx, ReqHead};
use super::fill::{ask_origin, lead, Lead};
use super::handler::peer_request;
use crate::cluster::peer::PeerError;
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::Fwd;
use crate::stats::bump;
use crate::store::fill::resume::{resume, Resumed};
use crate::store::fill::FillWriter;
use crate::store::object::FillHead;

/// The head wait when the key's route cannot be worked out (the request is then not
/// retried here either): the default origin first-byte timeout.
const FIRST_BYTE_FALLBACK: Duration = Duration::from_secs(30);

/// A lease this node granted, with what it needs to take the fill over.
pub(super) struct Leased {
    pub key: String,
    pub lease: u64,
    /// The requester's GET, routed here (None: unusable target; then nothing is taken over).
    req: Option<ReqHead>,
    /// Longest wait for the holder's `Push` head: its origin's first byte, then
    /// `lease_timeout`.
    pub head_wait: Duration,
    /// Longest wait for each later frame of the push: `lease_timeout`.
    pub frame_wait: Duration,
}

impl Leased {
    pub fn new(ctx: &Ctx, key: &str, lease: u64, uri: &str, headers: HeaderMap) -> Self {
        let req = peer_request(ctx, uri, headers);
        let frame_wait = ctx
            .cluster
            .as_ref()
            .map_or(strait_lb::membership::section::DEFAULT_LEASE_TIMEOUT, |c| {
                c.members.settings().lease_timeout
            });
        let first_byte = req
            .as_ref()
            .map_or(FIRST_BYTE_FALLBACK, |r| r.route.pool.first_byte_timeout());
        Self {
            key: key.to_owned(),
            lease,
            req,
            head_wait: first_byte + frame_wait,
            frame_wait,
        }
    }

    /// The holder died or stalled (`why`): this node takes the fill `w` over, from scratch
    /// when the holder sent no head (`head` None), else from the byte it stopped at. The fill
    /// stays in the table meanwhile, so later requests keep joining it.
    pub fn regrant(
        self,
        ctx: &Arc<Ctx>,
        w: FillWriter<FillHead>,
        head: Option<Arc<FillHead>>,
        why: &PeerError,
    ) {
        bump(&ctx.counters.lease_regranted);
        let Leased {
            key, lease, req, ..
        } = self;
        let offset = w.pushed();
        tracing::warn!(key = %key, lease, offset, head = head.is_some(), error = %why,
            "fill lease holder died or stalled; this node takes the fill over");
        let Some(req) = req else {
            w.abort();
            return;
        };
        let ctx = Arc::clone(ctx);
        tokio::spawn(async move {
            match head {
                None => lead_anew(&ctx, req, &key, w).await,
                Some(head) => resume_fill(&ctx, req, &key, w, &head).await,
            }
        });
    }
}

/// The holder sent no head: this node leads the fill, as for a miss of its own.
async fn lead_anew(ctx: &Arc<Ctx>, req: ReqHead, key: &str, w: FillWriter<FillHead>) {
    let rt = ctx.rt.load_full();
    let req_cc = CacheControl::from_headers(&req.headers);
    let job = Lead::own_miss(ctx, &rt, req, key, Fwd::Miss, &req_cc);
    // The body is read into the fill by its own driver; this response is nobody's.
    drop(lead(job, w).await);
}

/// The holder stopped mid-body: the origin's new answer continues the fill if it is the same
/// representation, else the fill is aborted (see the module doc).
async fn resume_fill(
    ctx: &Arc<Ctx>,
    req: ReqHead,
    key: &str,
    w: FillWriter<FillHead>,
    head: &Arc<FillHead>,
) {
    let rt = ctx.rt.load_full();
    let req_cc = CacheControl::from_headers(&req.headers);
    let job = Lead::own_miss(ctx, &rt, req, key, Fwd::Miss, &req_cc);
    let from = w.pushed();
    let (sent, _) = ask_origin(&job).await;
    let sent = match sent {
        Ok(s) => s,
        Err(fault) => {
            bump(&ctx.counters.fill_resume_refused);
            tracing::warn!(key = %key, from, fault = fault.as_str(),
                "taken-over fill not resumed: the origin failed; its readers' bodies end incomplete");
            w.abort();
            return;
        }
    };
    let (parts, incoming) = sent.response.into_parts();
    let old = (head.status, &head.headers);
    let new = (parts.status, &parts.headers);
    let store = |w| super::owner::store(ctx, w, key, head);
    match resume(w, old, new, incoming, rt.max_object_size, store).await {
        Resumed::Whole { from, total, by } => {
            bump(&ctx.counters.fill_resumed);
            tracing::info!(key = %key, from, total, validator = ?by,
                "taken-over fill resumed and stored");
        }
        Resumed::Refused { from, why } => {
            bump(&ctx.counters.fill_resume_refused);
            tracing::warn!(key = %key, from, reason = why.as_str(),
                "taken-over fill not resumed: the origin's answer is another representation; its readers' bodies end incomplete");
        }
        Resumed::Cut { from, total } => {
            // A body that broke is counted in origin_errors by the body itself.
            bump(&ctx.counters.fill_resume_refused);
            tracing::warn!(key = %key, from, total,
                "taken-over fill not resumed: the origin's body was cut or of another length; its readers' bodies end incomplete");
        }
    }
}
