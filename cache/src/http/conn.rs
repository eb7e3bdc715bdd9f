//! One client connection: plain fresh hits are answered straight from the raw bytes (`fast`);
//! at the first request that needs more, the connection — with every byte read so far — goes to
//! hyper (HTTP/1.1 and h2c) for the rest of its life.

use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, BytesMut};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::counted::Counted;
use super::ctx::{key_host, Ctx};
use super::fast::{self, Parse};
use super::fill::RUN_TO_END;
use super::handler::{handle, handle_bodyless};
use super::io::{FlattenSmall, FLATTEN_MAX};
use super::lite::{self, write_two};
use super::remote;
use super::stall::{is_send_timeout, SendTimeout};
use crate::access::{self, Pending};
use crate::origin::route::RouteInput;
use crate::stats::{add, bump};
use http::{HeaderMap, HeaderValue, Method};

/// Read buffer of a fast-path connection (grows up to the request head limit).
pub const READ_BUF: usize = 8 * 1024;
/// A fast-path connection with no complete request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What every connection of a listener shares.
pub struct ConnEnv {
    pub ctx: Arc<Ctx>,
    pub builder: auto::Builder<TokioExecutor>,
    pub max_head: usize,
    pub stop: watch::Receiver<bool>,
    /// Connections alive on this listener (fast path or hyper).
    pub live: AtomicUsize,
}

/// The client socket as both paths use it: writes that stall for `send_timeout` fail, and
/// the bytes written are counted.
type ClientIo = FlattenSmall<SendTimeout<Counted<TcpStream>>>;

/// Serve one accepted connection to its end. `limits.send_timeout` is read once, here.
pub async fn serve(env: Arc<ConnEnv>, stream: TcpStream, peer: SocketAddr, watcher: Watcher) {
    env.live.fetch_add(1, Ordering::Relaxed);
    env.ctx.counters.traffic.connection_opened();
    let send_timeout = env.ctx.rt.load().limits.send_timeout;
    let stream = Counted::new(stream, Arc::clone(&env.ctx));
    let io = FlattenSmall::new(SendTimeout::new(stream, send_timeout));
    fast_loop(&env, io, peer, watcher).await;
    env.ctx.counters.traffic.connection_closed();
    env.live.fetch_sub(1, Ordering::Relaxed);
}

async fn fast_loop(env: &Arc<ConnEnv>, mut io: ClientIo, peer: SocketAddr, watcher: Watcher) {
    let ctx = &env.ctx;
    let mut stop = env.stop.clone();
    let mut buf = BytesMut::with_capacity(READ_BUF);
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let idle = tokio::time::sleep(IDLE_TIMEOUT);
    tokio::pin!(idle);
    let mut idle_armed_at = Instant::now();
    // When the last read returned: the start of the requests it completed (a request's
    // duration runs from there to its response written; one clock read per read).
    let mut read_at = idle_armed_at;
    loop {
        // Answer every complete request already buffered.
        loop {
            let req = match fast::parse(&buf) {
                Parse::Partial => break,
                Parse::Fallback => return handoff(env, io, buf, peer, watcher).await,
                Parse::Fast(r) => r,
            };
            let Some(key) = crate::policy::key::key_from_host_and_target(req.host, req.target)
            else {
                return handoff(env, io, buf, peer, watcher).await;
            };
            let Some(route) = fast_route_caches(ctx, &req, &key) else {
                return handoff(env, io, buf, peer, watcher).await;
            };
            let (head_len, close, head_only) = (req.head_len, req.close, req.head);
            let obj = ctx.store.get(&key, |o| o.wire.is_some());
            out.clear();
            let now = SystemTime::now();
            let hit = obj.and_then(|obj| {
                let ttl = fast::write_hit(&mut out, &obj, &ctx.node_id, close, now)?;
                Some((obj, ttl))
            });
            let Some((obj, ttl)) = hit else {
                // A key a peer owns: asked from the owner, answered from its wire head.
                let mut pre = None;
                if let Some(owner) = ctx.cluster.as_ref().and_then(|cl| cl.owner(&key)) {
                    let raw = &buf[..head_len];
                    match remote::ask_owner(ctx, owner, &req, raw, &key, &mut out).await {
                        remote::Lean::Answer(a) => {
                            let (host, target) = (req.host, req.target);
                            let lean = LeanHit {
                                peer,
                                read_at,
                                now,
                                head_only,
                                host,
                                target,
                                route,
                            };
                            if !write_lean(ctx, &mut io, &mut out, a, lean).await {
                                return;
                            }
                            buf.advance(head_len);
                            if close {
                                let _ = io.shutdown().await;
                                return;
                            }
                            rearm(&mut idle, &mut idle_armed_at, Instant::now());
                            continue;
                        }
                        remote::Lean::General(p) => pre = p,
                    }
                }
                // Not a fresh hit here: the general stages answer it on this loop.
                let Some(parts) = lite::parts(&buf[..head_len]) else {
                    return handoff(env, io, buf, peer, watcher).await;
                };
                // The access log's start is the metrics' one: the read that completed it.
                let pending = ctx.access.enabled().then(|| {
                    let head = (&parts.method, &parts.uri, &parts.headers);
                    Pending::of_parts(head, Some(peer), now, read_at)
                });
                // This loop drives the request to its end (nothing races it): its fill may run
                // inline rather than in a task of its own.
                let answer = handle_bodyless(Arc::clone(ctx), parts, Some(peer));
                let answer = remote::PREASKED.scope(RefCell::new(pre), answer);
                let Some((resp, route)) = RUN_TO_END.scope(true, answer).await else {
                    return handoff(env, io, buf, peer, watcher).await;
                };
                buf.advance(head_len);
                let status = resp.status().as_u16();
                let written = match pending {
                    None => lite::write_response(&mut io, resp, head_only, close, &mut out).await,
                    Some(p) => {
                        let resp = access::track(ctx, Some(p), resp, route, Instant::now());
                        lite::write_response(&mut io, resp, head_only, close, &mut out).await
                    }
                };
                let done = Instant::now();
                ctx.counters.record_response(
                    status,
                    route,
                    done.saturating_duration_since(read_at),
                );
                match written {
                    Ok(true) => {
                        rearm(&mut idle, &mut idle_armed_at, done);
                        continue;
                    }
                    Ok(false) => {
                        let _ = io.shutdown().await;
                        return;
                    }
                    Err(e) => return write_failed(ctx, peer, &e),
                }
            };
            bump(&ctx.counters.requests);
            bump(&ctx.counters.local_hit);
            let body: &[u8] = if head_only { &[] } else { &obj.body };
            add(&ctx.counters.traffic.hit_bytes, body.len() as u64);
            let written = if body.len() <= FLATTEN_MAX {
                out.extend_from_slice(body);
                io.write_all(&out).await
            } else {
                write_two(&mut io, &out, body).await
            };
            let done = Instant::now();
            let elapsed = done.saturating_duration_since(read_at);
            ctx.counters
                .record_response(obj.status.as_u16(), Some(route), elapsed);
            if let Err(e) = written {
                return write_failed(ctx, peer, &e);
            }
            if ctx.access.enabled() {
                access::fast_hit(
                    ctx,
                    access::FastHit {
                        start: read_at,
                        done,
                        time: now,
                        client: peer,
                        head: head_only,
                        host: req.host,
                        target: req.target,
                        status: obj.status.as_u16(),
                        bytes: body.len() as u64,
                        cache: access::CacheField::FastHit { ttl },
                        route,
                    },
                );
            }
            buf.advance(head_len);
            if close {
                let _ = io.shutdown().await;
                return;
            }
            rearm(&mut idle, &mut idle_armed_at, done);
        }
        if buf.len() >= env.max_head {
            // Too big for the fast path; hyper answers 431.
            return handoff(env, io, buf, peer, watcher).await;
        }
        if *stop.borrow() && buf.is_empty() {
            return; // draining: an idle keep-alive connection closes
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(READ_BUF);
        }
        tokio::select! {
            biased;
            r = io.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => read_at = Instant::now(),
            },
            _ = &mut idle => return,
            _ = stop.changed(), if !*stop.borrow() => {}
        }
    }
}

/// A remote hit answered by the lean path, as the access log and metrics see it.
struct LeanHit<'a> {
    peer: SocketAddr,
    read_at: Instant,
    now: SystemTime,
    head_only: bool,
    host: &'a str,
    target: &'a str,
    route: usize,
}

/// Writes a lean remote hit (head in `out`, then its body), counts and logs it; false when
/// the connection is to end (a write failed, or the owner's long body was cut short).
async fn write_lean(
    ctx: &Arc<Ctx>,
    io: &mut ClientIo,
    out: &mut Vec<u8>,
    a: remote::WireAnswer,
    h: LeanHit<'_>,
) -> bool {
    bump(&ctx.counters.requests);
    let head_len = out.len();
    let mut written = match &a.body[..] {
        [] => io.write_all(out).await,
        [one] if one.len() <= FLATTEN_MAX => {
            out.extend_from_slice(one);
            io.write_all(out).await
        }
        [one] => write_two(io, out, one).await,
        chunks => {
            let mut r = io.write_all(out).await;
            for c in chunks {
                if r.is_ok() {
                    r = io.write_all(c).await;
                }
            }
            r
        }
    };
    if let (Ok(()), Some(c)) = (&written, a.rest) {
        written = remote::relay_rest(ctx, c, a.body_len, io).await;
    }
    let done = Instant::now();
    ctx.counters.record_response(
        a.status,
        Some(h.route),
        done.saturating_duration_since(h.read_at),
    );
    if let Err(e) = written {
        write_failed(ctx, h.peer, &e);
        return false;
    }
    if ctx.access.enabled() {
        let cache = HeaderValue::from_bytes(&out[..head_len][a.cache_status])
            .map_or(access::CacheField::None, access::CacheField::Header);
        access::fast_hit(
            ctx,
            access::FastHit {
                start: h.read_at,
                done,
                time: h.now,
                client: h.peer,
                head: h.head_only,
                host: h.host,
                target: h.target,
                status: a.status,
                bytes: if h.head_only { 0 } else { a.body_len },
                cache,
                route: h.route,
            },
        );
    }
    true
}

/// A request was answered at `now`: the idle timer starts again (re-armed at most once a
/// second).
fn rearm(idle: &mut Pin<&mut tokio::time::Sleep>, armed_at: &mut Instant, now: Instant) {
    if now.saturating_duration_since(*armed_at) >= Duration::from_secs(1) {
        *armed_at = now;
        idle.as_mut()
            .reset(tokio::time::Instant::now() + IDLE_TIMEOUT);
    }
}

/// Route a fast-path request: its route's index when the route caches with the plain key.
/// Tables that route on request headers are left to the general path.
fn fast_route_caches(ctx: &Ctx, req: &fast::FastReq<'_>, key: &str) -> Option<usize> {
    let rt = ctx.rt.load();
    if !rt.fast_routing {
        return None;
    }
    let method = if req.head { Method::HEAD } else { Method::GET };
    let path = req.target.split('?').next().unwrap_or(req.target);
    let route = rt.routes.select(&RouteInput {
        method: &method,
        host: key_host(key),
        path,
        headers: &HeaderMap::new(),
    });
    (route.cache && route.key_headers.is_empty()).then_some(route.index)
}

/// A write to the client failed: counted when the client took nothing for `send_timeout`.
fn write_failed(ctx: &Ctx, peer: SocketAddr, e: &std::io::Error) {
    if is_send_timeout(e) {
        bump(&ctx.counters.send_timeouts);
        tracing::debug!(%peer, "client took nothing for send_timeout; closed");
    }
}

/// Give the connection, and the bytes read so far, to hyper.
async fn handoff(
    env: &Arc<ConnEnv>,
    mut io: ClientIo,
    buf: BytesMut,
    peer: SocketAddr,
    watcher: Watcher,
) {
    let ctx = Arc::clone(&env.ctx);
    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let ctx = Arc::clone(&ctx);
        // No earlier timestamp exists here: the request's start is its head parsed, and
        // the metrics' duration and the access log's time to first byte both end at its
        // response head handed to hyper (one clock reading each).
        let start = Instant::now();
        let pending = ctx.access.enabled().then(|| {
            let parts = (req.method(), req.uri(), req.headers());
            Pending::of_parts(parts, Some(peer), SystemTime::now(), start)
        });
        async move {
            let (resp, route) = handle(Arc::clone(&ctx), req, Some(peer)).await;
            let head_at = Instant::now();
            let status = resp.status().as_u16();
            let elapsed = head_at.saturating_duration_since(start);
            ctx.counters.record_response(status, route, elapsed);
            Ok::<_, Infallible>(access::track(&ctx, pending, resp, route, head_at))
        }
    });
    io.rewind(buf.freeze());
    let conn = env
        .builder
        .serve_connection(TokioIo::new(io), svc)
        .into_owned();
    if let Err(e) = watcher.watch(conn).await {
        connection_error(&env.ctx, peer, e.as_ref());
    }
}

/// A connection ended with an error. Requests hyper refused while parsing (it answered 400 or
/// 431 itself) are counted as bad requests and logged; send timeouts are counted; the rest
/// (resets, timeouts) only logged at debug.
fn connection_error(ctx: &Ctx, peer: SocketAddr, e: &(dyn std::error::Error + 'static)) {
    if is_send_timeout(e) {
        bump(&ctx.counters.send_timeouts);
        tracing::debug!(%peer, "client took nothing for send_timeout; closed");
        return;
    }
    match e.downcast_ref::<hyper::Error>() {
        Some(he) if he.is_parse() || he.is_parse_too_large() => {
            bump(&ctx.counters.bad_requests);
            bump(&ctx.counters.errors);
            tracing::info!(%peer, error = %he, "bad request refused by the HTTP parser");
        }
        _ => tracing::debug!(%peer, error = %e, "client connection ended with an error"),
    }
}
