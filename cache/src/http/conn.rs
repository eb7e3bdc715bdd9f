//! One client connection: plain fresh hits are answered straight from the raw bytes (`fast`);
//! other plain GET/HEAD requests by the general stages on this loop, and requests with a
//! `Content-Length` body by the upload lane (`upload_lane`); at the first request that needs
//! more, the connection — with every byte read so far — goes to hyper (HTTP/1.1 and h2c) for
//! the rest of its life.
//!
//! An HTTP/1.1 request's interim (1xx) responses from the origin (`interim`) are written before
//! its final response: by this loop between its awaits, and under hyper by `interim_io` at
//! hyper's flushes, the final response waiting until they are out.
//!
//! Under hyper the client stream is also watched for chunk sizes over `max_request_body`
//! (`chunk_limit`), and the wait for a request where hyper has no head timer (HTTP/2) is timed
//! by `idle`.

use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::Guard;
use bytes::{Buf, BytesMut};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::body::ProxyBody;
use super::chunk_limit::{Declared, Watched};
use super::chunked;
use super::counted::Counted;
use super::ctx::{key_host, Ctx, Runtime};
use super::fast::{self, Parse};
use super::fill::RUN_TO_END;
use super::h1::Framing;
use super::handler::{handle, handle_bodyless};
use super::idle::{Held, Idle};
use super::interim_io::InterimIo;
use super::io::{FlattenSmall, FLATTEN_MAX};
use super::linger::Lingering;
use super::lite::{self, write_two};
use super::passlane;
use super::remote;
use super::stall::{is_send_timeout, SendTimeout};
use super::unshare::write_unsharing;
use super::upload_lane;
use crate::access::{self, Pending};
use crate::interim::{InterimLine, InterimSink};
use crate::origin::route::RouteInput;
use crate::stats::{add, bump};
use http::{HeaderMap, HeaderValue, Method};

/// Read buffer of a fast-path connection (grows up to the request head limit).
pub const READ_BUF: usize = 8 * 1024;
/// The answer to a client that sent part of a request head and then not the rest within
/// `limits.header_read_timeout` (the connection closes after it).
const HEAD_TIMEOUT_ANSWER: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n\
    content-type: text/plain\r\ncontent-length: 47\r\n\r\n\
    408 Request Timeout: the request head was late\n";

/// What every connection of a listener shares.
pub struct ConnEnv {
    pub ctx: Arc<Ctx>,
    pub builder: auto::Builder<TokioExecutor>,
    /// The `limits.header_read_timeout` `builder` was made with.
    pub header_read_timeout: Duration,
    pub max_head: usize,
    pub stop: watch::Receiver<bool>,
    /// Connections alive on this listener (fast path or hyper).
    pub live: AtomicUsize,
}

/// The client socket as both paths use it: writes that stall for `send_timeout` fail, and
/// the bytes written are counted.
pub(super) type ClientIo = FlattenSmall<SendTimeout<Counted<Lingering<TcpStream>>>>;

/// Serve one accepted connection to its end. `limits.send_timeout` and
/// `limits.header_read_timeout` are read once, here: a reload applies to new connections.
pub async fn serve(env: Arc<ConnEnv>, stream: TcpStream, peer: SocketAddr, watcher: Watcher) {
    env.live.fetch_add(1, Ordering::Relaxed);
    env.ctx.counters.traffic.connection_opened();
    let (send_timeout, head_timeout) = {
        let rt = env.ctx.rt.load();
        (rt.limits.send_timeout, rt.limits.header_read_timeout)
    };
    let stream = Counted::new(Lingering::new(stream), Arc::clone(&env.ctx));
    let io = FlattenSmall::new(SendTimeout::new(stream, send_timeout));
    let conn = Conn {
        env: &env,
        peer,
        head_timeout,
    };
    fast_loop(conn, io, watcher).await;
    env.ctx.counters.traffic.connection_closed();
    env.live.fetch_sub(1, Ordering::Relaxed);
}

/// One connection's settings, fixed when it was accepted.
#[derive(Clone, Copy)]
struct Conn<'a> {
    env: &'a Arc<ConnEnv>,
    peer: SocketAddr,
    /// `limits.header_read_timeout`: a whole request head must arrive within this from when
    /// the connection started waiting for it (its start, or the previous response written).
    head_timeout: Duration,
}

async fn fast_loop(conn: Conn<'_>, mut io: ClientIo, watcher: Watcher) {
    let Conn { env, peer, .. } = conn;
    let ctx = &env.ctx;
    // The drain, waited for once per connection: a `changed()` made at each read registered
    // and removed a waiter every time (some 300 instructions a request).
    let mut drain = std::pin::pin!(drained(env.stop.clone()));
    let mut draining = *env.stop.borrow();
    let mut buf = BytesMut::with_capacity(READ_BUF);
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let idle = tokio::time::sleep(conn.head_timeout);
    tokio::pin!(idle);
    let mut idle_armed_at = Instant::now();
    // When the last read returned: the start of the requests it completed (a request's
    // duration runs from there to its response written; one clock read per read).
    let mut read_at = idle_armed_at;
    // Made at the first request the general stages answer here.
    let mut line: Option<Arc<InterimLine>> = None;
    // The last read filled all the room it had: the client may have sent more already.
    let mut filled = false;
    loop {
        // An upload's head is here, and the rest of its small body is being read: the buffer
        // may pass `max_head` (by at most 128 KiB of body and framing).
        let mut read_on = false;
        // Answer every complete request already buffered.
        'requests: loop {
            let req = match fast::parse(&buf) {
                Parse::Partial => break,
                Parse::Fallback => return handoff(conn, io, buf, watcher, idle_armed_at).await,
                Parse::Fast(r) => r,
                Parse::Upload(r, framing) => {
                    let here = (buf.len() - r.head_len) as u64;
                    let mut streamed = false;
                    let (len, dechunked) = match framing {
                        // A small body cut by this read's room, not by the client: read on,
                        // so that it goes upstream with its head (not when the client may be
                        // waiting for a 100 before it sends the rest).
                        fast::Framing::Length(len)
                            if filled
                                && here < len
                                && len <= upload_lane::WHOLE_MAX
                                && !r.expect_continue =>
                        {
                            read_on = true;
                            break;
                        }
                        fast::Framing::Length(len) => (len, None),
                        // Chunked: whole already, in the plainest form (sent up with a
                        // length when the request skips the parts), or streamed.
                        fast::Framing::Chunked => {
                            let body = &buf[r.head_len..];
                            let limit = ctx.rt.load().limits.max_request_body;
                            match chunked::scan(body, upload_lane::WHOLE_MAX) {
                                chunked::Scan::Whole(w) if w.len <= limit => {
                                    (w.len, Some(w.consumed))
                                }
                                // Cut by this read's room, not by the client: read on (its
                                // framing at most as long as its data; not when the client
                                // may be waiting for a 100 before it sends the rest).
                                chunked::Scan::Partial
                                    if filled
                                        && !r.expect_continue
                                        && body.len() as u64 <= 2 * upload_lane::WHOLE_MAX =>
                                {
                                    read_on = true;
                                    break;
                                }
                                // Sizes already over `max_request_body`: hyper's, which
                                // answers 413 before the origin (`chunk_limit`).
                                _ if chunked::declares_over(body, limit) => {
                                    return handoff(conn, io, buf, watcher, idle_armed_at).await
                                }
                                // Larger, in another form (extensions, trailers), or still
                                // arriving: streamed, decoded as it comes (`RawBody::chunked`).
                                _ => {
                                    streamed = true;
                                    (0, None)
                                }
                            }
                        }
                    };
                    let raw = &buf[..r.head_len];
                    let framed = (len, dechunked.is_some());
                    let prepared = upload_lane::prepare(ctx, &r, framed, raw, peer, read_at);
                    let lane = upload_lane::UploadReq {
                        head_len: r.head_len,
                        len,
                        dechunked,
                        chunked: streamed,
                        close: r.close,
                        expect_continue: r.expect_continue,
                        peer,
                        read_at,
                        prepared,
                    };
                    let line = line.get_or_insert_with(InterimLine::new);
                    match upload_lane::serve(ctx, &mut io, &mut buf, &mut out, line, lane).await {
                        upload_lane::Next::Continue(done) => {
                            rearm(&mut idle, &mut idle_armed_at, done, conn.head_timeout);
                            continue 'requests;
                        }
                        upload_lane::Next::Close => return,
                        upload_lane::Next::General => {
                            return handoff(conn, io, buf, watcher, idle_armed_at).await
                        }
                    }
                }
            };
            let Some(key) = crate::policy::key::key_from_host_and_target(req.host, req.target)
            else {
                return handoff(conn, io, buf, watcher, idle_armed_at).await;
            };
            let Some((snapshot, route)) = fast_route_caches(ctx, &req, &key) else {
                return handoff(conn, io, buf, watcher, idle_armed_at).await;
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
                let (resp, route, pending, framed) = 'answer: {
                    // A key a peer owns: asked from the owner, answered from its wire head.
                    let mut pre = None;
                    // The runtime `route` was found in: the pass lane's (held to no await).
                    let mut snapshot = Some(snapshot);
                    if let Some(owner) = ctx.cluster.as_ref().and_then(|cl| cl.owner(&key)) {
                        snapshot = None;
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
                                rearm(
                                    &mut idle,
                                    &mut idle_armed_at,
                                    Instant::now(),
                                    conn.head_timeout,
                                );
                                continue 'requests;
                            }
                            remote::Lean::General(p) => pre = p,
                        }
                    }
                    // A key whose last answer could not be stored: the pass lane, from the raw
                    // request, unless its answer is storable (then the general stages take it).
                    let mut prefetched = None;
                    let lane_rt = snapshot.take().and_then(|rt| {
                        let until = (req.plain && !head_only)
                            .then(|| passlane::applies(ctx, &key))
                            .flatten()?;
                        Some((rt, until))
                    });
                    if let Some((rt, marked_until)) = lane_rt {
                        let sink = line.get_or_insert_with(InterimLine::new).begin();
                        let lane_req = passlane::LaneReq {
                            raw: &buf[..head_len],
                            key: &key,
                            path: req.path,
                            client: peer,
                            interim: Some(sink.clone()),
                            close,
                            out: &mut out,
                            marked_until,
                        };
                        // Pinned where it is made: moved into `with_interims`, the future (some KiB)
                        // would be copied whole.
                        let lane = std::pin::pin!(passlane::serve(
                            ctx,
                            Guard::into_inner(rt),
                            route,
                            lane_req
                        ));
                        let (lane, interim_failed) = with_interims(&mut io, &sink, lane).await;
                        if let Some(e) = interim_failed {
                            return write_failed(ctx, peer, &e);
                        }
                        let pending = || {
                            if ctx.access.enabled() {
                                lite::parts(&buf[..head_len]).map(|parts| {
                                    let head = (&parts.method, &parts.uri, &parts.headers);
                                    Pending::of_parts(head, Some(peer), now, read_at)
                                })
                            } else {
                                None
                            }
                        };
                        match lane {
                            passlane::Lane::Answer(resp, route) => {
                                break 'answer (resp, Some(route), pending(), None);
                            }
                            passlane::Lane::Raw(a) => {
                                let framed = Some((a.framing, a.close));
                                break 'answer (a.resp, Some(a.route), pending(), framed);
                            }
                            passlane::Lane::General(p) => prefetched = Some(p),
                            passlane::Lane::NotTaken => {}
                        }
                    }
                    // Not a fresh hit here: the general stages answer it on this loop.
                    let Some(mut parts) = lite::parts(&buf[..head_len]) else {
                        return handoff(conn, io, buf, watcher, idle_armed_at).await;
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
                    // Boxed once: the request's future is several KiB, and each wrapper below would
                    // move it whole (callgrind: a third of a miss's instructions were those copies).
                    let answer = Box::pin(handle_bodyless(Arc::clone(ctx), parts, Some(peer)));
                    let answer = remote::PREASKED.scope(RefCell::new(pre), answer);
                    let answer = passlane::PREFETCHED.scope(RefCell::new(prefetched), answer);
                    let answer = RUN_TO_END.scope(true, answer);
                    let (answer, interim_failed) = with_interims(&mut io, &sink, answer).await;
                    if let Some(e) = interim_failed {
                        return write_failed(ctx, peer, &e);
                    }
                    let Some((resp, route)) = answer else {
                        return handoff(conn, io, buf, watcher, idle_armed_at).await;
                    };
                    (resp, route, pending, None)
                };
                buf.advance(head_len);
                let status = resp.status().as_u16();
                // `framed`: the head is in `out` already (the pass lane's), the body follows.
                let written = write_answer(
                    ctx,
                    &mut io,
                    (resp, route, pending),
                    framed,
                    (head_only, close),
                    &mut out,
                )
                .await;
                let done = Instant::now();
                ctx.counters.record_response(
                    status,
                    route,
                    done.saturating_duration_since(read_at),
                );
                match written {
                    Ok(true) => {
                        rearm(&mut idle, &mut idle_armed_at, done, conn.head_timeout);
                        continue;
                    }
                    Ok(false) => {
                        let _ = io.shutdown().await;
                        return;
                    }
                    Err(e) => return write_failed(ctx, peer, &e),
                }
            };
            drop(snapshot);
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
            rearm(&mut idle, &mut idle_armed_at, done, conn.head_timeout);
        }
        if buf.len() >= env.max_head && !read_on {
            // Too big for the fast path; hyper answers 431.
            return handoff(conn, io, buf, watcher, idle_armed_at).await;
        }
        if draining && buf.is_empty() {
            return; // draining: an idle keep-alive connection closes
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(READ_BUF);
        }
        let room = buf.capacity() - buf.len();
        tokio::select! {
            biased;
            r = io.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    read_at = Instant::now();
                    filled = n == room;
                }
            },
            _ = &mut idle => return head_timed_out(ctx, &mut io, &buf, peer).await,
            _ = &mut drain, if !draining => draining = true,
        }
    }
}

/// Returns once the node drains (`stop` turns true); never when its sender is gone.
async fn drained(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
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
    let mut body = a.body;
    let mut written = match &body[..] {
        [] => io.write_all(out).await,
        [one] if one.len() <= FLATTEN_MAX => {
            out.extend_from_slice(one);
            io.write_all(out).await
        }
        // The body may still be in the peer connection's read buffer: copied if the client
        // does not take it at once.
        _ => write_unsharing(io, out, &mut body).await.map(drop),
    };
    drop(body);
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

/// Write an answer given on the connection's own loop, through the access log when `pending`
/// (the request's entry, `route` the route that took it): its head made from its fields
/// (`lite::write_response`; `head_only` for a HEAD, `close` when the client asked), or, when
/// `framed`, already in `out` (written from the origin's bytes: `passlane::relay`) with the
/// body to follow as its framing says, `close` the one that head was written for. True when
/// the connection may carry another request.
pub(super) async fn write_answer(
    ctx: &Arc<Ctx>,
    io: &mut ClientIo,
    (resp, route, pending): (http::Response<ProxyBody>, Option<usize>, Option<Pending>),
    framed: Option<(Framing, bool)>,
    (head_only, close): (bool, bool),
    out: &mut Vec<u8>,
) -> std::io::Result<bool> {
    match (pending, framed) {
        (None, None) => lite::write_response(io, resp, head_only, close, out).await,
        (Some(p), None) => {
            let resp = access::track(ctx, Some(p), resp, route, Instant::now());
            lite::write_response(io, resp, head_only, close, out).await
        }
        (None, Some((framing, close))) => {
            lite::write_framed(io, resp.into_body(), framing, close, out).await
        }
        (Some(p), Some((framing, close))) => {
            let resp = access::track(ctx, Some(p), resp, route, Instant::now());
            lite::write_framed(io, resp.into_body(), framing, close, out).await
        }
    }
}

/// Drive `answer` to its end, writing the interim responses its sink gets meanwhile and those
/// still waiting at its end (the final response follows them). A failed write stops the
/// relaying but not `answer` (a fill others wait on may run inline in it): its error comes back.
pub(super) async fn with_interims<T, W: tokio::io::AsyncWrite + Unpin>(
    io: &mut W,
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

/// A request was answered at `now`: the head timer starts again. It is re-armed at most once
/// per [`rearm_step`] (a timer reset per request is measurable on the hit path), so a
/// connection's wait for its next head may be cut up to that much short.
fn rearm(
    idle: &mut Pin<&mut tokio::time::Sleep>,
    armed_at: &mut Instant,
    now: Instant,
    timeout: Duration,
) {
    if now.saturating_duration_since(*armed_at) >= rearm_step(timeout) {
        *armed_at = now;
        idle.as_mut().reset(tokio::time::Instant::now() + timeout);
    }
}

/// How stale the head timer may get: a sixteenth of the timeout, at most a second.
fn rearm_step(timeout: Duration) -> Duration {
    (timeout / 16).min(Duration::from_secs(1))
}

/// No whole request head within `limits.header_read_timeout`: counted; a client that had sent
/// part of one is answered 408 (an idle keep-alive connection is just closed).
async fn head_timed_out(ctx: &Ctx, io: &mut ClientIo, buf: &[u8], peer: SocketAddr) {
    bump(&ctx.counters.header_timeouts);
    if buf.is_empty() {
        return;
    }
    tracing::debug!(%peer, bytes = buf.len(), "request head incomplete at header_read_timeout");
    ctx.counters.record_response(408, None, Duration::ZERO);
    bump(&ctx.counters.errors);
    if io.write_all(HEAD_TIMEOUT_ANSWER).await.is_ok() {
        let _ = io.shutdown().await;
    }
}

/// Route a fast-path request: its route's index when the route caches with the plain key,
/// with the runtime snapshot whose table the index is of. Tables that route on request
/// headers are left to the general path.
fn fast_route_caches(
    ctx: &Ctx,
    req: &fast::FastReq<'_>,
    key: &str,
) -> Option<(Guard<Arc<Runtime>>, usize)> {
    let rt = ctx.rt.load();
    if !rt.fast_routing {
        return None;
    }
    let method = if req.head { Method::HEAD } else { Method::GET };
    let route = rt.routes.select(&RouteInput {
        method: &method,
        host: key_host(key),
        path: req.path,
        headers: &HeaderMap::new(),
    });
    let index = route.index;
    (route.cache && route.key_headers.is_empty()).then_some((rt, index))
}

/// A write to the client failed: counted when the client took nothing for `send_timeout`.
pub(super) fn write_failed(ctx: &Ctx, peer: SocketAddr, e: &std::io::Error) {
    if is_send_timeout(e) {
        bump(&ctx.counters.send_timeouts);
        tracing::debug!(%peer, "client took nothing for send_timeout; closed");
    }
}

/// Give the connection, and the bytes read so far, to hyper. `waiting_since`: when the
/// connection began to wait for the request head it has not finished yet (`idle`).
async fn handoff(
    conn: Conn<'_>,
    mut io: ClientIo,
    buf: BytesMut,
    watcher: Watcher,
    waiting_since: Instant,
) {
    let Conn { env, peer, .. } = conn;
    if fast::has_length_and_coding(&buf) {
        return refuse_length_and_coding(&env.ctx, &mut io, peer).await;
    }
    let ctx = Arc::clone(&env.ctx);
    let line = InterimLine::new();
    let requests = Arc::clone(&line);
    // Chunk sizes are watched against max_request_body as hyper reads them (`chunk_limit`).
    let limits = Arc::clone(&env.ctx);
    io.rewind(buf.freeze());
    let (io, trip) = Watched::new(InterimIo::new(io, line), env.max_head, move || {
        limits.rt.load().limits.max_request_body
    });
    let index = std::sync::atomic::AtomicU64::new(0);
    // header_read_timeout where hyper has no timer of its own: HTTP/2 (`idle`).
    let idle = Idle::new(tokio::time::Instant::from_std(waiting_since));
    let requests_idle = Arc::clone(&idle);
    let svc = service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        let ctx = Arc::clone(&ctx);
        let busy = requests_idle.begin(req.version());
        // HTTP/1.1 requests come one after another, numbered as the watch numbers them.
        req.extensions_mut().insert(Declared {
            trip: Arc::clone(&trip),
            index: index.fetch_add(1, Ordering::Relaxed),
        });
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
            let resp = access::track(&ctx, pending, resp, route, head_at);
            Ok::<_, Infallible>(resp.map(|body| Held::new(body, busy)))
        }
    });
    // A reload changed header_read_timeout since the listener started: this connection's own.
    let reloaded;
    let builder = if conn.head_timeout == env.header_read_timeout {
        &env.builder
    } else {
        let mut b = env.builder.clone();
        b.http1().header_read_timeout(conn.head_timeout);
        reloaded = b;
        &reloaded
    };
    let served = builder.serve_connection(TokioIo::new(io), svc).into_owned();
    tokio::select! {
        served = watcher.watch(served) => if let Err(e) = served {
            connection_error(&env.ctx, peer, e.as_ref());
        },
        () = idle.expired(conn.head_timeout) => {
            // Dropping the connection closes it.
            bump(&env.ctx.counters.header_timeouts);
            tracing::debug!(%peer, "no request on an HTTP/2 connection within header_read_timeout; closed");
        }
    }
}

/// The answer to a request with both `Content-Length` and `Transfer-Encoding`; the connection
/// closes after it.
const LENGTH_AND_CODING_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\
    content-type: text/plain\r\ncontent-length: 59\r\n\r\n\
    400 Bad Request: both Content-Length and Transfer-Encoding\n";

async fn refuse_length_and_coding(ctx: &Ctx, io: &mut ClientIo, peer: SocketAddr) {
    bump(&ctx.counters.bad_requests);
    bump(&ctx.counters.errors);
    ctx.counters.record_response(400, None, Duration::ZERO);
    tracing::info!(%peer, reason = "both Content-Length and Transfer-Encoding", "request refused");
    if io.write_all(LENGTH_AND_CODING_ANSWER).await.is_ok() {
        let _ = io.shutdown().await;
    }
}

/// A connection ended with an error. Requests hyper refused while parsing (it answered 400 or
/// 431 itself) are counted as bad requests and logged; send and header-read timeouts are
/// counted; the rest (resets) only logged at debug.
fn connection_error(ctx: &Ctx, peer: SocketAddr, e: &(dyn std::error::Error + 'static)) {
    if is_send_timeout(e) {
        bump(&ctx.counters.send_timeouts);
        tracing::debug!(%peer, "client took nothing for send_timeout; closed");
        return;
    }
    match e.downcast_ref::<hyper::Error>() {
        Some(he) if he.is_timeout() => {
            bump(&ctx.counters.header_timeouts);
            tracing::debug!(%peer, "no request head within header_read_timeout; closed");
        }
        Some(he) if he.is_parse() || he.is_parse_too_large() => {
            bump(&ctx.counters.bad_requests);
            bump(&ctx.counters.errors);
            tracing::info!(%peer, error = %he, "bad request refused by the HTTP parser");
        }
        _ => tracing::debug!(%peer, error = %e, "client connection ended with an error"),
    }
}
