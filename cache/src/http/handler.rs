//! The life of a request at a cache node, stage by stage; this file is the top level, and each
//! stage is a module that reads alone:
//!
//! 1. **Admit** (`admit.rs`): check the framing and make the request canonical once (authority,
//!    `Connection`, path), so every later stage and the origin see the same request.
//! 2. **Route and key** (here, [`handle`]): the route picks the origin pool and says whether the
//!    cache may keep the answer; the key is the target URI plus the route's `cache_key` fields
//!    ([`extend_key`]). What is not cached is passed through (`pass.rs`).
//! 3. **Look up** (`lookup.rs`): a key a peer owns goes to its owner (`remote/`; the owner's
//!    side is `owner.rs`); else this node's store, the variant that matches the request.
//! 4. **Decide** (`decide.rs`, with `policy::reuse`): fresh → serve; stale → serve it while
//!    refreshing, revalidate, or serve it on error (RFC 9111 §4, RFC 5861); nothing stored →
//!    504 for `only-if-cached`, a pass for HEAD and `no-store`, else fill.
//!    Under `cache.partial`, a range with no complete object stored is served from, or added
//!    to, the key's partial object instead (`partial/`, RFC 9111 §3.3-3.4); for a key a peer
//!    owns, by the owner (`remote::ask_range`).
//! 5. **Fill** (`fill/`): one trip to the origin (or the owner's lease) per key however many
//!    clients wait, read while it arrives; after a join, the key's previous owner is asked
//!    first (`handover.rs`).
//! 6. **Store** (`fill/drive.rs`): the object is stored when whole, before its last bytes reach
//!    the client.
//! 7. **Respond** (`respond.rs`): from the object or the fill, with `Age`, `Cache-Status`,
//!    `Via`, conditionals and ranges; failures by who is to blame (`forward::fault_response`).
//!
//! The hit fast path (`fast.rs`, `conn.rs`) answers plain fresh hits before stage 1 from the
//! raw bytes.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::admit::{admit, apply_default_host};
use super::body::ProxyBody;
use super::ctx::{Ctx, ReqHead};
use super::decide::decide;
use super::fill;
use super::lookup::{local, lookup, Found, Stored};
use super::partial;
use super::pass;
use super::remote;
use super::respond;
use crate::interim::InterimSink;
use crate::origin::upload::ClientBody;
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::Fwd;
use crate::policy::key::primary_key;
use crate::stats::bump;

/// A response and the index of the route that took its request (None: answered before
/// routing). The one way the route travels to the connection: the per-route metrics count
/// it, and the access log names it (and its pool).
pub type Routed = (Response<ProxyBody>, Option<usize>);

/// Serve one client request.
pub async fn handle(ctx: Arc<Ctx>, req: Request<Incoming>, client: Option<SocketAddr>) -> Routed {
    let (parts, body) = req.into_parts();
    bump(&ctx.counters.requests);
    match begin(&ctx, parts, client) {
        Begin::Answered(resp) => (resp, None),
        // Boxed: the cache's stages are a future of several KiB that hyper would otherwise move
        // into place for every request, passes included (a 1 KiB POST copied ~12 KB).
        Begin::Cached(req, key) => {
            let route = Some(req.route.index);
            (Box::pin(cached(ctx, req, key)).await, route)
        }
        // Invalidation (RFC 9111 §4.4) works on the URL: every cache_key variant of it.
        Begin::Pass(req, primary) => {
            let route = Some(req.route.index);
            let body = ClientBody::Hyper(body);
            (pass::pass(ctx, req, body, primary).await, route)
        }
    }
}

/// What stages 1 and 2 make of a request with a body whose head the connection's own loop
/// read (`upload_lane`).
pub(super) enum BodyBegin {
    /// Answered without its body (refused at admission, `*`); counted as [`handle`] does.
    Answered(Response<ProxyBody>),
    /// Passed to the origin with its body: [`PassReq::pass`] (counted as [`handle`] does).
    Pass(PassReq),
    /// A request the cache would look up (nothing done or counted): the general path's.
    General,
}

/// A request [`begin_with_body`] found is to be passed, with its URL's primary key.
pub(super) struct PassReq(ReqHead, String);

impl PassReq {
    /// The pass, as [`handle`] makes it, with the body from `body`.
    pub(super) async fn pass(self, ctx: Arc<Ctx>, body: ClientBody<'_>) -> Routed {
        let PassReq(req, primary) = self;
        let route = Some(req.route.index);
        (pass::pass(ctx, req, body, primary).await, route)
    }
}

/// Stages 1 and 2 of [`handle`] for a request with a body (see [`BodyBegin`]).
pub(super) fn begin_with_body(
    ctx: &Ctx,
    parts: http::request::Parts,
    client: Option<SocketAddr>,
) -> BodyBegin {
    let begun = match begin(ctx, parts, client) {
        Begin::Cached(..) => return BodyBegin::General,
        Begin::Answered(resp) => BodyBegin::Answered(resp),
        Begin::Pass(req, primary) => BodyBegin::Pass(PassReq(req, primary)),
    };
    bump(&ctx.counters.requests);
    begun
}

/// Serve a request that has no body (`parts` read from the raw bytes by the connection's own
/// HTTP/1.1 loop): None, with nothing done or counted, when it is to be passed to the origin
/// (the caller gives it to hyper, which reads a body).
pub async fn handle_bodyless(
    ctx: Arc<Ctx>,
    parts: http::request::Parts,
    client: Option<SocketAddr>,
) -> Option<Routed> {
    let resp = match begin(&ctx, parts, client) {
        Begin::Answered(resp) => resp,
        Begin::Cached(req, key) => {
            bump(&ctx.counters.requests);
            let route = Some(req.route.index);
            return Some((cached(ctx, req, key).await, route));
        }
        Begin::Pass(..) => return None,
    };
    bump(&ctx.counters.requests);
    Some((resp, None))
}

/// Stages 1 and 2 for a request: answered at once (refused, `*`), or looked up in the cache,
/// or passed; nothing is counted here but a refusal.
enum Begin {
    Answered(Response<ProxyBody>),
    Cached(ReqHead, String),
    Pass(ReqHead, String),
}

fn begin(ctx: &Ctx, mut parts: http::request::Parts, client: Option<SocketAddr>) -> Begin {
    let (max_body, default_host) = {
        let rt = ctx.rt.load();
        (rt.limits.max_request_body, rt.default_host.clone())
    };
    apply_default_host(&mut parts, default_host.as_ref());
    let admitted = match admit(&mut parts, max_body) {
        Ok(a) => a,
        Err(refused) => return Begin::Answered(refused_response(ctx, &refused)),
    };
    if parts.uri.path() == "*" {
        return Begin::Answered(asterisk(ctx, &parts.method));
    }
    let rt = ctx.rt.load();
    let route = rt.route(
        &parts.method,
        &admitted.primary,
        admitted.route_path(parts.uri.path()),
        &parts.headers,
    );
    let primary = admitted.primary;
    let mut key = primary.clone();
    if route.key_headers {
        extend_key(
            &mut key,
            &rt.routes.routes()[route.index].key_headers,
            &parts.headers,
        );
    }
    drop(rt);
    let cache = route.cache;
    let interim = parts.extensions.remove::<InterimSink>();
    let req = ReqHead {
        method: parts.method,
        uri: parts.uri,
        version: parts.version,
        headers: parts.headers,
        client,
        route,
        interim,
    };
    let cacheable_method = req.method == Method::GET || req.method == Method::HEAD;
    if cache && cacheable_method && !has_body(&req.headers) {
        Begin::Cached(req, key)
    } else {
        Begin::Pass(req, primary)
    }
}

/// A cacheable GET or HEAD: look up (the owner, or this node's store), then decide; the fill,
/// the store and the response follow from the decision.
async fn cached(ctx: Arc<Ctx>, req: ReqHead, key: String) -> Response<ProxyBody> {
    let req_cc = CacheControl::from_headers(&req.headers);
    match lookup(&ctx, &req, &key, &req_cc) {
        Found::Owner(owner) if req.method == Method::HEAD => {
            remote::head(ctx, req, key, owner).await
        }
        Found::Owner(owner) => {
            // A range under `cache.partial`: the owner answers it from its partial object.
            if partial::slice_for(&ctx, &req, &req_cc).is_some() {
                if let Some(resp) = Box::pin(remote::ask_range(&ctx, &req, &key, &owner)).await {
                    return resp;
                }
            }
            fill::miss(ctx, req, key, Fwd::Miss, None, req_cc, Some(owner)).await
        }
        Found::Here(stored) => here(ctx, req, key, req_cc, stored).await,
    }
}

/// A request this node answers from its own store (stages 4 to 7).
async fn here(
    ctx: Arc<Ctx>,
    req: ReqHead,
    key: String,
    req_cc: CacheControl,
    stored: Stored,
) -> Response<ProxyBody> {
    // Nothing complete here: a range may be served from, or added to, the key's partial
    // object (`cache.partial`).
    if stored.object.is_none() {
        if let Some(slice) = partial::slice_for(&ctx, &req, &req_cc) {
            if let Some(resp) = partial::serve(&ctx, &req, &key, &req_cc, slice).await {
                return resp;
            }
        }
    }
    decide(ctx, req, key, req_cc, stored).await
}

/// A peer's GET for a key this node owns, answered as a client's request would be here, never
/// sent on to another peer: one it holds but may not serve fresh (stale-while-revalidate,
/// revalidation with the origin, stale-if-error), or a range under `cache.partial` (from,
/// or added to, the key's partial object). None when the request's target or Host is
/// unusable.
pub(super) async fn answer_for_peer(
    ctx: Arc<Ctx>,
    uri: &str,
    headers: HeaderMap,
    key: String,
) -> Option<Response<ProxyBody>> {
    let req = peer_request(&ctx, uri, headers)?;
    let req_cc = CacheControl::from_headers(&req.headers);
    let stored = local(&ctx, &req, &key);
    Some(here(ctx, req, key, req_cc, stored).await)
}

/// A peer's GET (its `Lookup`'s target and fields) as a request of this node's, routed by
/// this node's routes. None when the target or Host is unusable.
pub(super) fn peer_request(ctx: &Ctx, uri: &str, headers: HeaderMap) -> Option<ReqHead> {
    let uri: http::Uri = uri.parse().ok()?;
    let primary = primary_key(&uri, &headers)?;
    let path = crate::policy::target::route_view(uri.path()).into_owned();
    let route = ctx.rt.load().route(&Method::GET, &primary, &path, &headers);
    Some(ReqHead {
        method: Method::GET,
        uri,
        version: http::Version::HTTP_11,
        headers,
        client: None,
        route,
        interim: None,
    })
}

/// The answer to a request refused at admission (counted). The connection is closed after
/// it: the request's framing is not to be trusted, and neither is whatever follows it.
fn refused_response(ctx: &Ctx, refused: &super::admit::Refused) -> Response<ProxyBody> {
    bump(&ctx.counters.bad_requests);
    if let Some(f) = refused.fault {
        ctx.counters.fault(f);
    }
    tracing::info!(
        reason = refused.reason,
        status = refused.status.as_u16(),
        "request refused"
    );
    let mut resp = respond::error(ctx, refused.status, refused.reason, None);
    resp.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    resp
}

/// Asterisk-form targets (RFC 9112 §3.2.4) are for `OPTIONS` only and concern the server
/// itself: the node answers them (the origin client cannot send `*`); any other method is 400.
fn asterisk(ctx: &Ctx, method: &Method) -> Response<ProxyBody> {
    if method != Method::OPTIONS {
        bump(&ctx.counters.bad_requests);
        return respond::error(
            ctx,
            StatusCode::BAD_REQUEST,
            "asterisk-form target is only valid with OPTIONS",
            None,
        );
    }
    let mut h = HeaderMap::new();
    h.insert(
        http::header::ALLOW,
        http::HeaderValue::from_static("GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS"),
    );
    h.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(0u64));
    respond::build(StatusCode::NO_CONTENT, h, ProxyBody::Empty)
}

/// Separates a primary key from a route's `cache_key` extension.
pub const KEY_EXTENSION: &str = " | ";

/// A route's `cache_key` fields become part of the key: `<primary key> | name=value ...`
/// (absent fields as `name=`; several lines joined with ", "). The primary key stays a
/// prefix, so purge of the URL and bans by prefix still reach these objects.
pub fn extend_key(key: &mut String, names: &[http::HeaderName], headers: &HeaderMap) {
    for name in names {
        key.push_str(KEY_EXTENSION);
        key.push_str(name.as_str());
        key.push('=');
        let mut first = true;
        for v in headers.get_all(name) {
            if !first {
                key.push_str(", ");
            }
            first = false;
            key.push_str(&String::from_utf8_lossy(v.as_bytes()));
        }
    }
}

/// A request that announces a body (RFC 9112 §6.3).
fn has_body(h: &HeaderMap) -> bool {
    h.contains_key(http::header::TRANSFER_ENCODING)
        || h.get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}
