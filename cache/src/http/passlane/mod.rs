//! The pass lane: a key whose last answer could not be stored (`store::uncacheable`, "hit for
//! miss"), asked for by a plain GET that the connection's own loop read, is fetched straight
//! from its raw request, without the general stages' request parts, routing and fill.
//!
//! Contract ([`serve`]): entered only for a `plain` fast-path GET (`fast::FastReq`) of a key
//! this node owns, marked, with nothing stored under it, on a caching route without
//! persistence. The request goes upstream as the general stages would send it
//! ([`head::origin_head`]) through the route's pool (server choice, retry, health and
//! counters as for any request). The answer is then judged as a fill's would be
//! (`policy::storable`, `Set-Cookie` on the route, `max_object_size`):
//! * not storable: it is relayed as the general stages relay it (hop-by-hop fields gone,
//!   `Date` ensured, `Via` and `Cache-Status: <node>; fwd=miss` added, targeted fields
//!   stripped), the key's mark renewed, and counted as the general path counts it
//!   (`requests`, `local_miss`, `hit_for_miss`, `uncacheable`) plus `pass_lane`;
//! * storable: [`Lane::General`]: the general stages take the request with that answer
//!   ([`PREFETCHED`], taken by the fill's `ask_origin`), so it is stored and the mark lifted
//!   with no second trip to the origin;
//! * the origin failed: the fault's answer, as a fill's (`forward::fault_response`).

pub(crate) mod head;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::{HeaderMap, Method, Response};
use http_body_util::{Either, Empty};

use super::body::ProxyBody;
use super::ctx::{Ctx, Runtime};
use super::fill::{store_decision, Times};
use super::forward::{fault_response, has_any, with_cookie};
use super::respond;
use crate::interim::InterimSink;
use crate::origin::pool::{OutRequest, Sent};
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::{append_fwd, CacheStatus, Fwd};
use crate::policy::headers::{append_via, ensure_date, strip_hop_by_hop};
use crate::stats::bump;
use strait_lb::select::schedule::PickInput;

/// An origin answer the pass lane received for a key, and when.
pub(in crate::http) struct Prefetched {
    pub key: String,
    pub sent: Sent,
    pub times: Times,
}

tokio::task_local! {
    /// Around a request the pass lane gives to the general stages with the origin's answer.
    pub(in crate::http) static PREFETCHED: RefCell<Option<Box<Prefetched>>>;
}

/// The answer the pass lane received for `key`, when there is one (taken once).
pub(in crate::http) fn take_prefetched(key: &str) -> Option<(Sent, Times)> {
    let p = PREFETCHED
        .try_with(|p| p.borrow_mut().take())
        .ok()
        .flatten()?;
    (p.key == key).then_some((p.sent, p.times))
}

/// What the lane made of a request.
// Returned once per request and matched at once: boxing the answer would cost an allocation.
#[allow(clippy::large_enum_variant)]
pub(in crate::http) enum Lane {
    /// The answer, and the route that took the request.
    Answer(Response<ProxyBody>, usize),
    /// A storable answer: the general stages take the request with it.
    General(Box<Prefetched>),
    /// The lane does not take this request (nothing was sent).
    NotTaken,
}

/// The request the lane is asked to serve.
pub(in crate::http) struct LaneReq<'a> {
    /// The client's request head, whole.
    pub raw: &'a [u8],
    pub key: &'a str,
    /// The target without its query (the server choice's input, as the general stages').
    pub path: &'a str,
    pub client: SocketAddr,
    pub interim: Option<InterimSink>,
}

/// Whether the lane may take a `plain` GET for `key` (see the module doc); checked by the
/// connection's loop before [`serve`].
pub(in crate::http) fn applies(ctx: &Ctx, key: &str) -> bool {
    ctx.uncacheable.is_marked(key, Instant::now())
        && ctx.store.get(key, |_| true).is_none()
        // After a join the general stages ask the key's previous owner first.
        && ctx
            .cluster
            .as_ref()
            .is_none_or(|c| c.previous_owner(key).is_none())
}

/// Serve a request for a marked key (see the module doc): `route` is the index of the route
/// the fast path found for it in `rt`, the runtime snapshot it routed in (never another one:
/// a reload in between would renumber the routes).
pub(in crate::http) async fn serve(
    ctx: &Arc<Ctx>,
    rt: Arc<Runtime>,
    route: usize,
    req: LaneReq<'_>,
) -> Lane {
    // Routes that match on request fields need the general stages' parts; a key with parts
    // held (`cache.partial`) is completed from them by the fill.
    let parts_held = || {
        let parts = crate::store::object::partial_key(req.key);
        ctx.store.get(&parts, |_| true).is_some()
    };
    if !rt.fast_routing || (rt.partial_slice.is_some() && parts_held()) {
        return Lane::NotTaken;
    }
    let route = rt.route_at(route);
    if !route.cache || route.key_headers || route.pool.has_persistence() {
        return Lane::NotTaken;
    }
    let mut raw = Vec::with_capacity(req.raw.len() + 128);
    if !head::origin_head(&mut raw, req.raw, &ctx.node_id, req.client.ip()) {
        return Lane::NotTaken;
    }
    let out = OutRequest {
        method: Method::GET,
        path_and_query: http::uri::PathAndQuery::from_static("/"),
        headers: HeaderMap::new(),
        body: Either::Left(Empty::new()),
        upload: None,
        interim: req.interim,
    };
    let input = PickInput {
        client: Some(req.client.ip()),
        path: req.path,
    };
    let request = SystemTime::now();
    let sent = route
        .pool
        .send_with(out, &input, &ctx.counters, Some(&raw))
        .await;
    let times = Times {
        request,
        response: SystemTime::now(),
    };
    let answered = |ctx: &Ctx| {
        bump(&ctx.counters.requests);
        bump(&ctx.counters.local_miss);
        bump(&ctx.counters.hit_for_miss);
    };
    let Sent {
        response,
        server,
        set_cookie,
    } = match sent {
        Ok(s) => s,
        Err(fault) => {
            answered(ctx);
            tracing::debug!(fault = fault.as_str(), "fill failed");
            let mut cs = CacheStatus::fwd(&ctx.node_id, Fwd::Miss);
            return Lane::Answer(fault_response(ctx, fault, &mut cs), route.index);
        }
    };
    let (mut parts, incoming) = response.into_parts();
    // As the fill's `clean_response_headers`, but `Via` only once the answer is the lane's:
    // a storable one goes to the fill, which cleans it (again: the rest is idempotent).
    strip_hop_by_hop(&mut parts.headers);
    ensure_date(&mut parts.headers, SystemTime::now());
    // What the fill's `head_of` decides (the lane's requests carry no field of their own that
    // bears on it: no Cache-Control, Pragma or Authorization).
    let (meta, _) = store_decision(
        &rt,
        &route,
        req.key,
        (&HeaderMap::new(), &CacheControl::default()),
        (parts.status, &parts.headers),
        &times,
    );
    if meta.is_some() {
        let sent = Sent {
            response: Response::from_parts(parts, incoming),
            server,
            set_cookie,
        };
        return Lane::General(Box::new(Prefetched {
            key: req.key.to_owned(),
            sent,
            times,
        }));
    }
    answered(ctx);
    bump(&ctx.counters.uncacheable);
    bump(&ctx.counters.pass_lane);
    ctx.uncacheable
        .mark(req.key, rt.hit_for_miss, std::time::Instant::now());
    append_via(&mut parts.headers, parts.version, &ctx.node_id);
    if has_any(&parts.headers, &rt.strip) {
        ctx.strip_targeted(&mut parts.headers);
    }
    append_fwd(&mut parts.headers, &ctx.node_id, Fwd::Miss);
    let mut resp = respond::build(parts.status, parts.headers, ProxyBody::Upstream(incoming));
    crate::access::note_server(ctx, &mut resp, server.addr);
    Lane::Answer(with_cookie(resp, set_cookie), route.index)
}
