//! A client's request body read straight from its connection by the connection's own loop
//! (`http::conn`'s upload lane), for a request framed by `Content-Length`: the bytes already
//! read past the head first, then reads of the socket, each handed on as one frame.
//!
//! Contract ([`RawBody`]):
//! * It yields exactly `Content-Length` bytes, never one more: bytes read past the body's end
//!   (the next request of a pipelining client) stay in the connection's buffer, at its front,
//!   for the loop to parse as a request.
//! * What it has not yet yielded is in `left` (the loop's own count): 0 once the whole body
//!   went through, so the loop knows whether the connection can carry another request.
//! * The connection is a [`RawSource`]: the loop may write to it between the body's reads.
//! * Memory stays bounded: a frame is at most what one read returned into the buffer's spare
//!   capacity (the buffer grows by [`READ_CHUNK`] when empty), and the next read happens only
//!   when the origin side asks for the next frame.
//! * The client closing (or failing) before the end is [`Fault::ClientAborted`]. Limits and
//!   timers are `upload::Upload`'s, which wraps it as it wraps hyper's body.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncRead;

use crate::fault::Fault;

/// Spare capacity a read of the body is given when the buffer has less.
pub const READ_CHUNK: usize = 16 * 1024;

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

/// A `Content-Length` body read from the client's connection (see the module doc).
pub struct RawBody<'a> {
    io: &'a dyn RawSource,
    /// The connection's read buffer: starts with the body's bytes already read.
    buf: &'a mut BytesMut,
    left: &'a mut u64,
}

impl<'a> RawBody<'a> {
    /// The body of `*left` bytes at the front of `buf`, then of `io`.
    pub fn new(io: &'a dyn RawSource, buf: &'a mut BytesMut, left: &'a mut u64) -> RawBody<'a> {
        RawBody { io, buf, left }
    }

    /// Nothing more to yield.
    pub fn is_end_stream(&self) -> bool {
        *self.left == 0
    }

    /// Bytes still to come.
    pub fn remaining(&self) -> u64 {
        *self.left
    }

    /// The next piece of the body; `None` at its end.
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Fault>>> {
        if *self.left == 0 {
            return Poll::Ready(None);
        }
        if self.buf.is_empty() {
            if self.buf.capacity() < READ_CHUNK {
                self.buf.reserve(READ_CHUNK);
            }
            match self.io.poll_read_buf(cx, self.buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    tracing::debug!(error = %e, "client request body read failed");
                    return Poll::Ready(Some(Err(Fault::ClientAborted)));
                }
                Poll::Ready(Ok(0)) => return Poll::Ready(Some(Err(Fault::ClientAborted))),
                Poll::Ready(Ok(_)) => {}
            }
        }
        let take = usize::try_from(*self.left).map_or(self.buf.len(), |l| l.min(self.buf.len()));
        *self.left -= take as u64;
        Poll::Ready(Some(Ok(self.buf.split_to(take).freeze())))
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
    async fn an_empty_body_yields_nothing_and_reads_nothing() {
        let io = Mutex::new(&b"GET"[..]);
        let mut buf = BytesMut::new();
        let mut left = 0;
        let (got, fault) = all(&mut RawBody::new(&io, &mut buf, &mut left)).await;
        assert!(got.is_empty() && fault.is_none());
        assert_eq!(*io.lock(), b"GET");
    }
}
