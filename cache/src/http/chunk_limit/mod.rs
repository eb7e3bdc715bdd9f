//! `limits.max_request_body` against what a chunked request body declares, before its bytes
//! come: a chunk-size line that declares more than the limit allows (counting the chunks
//! before it) makes the request a 413 at once, without waiting for the data.
//!
//! hyper decodes client bodies and hands on data only: a chunk's declared size never reaches
//! the node, so a client that sends `FFFFFFFF` and then nothing would hold its request (and
//! the origin's connection) until `body_timeout`. So the client stream under hyper is watched
//! here ([`Watched`]): a [`Scanner`] follows the HTTP/1.1 framing of the bytes hyper reads,
//! request by request (heads with `httparse`, `Content-Length` bodies skipped, chunked bodies
//! read for their size lines only). It only watches: hyper still parses every byte and refuses
//! what is malformed; on anything the scanner does not follow (HTTP/2, a refused head, an
//! upgrade) it stops watching for the rest of the connection.
//!
//! Contract: when the declared sizes of request *n*'s body exceed the limit, [`Trip`] records
//! *n*; that request's [`Declared`] (in its extensions) then says [`Declared::over`], and
//! admission answers 413 before anything is sent upstream (the usual case: the size line came
//! with the head). A size line that comes later fails hyper's next read of the stream with
//! [`ChunkTooLarge`], which ends the body as the client's fault `client-body-too-large` (413).
//! The limit is the one in force when each request head is read.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

mod scan;

use scan::{Scanner, Verdict};

#[cfg(test)]
use crate::fault::is_chunk_too_large;
pub use crate::fault::ChunkTooLarge;

/// No request has tripped.
const NONE: u64 = u64::MAX;

/// Which request of a connection (0-based, in order) declared too much, if any.
#[derive(Debug)]
pub struct Trip(AtomicU64);

impl Default for Trip {
    fn default() -> Self {
        Trip(AtomicU64::new(NONE))
    }
}

/// One request's view of its connection's [`Trip`].
#[derive(Clone, Debug)]
pub struct Declared {
    pub trip: Arc<Trip>,
    /// The request's index on its connection.
    pub index: u64,
}

impl Declared {
    /// The request's body declared more than the limit.
    pub fn over(&self) -> bool {
        self.trip.0.load(Ordering::Acquire) == self.index
    }
}

/// The client stream under hyper, watched by a [`Scanner`]; reads fail once a body has
/// declared too much (see the module contract). `limit` reads `limits.max_request_body`.
pub struct Watched<T, L> {
    inner: T,
    scanner: Scanner,
    trip: Arc<Trip>,
    limit: L,
}

impl<T, L: Fn() -> u64> Watched<T, L> {
    pub fn new(inner: T, max_head: usize, limit: L) -> (Self, Arc<Trip>) {
        let trip = Arc::new(Trip::default());
        let w = Watched {
            inner,
            scanner: Scanner::new(max_head),
            trip: Arc::clone(&trip),
            limit,
        };
        (w, trip)
    }
}

impl<T: AsyncRead + Unpin, L: Fn() -> u64 + Unpin> AsyncRead for Watched<T, L> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.trip.0.load(Ordering::Relaxed) != NONE {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                ChunkTooLarge,
            )));
        }
        let start = buf.filled().len();
        std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        // Bytes read are handed on; a trip fails the next read, which is hyper's next step
        // into this body.
        if let Verdict::Over(n) = this.scanner.feed(&buf.filled()[start..], &this.limit) {
            this.trip.0.store(n, Ordering::Release);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin, L: Unpin> AsyncWrite for Watched<T, L> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[tokio::test]
    async fn reads_fail_after_a_trip_and_the_request_knows() {
        use tokio::io::AsyncReadExt;
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let (mut w, trip) = Watched::new(server, 64 * 1024, || MIB);
        tokio::io::AsyncWriteExt::write_all(
            &mut client,
            b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFF\r\n",
        )
        .await
        .unwrap();
        let mut buf = [0u8; 1024];
        assert!(
            w.read(&mut buf).await.unwrap() > 0,
            "the bytes are handed on"
        );
        let e = w.read(&mut buf).await.unwrap_err();
        assert!(is_chunk_too_large(&e), "{e}");
        let this = Declared {
            trip: Arc::clone(&trip),
            index: 0,
        };
        let next = Declared { trip, index: 1 };
        assert!(this.over() && !next.over());
    }
}
