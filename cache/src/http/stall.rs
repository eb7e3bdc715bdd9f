//! `limits.send_timeout`: a client connection whose writes make no progress for that long
//! fails with [`io::ErrorKind::TimedOut`], and its connection is closed.
//!
//! Contract: the clock starts when a write (or flush) of the inner stream returns `Pending`
//! and stops at the next one that returns `Ready` (any progress, even one byte). Reads are not
//! timed (an idle keep-alive connection has its own limits). Both the fast path and hyper
//! write through this wrapper, so a client that stops reading a hit, a fill or a pass is cut
//! alike; what it held (hyper's write queue, a fill reader) is dropped with the connection.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The error a stalled write fails with (inside an `io::Error` of kind `TimedOut`).
#[derive(Debug, thiserror::Error)]
#[error("client took no response bytes for send_timeout")]
pub struct SendTimedOut;

/// True if `e` (or an error in its source chain) is a send timeout of this wrapper.
pub fn is_send_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if io.get_ref().is_some_and(|inner| inner.is::<SendTimedOut>()) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

/// A stream whose writes fail once they make no progress for `limit`.
pub struct SendTimeout<T> {
    inner: T,
    limit: Duration,
    /// Made at the first stall, reset at the next ones.
    timer: Option<Pin<Box<Sleep>>>,
    /// A write is stalled: the timer runs.
    stalled: bool,
}

impl<T> SendTimeout<T> {
    pub fn new(inner: T, limit: Duration) -> Self {
        SendTimeout {
            inner,
            limit,
            timer: None,
            stalled: false,
        }
    }

    /// Passes a `Ready` through (progress stops the clock); on `Pending` starts the clock if
    /// needed and fails once it has run for `limit`.
    fn guard<R>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if r.is_ready() {
            self.stalled = false;
            return r;
        }
        let deadline = Instant::now() + self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.stalled {
            self.stalled = true;
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.stalled = false;
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, SendTimedOut)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SendTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SendTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.guard(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.guard(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.guard(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.guard(cx, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMIT: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn a_write_that_makes_no_progress_times_out() {
        let (a, _b) = tokio::io::duplex(1024);
        let mut w = SendTimeout::new(a, LIMIT);
        w.write_all(&[1; 1024]).await.expect("fits the pipe");
        let started = Instant::now();
        let e = w.write_all(&[2; 10]).await.expect_err("nobody reads");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(is_send_timeout(&e));
        assert_eq!(started.elapsed(), LIMIT);
    }

    #[tokio::test(start_paused = true)]
    async fn progress_restarts_the_clock() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut w = SendTimeout::new(a, LIMIT);
        let reader = tokio::spawn(async move {
            // Takes 512 bytes every 20 s: slower than the writer, never stalled for 30 s.
            let mut got = 0;
            let mut buf = [0u8; 512];
            while got < 8 * 1024 {
                tokio::time::sleep(Duration::from_secs(20)).await;
                b.read_exact(&mut buf).await.expect("read");
                got += buf.len();
            }
            got
        });
        w.write_all(&[3; 8 * 1024])
            .await
            .expect("a slow reader is not cut");
        assert_eq!(reader.await.ok(), Some(8 * 1024));
    }

    #[test]
    fn other_timeouts_are_not_send_timeouts() {
        let e = io::Error::new(io::ErrorKind::TimedOut, "kernel");
        assert!(!is_send_timeout(&e));
    }
}
