//! A response body read straight from the origin connection, as its framing says; the
//! connection goes back to its server's idle list the moment the body's last byte is read
//! (when it may carry another request), and is closed when the body is dropped unfinished.
//!
//! Data frames are slices of the connection's read buffer (no copy).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::chunked::{ChunkError, Decoder, Step};
use super::conn::{Conn, Idle};
use super::head::Framing;

/// Largest read asked for at once.
const READ_MAX: usize = 64 * 1024;
/// Smallest read asked for.
const READ_MIN: usize = 8 * 1024;

/// Why a body could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("origin body: {0}")]
    Io(std::io::Error),
    #[error("origin closed the connection {0} bytes before the body's end")]
    Short(u64),
    #[error("origin closed the connection inside a chunked body")]
    ShortChunked,
    #[error("origin body: {0}")]
    Chunked(ChunkError),
}

enum State {
    Length(u64),
    Chunked(Decoder),
    UntilClose,
    Done,
}

/// The body of one response on a lean origin connection.
pub struct LeanBody {
    conn: Option<Conn>,
    home: Arc<Idle>,
    state: State,
    reusable: bool,
}

impl LeanBody {
    pub(super) fn new(conn: Conn, home: Arc<Idle>, framing: Framing, reusable: bool) -> LeanBody {
        let state = match framing {
            Framing::Empty => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Decoder::default()),
            Framing::UntilClose => State::UntilClose,
        };
        let mut body = LeanBody {
            conn: Some(conn),
            home,
            state,
            reusable,
        };
        if matches!(body.state, State::Done) {
            body.finish(true);
        }
        body
    }

    /// The body is read: the connection is kept when it may be reused and holds nothing
    /// more (bytes after the body would be a response nobody asked for).
    fn finish(&mut self, clean: bool) {
        self.state = State::Done;
        if let Some(conn) = self.conn.take() {
            if clean && self.reusable && conn.buf.is_empty() {
                self.home.checkin(conn);
            }
        }
    }

    fn fail(&mut self, e: BodyError) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.state = State::Done;
        self.conn = None;
        Poll::Ready(Some(Err(e)))
    }
}

impl Body for LeanBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let want = match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Length(left) => {
                    if !conn.buf.is_empty() {
                        let n = (*left).min(conn.buf.len() as u64) as usize;
                        let data = conn.buf.split_to(n).freeze();
                        *left -= n as u64;
                        if *left == 0 {
                            this.finish(true);
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    (*left).clamp(READ_MIN as u64, READ_MAX as u64) as usize
                }
                State::Chunked(d) => match d.step(&mut conn.buf) {
                    Ok(Step::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(Step::Done) => {
                        this.finish(true);
                        return Poll::Ready(None);
                    }
                    Ok(Step::More) => READ_MAX / 4,
                    Err(e) => return this.fail(BodyError::Chunked(e)),
                },
                State::UntilClose => {
                    if !conn.buf.is_empty() {
                        let data = conn.buf.split().freeze();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    READ_MAX / 4
                }
            };
            conn.buf.reserve(want);
            match ready!(poll_read(conn, cx)) {
                Ok(0) => {
                    return match this.state {
                        State::UntilClose => {
                            this.finish(false);
                            Poll::Ready(None)
                        }
                        State::Length(left) => this.fail(BodyError::Short(left)),
                        _ => this.fail(BodyError::ShortChunked),
                    };
                }
                Ok(_) => continue,
                Err(e) => return this.fail(BodyError::Io(e)),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Done => SizeHint::with_exact(0),
            State::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

/// Read what the socket has into the connection's buffer.
fn poll_read(conn: &mut Conn, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
    loop {
        match conn.io.try_read_buf(&mut conn.buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                ready!(conn.io.poll_read_ready(cx))?;
            }
            other => return Poll::Ready(other),
        }
    }
}
