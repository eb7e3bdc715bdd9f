//! The client stream under hyper, with the connection's interim responses (`interim`) written
//! where they cannot split or follow one of hyper's messages.
//!
//! Why at the flush: hyper's HTTP/1 connection (`proto/h1/io.rs`, `Buffered::poll_flush`)
//! queues every message in its own write buffer and calls the stream's `poll_flush` only once
//! that buffer is empty; its dispatcher flushes on every turn of its loop, including the turns
//! in which the request's service future is polled and stays pending. So at a `poll_flush`
//! hyper has nothing half-written: interim bytes written there fall between two of its
//! messages. They cannot land after their final response, because that response reaches
//! hyper only once they are written (`InterimSink::finish`); and a sink relaying from another
//! task wakes this one (the waker of the last flush), so they go out while the origin is still
//! thinking, not with the final head. Writes from hyper (`poll_write`) pass straight through.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::interim::InterimLine;

/// A client stream whose flushes first write the connection's waiting interim responses.
pub struct InterimIo<T> {
    inner: T,
    line: Arc<InterimLine>,
}

impl<T> InterimIo<T> {
    pub fn new(inner: T, line: Arc<InterimLine>) -> Self {
        InterimIo { inner, line }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for InterimIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for InterimIo<T> {
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
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let inner = &mut this.inner;
        std::task::ready!(this
            .line
            .poll_drain(cx, |cx, bytes| Pin::new(&mut *inner).poll_write(cx, bytes)))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_map as map;
    use http::StatusCode;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn interims_go_out_at_a_flush_never_inside_a_write() {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let line = InterimLine::new();
        let mut io = InterimIo::new(a, Arc::clone(&line));
        let sink = line.begin();
        sink.relay(StatusCode::EARLY_HINTS, &map(&[("link", "</a>")]));
        io.write_all(b"tail of an earlier response").await.unwrap();
        io.flush().await.unwrap();
        sink.finish().await;
        io.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        drop(io);
        let mut got = String::new();
        b.read_to_string(&mut got).await.unwrap();
        assert_eq!(
            got,
            "tail of an earlier responseHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n\
             HTTP/1.1 200 OK\r\n\r\n"
        );
    }
}
