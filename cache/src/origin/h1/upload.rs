//! Requests that carry a body, on the node's own client: the head is written, then the body's
//! frames as they come (never the whole body held), while the response head is read on the
//! same connection.
//!
//! Contract:
//! * With the client's `Content-Length`, the frames must add up to it: more, or fewer at the
//!   body's end, fails the exchange (hyper's server already holds the client to it; this is
//!   the node's own check, not the origin's fault). Without one, the body is sent chunked,
//!   each non-empty frame one chunk, `0\r\n\r\n` at its end. Small frames already there are
//!   sent together (one chunk, one write, up to [`GATHER_MAX`]), however the client cut its
//!   body. Trailers are not sent (the
//!   `Trailer` field is hop-by-hop and never forwarded, so none were announced).
//! * The head goes out with the first frame in one write when that frame is already there,
//!   else alone before the node waits for the client.
//! * A final response that comes before the whole body was sent is taken, and the connection
//!   is not reused (the origin was not done with the request). An error answer (4xx, 5xx)
//!   stops the sending at once: the origin does not want the rest (RFC 9112 §9.5). Any other
//!   keeps it going to the body's end before the answer is handed on, so an origin that
//!   answers first and reads the rest after still gets it. A write that fails (the origin
//!   answered and closed) stops the sending, and the answer, if one comes, is still read.
//! * The connection is reused only when the body was fully sent before the final head came
//!   (and, as for every answer, the response body was read to its end).
//! * A failure of the client's body ends the exchange at once (`Upload` has published the
//!   client's fault, which the pool reads before blaming the origin).
//! * A request may go again on a new connection only when its kept connection failed before
//!   any response byte and before any frame of the body was taken (`Resend`).

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use bytes::{Buf, Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::conn::{read_head, Conn, ExchangeError};
use super::head::Head;
use crate::interim::InterimSink;

/// How a request body goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// The client's `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`, encoded here.
    Chunked,
}

impl BodyFraming {
    /// Whether the head alone is an incomplete request (a server that saw only the head
    /// cannot have acted on it).
    pub fn expects_bytes(self) -> bool {
        !matches!(self, BodyFraming::Length(0))
    }
}

/// Frames that do not fit the request's `Content-Length`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LengthError {
    #[error("request body longer than its Content-Length {0}")]
    TooLong(u64),
    #[error("request body ended {0} bytes short of its Content-Length")]
    Short(u64),
}

/// The framing of one request body: counts the bytes against `Content-Length`, or makes the
/// chunk lines.
#[derive(Debug)]
pub struct Encoder {
    framing: BodyFraming,
    sent: u64,
}

/// What goes around one data frame on the wire.
#[derive(Debug)]
pub struct Wrap {
    line: [u8; 18],
    line_len: usize,
    pub suffix: &'static [u8],
}

impl Wrap {
    /// The bytes before the frame's data (a chunk's size line).
    pub fn prefix(&self) -> &[u8] {
        &self.line[..self.line_len]
    }
}

/// The end of a chunked body (no trailers).
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

impl Encoder {
    pub fn new(framing: BodyFraming) -> Encoder {
        Encoder { framing, sent: 0 }
    }

    /// A data frame of `len` (> 0) bytes: what to write around it.
    pub fn data(&mut self, len: usize) -> Result<Wrap, LengthError> {
        self.sent += len as u64;
        let mut wrap = Wrap {
            line: [0; 18],
            line_len: 0,
            suffix: b"",
        };
        match self.framing {
            BodyFraming::Length(n) if self.sent > n => Err(LengthError::TooLong(n)),
            BodyFraming::Length(_) => Ok(wrap),
            BodyFraming::Chunked => {
                let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1) as usize;
                for i in 0..digits {
                    let nibble = (len >> (4 * (digits - 1 - i))) & 0xf;
                    wrap.line[i] = b"0123456789abcdef"[nibble];
                }
                wrap.line[digits..digits + 2].copy_from_slice(b"\r\n");
                wrap.line_len = digits + 2;
                wrap.suffix = b"\r\n";
                Ok(wrap)
            }
        }
    }

    /// The body's end: what to write after the last frame.
    pub fn end(&self) -> Result<&'static [u8], LengthError> {
        match self.framing {
            BodyFraming::Length(n) if self.sent < n => Err(LengthError::Short(n - self.sent)),
            BodyFraming::Length(_) => Ok(b""),
            BodyFraming::Chunked => Ok(LAST_CHUNK),
        }
    }
}

/// Why the sending of a request stopped short.
enum SendError {
    Io(std::io::Error),
    Body(String),
    Length(LengthError),
}

/// Write `head`, then `body` as `framing` says (just the head when `None`). `taken` is set
/// once anything of the body (a frame, or its end) was taken from it.
async fn send<W, B>(
    wr: &mut W,
    head: &[u8],
    body: &mut B,
    framing: Option<BodyFraming>,
    taken: &AtomicBool,
) -> Result<(), SendError>
where
    W: AsyncWrite + Unpin,
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let Some(framing) = framing else {
        return wr.write_all(head).await.map_err(SendError::Io);
    };
    let mut enc = Encoder::new(framing);
    // Not yet written: the head waits for the first frame if that one is already here.
    let mut head = Some(head);
    // A frame taken while gathering small ones, not sent yet (the body's end, or its failure).
    let mut next = None;
    loop {
        let frame = match (next.take(), head) {
            (Some(f), _) => f,
            (None, Some(h)) => {
                let ready =
                    poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut *body).poll_frame(cx)));
                match ready.await {
                    Poll::Ready(f) => f,
                    Poll::Pending => {
                        wr.write_all(h).await.map_err(SendError::Io)?;
                        head = None;
                        body.frame().await
                    }
                }
            }
            (None, None) => body.frame().await,
        };
        let before = head.take().unwrap_or(b"");
        match frame {
            None => {
                taken.store(true, Ordering::Relaxed);
                let end = enc.end().map_err(SendError::Length)?;
                let mut out = before.chain(end);
                return wr.write_all_buf(&mut out).await.map_err(SendError::Io);
            }
            Some(Err(e)) => return Err(SendError::Body(e.to_string())),
            Some(Ok(frame)) => {
                taken.store(true, Ordering::Relaxed);
                let data = match frame.into_data() {
                    Ok(d) if !d.is_empty() => d,
                    // Trailers (none announced), or an empty frame (an empty chunk would end
                    // the body).
                    _ => Bytes::new(),
                };
                if data.is_empty() {
                    if !before.is_empty() {
                        wr.write_all(before).await.map_err(SendError::Io)?;
                    }
                    continue;
                }
                // Chunked: a frame per chunk the client sent. (A length's frames are reads.)
                let data = if framing == BodyFraming::Chunked && data.len() < GATHER_MAX {
                    gather(body, data, &mut next).await
                } else {
                    data
                };
                let wrap = enc.data(data.len()).map_err(SendError::Length)?;
                let mut out = before.chain(wrap.prefix()).chain(data).chain(wrap.suffix);
                wr.write_all_buf(&mut out).await.map_err(SendError::Io)?;
            }
        }
    }
}

/// Data smaller than this goes on with the frames already there after it, in one chunk and
/// one write of up to this much (copied): a client that cuts its body into tiny chunks costs
/// no more writes upstream than one that does not (before, 65,536 one-byte chunks took as
/// many writes: some 0.4 s of the node's CPU per request).
pub const GATHER_MAX: usize = 16 * 1024;

/// `first`, with the data of the frames that are already there after it, up to
/// [`GATHER_MAX`]; a frame that is not data (the body's end, its failure) is left in `next`.
async fn gather<B>(
    body: &mut B,
    first: Bytes,
    next: &mut Option<Option<Result<http_body::Frame<Bytes>, B::Error>>>,
) -> Bytes
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut more: Option<BytesMut> = None;
    let mut yielded = false;
    loop {
        let ready = poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut *body).poll_frame(cx))).await;
        match ready {
            // A body fed by another task (hyper's connection, which reads on only once the
            // last frame was taken) gets one turn to bring the next.
            Poll::Pending if !yielded => {
                yielded = true;
                tokio::task::yield_now().await;
            }
            Poll::Pending => break,
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(d) if !d.is_empty() => {
                    let m = more.get_or_insert_with(|| {
                        let mut m = BytesMut::with_capacity(GATHER_MAX);
                        m.extend_from_slice(&first);
                        m
                    });
                    m.extend_from_slice(&d);
                    yielded = false;
                    if m.len() >= GATHER_MAX {
                        break;
                    }
                }
                // An empty frame or trailers: skipped, as `send` skips them.
                _ => {}
            },
            Poll::Ready(end) => {
                *next = Some(end);
                break;
            }
        }
    }
    more.map_or(first, BytesMut::freeze)
}

/// Whether a failed exchange may go again on a new connection: nothing of the response
/// arrived and nothing of the body was taken.
pub(super) type Resend = bool;

impl Conn {
    /// Write the request (`head`, then `body` as `framing` says) and read the final response
    /// head; also whether the whole request went out before it (the connection may be reused).
    pub(super) async fn request_with_body<B>(
        &mut self,
        head: &[u8],
        body: &mut B,
        framing: Option<BodyFraming>,
        (head_request, raw): (bool, bool),
        interim: Option<&InterimSink>,
    ) -> Result<(Head, bool), (ExchangeError, Resend)>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let taken = AtomicBool::new(false);
        let (mut rd, mut wr) = self.io.split();
        let sending = send(&mut wr, head, body, framing, &taken);
        let reading = read_head(&mut rd, &mut self.buf, head_request, raw, interim);
        exchange(sending, reading, &taken).await
    }
}

/// Run the sending and the reading of one exchange together: the final head ends it.
async fn exchange<S, R>(
    sending: S,
    reading: R,
    taken: &AtomicBool,
) -> Result<(Head, bool), (ExchangeError, Resend)>
where
    S: std::future::Future<Output = Result<(), SendError>>,
    R: std::future::Future<Output = Result<Head, (ExchangeError, bool)>>,
{
    tokio::pin!(sending, reading);
    let mut open = true;
    let mut write_error = None;
    loop {
        tokio::select! {
            biased;
            r = &mut reading => {
                let complete = !open && write_error.is_none();
                if let (Ok(h), true) = (&r, open) {
                    if !h.status.is_client_error() && !h.status.is_server_error() {
                        // An early answer that is not a refusal: the rest of the body still
                        // goes (the connection is not reused either way).
                        match sending.await {
                            Ok(()) | Err(SendError::Io(_)) => {}
                            Err(SendError::Body(e)) => {
                                return Err((ExchangeError::Upload(e), false))
                            }
                            Err(SendError::Length(e)) => {
                                return Err((ExchangeError::Length(e), false))
                            }
                        }
                    }
                }
                return match r {
                    Ok(h) => Ok((h, complete)),
                    Err((e, received)) => {
                        let e = match write_error {
                            Some(w) if !received => ExchangeError::Io(w),
                            _ => e,
                        };
                        Err((e, !received && !taken.load(Ordering::Relaxed)))
                    }
                };
            }
            s = &mut sending, if open => {
                open = false;
                match s {
                    Ok(()) => {}
                    // The origin may have answered and closed: its answer is still read.
                    Err(SendError::Io(e)) => write_error = Some(e),
                    Err(SendError::Body(e)) => return Err((ExchangeError::Upload(e), false)),
                    Err(SendError::Length(e)) => return Err((ExchangeError::Length(e), false)),
                }
            }
        }
    }
}

/// Write `head` and a body in the pieces `frames`, as `framing` says, to a buffer (tests).
#[cfg(test)]
pub(super) fn encode_all(
    head: &[u8],
    frames: &[&[u8]],
    framing: BodyFraming,
) -> Result<Vec<u8>, LengthError> {
    let mut out = head.to_vec();
    let mut enc = Encoder::new(framing);
    for f in frames.iter().filter(|f| !f.is_empty()) {
        let w = enc.data(f.len())?;
        out.extend_from_slice(w.prefix());
        out.extend_from_slice(f);
        out.extend_from_slice(w.suffix);
    }
    out.extend_from_slice(enc.end()?);
    Ok(out)
}

/// A reader that never yields (tests of the sending alone).
#[cfg(test)]
pub(super) async fn send_to_vec<B>(
    head: &[u8],
    body: &mut B,
    framing: Option<BodyFraming>,
) -> (Vec<u8>, Result<(), String>)
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut out = Vec::new();
    let taken = AtomicBool::new(false);
    let r = send(&mut out, head, body, framing, &taken).await;
    let r = r.map_err(|e| match e {
        SendError::Io(e) => e.to_string(),
        SendError::Body(e) => e,
        SendError::Length(e) => e.to_string(),
    });
    (out, r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    #[test]
    fn chunks_are_sized_in_hex_and_the_body_ends_with_a_last_chunk() {
        let out = encode_all(
            b"H\r\n\r\n",
            &[b"hello", b"", &[b'x'; 26]],
            BodyFraming::Chunked,
        )
        .unwrap();
        let want = [
            &b"H\r\n\r\n5\r\nhello\r\n1a\r\n"[..],
            &[b'x'; 26],
            b"\r\n0\r\n\r\n",
        ]
        .concat();
        assert_eq!(out, want);
    }

    #[test]
    fn chunk_size_lines_cover_every_length() {
        for (len, line) in [
            (1usize, "1\r\n"),
            (15, "f\r\n"),
            (16, "10\r\n"),
            (4096, "1000\r\n"),
            (1 << 20, "100000\r\n"),
            (usize::MAX, "ffffffffffffffff\r\n"),
        ] {
            let w = Encoder::new(BodyFraming::Chunked).data(len).unwrap();
            assert_eq!(w.prefix(), line.as_bytes(), "{len}");
            assert_eq!(w.suffix, b"\r\n");
        }
    }

    #[test]
    fn a_length_body_is_sent_as_it_is_and_must_add_up() {
        let out = encode_all(b"H", &[b"ab", b"cd"], BodyFraming::Length(4)).unwrap();
        assert_eq!(out, b"Habcd");
        assert_eq!(
            encode_all(b"H", &[b"ab", b"cde"], BodyFraming::Length(4)),
            Err(LengthError::TooLong(4))
        );
        assert_eq!(
            encode_all(b"H", &[b"ab"], BodyFraming::Length(4)),
            Err(LengthError::Short(2))
        );
        assert_eq!(encode_all(b"H", &[], BodyFraming::Length(0)).unwrap(), b"H");
    }

    #[test]
    fn only_a_head_without_its_body_is_incomplete() {
        assert!(BodyFraming::Chunked.expects_bytes());
        assert!(BodyFraming::Length(1).expects_bytes());
        assert!(!BodyFraming::Length(0).expects_bytes());
    }

    type Frames = http_body_util::StreamBody<
        futures_util::stream::Iter<std::vec::IntoIter<Result<http_body::Frame<Bytes>, Infallible>>>,
    >;

    fn frames(parts: &[&'static [u8]]) -> Frames {
        let v: Vec<_> = parts
            .iter()
            .map(|p| Ok(http_body::Frame::data(Bytes::from_static(p))))
            .collect();
        http_body_util::StreamBody::new(futures_util::stream::iter(v))
    }

    #[tokio::test]
    async fn the_head_goes_with_the_frames_and_the_end() {
        // Frames already there go as one chunk (an empty one skipped).
        let mut b = frames(&[b"hello", b"", b" world"]);
        let (out, r) = send_to_vec(b"H\r\n\r\n", &mut b, Some(BodyFraming::Chunked)).await;
        r.unwrap();
        assert_eq!(out, b"H\r\n\r\nb\r\nhello world\r\n0\r\n\r\n");
        // Up to GATHER_MAX a chunk: 40,000 one-byte frames, the same bytes in 3 chunks.
        let many: Vec<&'static [u8]> = (0..40_000).map(|i| &b"0123456789"[i % 10..][..1]).collect();
        let mut b = frames(&many);
        let (out, r) = send_to_vec(b"H|", &mut b, Some(BodyFraming::Chunked)).await;
        r.unwrap();
        let body: Vec<u8> = many.concat();
        let mut want = b"H|4000\r\n".to_vec();
        want.extend_from_slice(&body[..GATHER_MAX]);
        want.extend_from_slice(b"\r\n4000\r\n");
        want.extend_from_slice(&body[GATHER_MAX..2 * GATHER_MAX]);
        want.extend_from_slice(format!("\r\n{:x}\r\n", 40_000 - 2 * GATHER_MAX).as_bytes());
        want.extend_from_slice(&body[2 * GATHER_MAX..]);
        want.extend_from_slice(b"\r\n0\r\n\r\n");
        assert!(out == want, "{:?}", String::from_utf8_lossy(&out[..40]));
        let mut b = frames(&[b"hello", b" world"]);
        let (out, r) = send_to_vec(b"H\r\n\r\n", &mut b, Some(BodyFraming::Length(11))).await;
        r.unwrap();
        assert_eq!(out, b"H\r\n\r\nhello world");
    }

    #[tokio::test]
    async fn frames_another_task_feeds_one_at_a_time_are_gathered_too() {
        // As hyper feeds a body: a task that makes the next frame only once the last was
        // taken (a channel of one).
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
        tokio::spawn(async move {
            for i in 0..1000u32 {
                let b = Bytes::from(vec![b'a' + (i % 26) as u8]);
                if tx.send(b).await.is_err() {
                    return;
                }
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            let b = rx.recv().await?;
            Some((Ok::<_, Infallible>(http_body::Frame::data(b)), rx))
        });
        let mut b = http_body_util::StreamBody::new(Box::pin(stream));
        let (out, r) = send_to_vec(b"H|", &mut b, Some(BodyFraming::Chunked)).await;
        r.unwrap();
        let body: Vec<u8> = (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut want = b"H|3e8\r\n".to_vec();
        want.extend_from_slice(&body);
        want.extend_from_slice(b"\r\n0\r\n\r\n");
        assert!(
            out == want,
            "{:?}",
            String::from_utf8_lossy(&out[..out.len().min(60)])
        );
    }

    #[tokio::test]
    async fn frames_past_the_length_stop_the_sending() {
        let mut b = frames(&[b"hello", b" world"]);
        let (out, r) = send_to_vec(b"H|", &mut b, Some(BodyFraming::Length(5))).await;
        assert_eq!(out, b"H|hello");
        assert!(
            r.unwrap_err().contains("longer"),
            "the second frame is not sent"
        );
        let mut b = frames(&[b"hel"]);
        let (_, r) = send_to_vec(b"H|", &mut b, Some(BodyFraming::Length(5))).await;
        assert!(r.unwrap_err().contains("short"));
    }

    #[tokio::test]
    async fn without_framing_only_the_head_is_written() {
        let mut b = frames(&[]);
        let (out, r) = send_to_vec(b"H|", &mut b, None).await;
        r.unwrap();
        assert_eq!(out, b"H|");
    }
}
