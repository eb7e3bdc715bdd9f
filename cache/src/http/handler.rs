//! The life of a request at a cache node, stage by stage (each stage a module that reads alone):
//!
//! 1. **Admit** (`admit`): check the framing and make the request canonical once (authority,
//!    `Connection`, path), so every later stage and the origin see the same request.
//! 2. **Route and key** ([`handle`]): the route picks the origin pool and says whether the cache
//!    may keep the answer; the key is the target URI plus the route's `cache_key` fields.
//!    What is not cached is passed through (`pass`).
//! 3. **Look up** ([`lookup`]): a key a peer owns goes to its owner (`remote`; the owner's side
//!    is `owner`); else this node's store.
//! 4. **Decide** ([`local_lookup`], `policy::reuse`): fresh → serve; stale → serve it while
//!    refreshing, revalidate, or serve it on error (RFC 9111 §4, RFC 5861).
//! 5. **Fill** (`fill`): one trip to the origin (or the owner's lease) per key however many
//!    clients wait, read while it arrives; after a join, the key's previous owner is asked
//!    first (`handover`).
//! 6. **Store** (`fill::drive`): the object is stored when whole, before its last bytes reach
//!    the client.
//! 7. **Respond** (`respond`): from the object or the fill, with `Age`, `Cache-Status`, `Via`,
//!    conditionals and ranges; failures by who is to blame (`forward::fault_response`).
//!
//! The hit fast path (`fast`, `conn`) answers plain fresh hits before stage 1 from the raw bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::admit::admit;
use super::body::ProxyBody;
use super::ctx::{Ctx, ReqHead};
use super::fill;
use super::handover::take_over;
use super::pass;
use super::respond;
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::{CacheStatus, Fwd};
use crate::policy::key::primary_key;
use crate::policy::reuse::{reuse, Reuse};
use crate::policy::vary::variant_id;
use crate::stats::bump;

/// Serve one client request.
pub async fn handle(
    ctx: Arc<Ctx>,
    req: Request<Incoming>,
    client: Option<SocketAddr>,
) -> Response<ProxyBody> {
    bump(&ctx.counters.requests);
    let (mut parts, body) = req.into_parts();
    let max_body = ctx.rt.load().limits.max_request_body;
    let admitted = match admit(&mut parts, max_body) {
        Ok(a) => a,
        Err(refused) => return refused_response(&ctx, &refused),
    };
    if parts.uri.path() == "*" {
        return asterisk(&ctx, &parts.method);
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
    let req = ReqHead {
        method: parts.method,
        uri: parts.uri,
        version: parts.version,
        headers: parts.headers,
        client,
        route,
    };
    let cacheable_method = req.method == Method::GET || req.method == Method::HEAD;
    if cache && cacheable_method && !has_body(&req.headers) {
        lookup(ctx, req, key).await
    } else {
        // Invalidation (RFC 9111 §4.4) works on the URL: every cache_key variant of it.
        pass::pass(ctx, req, body, primary).await
    }
}

/// The answer to a request refused at admission (counted; the connection is closed when the
/// client announced a body not worth reading).
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
    if refused.fault.is_some() {
        resp.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
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

/// `Pragma: no-cache` counts only when the request has no Cache-Control (RFC 9111 §5.4).
fn pragma_no_cache(h: &HeaderMap, cc: &CacheControl) -> bool {
    cc.is_empty()
        && !h.contains_key(http::header::CACHE_CONTROL)
        && h.get_all(http::header::PRAGMA)
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(b"no-cache"))
}

async fn lookup(ctx: Arc<Ctx>, req: ReqHead, key: String) -> Response<ProxyBody> {
    let req_cc = CacheControl::from_headers(&req.headers);
    // A GET or HEAD for a key a peer owns goes to the owner (`remote`); `no-store` and
    // `only-if-cached` requests stay here (nothing of theirs would be stored anyway).
    if !req_cc.no_store && !req_cc.only_if_cached {
        if let Some(owner) = ctx.cluster.as_ref().and_then(|c| c.owner(&key)) {
            if req.method == Method::HEAD {
                return super::remote::head(ctx, req, key, owner).await;
            }
            return fill::miss(ctx, req, key, Fwd::Miss, None, req_cc, Some(owner)).await;
        }
    }
    local_lookup(ctx, req, key, req_cc).await
}

/// A peer's GET for a key this node owns and holds, but may not serve fresh: answered as a
/// client's request would be here (stale-while-revalidate, revalidation with the origin,
/// stale-if-error), never sent on to another peer. None when the request's target or Host
/// is unusable.
pub async fn answer_for_peer(
    ctx: Arc<Ctx>,
    uri: &str,
    headers: HeaderMap,
    key: String,
) -> Option<Response<ProxyBody>> {
    let uri: http::Uri = uri.parse().ok()?;
    let primary = primary_key(&uri, &headers)?;
    let path = crate::policy::target::route_view(uri.path()).into_owned();
    let route = ctx.rt.load().route(&Method::GET, &primary, &path, &headers);
    let req = ReqHead {
        method: Method::GET,
        uri,
        version: http::Version::HTTP_11,
        headers,
        client: None,
        route,
    };
    let req_cc = CacheControl::from_headers(&req.headers);
    Some(local_lookup(ctx, req, key, req_cc).await)
}

/// This node's store, then its origin pool (the key is this node's, or no peer is asked).
async fn local_lookup(
    ctx: Arc<Ctx>,
    req: ReqHead,
    key: String,
    req_cc: CacheControl,
) -> Response<ProxyBody> {
    let now = SystemTime::now();
    let found = ctx.store.get(&key, |o| {
        o.vary.is_empty() || variant_id(&o.vary, &req.headers) == o.variant_id
    });
    let node = ctx.node_id.as_str();
    if let Some(obj) = found {
        let pragma = pragma_no_cache(&req.headers, &req_cc);
        match reuse(&obj.meta, &req_cc, pragma, now) {
            Reuse::Fresh => {
                bump(&ctx.counters.local_hit);
                let ttl = obj.meta.ttl(now);
                let mut cs = CacheStatus::hit(node, ttl);
                if !obj.meta.is_fresh(now) {
                    // served stale because the request allowed it (max-stale)
                    bump(&ctx.counters.stale_served);
                    cs.fwd = Some(Fwd::Stale);
                }
                return respond::object(&ctx, &req, &obj, &cs, now);
            }
            Reuse::StaleWhileRevalidate => {
                bump(&ctx.counters.local_hit);
                bump(&ctx.counters.stale_served);
                let mut cs = CacheStatus::hit(node, obj.meta.ttl(now));
                cs.fwd = Some(Fwd::Stale);
                let resp = respond::object(&ctx, &req, &obj, &cs, now);
                fill::refresh_in_background(Arc::clone(&ctx), req, key, obj);
                return resp;
            }
            Reuse::Revalidate => {
                if req_cc.only_if_cached {
                    return only_if_cached(&ctx);
                }
                bump(&ctx.counters.local_miss);
                return fill::miss(ctx, req, key, Fwd::Stale, Some(obj), req_cc, None).await;
            }
        }
    }
    if req_cc.only_if_cached {
        return only_if_cached(&ctx);
    }
    bump(&ctx.counters.local_miss);
    let fwd = if req_cc.no_cache || pragma_no_cache(&req.headers, &req_cc) {
        Fwd::Request
    } else if ctx.store.get(&key, |_| true).is_some() {
        Fwd::VaryMiss
    } else {
        Fwd::Miss
    };
    if req.method == Method::HEAD || req_cc.no_store {
        // Not stored: HEAD can't fill a GET object, and `no-store` forbids keeping the answer.
        return pass::forward_uncached(ctx, req, key, fwd).await;
    }
    if fwd == Fwd::Miss {
        if let Some(prev) = ctx.cluster.as_ref().and_then(|c| c.previous_owner(&key)) {
            let uri = req.uri.to_string();
            if let Some(t) = take_over(&ctx, &key, &uri, &req.headers, &prev).await {
                let mut cs = CacheStatus::fwd(node, Fwd::Miss);
                cs.stored = true;
                cs.detail = Some("peer".to_string());
                cs.upstream = t.upstream;
                return respond::object(&ctx, &req, &t.object, &cs, SystemTime::now());
            }
        }
    }
    fill::miss(ctx, req, key, fwd, None, req_cc, None).await
}

/// RFC 9111 §5.2.1.7: nothing suitable stored -> 504.
fn only_if_cached(ctx: &Ctx) -> Response<ProxyBody> {
    let mut cs = CacheStatus::fwd(&ctx.node_id, Fwd::Miss);
    cs.detail = Some("only-if-cached".to_string());
    respond::error(
        ctx,
        StatusCode::GATEWAY_TIMEOUT,
        "only-if-cached: not in cache",
        Some(&cs),
    )
}
