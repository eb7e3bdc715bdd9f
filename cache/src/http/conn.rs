//! One client connection: plain fresh hits are answered straight from the raw bytes (`fast`);
//! at the first request that needs more, the connection — with every byte read so far — goes to
//! hyper (HTTP/1.1 and h2c) for the rest of its life.
//!
//! An HTTP/1.1 request's interim (1xx) responses from the origin (`interim`) are written before
//! its final response: by this loop between its awaits, and under hyper by `interim_io` at
//! hyper's flushes, the final response waiting until they are out.

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
use super::interim::{InterimLine, InterimSink};
use super::interim_io::InterimIo;
use super::io::{FlattenSmall, FLATTEN_MAX};
use super::lite::{self, write_two};
use super::stall::{is_send_timeout, SendTimeout};
use crate::access::{self, Pending};
use crate::origin::route::RouteInput;
use crate::stats::{add, bump};
use http::{HeaderMap, Method};

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
    // Made at the first request the general stages answer here.
    let mut line: Option<Arc<InterimLine>> = None;
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
                // Not a fresh hit here: the general stages answer it on this loop.
                let Some(mut parts) = lite::parts(&buf[..head_len]) else {
                    return handoff(env, io, buf, peer, watcher).await;
                };
                let sink = line.get_or_insert_with(InterimLine::new).begin();
                parts.extensions.insert(sink.clone());
                // The access log's start is the metrics' one: the read that completed it.
                let pending = ctx.access.enabled().then(|| {
                    let head = (&parts.method, &parts.uri, &parts.headers);
                    Pending::of_parts(head, Some(peer), now, read_at)
                });
                // This loop drives the request to its end (nothing races it): its fill may run
                // inline rather than in a task of its own.
                let answer = handle_bodyless(Arc::clone(ctx), parts, Some(peer));
                let answer = RUN_TO_END.scope(true, answer);
                let (answer, interim_failed) = with_interims(&mut io, &sink, answer).await;
                if let Some(e) = interim_failed {
                    return write_failed(ctx, peer, &e);
                }
                let Some((resp, route)) = answer else {
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
                        ttl,
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

/// Drive `answer` to its end, writing the interim responses its sink gets meanwhile and those
/// still waiting at its end (the final response follows them). A failed write stops the
/// relaying but not `answer` (a fill others wait on may run inline in it): its error comes back.
async fn with_interims<T>(
    io: &mut ClientIo,
    sink: &InterimSink,
    answer: impl std::future::Future<Output = T>,
) -> (T, Option<std::io::Error>) {
    tokio::pin!(answer);
    let mut failed = None;
    let out = loop {
        tokio::select! {
            biased;
            out = &mut answer => break out,
            _ = sink.queued(), if failed.is_none() => {
                let bytes = sink.take();
                if let Err(e) = io.write_all(&bytes).await {
                    sink.close();
                    failed = Some(e);
                }
            }
        }
    };
    let rest = sink.close();
    if failed.is_none() && !rest.is_empty() {
        failed = io.write_all(&rest).await.err();
    }
    (out, failed)
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
    let line = InterimLine::new();
    let requests = Arc::clone(&line);
    let svc = service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        let ctx = Arc::clone(&ctx);
        // HTTP/1.1 only: never to HTTP/1.0 (RFC 9110 §15.2), and hyper cannot send a 1xx on
        // an HTTP/2 stream.
        let sink = (req.version() == http::Version::HTTP_11).then(|| requests.begin());
        if let Some(s) = &sink {
            req.extensions_mut().insert(s.clone());
        }
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
            if let Some(s) = sink {
                s.finish().await;
            }
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
        .serve_connection(TokioIo::new(InterimIo::new(io, line)), svc)
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
