//! The upload lane: a request with a `Content-Length` body (`POST`, `PUT`, `PATCH`, `DELETE`)
//! that the connection's own loop read the head of (`fast::Parse::Upload`) is served on that
//! loop, its body read from the socket as the origin takes it, instead of moving the
//! connection to hyper for the rest of its life. So is a `plain` one with a chunked body the
//! loop found whole after the head, in the plainest form (`chunked::scan`; the caller read on
//! when its read's room had cut it): its data goes upstream in the head's write, with a
//! `Content-Length` instead of the client's `Transfer-Encoding` (`origin_head_dechunked`);
//! any other chunked upload streams on the lane, decoded as it arrives (`RawBody::chunked`)
//! and sent upstream chunked (a `plain` one's head as the client's, with its
//! `Transfer-Encoding`; another one's from its parts, as the general stages send it), unless
//! the sizes that came with the head already declare more than `max_request_body` (hyper's
//! 413 before the origin, `chunk_limit`). A client expecting `100-continue` gets it once its
//! request is admitted and routed with none of its body here yet, before the origin is reached.
//!
//! Contract ([`serve`]):
//! * The request goes through the general stages' own pieces, not copies of them: its parts
//!   (`lite::parts`) are admitted and routed by `handler::begin_with_body` (framing, 413 for a
//!   `Content-Length` over `max_request_body` before anything goes upstream, authority,
//!   `Connection`-listed fields, path normalisation, the route), and passed by `pass::pass`
//!   (the same upstream head, the own client's upload with its `body_timeout`, limit and
//!   never-resend rules, RFC 9111 §4.4 invalidation, the answer head, faults and counters).
//!   The body comes from [`RawBody`] where hyper's would.
//! * A `plain` request (`fast::FastReq`: none of the fields a proxy merges its own into, no
//!   hop-by-hop field but `Connection`) on a table that routes on no request field, to a pool
//!   without cookie persistence, within `max_request_body`, skips the parts ([`prepare`]):
//!   what admission would do to it is nothing (its framing, target and `Host` are already
//!   plain), it is routed and keyed as the fast path routes and keys, and its head goes
//!   upstream as written from the raw one (`passlane::head::origin_head_of`: the client's
//!   fields without `Connection`, then `Via`, `X-Forwarded-For`, `Forwarded`, what
//!   `forward::forward_headers` makes of them) through `pass::pass_encoded`. A body of at most
//!   [`WHOLE_MAX`] that came with the head goes upstream in the same write, as a bodyless
//!   request does (`OutRequest::body_in_head`: never to a second server, sent again only
//!   as a streamed body would be); a larger or later one streams from the socket. The
//!   origin's answer head is kept as received and written from its bytes (`passlane::relay`,
//!   `Cache-Status: <node>; fwd=method`), the same bytes the general stages write
//!   (`tests/hostile/upload_answer.rs`); its `Location` and `Content-Location` invalidate as
//!   the map's would (`RawHead::first_values`).
//! * A request the cache would look up instead is [`Next::General`] with nothing read,
//!   written or counted: the caller hands the connection to hyper with every byte.
//! * The answer is written as the loop writes the general stages' answers (`lite`), the
//!   origin's interim responses before it as they arrive (`conn::with_interims`, through the
//!   connection the body is read from: [`Shared`]), with the same metrics and access log line.
//! * The connection carries another request only when the whole body was read (the rest of a
//!   body the origin refused early is consumed when it is already buffered); else the answer
//!   says `Connection: close` and the connection ends after it, as under hyper.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use http::{HeaderMap, Method};

use super::conn::{with_interims, write_answer, write_failed, ClientIo};
use super::ctx::{Ctx, RouteChoice, Runtime};
use super::fast::FastReq;
use super::handler::{begin_with_body, BodyBegin};
use super::lite;
use super::pass::{pass_encoded, Encoded, Passed};
use super::passlane::head::{origin_head_dechunked, origin_head_of};
use super::passlane::relay;
use crate::access::Pending;
use crate::interim::InterimLine;
use crate::origin::h1::head::RawHead;
use crate::origin::pool::Sent;
use crate::origin::raw_body::RawBody;
use crate::origin::upload::ClientBody;
use crate::origin::PickInput;
use crate::policy::cache_status::Fwd;
use crate::policy::key::key_from_host_and_target;
use crate::stats::bump;

/// The largest body sent upstream in the same write as its head, when the client sent it with
/// the head (one copy of it; a larger one streams from the read buffer).
pub(super) const WHOLE_MAX: u64 = 64 * 1024;

/// The lane's answer: made (by the general stages' pieces, or a fault's), or the origin's
/// with its head as received, to be relayed (`passlane::relay`) in the runtime the request
/// was routed in.
enum Answer {
    Made(http::Response<super::body::ProxyBody>),
    Raw(Sent, Box<RawHead>, Arc<Runtime>),
}

/// What the loop does after the lane.
pub(super) enum Next {
    /// Answered: the next request may follow (answered at the given instant).
    Continue(Instant),
    /// Answered, or failed: the connection ends (already shut down when it could be).
    Close,
    /// Not the lane's: nothing was read or written; hyper takes the connection.
    General,
}

/// A `plain` request's trip, made from its raw head before the lane reads its body.
pub(super) struct Prepared {
    rt: Arc<Runtime>,
    route: RouteChoice,
    key: String,
    method: Method,
    /// The origin request's head.
    head: Vec<u8>,
    /// Where the target's path (no query) lies in `head` (the server choice's input).
    path: std::ops::Range<usize>,
    pending: Option<Pending>,
}

/// The trip of a `plain` request with a body of `len` whose head is `raw`, when it may skip
/// the parts (see the module doc); None leaves it to them. `dechunked`: the body came chunked
/// and whole (`chunked::whole`), `len` bytes of data, and goes up with that length.
pub(super) fn prepare(
    ctx: &Ctx,
    req: &FastReq<'_>,
    (len, dechunked): (u64, bool),
    raw: &[u8],
    peer: SocketAddr,
    read_at: Instant,
) -> Option<Prepared> {
    if !req.plain {
        return None;
    }
    let rt = ctx.rt.load_full();
    if !rt.fast_routing || len > rt.limits.max_request_body {
        return None;
    }
    let method = match super::fast::method_of(raw) {
        b"POST" => Method::POST,
        b"PUT" => Method::PUT,
        b"PATCH" => Method::PATCH,
        b"DELETE" => Method::DELETE,
        _ => return None,
    };
    let key = key_from_host_and_target(req.host, req.target)?;
    let route = rt.route(&method, &key, req.path, &HeaderMap::new());
    if route.pool.has_persistence() {
        return None;
    }
    let mut head = Vec::with_capacity(raw.len() + 128);
    let (node, client) = (&ctx.node_id, peer.ip());
    let written = if dechunked {
        origin_head_dechunked(&mut head, raw, method.as_str(), node, client, len)
    } else {
        origin_head_of(&mut head, raw, method.as_str(), node, client)
    };
    if !written {
        return None;
    }
    let start = method.as_str().len() + 1;
    let path = start..start + req.path.len();
    debug_assert_eq!(&head[path.clone()], req.path.as_bytes());
    let pending = ctx.access.enabled().then(|| {
        let (host, target) = (req.host, req.target);
        Pending::new(
            method.clone(),
            host,
            target,
            Some(peer),
            SystemTime::now(),
            read_at,
        )
    });
    Some(Prepared {
        rt,
        route,
        key,
        method,
        head,
        path,
        pending,
    })
}

/// The request the loop read the head of.
pub(super) struct UploadReq {
    pub head_len: usize,
    /// Its `Content-Length` (0 without one), or its chunked body's bytes of data.
    pub len: u64,
    /// The bytes its chunked body takes after the head, when it came chunked and whole
    /// (`chunked::whole`): with `prepared`, its data goes up with a length; without, it is
    /// decoded as a streamed one is.
    pub dechunked: Option<usize>,
    /// Its body is chunked and did not come whole: streamed as it arrives, decoded and sent
    /// upstream chunked (`len` is 0).
    pub chunked: bool,
    /// The client asked to close after it.
    pub close: bool,
    /// It carries `Expect: 100-continue`.
    pub expect_continue: bool,
    pub peer: SocketAddr,
    /// When the read that completed the head returned (the request's start).
    pub read_at: Instant,
    /// Its trip, when it skips the parts ([`prepare`]).
    pub prepared: Option<Prepared>,
}

/// Serve the request whose head starts `buf` (see the module doc).
pub(super) async fn serve(
    ctx: &Arc<Ctx>,
    io: &mut ClientIo,
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
    line: &Arc<InterimLine>,
    req: UploadReq,
) -> Next {
    let mut left = req.len;
    // It waits for a 100 before a body to read: a length, or chunks.
    let expects = req.expect_continue && (req.len > 0 || req.chunked || req.dechunked.is_some());
    let sink;
    let pending;
    let (answer, route) = if let Some(mut p) = req.prepared {
        sink = line.begin();
        pending = p.pending;
        bump(&ctx.counters.requests);
        bump(&ctx.counters.upload_lane);
        buf.advance(req.head_len);
        // A small body the client sent with its head goes upstream with it, in one write.
        // A chunked one was found whole there (`chunked::whole`): its data goes up.
        let whole = match req.dechunked {
            Some(consumed) => {
                super::chunked::copy_data(&buf[..consumed], WHOLE_MAX, &mut p.head);
                buf.advance(consumed);
                true
            }
            None if !req.chunked && left <= WHOLE_MAX && buf.len() as u64 >= left => {
                p.head.extend_from_slice(&buf[..left as usize]);
                buf.advance(left as usize);
                true
            }
            None => false,
        };
        if whole {
            left = 0;
        } else if let Err(e) = go_on(io, expects, buf).await {
            write_failed(ctx, req.peer, &e);
            return Next::Close;
        }
        let trip = Encoded {
            method: p.method,
            raw: &p.head,
            len: (!req.chunked).then_some(req.len),
            pool: &p.route.pool,
            input: PickInput {
                client: Some(req.peer.ip()),
                // The path is ASCII (`fast::parse` took it from a `&str`).
                path: std::str::from_utf8(&p.head[p.path]).unwrap_or("/"),
            },
            key: &p.key,
            interim: Some(sink.clone()),
        };
        let shared = Shared(Mutex::new(&mut *io));
        let body = (!whole).then(|| {
            ClientBody::Raw(if req.chunked {
                RawBody::chunked(
                    &shared.0,
                    &mut *buf,
                    &mut left,
                    p.rt.limits.max_request_body,
                )
            } else {
                RawBody::new(&shared.0, &mut *buf, &mut left)
            })
        });
        let (answer, failed) = {
            // Pinned where it is made (moved, the future's KiB would be copied).
            let answer = std::pin::pin!(pass_encoded(ctx, &p.rt, trip, body));
            with_interims(&mut &shared, &sink, answer).await
        };
        if let Some(e) = failed {
            write_failed(ctx, req.peer, &e);
            return Next::Close;
        }
        let answer = match answer {
            Passed::Made(resp) => Answer::Made(resp),
            // Written in the runtime the request was routed in.
            Passed::Raw(sent, head) => Answer::Raw(sent, head, p.rt),
        };
        (answer, Some(p.route.index))
    } else {
        // A chunked body that does not skip the parts, whole or not, streams as it is decoded
        // (its sizes are within the limit: the caller left the others to hyper); what is left
        // of it after an early answer cannot be counted, so the connection then ends.
        let chunked = req.chunked || req.dechunked.is_some();
        if chunked {
            left = crate::origin::raw_body::UNKNOWN;
        }
        let Some(mut parts) = lite::parts(&buf[..req.head_len]) else {
            return Next::General;
        };
        sink = line.begin();
        parts.extensions.insert(sink.clone());
        pending = ctx.access.enabled().then(|| {
            let head = (&parts.method, &parts.uri, &parts.headers);
            Pending::of_parts(head, Some(req.peer), SystemTime::now(), req.read_at)
        });
        match begin_with_body(ctx, parts, Some(req.peer)) {
            BodyBegin::General => {
                sink.close();
                return Next::General;
            }
            BodyBegin::Answered(resp) => {
                buf.advance(req.head_len);
                (Answer::Made(resp), None)
            }
            BodyBegin::Pass(p) => {
                bump(&ctx.counters.upload_lane);
                buf.advance(req.head_len);
                if let Err(e) = go_on(io, expects, buf).await {
                    write_failed(ctx, req.peer, &e);
                    return Next::Close;
                }
                let shared = Shared(Mutex::new(&mut *io));
                let raw = if chunked {
                    let limit = ctx.rt.load().limits.max_request_body;
                    RawBody::chunked(&shared.0, &mut *buf, &mut left, limit)
                } else {
                    RawBody::new(&shared.0, &mut *buf, &mut left)
                };
                let answer = Box::pin(p.pass(Arc::clone(ctx), ClientBody::Raw(raw)));
                let (answer, failed) = with_interims(&mut &shared, &sink, answer).await;
                if let Some(e) = failed {
                    write_failed(ctx, req.peer, &e);
                    return Next::Close;
                }
                let (resp, route) = answer;
                (Answer::Made(resp), route)
            }
        }
    };
    // Nothing waits here after `with_interims` (an answer given at admission had none).
    let interims = sink.close();
    if !interims.is_empty() {
        if let Err(e) = io.write_all(&interims).await {
            write_failed(ctx, req.peer, &e);
            return Next::Close;
        }
    }
    // What is left of the body: skipped when already here, else the connection ends.
    let mut close = req.close;
    if left > 0 {
        if buf.len() as u64 >= left {
            buf.advance(left as usize);
        } else {
            close = true;
        }
    }
    let (resp, framing) = match answer {
        Answer::Raw(sent, head, rt) => {
            let (resp, framing) = relay(ctx, &rt, (sent, &head), (Fwd::Method, close), out);
            (resp, Some(framing))
        }
        Answer::Made(resp) => (resp, None),
    };
    let status = resp.status().as_u16();
    let framed = framing.map(|f| (f, close));
    let written = write_answer(ctx, io, (resp, route, pending), framed, (false, close), out).await;
    let done = Instant::now();
    ctx.counters
        .record_response(status, route, done.saturating_duration_since(req.read_at));
    match written {
        Ok(true) => Next::Continue(done),
        Ok(false) => {
            let _ = io.shutdown().await;
            Next::Close
        }
        Err(e) => {
            write_failed(ctx, req.peer, &e);
            Next::Close
        }
    }
}

/// The interim answer a client that expects `100-continue` waits for before it sends its
/// body (a length, or chunks), once the request is admitted and routed with a body still to
/// read (before the origin is reached), and only when none of it came yet (RFC 9110 §10.1.1:
/// a client that started its body needs none; nor does one answered at once, with a final
/// status, without its body).
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

async fn go_on(io: &mut ClientIo, expects: bool, body_here: &BytesMut) -> std::io::Result<()> {
    if expects && body_here.is_empty() {
        io.write_all(CONTINUE).await?;
    }
    Ok(())
}

/// The client's connection while the lane reads a body from it: the body reads through it
/// (`RawSource`), and the origin's interim responses are written through it meanwhile
/// (`conn::with_interims`), each holding the lock for one poll.
struct Shared<'a>(Mutex<&'a mut ClientIo>);

impl AsyncWrite for &Shared<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut io = self.0.lock();
        Pin::new(&mut **io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut io = self.0.lock();
        Pin::new(&mut **io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut io = self.0.lock();
        Pin::new(&mut **io).poll_shutdown(cx)
    }
}
