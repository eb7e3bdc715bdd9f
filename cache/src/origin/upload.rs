//! A client's request body on its way to an origin server: bounded by `max_request_body`,
//! timed by `body_timeout` between frames, and able to say, when the upload fails, that the
//! client is to blame.
//!
//! Contract:
//! * [`Upload`] passes the client's frames through unchanged, from hyper's body or from the
//!   connection loop's own reading of a `Content-Length` body ([`ClientBody::Raw`]). It fails the stream with the
//!   client's [`Fault`] when the body breaks its framing (`ClientBadBody`), when the client goes
//!   away mid-body (`ClientAborted`), when the bytes cross the limit (`ClientBodyTooLarge`), or
//!   when the client sends nothing for `body_timeout` while the upload waits on it
//!   (`ClientBodyTimeout`).
//! * Its [`Progress`] is published on a watch channel before the failure is returned, so the
//!   sender that sees the origin request fail reads the client's fault first and never blames
//!   the origin server for it.
//! * [`origin_deadline`] is the origin's time to answer: it runs only while the upload is not
//!   waiting on the client (the origin is not pulling bytes, or the body is complete).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use crate::fault::Fault;

/// Where an upload stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Handed a frame on (or not started): the origin side decides when the next is asked for.
    Sending,
    /// Asked for the next frame; the client has not sent it yet.
    Waiting,
    /// The whole body went through.
    Done,
    /// The client broke the upload.
    Failed(Fault),
}

/// The upload's stage and how many frames went through (so that a frame counts as progress).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub stage: Stage,
    pub frames: u64,
}

/// Reads an upload's progress.
pub type UploadWatch = watch::Receiver<Progress>;

/// Where a client's request body comes from.
pub enum ClientBody<'a> {
    /// hyper's server read the request.
    Hyper(Incoming),
    /// The connection's own loop read the head; the body is read from its socket.
    Raw(super::raw_body::RawBody<'a>),
}

/// A piece of the client's body, or the client's fault.
type Polled = Poll<Option<Result<Frame<Bytes>, Fault>>>;

impl ClientBody<'_> {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Polled {
        match self {
            ClientBody::Hyper(inner) => match Pin::new(inner).poll_frame(cx) {
                Poll::Ready(Some(Err(e))) => {
                    let fault = classify(&e);
                    tracing::debug!(error = ?e, fault = fault.as_str(), "client request body failed");
                    Poll::Ready(Some(Err(fault)))
                }
                Poll::Ready(Some(Ok(f))) => Poll::Ready(Some(Ok(f))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            ClientBody::Raw(raw) => raw.poll_data(cx).map(|d| d.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Hyper(inner) => inner.is_end_stream(),
            ClientBody::Raw(raw) => raw.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Hyper(inner) => inner.size_hint(),
            ClientBody::Raw(raw) => raw
                .remaining()
                .map_or_else(SizeHint::default, SizeHint::with_exact),
        }
    }
}

/// The client's request body, bounded and timed.
pub struct Upload<'a> {
    inner: ClientBody<'a>,
    sent: u64,
    max: u64,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    armed: bool,
    progress: watch::Sender<Progress>,
}

impl<'a> Upload<'a> {
    /// Wrap `inner`; `max` bytes at most, `idle` at most between frames.
    pub fn new(inner: ClientBody<'a>, max: u64, idle: Duration) -> (Upload<'a>, UploadWatch) {
        let (tx, rx) = watch::channel(Progress {
            stage: Stage::Sending,
            frames: 0,
        });
        let up = Upload {
            inner,
            sent: 0,
            max,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            armed: false,
            progress: tx,
        };
        (up, rx)
    }

    fn set(&self, stage: Stage, frame: bool) {
        self.progress.send_modify(|p| {
            p.stage = stage;
            p.frames += u64::from(frame);
        });
    }

    fn fail(&self, fault: Fault) -> Poll<Option<Result<Frame<Bytes>, Box<UploadError>>>> {
        self.set(Stage::Failed(fault), false);
        Poll::Ready(Some(Err(Box::new(UploadError(fault)))))
    }
}

/// The client's fault, as the body error the origin request sees.
#[derive(Debug, thiserror::Error)]
#[error("client request body: {}", .0.as_str())]
pub struct UploadError(pub Fault);

/// The fault of a client body read error: the client went away (the connection ended or was
/// reset mid-body), timed out, declared a chunk over `max_request_body` (`chunk_limit`), or
/// broke the framing (anything else hyper's decoder refuses).
pub fn classify(e: &hyper::Error) -> Fault {
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        return Fault::ClientAborted;
    }
    if e.is_timeout() {
        return Fault::ClientBodyTimeout;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if crate::fault::is_chunk_too_large(io) {
                return Fault::ClientBodyTooLarge;
            }
            return match io.kind() {
                UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => {
                    Fault::ClientAborted
                }
                TimedOut => Fault::ClientBodyTimeout,
                _ => Fault::ClientBadBody,
            };
        }
        source = s.source();
    }
    Fault::ClientBadBody
}

impl Body for Upload<'_> {
    type Data = Bytes;
    type Error = Box<UploadError>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Stage::Failed(f) = this.progress.borrow().stage {
            return Poll::Ready(Some(Err(Box::new(UploadError(f)))));
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                    if this.sent > this.max {
                        return this.fail(Fault::ClientBodyTooLarge);
                    }
                }
                this.armed = false;
                this.set(Stage::Sending, true);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(fault))) => this.fail(fault),
            Poll::Ready(None) => {
                this.set(Stage::Done, false);
                Poll::Ready(None)
            }
            Poll::Pending => {
                if !this.armed {
                    this.armed = true;
                    this.timer.as_mut().reset(Instant::now() + this.idle);
                    this.set(Stage::Waiting, false);
                }
                match this.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => this.fail(Fault::ClientBodyTimeout),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The client's fault, once the upload has failed.
pub fn client_fault(w: &UploadWatch) -> Option<Fault> {
    match w.borrow().stage {
        Stage::Failed(f) => Some(f),
        _ => None,
    }
}

/// Resolves when the origin has had `timeout` to answer: counted only while the upload does
/// not wait on the client (whose own `body_timeout` bounds that). Without an upload, it is
/// `timeout` from now.
pub async fn origin_deadline(upload: Option<UploadWatch>, timeout: Duration) {
    let Some(mut w) = upload else {
        return tokio::time::sleep(timeout).await;
    };
    loop {
        let stage = w.borrow_and_update().stage;
        match stage {
            Stage::Done | Stage::Failed(_) => return tokio::time::sleep(timeout).await,
            Stage::Waiting => {
                if w.changed().await.is_err() {
                    return tokio::time::sleep(timeout).await;
                }
            }
            Stage::Sending => {
                tokio::select! {
                    changed = w.changed() => if changed.is_err() {
                        return tokio::time::sleep(timeout).await;
                    },
                    _ = tokio::time::sleep(timeout) => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch_at(stage: Stage) -> (watch::Sender<Progress>, UploadWatch) {
        watch::channel(Progress { stage, frames: 0 })
    }

    #[tokio::test(start_paused = true)]
    async fn the_origin_clock_stops_while_the_client_is_slow() {
        let (tx, rx) = watch_at(Stage::Waiting);
        let started = Instant::now();
        let deadline = tokio::spawn(origin_deadline(Some(rx), Duration::from_secs(5)));
        // The client dawdles for 20 s: not the origin's time.
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert!(!deadline.is_finished());
        tx.send_modify(|p| p.stage = Stage::Done);
        deadline.await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(25));
    }

    #[tokio::test(start_paused = true)]
    async fn an_origin_that_stops_pulling_the_body_runs_out_of_time() {
        let (_tx, rx) = watch_at(Stage::Sending);
        let started = Instant::now();
        origin_deadline(Some(rx), Duration::from_secs(5)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn each_frame_pulled_restarts_the_origin_clock() {
        let (tx, rx) = watch_at(Stage::Sending);
        let started = Instant::now();
        let deadline = tokio::spawn(origin_deadline(Some(rx), Duration::from_secs(5)));
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(4)).await;
            tx.send_modify(|p| p.frames += 1);
        }
        tx.send_modify(|p| p.stage = Stage::Done);
        deadline.await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(17));
    }

    #[test]
    fn a_failed_upload_names_the_client_fault() {
        let (_tx, rx) = watch_at(Stage::Failed(Fault::ClientBodyTooLarge));
        assert_eq!(client_fault(&rx), Some(Fault::ClientBodyTooLarge));
        let (_tx, rx) = watch_at(Stage::Done);
        assert_eq!(client_fault(&rx), None);
    }
}
