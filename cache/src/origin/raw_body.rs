//! A client's request body read straight from its connection by the connection's own loop
//! (`http::conn`'s upload lane), for a request framed by `Content-Length` or by the chunked
//! coding: the bytes already read past the head first, then reads of the socket, each handed
//! on as one frame (a chunked body's data decoded as it arrives by `h1::chunked::Decoder`,
//! extensions skipped, trailers read and dropped, both bounded).
//!
//! Contract ([`RawBody`]):
//! * It yields exactly the body's bytes, never one more: bytes read past the body's end
//!   (the next request of a pipelining client) stay in the connection's buffer, at its front,
//!   for the loop to parse as a request. A chunked body ends after its trailer section.
//! * What it has not yet yielded is in `left` (the loop's own count): 0 once the whole body
//!   went through, so the loop knows whether the connection can carry another request; for a
//!   chunked body not ended yet, [`UNKNOWN`] (the loop cannot skip what it cannot count).
//! * A chunked body that breaks its framing (a bad size, no CRLF after a chunk, an endless
//!   line, trailers too large) is [`Fault::ClientBadBody`]; one whose size lines declare more
//!   than its limit is [`Fault::ClientBodyTooLarge`] at that line, before its data. A fault
//!   is final: every later poll says it again.
//! * A client that cuts its chunked body into many small chunks costs no more upstream
//!   writes than one that does not: small chunks already read go on together, in one frame of
//!   up to [`GATHER_MAX`] (copied).
//! * The connection is a [`RawSource`]: the loop may write to it between the body's reads.
//! * Memory stays bounded: a frame is at most what one read returned into the buffer's spare
//!   capacity (the buffer grows by [`READ_CHUNK`] when empty, by up to [`READ_MAX`] while
//!   reads fill their room), and the next read happens only when the origin side asks for the
//!   next frame.
//! * The client closing (or failing) before the end is [`Fault::ClientAborted`]. Limits and
//!   timers are `upload::Upload`'s, which wraps it as it wraps hyper's body.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncRead;

use super::h1::chunked::{ChunkError, Decoder, Step};
// The sender's bound: a frame gathered here is not gathered again there.
use super::h1::upload::GATHER_MAX;
use crate::fault::Fault;

/// Spare capacity a read of the body is given when the buffer has less, at first.
pub const READ_CHUNK: usize = 16 * 1024;

/// The most a read of the body is given: a read that filled its room doubles the next one's
/// up to this (a long upload moves in fewer, larger reads; memory per uploading client stays
/// bounded).
pub const READ_MAX: usize = 64 * 1024;

/// `left` of a chunked body that has not ended yet.
pub const UNKNOWN: u64 = u64::MAX;

/// The client's connection as the body reads it: shared, so that the connection's loop can
/// write the origin's interim responses to it while the body is being read (each side holds
/// the lock for one poll, never across an await).
pub trait RawSource: Send + Sync {
    fn poll_read_buf(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<std::io::Result<usize>>;
}

impl<T: AsyncRead + Unpin + Send> RawSource for parking_lot::Mutex<T> {
    fn poll_read_buf(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<std::io::Result<usize>> {
        let mut io = self.lock();
        tokio_util::io::poll_read_buf(Pin::new(&mut *io), cx, buf)
    }
}

/// A client's body read from its connection (see the module doc).
pub struct RawBody<'a> {
    io: &'a dyn RawSource,
    /// The connection's read buffer: starts with the body's bytes already read.
    buf: &'a mut BytesMut,
    left: &'a mut u64,
    /// A chunked body's decoder; None for a `Content-Length` one.
    chunked: Option<Decoder>,
    /// The room the next read is given.
    room: usize,
    /// The fault the body failed with: every poll after says it again.
    failed: Option<Fault>,
}

impl<'a> RawBody<'a> {
    /// The body of `*left` bytes at the front of `buf`, then of `io`.
    pub fn new(io: &'a dyn RawSource, buf: &'a mut BytesMut, left: &'a mut u64) -> RawBody<'a> {
        RawBody {
            io,
            buf,
            left,
            chunked: None,
            room: READ_CHUNK,
            failed: None,
        }
    }

    /// The chunked body at the front of `buf`, then of `io`; `*left` is [`UNKNOWN`] until it
    /// ends, then 0. A size line that declares more than `limit` in all is
    /// [`Fault::ClientBodyTooLarge`] at once, before its data.
    pub fn chunked(
        io: &'a dyn RawSource,
        buf: &'a mut BytesMut,
        left: &'a mut u64,
        limit: u64,
    ) -> RawBody<'a> {
        *left = UNKNOWN;
        RawBody {
            io,
            buf,
            left,
            chunked: Some(Decoder::with_limit(limit)),
            room: READ_CHUNK,
            failed: None,
        }
    }

    /// Nothing more to yield.
    pub fn is_end_stream(&self) -> bool {
        *self.left == 0
    }

    /// Bytes still to come, when known.
    pub fn remaining(&self) -> Option<u64> {
        self.chunked.is_none().then_some(*self.left)
    }

    /// The next piece of the body; `None` at its end.
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Fault>>> {
        if *self.left == 0 {
            return Poll::Ready(None);
        }
        if let Some(f) = self.failed {
            return Poll::Ready(Some(Err(f)));
        }
        if let Some(dec) = &mut self.chunked {
            loop {
                match dec.step(self.buf) {
                    // Small chunks already here go on together: one frame, one write upstream,
                    // not one per chunk a client cut its body into.
                    Ok(Step::Data(first)) if first.len() < GATHER_MAX && !self.buf.is_empty() => {
                        // Copied only when a next chunk's data is here too.
                        let mut more: Option<BytesMut> = None;
                        while more.as_ref().map_or(first.len(), BytesMut::len) < GATHER_MAX
                            && !self.buf.is_empty()
                        {
                            match dec.step(self.buf) {
                                Ok(Step::Data(d)) => more
                                    .get_or_insert_with(|| {
                                        let mut m = BytesMut::with_capacity(GATHER_MAX);
                                        m.extend_from_slice(&first);
                                        m
                                    })
                                    .extend_from_slice(&d),
                                // The end, or what to read next, is met again at the next poll.
                                Ok(Step::Done | Step::More) => break,
                                // A refused body stays refused (the decoder may have taken
                                // the line it refused): after the data before it.
                                Err(e) => {
                                    self.failed = Some(refused(e));
                                    break;
                                }
                            }
                        }
                        return Poll::Ready(Some(Ok(more.map_or(first, BytesMut::freeze))));
                    }
                    Ok(Step::Data(d)) => return Poll::Ready(Some(Ok(d))),
                    Ok(Step::Done) => {
                        *self.left = 0;
                        return Poll::Ready(None);
                    }
                    Ok(Step::More) => {}
                    Err(e) => {
                        let f = refused(e);
                        self.failed = Some(f);
                        return Poll::Ready(Some(Err(f)));
                    }
                }
                // A line not ended yet stays in the buffer (the decoder bounds it): read
                // after it.
                if let Err(f) = ready!(read(self.io, cx, self.buf, &mut self.room)) {
                    self.failed = Some(f);
                    return Poll::Ready(Some(Err(f)));
                }
            }
        }
        if self.buf.is_empty() {
            if let Err(f) = ready!(read(self.io, cx, self.buf, &mut self.room)) {
                return Poll::Ready(Some(Err(f)));
            }
        }
        let take = usize::try_from(*self.left).map_or(self.buf.len(), |l| l.min(self.buf.len()));
        *self.left -= take as u64;
        Poll::Ready(Some(Ok(self.buf.split_to(take).freeze())))
    }
}

/// The client's fault for a chunked body the decoder refused.
fn refused(e: ChunkError) -> Fault {
    tracing::debug!(error = %e, "client's chunked request body refused");
    match e {
        ChunkError::OverLimit => Fault::ClientBodyTooLarge,
        _ => Fault::ClientBadBody,
    }
}

/// One read of the client into `buf`'s spare room (given `room` first when it has less than
/// a quarter of it; a read that fills it doubles the next one's, up to [`READ_MAX`]): the
/// client closing or failing first is its abort.
fn read(
    io: &dyn RawSource,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
    room: &mut usize,
) -> Poll<Result<(), Fault>> {
    if buf.capacity() - buf.len() < *room / 4 {
        buf.reserve(*room);
    }
    let spare = buf.capacity() - buf.len();
    match io.poll_read_buf(cx, buf) {
        Poll::Pending => Poll::Pending,
        Poll::Ready(Err(e)) => {
            tracing::debug!(error = %e, "client request body read failed");
            Poll::Ready(Err(Fault::ClientAborted))
        }
        Poll::Ready(Ok(0)) => Poll::Ready(Err(Fault::ClientAborted)),
        Poll::Ready(Ok(n)) => {
            if n == spare {
                *room = (*room * 2).min(READ_MAX);
            }
            Poll::Ready(Ok(()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use std::future::poll_fn;

    async fn all(body: &mut RawBody<'_>) -> (Vec<u8>, Option<Fault>) {
        let mut out = Vec::new();
        loop {
            match poll_fn(|cx| body.poll_data(cx)).await {
                None => return (out, None),
                Some(Ok(b)) => out.extend_from_slice(&b),
                Some(Err(f)) => return (out, Some(f)),
            }
        }
    }

    #[tokio::test]
    async fn the_body_ends_at_its_length_and_the_rest_stays_buffered() {
        let io = Mutex::new(&b"llo worldGET / HTTP/1.1\r\n"[..]);
        let mut buf = BytesMut::from(&b"he"[..]);
        let mut left = 11;
        let mut body = RawBody::new(&io, &mut buf, &mut left);
        let (got, fault) = all(&mut body).await;
        assert_eq!((&got[..], fault), (&b"hello world"[..], None));
        assert!(body.is_end_stream());
        assert_eq!(&buf[..], b"GET / HTTP/1.1\r\n");
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn a_pipelined_request_already_read_is_not_taken() {
        let io = Mutex::new(&b""[..]);
        let mut buf = BytesMut::from(&b"abcGET / HTTP/1.1\r\n\r\n"[..]);
        let mut left = 3;
        let (got, fault) = all(&mut RawBody::new(&io, &mut buf, &mut left)).await;
        assert_eq!((&got[..], fault), (&b"abc"[..], None));
        assert_eq!(&buf[..], b"GET / HTTP/1.1\r\n\r\n");
    }

    #[tokio::test]
    async fn a_client_that_closes_early_aborted_and_left_says_how_much_is_missing() {
        let io = Mutex::new(&b"llo"[..]);
        let mut buf = BytesMut::from(&b"he"[..]);
        let mut left = 10;
        let (got, fault) = all(&mut RawBody::new(&io, &mut buf, &mut left)).await;
        assert_eq!(
            (&got[..], fault),
            (&b"hello"[..], Some(Fault::ClientAborted))
        );
        assert_eq!(left, 5);
    }

    #[tokio::test]
    async fn a_chunked_body_is_decoded_across_reads_and_ends_after_its_trailers() {
        // Read in pieces of 3 bytes: lines and data cut anywhere.
        struct Trickle(Mutex<Vec<u8>>);
        impl RawSource for Trickle {
            fn poll_read_buf(
                &self,
                _cx: &mut Context<'_>,
                buf: &mut BytesMut,
            ) -> Poll<std::io::Result<usize>> {
                let mut rest = self.0.lock();
                let n = rest.len().min(3);
                buf.extend_from_slice(&rest[..n]);
                rest.drain(..n);
                Poll::Ready(Ok(n))
            }
        }
        let io = Trickle(Mutex::new(
            b"llo\r\n6;x=y\r\n world\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\n".to_vec(),
        ));
        let mut buf = BytesMut::from(&b"5\r\nhe"[..]);
        let mut left = 0;
        let mut body = RawBody::chunked(&io, &mut buf, &mut left, 1 << 20);
        assert!(!body.is_end_stream() && body.remaining().is_none());
        let (got, fault) = all(&mut body).await;
        assert_eq!((&got[..], fault), (&b"hello world"[..], None));
        assert!(body.is_end_stream());
        assert_eq!(left, 0);
        // The pipelined request is left for the loop (what was read of it, and the rest).
        let mut next = buf.to_vec();
        next.extend_from_slice(&io.0.lock());
        assert_eq!(&next[..], b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn a_chunked_body_that_breaks_its_framing_or_its_limit_is_the_clients_fault() {
        let cases: [(&[u8], u64, Fault); 4] = [
            (b"5\r\nhelloX\r\n", 100, Fault::ClientBadBody),
            (b"zz\r\n", 100, Fault::ClientBadBody),
            (b"5\r\nhello\r\n60\r\n", 100, Fault::ClientBodyTooLarge),
            (b"5\r\nhel", 100, Fault::ClientAborted),
        ];
        for (raw, limit, want) in cases {
            let io = Mutex::new(&b""[..]);
            let mut buf = BytesMut::from(raw);
            let mut left = 0;
            let (_, fault) = all(&mut RawBody::chunked(&io, &mut buf, &mut left, limit)).await;
            assert_eq!(fault, Some(want), "{:?}", String::from_utf8_lossy(raw));
            assert_eq!(left, UNKNOWN, "not ended: the loop cannot go on");
        }
    }

    #[tokio::test]
    async fn small_chunks_already_read_go_on_in_one_frame_and_a_fault_stays() {
        // 3,000 one-byte chunks in the buffer: one frame per GATHER_MAX of data at most.
        let mut raw = Vec::new();
        for i in 0..3000u32 {
            raw.extend_from_slice(format!("1\r\n{}\r\n", i % 10).as_bytes());
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        let io = Mutex::new(&b""[..]);
        let mut buf = BytesMut::from(&raw[..]);
        let mut left = 0;
        let mut body = RawBody::chunked(&io, &mut buf, &mut left, 1 << 20);
        let mut frames = Vec::new();
        while let Some(f) = poll_fn(|cx| body.poll_data(cx)).await {
            frames.push(f.expect("data"));
        }
        assert_eq!(
            frames.len(),
            1,
            "{:?}",
            frames.iter().map(|f| f.len()).collect::<Vec<_>>()
        );
        let want: Vec<u8> = (0..3000u32).map(|i| b'0' + (i % 10) as u8).collect();
        assert_eq!(frames.concat(), want);
        assert_eq!(left, 0);
        // A bad line after small chunks: their data, then the fault, for good (the line
        // after the bad one is never read as a size).
        let io = Mutex::new(&b""[..]);
        let mut buf = BytesMut::from(&b"1\r\na\r\n1\r\nb\r\nzz\r\n1\r\nc\r\n0\r\n\r\n"[..]);
        let mut left = 0;
        let mut body = RawBody::chunked(&io, &mut buf, &mut left, 1 << 20);
        let first = poll_fn(|cx| body.poll_data(cx)).await;
        assert_eq!(first, Some(Ok(Bytes::from_static(b"ab"))));
        for _ in 0..3 {
            let again = poll_fn(|cx| body.poll_data(cx)).await;
            assert_eq!(again, Some(Err(Fault::ClientBadBody)));
        }
        assert_eq!(left, UNKNOWN);
    }

    #[tokio::test]
    async fn an_empty_body_yields_nothing_and_reads_nothing() {
        let io = Mutex::new(&b"GET"[..]);
        let mut buf = BytesMut::new();
        let mut left = 0;
        let (got, fault) = all(&mut RawBody::new(&io, &mut buf, &mut left)).await;
        assert!(got.is_empty() && fault.is_none());
        assert_eq!(*io.lock(), b"GET");
    }
}
