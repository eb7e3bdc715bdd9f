//! The node's access log: one line per client request, written off the request path by
//! `strait_lb::accesslog` (bounded queue, dropped and counted when full).
//!
//! Fields, in this order (docs/config.md, `[log]`): `time` (when the request's head was
//! read), `client`, `method`, `host`, `path` (with the query), `status`, `bytes` (response
//! body bytes sent), `duration_ms` (until the body was sent or abandoned), `ttfb_ms` (until
//! the response head was ready to send), `cache` (the `Cache-Status` field sent), `route`
//! (its index in the config), `pool`, `server` (the origin server this request's own fill or
//! pass used). Unknown values are `-` (text) or `null` (JSON).
//!
//! Where requests complete: the hit fast path logs after its one write (`http::conn`); the
//! connection's own HTTP/1.1 loop and hyper's service wrap the response body ([`track`],
//! `body::Logged`), which logs when it is dropped (sent, cut or abandoned). The route's index
//! comes back from the handler with the response (`http::handler::Routed`, the same value the
//! per-route metrics count), and its pool is the route's pool in the table in effect when the
//! response head is ready; the server comes from the fill or pass in the response's
//! extensions ([`Upstream`]), only when the log is on. A request's start is the connection's
//! clock reading the metrics use too (the read that completed it, or hyper's head parsed).

mod body;
mod record;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::{Method, Response};

pub use body::Logged;
pub use record::{CacheField, Request};

use crate::http::body::ProxyBody;
use crate::http::ctx::Ctx;
use crate::policy::cache_status::CACHE_STATUS;

/// The node's access log.
pub type AccessLog = strait_lb::accesslog::AccessLog<Request>;

/// The origin server that answered (a response extension, set by the fill or the pass).
#[derive(Clone, Copy, Debug)]
pub struct Upstream(pub SocketAddr);

/// What is known of a request when its head has been read.
pub struct Pending {
    pub time: SystemTime,
    pub start: Instant,
    pub client: Option<SocketAddr>,
    pub method: Method,
    /// Host and path (with query), one allocation.
    host_path: String,
    host_len: usize,
}

impl Pending {
    /// A request read at `time` (wall clock) and `start` (the connection's clock reading,
    /// shared with the request's metrics).
    pub fn new(
        method: Method,
        host: &str,
        path: &str,
        client: Option<SocketAddr>,
        time: SystemTime,
        start: Instant,
    ) -> Pending {
        let mut host_path = String::with_capacity(host.len() + path.len());
        host_path.push_str(host);
        host_path.push_str(path);
        Pending {
            time,
            start,
            client,
            method,
            host_path,
            host_len: host.len(),
        }
    }

    /// A request's head as hyper or the connection's loop parsed it: the host from the
    /// target's authority, else `Host`.
    pub fn of_parts(
        parts: (&Method, &http::Uri, &http::HeaderMap),
        client: Option<SocketAddr>,
        time: SystemTime,
        start: Instant,
    ) -> Pending {
        let (method, uri, headers) = parts;
        let host = match uri.authority() {
            Some(a) => a.as_str(),
            None => headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or(""),
        };
        let path = uri.path_and_query().map_or("", |p| p.as_str());
        Pending::new(method.clone(), host, path, client, time, start)
    }
}

/// Notes the origin server that answered `resp`, when the log is on.
pub fn note_server<B>(ctx: &Ctx, resp: &mut Response<B>, server: SocketAddr) {
    if ctx.access.enabled() {
        resp.extensions_mut().insert(Upstream(server));
    }
}

/// The name of route `route`'s pool in the table in effect.
fn pool_of(ctx: &Ctx, route: usize) -> Option<record::PoolRef> {
    ctx.rt
        .load()
        .route_pools
        .get(route)
        .cloned()
        .map(record::PoolRef)
}

/// `resp` (from the handler, with the index of the route that took it) with a body that
/// logs the request when it is dropped; `pending` None (the log is off) leaves it as it is.
/// `head_at`: when the response head was ready (its time to first byte).
pub fn track(
    ctx: &Arc<Ctx>,
    pending: Option<Pending>,
    mut resp: Response<ProxyBody>,
    route: Option<usize>,
    head_at: Instant,
) -> Response<Logged> {
    let Some(p) = pending else {
        return resp.map(Logged::plain);
    };
    let server = resp.extensions_mut().remove::<Upstream>().map(|u| u.0);
    let cache = resp
        .headers()
        .get(CACHE_STATUS)
        .cloned()
        .map_or(CacheField::None, CacheField::Header);
    let ttfb = head_at.saturating_duration_since(p.start);
    let pool = route.and_then(|r| pool_of(ctx, r));
    let record = Request {
        time: p.time,
        client: p.client,
        method: p.method,
        host_path: p.host_path,
        host_len: p.host_len,
        status: resp.status().as_u16(),
        bytes: 0,
        duration: ttfb,
        ttfb,
        cache,
        route,
        pool,
        server,
    };
    let ctx = Arc::clone(ctx);
    resp.map(|b| Logged::tracked(b, ctx, p.start, record))
}

/// A hit answered by the connection's own loop (a fresh hit from the store, or a remote hit
/// from the owner's wire head), after its write.
pub struct FastHit<'a> {
    /// The read that completed the request, and the write done (the clock readings the
    /// request's metrics use): its duration and, one write carrying head and body, its time
    /// to first byte.
    pub start: Instant,
    pub done: Instant,
    pub time: SystemTime,
    pub client: SocketAddr,
    pub head: bool,
    pub host: &'a str,
    pub target: &'a str,
    pub status: u16,
    pub bytes: u64,
    /// `CacheField::FastHit` for a fresh hit here, the `Cache-Status` sent otherwise.
    pub cache: CacheField,
    pub route: usize,
}

/// Logs a fast-path hit (the caller checked that the log is on).
pub fn fast_hit(ctx: &Ctx, h: FastHit<'_>) {
    let pool = pool_of(ctx, h.route);
    let elapsed = h.done.saturating_duration_since(h.start);
    let mut host_path = String::with_capacity(h.host.len() + h.target.len());
    host_path.push_str(h.host);
    host_path.push_str(h.target);
    ctx.access.log(Request {
        time: h.time,
        client: Some(h.client),
        method: if h.head { Method::HEAD } else { Method::GET },
        host_path,
        host_len: h.host.len(),
        status: h.status,
        bytes: h.bytes,
        duration: elapsed,
        ttfb: elapsed,
        cache: h.cache,
        route: Some(h.route),
        pool,
        server: None,
    });
}
