//! The pass lane: a key whose last answer could not be stored (`store::uncacheable`, "hit for
//! miss"), asked for by a plain GET that the connection's own loop read, is fetched straight
//! from its raw request, without the general stages' request parts, routing and fill.
//!
//! Contract ([`serve`]): entered only for a `plain` fast-path GET (`fast::FastReq`) of a key
//! this node owns, marked, with nothing stored under it, on a caching route without
//! persistence. The request goes upstream as the general stages would send it
//! ([`head::origin_head`]) through the route's pool (server choice, retry, health and
//! counters as for any request); its answer's head comes back as received (`raw_response`:
//! checked as every head is, not read into a field map). The answer is then judged as a
//! fill's would be: `fill::store_decision` on the few fields it reads
//! ([`relay_head::Relay::decision_fields`]), unless its directives alone refuse it already
//! (`fill::refused_by_directives`: `no-store`, `private`, on a map of `Cache-Control` and the
//! targeted fields only):
//! * not storable: [`Lane::Raw`]: its head is written from the origin's bytes as the general
//!   stages would write it (hop-by-hop fields gone, `Date` ensured, `Via` and `Cache-Status:
//!   <node>; fwd=miss` added, targeted fields stripped, framed as `lite::write_response`
//!   frames it: [`relay_head`]), the body streamed after it; the key's mark renewed when due, and
//!   counted as the general path counts it (`requests`, `local_miss`, `hit_for_miss`,
//!   `uncacheable`) plus `pass_lane`;
//! * storable: [`Lane::General`]: the general stages take the request with that answer, its
//!   head read into a map then ([`PREFETCHED`], taken by the fill's `ask_origin`), so it is
//!   stored and the mark lifted with no second trip to the origin;
//! * the origin failed: the fault's answer, as a fill's (`forward::fault_response`).

pub(crate) mod head;
pub(crate) mod relay_head;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{Either, Empty};

use super::body::ProxyBody;
use super::ctx::{Ctx, RouteChoice, Runtime};
use super::fill::{refused_by_directives, store_decision, Times};
use super::forward::fault_response;
use super::h1::Framing;
use crate::fault::Fault;
use crate::interim::InterimSink;
use crate::origin::body::OriginBody;
use crate::origin::h1::head::{parse_response, RawHead};
use crate::origin::pool::{OutRequest, Sent};
use crate::origin::Server;
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::{own_fwd_value, CacheStatus, Fwd, CACHE_STATUS};
use crate::policy::headers::{ensure_date, strip_hop_by_hop};
use crate::stats::bump;
use relay_head::Relay;
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
    /// An answer not stored, its head written from the origin's bytes to the request's
    /// `out` ([`relay_head`]).
    Raw(RawAnswer),
    /// A storable answer: the general stages take the request with it.
    General(Box<Prefetched>),
    /// The lane does not take this request (nothing was sent).
    NotTaken,
}

/// An answer whose head the lane wrote (to [`LaneReq::out`]): the body follows it as
/// `framing` says (`lite::write_framed`).
pub(in crate::http) struct RawAnswer {
    /// The status and body; for the access log, when it is on, the `Cache-Status` and the
    /// server (`access::note_server`).
    pub resp: Response<ProxyBody>,
    pub framing: Framing,
    /// The connection ends after this answer.
    pub close: bool,
    /// The route that took the request.
    pub route: usize,
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
    /// The client asked to close the connection after this answer.
    pub close: bool,
    /// Where a [`Lane::Raw`] answer's head is written (cleared first).
    pub out: &'a mut Vec<u8>,
    /// When the key's mark ends (as [`applies`] read it): renewed only when due.
    pub marked_until: Instant,
}

/// Whether the lane may take a `plain` GET for `key` (see the module doc): when its mark
/// ends if so (for [`LaneReq::marked_until`]); checked by the connection's loop before
/// [`serve`].
pub(in crate::http) fn applies(ctx: &Ctx, key: &str) -> Option<Instant> {
    let until = ctx.uncacheable.marked_until(key, Instant::now())?;
    let taken = ctx.store.get(key, |_| true).is_none()
        // After a join the general stages ask the key's previous owner first.
        && ctx
            .cluster
            .as_ref()
            .is_none_or(|c| c.previous_owner(key).is_none());
    taken.then_some(until)
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
        raw_response: true,
        body_in_head: false,
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
    let sent = match sent {
        Ok(s) => s,
        Err(fault) => {
            answered(ctx);
            tracing::debug!(fault = fault.as_str(), "fill failed");
            let mut cs = CacheStatus::fwd(&ctx.node_id, Fwd::Miss);
            return Lane::Answer(fault_response(ctx, fault, &mut cs), route.index);
        }
    };
    let mark = (req.key, req.marked_until);
    judge(ctx, &rt, &route, (mark, req.close, req.out), sent, times)
}

/// Counted for every answer the lane gives (as the general path counts a marked key's miss).
fn answered(ctx: &Ctx) {
    bump(&ctx.counters.requests);
    bump(&ctx.counters.local_miss);
    bump(&ctx.counters.hit_for_miss);
}

/// The answer to a head the lane cannot read (see where it is used: not reached).
fn origin_broken(ctx: &Ctx, route: &RouteChoice) -> Lane {
    answered(ctx);
    let mut cs = CacheStatus::fwd(&ctx.node_id, Fwd::Miss);
    Lane::Answer(
        fault_response(ctx, Fault::OriginBroken, &mut cs),
        route.index,
    )
}

/// The origin's answer `sent` to the request for `key` judged (see the module doc): stored by
/// the general stages, or relayed from its raw head, written to `out` (`close`: the client
/// closes after it).
fn judge(
    ctx: &Arc<Ctx>,
    rt: &Runtime,
    route: &RouteChoice,
    ((key, marked_until), close, out): ((&str, Instant), bool, &mut Vec<u8>),
    sent: Sent,
    times: Times,
) -> Lane {
    let Sent {
        response,
        server,
        set_cookie,
        raw_head,
    } = sent;
    let (mut parts, incoming) = response.into_parts();
    let mut date = [0u8; 32];
    let date = today(&mut date);
    let Some(raw) = raw_head else {
        // The origin client keeps the head raw when asked: not reached.
        return origin_broken(ctx, route);
    };
    let at = (parts.status, parts.version);
    let relay = Relay::new(&raw.bytes, &raw.lines, at, date);
    // What the fill's `head_of` decides (the lane's requests carry no field of their own that
    // bears on it: no Cache-Control, Pragma or Authorization), on the fields it reads: on the
    // answer's directives alone first (a `no-store` or `private` answer, the usual one here).
    let directives = relay.directive_fields(&raw.bytes, &rt.targets);
    let storable = !refused_by_directives(rt, route, (parts.status, &directives), &times) && {
        let (meta, _) = store_decision(
            rt,
            route,
            key,
            (&HeaderMap::new(), &CacheControl::default()),
            (
                parts.status,
                &relay.decision_fields(&raw.bytes, &rt.targets),
            ),
            &times,
        );
        meta.is_some()
    };
    if storable {
        // The fill reads the head as a map, cleaned as its `clean_response_headers` does
        // (`Via` only once the answer is the lane's; the rest is idempotent).
        let Ok(Some(head)) = parse_response(&raw.bytes, false) else {
            // The raw head passed the same checks: not reached. Never stored without its
            // fields.
            return origin_broken(ctx, route);
        };
        parts.headers = head.headers;
        strip_hop_by_hop(&mut parts.headers);
        ensure_date(&mut parts.headers, SystemTime::now());
        let sent = Sent {
            response: Response::from_parts(parts, incoming),
            server,
            set_cookie,
            raw_head: None,
        };
        return Lane::General(Box::new(Prefetched {
            key: key.to_owned(),
            sent,
            times,
        }));
    }
    answered(ctx);
    bump(&ctx.counters.uncacheable);
    bump(&ctx.counters.pass_lane);
    ctx.uncacheable
        .renew(key, rt.hit_for_miss, Instant::now(), marked_until);
    let own = own_fwd_value(&ctx.node_id, Fwd::Miss);
    let own = own.as_ref().map_or(&[][..], |v| v.as_bytes());
    let cookie = set_cookie.as_ref().map(|c| c.as_bytes());
    let answer = (parts.status, incoming, &*server, cookie);
    let (resp, framing) = write_relayed(ctx, rt, relay, (own, answer), close, out);
    Lane::Raw(RawAnswer {
        resp,
        framing,
        close,
        route: route.index,
    })
}

/// An origin answer that is not stored, `sent` with its head `raw` as received
/// (`raw_response`), relayed: its head written to `out` as the general stages would write it
/// with this node's `Cache-Status` member for `fwd` ([`relay_head`]; `close`: the connection
/// ends after it), the body to follow as the returned framing says (`lite::write_framed`).
pub(in crate::http) fn relay(
    ctx: &Ctx,
    rt: &Runtime,
    (sent, raw): (Sent, &RawHead),
    (fwd, close): (Fwd, bool),
    out: &mut Vec<u8>,
) -> (Response<ProxyBody>, Framing) {
    let (parts, incoming) = sent.response.into_parts();
    let mut date = [0u8; 32];
    let date = today(&mut date);
    let at = (parts.status, parts.version);
    let relay = Relay::new(&raw.bytes, &raw.lines, at, date);
    let own = own_fwd_value(&ctx.node_id, fwd);
    let own = own.as_ref().map_or(&[][..], |v| v.as_bytes());
    let cookie = sent.set_cookie.as_ref().map(|c| c.as_bytes());
    let answer = (parts.status, incoming, &*sent.server, cookie);
    write_relayed(ctx, rt, relay, (own, answer), close, out)
}

/// An origin answer relayed: its status, body, server and persistence `Set-Cookie`.
type RelayedAnswer<'r> = (StatusCode, OriginBody, &'r Server, Option<&'r [u8]>);

/// Today's IMF-fixdate (`h1::with_date`), copied into `buf`.
fn today(buf: &mut [u8; 32]) -> &[u8] {
    let mut n = 0;
    super::h1::with_date(|d| {
        n = d.len().min(buf.len());
        buf[..n].copy_from_slice(&d[..n]);
    });
    &buf[..n]
}

/// [`relay`] with the head read already (`relay`) and this node's `Cache-Status` member
/// (`own`) made.
fn write_relayed<'r>(
    ctx: &'r Ctx,
    rt: &Runtime,
    mut relay: Relay<'r>,
    (own, answer): (&'r [u8], RelayedAnswer<'r>),
    close: bool,
    out: &mut Vec<u8>,
) -> (Response<ProxyBody>, Framing) {
    let (status, incoming, server, cookie) = answer;
    let exact = http_body::Body::size_hint(&incoming).exact();
    out.clear();
    let framing = relay.client_head(&ctx.node_id, own, &rt.strip, cookie, (exact, close), out);
    let mut resp = Response::new(ProxyBody::Upstream(incoming));
    *resp.status_mut() = status;
    if ctx.access.enabled() {
        // What the access log reads of the answer: its `Cache-Status` and server.
        if let Ok(v) = HeaderValue::from_bytes(&relay.cache_status()) {
            resp.headers_mut().insert(CACHE_STATUS, v);
        }
        crate::access::note_server(ctx, &mut resp, server.addr);
    }
    (resp, framing)
}
