//! Client socket wrapper: gathered writes of small responses go out as one `write`.
//!
//! hyper queues a response as separate buffers (head, then body `Bytes`) and writes them with
//! `writev`. For a small response one copy into a contiguous buffer plus `write` costs less
//! than the kernel's iovec handling (measured on 1 KiB hits); for large bodies the copy costs
//! more, so they keep `writev`.
//!
//! It also puts bytes already read back in front of the stream (`rewind`): how the fast path
//! hands a connection to the general path without losing what it read.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Gathered writes up to this many bytes are copied and sent with one `write`.
pub const FLATTEN_MAX: usize = 4 * 1024;

/// A stream whose small vectored writes are flattened, with read-ahead bytes put back.
pub struct FlattenSmall<T> {
    inner: T,
    scratch: Vec<u8>,
    /// Bytes read ahead and put back: reads return them before reading `inner` again.
    prefix: Bytes,
}

impl<T> FlattenSmall<T> {
    /// Wrap a stream.
    pub fn new(inner: T) -> Self {
        FlattenSmall {
            inner,
            scratch: Vec::new(),
            prefix: Bytes::new(),
        }
    }

    /// Put `prefix` back: the next reads return it first.
    pub fn rewind(&mut self, prefix: Bytes) {
        self.prefix = prefix;
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for FlattenSmall<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.prefix.has_remaining() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FlattenSmall<T> {
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
        let this = self.get_mut();
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if bufs.len() > 1 && total <= FLATTEN_MAX {
            this.scratch.clear();
            for b in bufs {
                this.scratch.extend_from_slice(b);
            }
            // `write` may take a prefix: the count refers to the same logical byte sequence.
            return Pin::new(&mut this.inner).poll_write(cx, &this.scratch);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn small_gathered_writes_arrive_whole_and_in_order() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let mut w = FlattenSmall::new(a);
        let big = vec![7u8; FLATTEN_MAX + 10];
        let bufs = [IoSlice::new(b"head "), IoSlice::new(b"body")];
        let n = w.write_vectored(&bufs).await.unwrap();
        assert_eq!(n, 9);
        let bufs = [IoSlice::new(b"x"), IoSlice::new(&big)];
        let mut sent = w.write_vectored(&bufs).await.unwrap();
        while sent < big.len() + 1 {
            sent += w.write(&big[sent - 1..]).await.unwrap();
        }
        drop(w);
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(&got[..9], b"head body");
        assert_eq!(got[9], b'x');
        assert_eq!(got.len(), 10 + big.len());
    }

    #[tokio::test]
    async fn rewound_bytes_are_read_before_the_stream() {
        let (a, mut b) = tokio::io::duplex(1024);
        b.write_all(b" world").await.unwrap();
        drop(b);
        let mut r = FlattenSmall::new(a);
        r.rewind(Bytes::from_static(b"hello"));
        let mut s = String::new();
        r.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "hello world");
    }
}
