//! The upload lane: a request with a `Content-Length` body (`POST`, `PUT`, `PATCH`, `DELETE`)
//! that the connection's own loop read the head of (`fast::Parse::Upload`) is served on that
//! loop, its body read from the socket as the origin takes it, instead of moving the
//! connection to hyper for the rest of its life.
//!
//! Contract ([`serve`]):
//! * The request goes through the general stages' own pieces, not copies of them: its parts
//!   (`lite::parts`) are admitted and routed by `handler::begin_with_body` (framing, 413 for a
//!   `Content-Length` over `max_request_body` before anything goes upstream, authority,
//!   `Connection`-listed fields, path normalisation, the route), and passed by `pass::pass`
//!   (the same upstream head, the own client's upload with its `body_timeout`, limit and
//!   never-resend rules, RFC 9111 §4.4 invalidation, the answer head, faults and counters).
//!   The body comes from [`RawBody`] where hyper's would.
//! * A request the cache would look up instead is [`Next::General`] with nothing read,
//!   written or counted: the caller hands the connection to hyper with every byte.
//! * The answer is written as the loop writes the general stages' answers (`lite`), interim
//!   responses first (all of them once the final head is in: the socket is the body's until
//!   then), with the same metrics and access log line.
//! * The connection carries another request only when the whole body was read (the rest of a
//!   body the origin refused early is consumed when it is already buffered); else the answer
//!   says `Connection: close` and the connection ends after it, as under hyper.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWriteExt;

use super::conn::{write_failed, ClientIo};
use super::ctx::Ctx;
use super::handler::{begin_with_body, BodyBegin};
use super::interim::InterimLine;
use super::lite;
use crate::access::{self, Pending};
use crate::origin::raw_body::RawBody;
use crate::origin::upload::ClientBody;
use crate::stats::bump;

/// What the loop does after the lane.
pub(super) enum Next {
    /// Answered: the next request may follow (answered at the given instant).
    Continue(Instant),
    /// Answered, or failed: the connection ends (already shut down when it could be).
    Close,
    /// Not the lane's: nothing was read or written; hyper takes the connection.
    General,
}

/// The request the loop read the head of.
pub(super) struct UploadReq {
    pub head_len: usize,
    /// Its `Content-Length` (0 without one).
    pub len: u64,
    /// The client asked to close after it.
    pub close: bool,
    pub peer: SocketAddr,
    /// When the read that completed the head returned (the request's start).
    pub read_at: Instant,
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
    let Some(mut parts) = lite::parts(&buf[..req.head_len]) else {
        return Next::General;
    };
    let sink = line.begin();
    parts.extensions.insert(sink.clone());
    let pending = ctx.access.enabled().then(|| {
        let head = (&parts.method, &parts.uri, &parts.headers);
        Pending::of_parts(head, Some(req.peer), SystemTime::now(), req.read_at)
    });
    let mut left = req.len;
    let (resp, route) = match begin_with_body(ctx, parts, Some(req.peer)) {
        BodyBegin::General => {
            sink.close();
            return Next::General;
        }
        BodyBegin::Answered(resp) => {
            buf.advance(req.head_len);
            (resp, None)
        }
        BodyBegin::Pass(p) => {
            bump(&ctx.counters.upload_lane);
            buf.advance(req.head_len);
            let raw = RawBody::new(&mut *io, &mut *buf, &mut left);
            Box::pin(p.pass(Arc::clone(ctx), ClientBody::Raw(raw))).await
        }
    };
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
    let status = resp.status().as_u16();
    let written = match pending {
        None => lite::write_response(io, resp, false, close, out).await,
        Some(p) => {
            let resp = access::track(ctx, Some(p), resp, route, Instant::now());
            lite::write_response(io, resp, false, close, out).await
        }
    };
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
