//! Lingering close. A client connection the node ends while the client may still be sending
//! (an answer given before the request's body was read: a 413 for a chunk size over
//! `max_request_body`, an origin's early refusal of an upload) is not simply closed: closing a
//! socket with unread bytes makes the kernel reset the connection, and a client still writing
//! its body then sees its write fail, often before it reads the answer (RFC 9112 §9.6).
//!
//! Contract ([`Lingering`]): `poll_shutdown` sends the FIN (the inner shutdown) and then, only
//! when bytes are already waiting unread at that moment, reads and drops what the client sends
//! until it closes its side, for at most [`LINGER_TIME`] and [`LINGER_BYTES`]; then it
//! completes and the socket is closed by its owner. A connection with nothing waiting (every
//! ordinary close) completes at once. A read error ends the draining quietly. Reads and writes
//! before the shutdown pass through unchanged.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use std::future::Future;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// The longest a closing connection is drained.
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// The most bytes a closing connection is drained of.
pub const LINGER_BYTES: usize = 4 * 1024 * 1024;
/// Bytes read (and dropped) at once while draining.
const SCRATCH: usize = 4096;

/// A stream that lingers when it is shut down (see the module doc).
pub struct Lingering<T> {
    inner: T,
    state: State,
}

enum State {
    Open,
    /// Shut for writing: reading what the client still sends. `until` is armed at the first
    /// byte drained (none waiting at the shutdown: done at once).
    Draining {
        until: Option<Pin<Box<Sleep>>>,
        left: usize,
    },
    Done,
}

impl<T> Lingering<T> {
    pub fn new(inner: T) -> Self {
        Lingering {
            inner,
            state: State::Open,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Lingering<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<T> {
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
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Open => {
                    match Pin::new(&mut this.inner).poll_shutdown(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(e)) => {
                            this.state = State::Done;
                            return Poll::Ready(Err(e));
                        }
                        Poll::Ready(Ok(())) => {}
                    }
                    this.state = State::Draining {
                        until: None,
                        left: LINGER_BYTES,
                    };
                }
                State::Draining { until, left } => {
                    let mut scratch = [0u8; SCRATCH];
                    let mut read = ReadBuf::new(&mut scratch);
                    let done = match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                        // The client closed its side, or the bytes allowed are drained.
                        Poll::Ready(Ok(())) if read.filled().is_empty() => true,
                        Poll::Ready(Ok(())) => {
                            *left = left.saturating_sub(read.filled().len());
                            until.get_or_insert_with(|| Box::pin(tokio::time::sleep(LINGER_TIME)));
                            *left == 0
                        }
                        Poll::Ready(Err(_)) => true,
                        // Nothing was waiting at the shutdown: nothing to linger for.
                        Poll::Pending => match until {
                            None => true,
                            Some(t) => {
                                if t.as_mut().poll(cx).is_pending() {
                                    return Poll::Pending;
                                }
                                true
                            }
                        },
                    };
                    if done {
                        this.state = State::Done;
                    }
                }
                State::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_connection_with_nothing_waiting_closes_at_once() {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut a = Lingering::new(a);
        a.write_all(b"answer").await.unwrap();
        a.shutdown().await.unwrap();
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"answer");
    }

    #[tokio::test]
    async fn bytes_still_coming_are_drained_until_the_client_closes() {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut a = Lingering::new(a);
        // The client is mid-body when the answer goes out.
        b.write_all(&[1u8; 1000]).await.unwrap();
        a.write_all(b"413").await.unwrap();
        let client = tokio::spawn(async move {
            // It writes the rest of its body (more than the pipe holds: only a reader lets
            // it finish), then reads the answer and closes.
            b.write_all(&vec![2u8; 300_000]).await.unwrap();
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            drop(b);
            got
        });
        a.shutdown().await.unwrap();
        assert_eq!(client.await.unwrap(), b"413");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_stops_is_drained_for_linger_time_at_most() {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut a = Lingering::new(a);
        b.write_all(b"x").await.unwrap();
        // Trickles a byte a second, forever.
        tokio::spawn(async move {
            while b.write_all(b"x").await.is_ok() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let started = tokio::time::Instant::now();
        a.shutdown().await.unwrap();
        assert_eq!(started.elapsed(), LINGER_TIME);
    }

    #[tokio::test]
    async fn a_client_that_floods_is_drained_of_linger_bytes_at_most() {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut a = Lingering::new(a);
        b.write_all(b"x").await.unwrap();
        let sent = tokio::spawn(async move {
            let chunk = vec![0u8; 1 << 16];
            let mut sent = 0usize;
            while b.write_all(&chunk).await.is_ok() {
                sent += chunk.len();
                if sent > 4 * LINGER_BYTES {
                    break;
                }
            }
            sent
        });
        let shut = std::pin::pin!(a.shutdown());
        tokio::time::timeout(Duration::from_secs(10), shut)
            .await
            .expect("drained within the byte bound")
            .unwrap();
        drop(a);
        let sent = sent.await.unwrap();
        assert!(sent >= LINGER_BYTES, "{sent}");
        assert!(sent < LINGER_BYTES + 4 * (1 << 16), "{sent}");
    }
}
