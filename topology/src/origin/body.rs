//! Response bodies of the test origin, and the connection wrapper that implements `cut=`.
//!
//! Contract:
//! * [`OriginBody`] yields its bytes in pieces of at most `piece` bytes, sleeping `pause`
//!   between pieces. Without a cut it then ends; its size hint is exact only when built with
//!   [`OriginBody::full`] (so hyper writes `Content-Length`, or chunked encoding otherwise).
//! * With a cut, it yields only its (already truncated) bytes, then arms the connection's
//!   [`CutSignal`] and stays pending forever. [`CutIo`] sees the armed signal on the next
//!   `poll_flush`, which hyper only reaches once every buffered byte has gone to the socket:
//!   it shuts the write side down (FIN) and fails, so hyper drops the connection. The client
//!   thus receives the head and exactly the first K body bytes, then end of stream.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Set by a cut body once its last byte is handed to hyper; read by [`CutIo`].
#[derive(Debug, Default)]
pub struct CutSignal {
    armed: AtomicBool,
}

impl CutSignal {
    /// Requests that the connection close after what is buffered now.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::Release);
    }

    /// Whether [`CutSignal::arm`] was called.
    pub fn is_armed(&self) -> bool {
        self.armed.load(Ordering::Acquire)
    }
}

/// A response body: whole, paced in pieces, or cut short.
pub struct OriginBody {
    data: Bytes,
    piece: usize,
    pause: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    exact: bool,
    cut: Option<Arc<CutSignal>>,
}

impl OriginBody {
    /// No body at all (HEAD, 304, 204).
    pub fn empty() -> Self {
        Self::full(Bytes::new())
    }

    /// One piece with an exact size hint.
    pub fn full(data: Bytes) -> Self {
        let piece = data.len().max(1);
        OriginBody {
            data,
            piece,
            pause: Duration::ZERO,
            sleep: None,
            exact: true,
            cut: None,
        }
    }

    /// Pieces of at most `piece` bytes with `pause` between them and no size hint, so hyper
    /// frames it with chunked encoding unless the response sets `Content-Length`.
    pub fn paced(data: Bytes, piece: usize, pause: Duration) -> Self {
        OriginBody {
            data,
            piece: piece.max(1),
            pause,
            sleep: None,
            exact: false,
            cut: None,
        }
    }

    /// Makes the body stop after its first `keep` bytes and arm `signal` (see the module doc).
    pub fn cut_after(mut self, keep: usize, signal: Arc<CutSignal>) -> Self {
        self.data.truncate(keep);
        self.exact = false;
        self.cut = Some(signal);
        self
    }
}

impl Body for OriginBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(sleep) = self.sleep.as_mut() {
            ready!(sleep.as_mut().poll(cx));
            self.sleep = None;
        }
        if !self.data.is_empty() {
            let n = self.piece.min(self.data.len());
            let chunk = self.data.split_to(n);
            if self.data.is_empty() {
                if let Some(signal) = &self.cut {
                    signal.arm();
                }
            } else if !self.pause.is_zero() {
                self.sleep = Some(Box::pin(tokio::time::sleep(self.pause)));
            }
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        match &self.cut {
            Some(signal) => {
                // Nothing more will come: CutIo closes the connection once the bytes are out.
                signal.arm();
                Poll::Pending
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty() && self.cut.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        if self.exact {
            SizeHint::with_exact(self.data.len() as u64)
        } else {
            SizeHint::default()
        }
    }
}

/// A connection that closes itself when its [`CutSignal`] is armed (see the module doc).
pub struct CutIo<T> {
    inner: T,
    signal: Arc<CutSignal>,
}

impl<T> CutIo<T> {
    /// Wraps `inner`; `signal` is shared with the bodies of this connection's responses.
    pub fn new(inner: T, signal: Arc<CutSignal>) -> Self {
        CutIo { inner, signal }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CutIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CutIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        if !self.signal.is_armed() {
            return Poll::Ready(Ok(()));
        }
        ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "response body cut short on purpose (cut=)",
        )))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn frames(mut body: OriginBody) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            out.push(frame.unwrap().into_data().unwrap());
        }
        out
    }

    #[tokio::test]
    async fn full_body_is_one_frame_with_exact_hint() {
        let body = OriginBody::full(Bytes::from_static(b"hello"));
        assert_eq!(body.size_hint().exact(), Some(5));
        assert!(!body.is_end_stream());
        assert_eq!(frames(body).await, vec![Bytes::from_static(b"hello")]);
        assert!(OriginBody::empty().is_end_stream());
        assert_eq!(OriginBody::empty().size_hint().exact(), Some(0));
    }

    #[tokio::test]
    async fn paced_body_splits_into_pieces_without_hint() {
        let body = OriginBody::paced(Bytes::from(vec![7u8; 10]), 4, Duration::from_millis(1));
        assert_eq!(body.size_hint().exact(), None);
        let lens: Vec<usize> = frames(body).await.iter().map(Bytes::len).collect();
        assert_eq!(lens, vec![4, 4, 2]);
    }

    // The paused clock: "stays pending" is checked against a virtual 50 ms (20 ms below),
    // which passes at once and cannot be cut short by a busy machine.
    #[tokio::test(start_paused = true)]
    async fn cut_body_arms_after_its_last_byte_and_never_ends() {
        let signal = Arc::new(CutSignal::default());
        let mut body = OriginBody::paced(Bytes::from(vec![1u8; 10]), 4, Duration::ZERO)
            .cut_after(6, signal.clone());
        assert!(!body.is_end_stream());
        assert_eq!(
            body.frame()
                .await
                .unwrap()
                .unwrap()
                .into_data()
                .unwrap()
                .len(),
            4
        );
        assert!(!signal.is_armed());
        assert_eq!(
            body.frame()
                .await
                .unwrap()
                .unwrap()
                .into_data()
                .unwrap()
                .len(),
            2
        );
        assert!(signal.is_armed());
        let more = tokio::time::timeout(Duration::from_millis(50), body.frame()).await;
        assert!(more.is_err(), "a cut body must stay pending");
    }

    #[tokio::test(start_paused = true)]
    async fn cut_to_zero_arms_on_first_poll() {
        let signal = Arc::new(CutSignal::default());
        let mut body = OriginBody::full(Bytes::from_static(b"abc")).cut_after(0, signal.clone());
        let more = tokio::time::timeout(Duration::from_millis(20), body.frame()).await;
        assert!(more.is_err());
        assert!(signal.is_armed());
    }

    #[tokio::test]
    async fn cut_io_passes_through_until_armed_then_closes() {
        let (a, mut b) = tokio::io::duplex(1024);
        let signal = Arc::new(CutSignal::default());
        let mut io = CutIo::new(a, signal.clone());
        io.write_all(b"head").await.unwrap();
        io.flush().await.unwrap();
        signal.arm();
        io.write_all(b"body").await.unwrap();
        let err = io.flush().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"headbody");
    }
}
