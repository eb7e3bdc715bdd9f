//! Writing a body whose bytes may share a larger buffer (a lean remote hit's body stays in the
//! peer connection's read buffer, `cluster::peer`'s `share_payloads`): written at once when
//! the client takes it, the buffer is released as soon as the write is done; when the client
//! does not take it all at once, what is left is copied first, so that a slow client holds
//! its own body only, never a read buffer of other exchanges.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;

use bytes::Bytes;
use tokio::io::AsyncWrite;

/// Slices written by one call, at most.
const SLICES: usize = 8;

/// Writes `head` then `body`'s chunks, vectored; the first time the writer cannot take more
/// now, the body's unwritten bytes are copied into a buffer of their own before waiting.
/// Whether that copy was made.
pub async fn write_unsharing<W: AsyncWrite + Unpin>(
    io: &mut W,
    head: &[u8],
    body: &mut Vec<Bytes>,
) -> io::Result<bool> {
    let mut head_done = 0;
    // The chunk being written and the bytes of it already written.
    let (mut at, mut off) = (0, 0);
    let mut copied = false;
    loop {
        if head_done == head.len() {
            while at < body.len() && off == body[at].len() {
                at += 1;
                off = 0;
            }
            if at == body.len() {
                return Ok(copied);
            }
        }
        let n = poll_fn(|cx| {
            let polled = {
                let mut slices = [IoSlice::new(&[]); SLICES];
                let mut k = 0;
                if head_done < head.len() {
                    slices[0] = IoSlice::new(&head[head_done..]);
                    k = 1;
                }
                let mut skip = off;
                for chunk in body[at..].iter().take(SLICES - k) {
                    slices[k] = IoSlice::new(&chunk[skip..]);
                    skip = 0;
                    k += 1;
                }
                Pin::new(&mut *io).poll_write_vectored(cx, &slices[..k])
            };
            if polled.is_pending() && !copied {
                unshare(body, at, off);
                off = 0;
                copied = true;
            }
            polled
        })
        .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let mut n = n;
        let from_head = n.min(head.len() - head_done);
        head_done += from_head;
        n -= from_head;
        while n > 0 {
            let take = n.min(body[at].len() - off);
            if take == 0 && at + 1 == body.len() {
                // More written than was offered: a broken writer, never a loop.
                return Err(io::Error::other(
                    "the writer reported more than it was given",
                ));
            }
            off += take;
            n -= take;
            if off == body[at].len() && at + 1 < body.len() {
                at += 1;
                off = 0;
            }
        }
    }
}

/// Replaces the chunks from `at` on (the first without its first `off` bytes) by copies.
fn unshare(body: &mut Vec<Bytes>, at: usize, off: usize) {
    let left: usize = body[at..].iter().map(Bytes::len).sum::<usize>() - off;
    let mut own = Vec::with_capacity(left);
    for (i, chunk) in body[at..].iter().enumerate() {
        own.extend_from_slice(if i == 0 { &chunk[off..] } else { chunk });
    }
    body.truncate(at);
    body.push(Bytes::from(own));
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// `body` sliced out of one larger buffer, and that buffer.
    fn shared_body(sizes: &[usize]) -> (Bytes, Vec<Bytes>) {
        let total: usize = sizes.iter().sum();
        let buf = Bytes::from(
            (0..total + 1000)
                .map(|i| (i % 251) as u8)
                .collect::<Vec<_>>(),
        );
        let mut at = 500;
        let chunks = sizes
            .iter()
            .map(|&n| {
                at += n;
                buf.slice(at - n..at)
            })
            .collect();
        (buf, chunks)
    }

    fn expected(head: &[u8], body: &[Bytes]) -> Vec<u8> {
        let mut v = head.to_vec();
        for c in body {
            v.extend_from_slice(c);
        }
        v
    }

    #[tokio::test]
    async fn a_client_that_takes_it_all_gets_the_shared_bytes_without_a_copy() {
        let (_buf, mut body) = shared_body(&[3000, 5000]);
        let want = expected(b"HEAD", &body);
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        let copied = write_unsharing(&mut a, b"HEAD", &mut body).await.unwrap();
        assert!(!copied);
        drop(a);
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_client_that_stalls_holds_a_copy_of_what_is_left_only() {
        for sizes in [&[16384][..], &[1000, 7000, 9000], &[1; 20]] {
            let (buf, mut body) = shared_body(sizes);
            let want = expected(b"HTTP/1.1 200 OK\r\n\r\n", &body);
            // Room for a part of it: the writer waits for the reader.
            let (mut a, mut b) = tokio::io::duplex(4096.min(want.len() / 2));
            let reader = tokio::spawn(async move {
                let mut got = Vec::new();
                b.read_to_end(&mut got).await.unwrap();
                got
            });
            let copied = write_unsharing(&mut a, b"HTTP/1.1 200 OK\r\n\r\n", &mut body)
                .await
                .unwrap();
            assert!(copied, "{sizes:?}");
            let r = buf.as_ptr_range();
            let last = body.last().unwrap();
            assert!(!r.contains(&last.as_ptr()), "the rest is a copy");
            drop(a);
            assert_eq!(reader.await.unwrap(), want, "{sizes:?}");
        }
    }

    /// Says it wrote more than it was given.
    struct Liar;

    impl AsyncWrite for Liar {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            std::task::Poll::Ready(Ok(buf.len() + 5))
        }
        fn poll_flush(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_writer_that_reports_more_than_it_was_given_is_an_error_not_a_loop() {
        let mut body = vec![Bytes::from_static(b"body")];
        assert!(write_unsharing(&mut Liar, b"", &mut body).await.is_err());
    }

    #[tokio::test]
    async fn empty_chunks_and_an_empty_body_are_written_as_they_are() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let mut body = vec![Bytes::new(), Bytes::from_static(b"xy"), Bytes::new()];
        write_unsharing(&mut a, b"H", &mut body).await.unwrap();
        write_unsharing(&mut a, b"", &mut Vec::new()).await.unwrap();
        drop(a);
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"Hxy");
    }
}
