//! `limits.header_read_timeout` on connections hyper serves where hyper's own timer does not
//! reach: HTTP/2 (h2c prior knowledge) and the wait before hyper knows the protocol.
//!
//! hyper times a request head on HTTP/1.1 only. An HTTP/2 client could open a connection, send
//! the preface (or part of it, or a HEADERS frame without END_HEADERS) and nothing more, and
//! hold the connection for ever. So each connection handed to hyper has an [`Idle`]: it counts
//! the requests in flight (a [`Busy`] from the request's start until its response body is
//! done or dropped), and [`Idle::expired`] resolves once no request has been in flight for the
//! timeout, counted from the connection's start or the end of its last response. The caller
//! then closes the connection (`header_timeouts`).
//!
//! A connection whose first request is HTTP/1.x retires its `Idle` (hyper's
//! `header_read_timeout` covers it from then on, with the same value); `expired` never
//! resolves after that, and requests carry no [`Busy`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Version;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::watch;
use tokio::time::Instant;

/// Where a connection's wait stands.
#[derive(Clone, Copy, Debug)]
struct Wait {
    /// Requests in flight.
    active: usize,
    /// When the last request ended (or the connection started).
    since: Instant,
    /// HTTP/1.x: hyper's timer covers it.
    retired: bool,
}

/// One connection's wait for requests.
pub struct Idle(watch::Sender<Wait>);

/// A request in flight; its drop ends it.
pub struct Busy(Arc<Idle>);

impl Idle {
    /// A connection waiting since `since`.
    pub fn new(since: Instant) -> Arc<Idle> {
        Arc::new(Idle(watch::Sender::new(Wait {
            active: 0,
            since,
            retired: false,
        })))
    }

    /// A request of `version` starts: its [`Busy`], or None once the connection is HTTP/1.x.
    pub fn begin(self: &Arc<Self>, version: Version) -> Option<Busy> {
        if self.0.borrow().retired {
            return None;
        }
        if version < Version::HTTP_2 {
            self.0.send_modify(|w| w.retired = true);
            return None;
        }
        self.0.send_modify(|w| w.active += 1);
        Some(Busy(Arc::clone(self)))
    }

    /// Resolves when no request has been in flight for `timeout`; never once retired.
    pub async fn expired(&self, timeout: Duration) {
        let mut rx = self.0.subscribe();
        loop {
            let w = *rx.borrow_and_update();
            if w.retired {
                return std::future::pending().await;
            }
            if w.active > 0 {
                // The sender lives as long as `self`: changed() cannot fail here.
                let _ = rx.changed().await;
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep_until(w.since + timeout) => return,
                _ = rx.changed() => {}
            }
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0 .0.send_modify(|w| {
            w.active -= 1;
            if w.active == 0 {
                w.since = Instant::now();
            }
        });
    }
}

/// A response body that keeps its request [`Busy`] until it is done or dropped.
pub struct Held<B> {
    body: B,
    busy: Option<Busy>,
}

impl<B> Held<B> {
    pub fn new(body: B, busy: Option<Busy>) -> Held<B> {
        Held { body, busy }
    }
}

impl<B: Body + Unpin> Body for Held<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            this.busy = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_request_expires_after_the_timeout() {
        let start = Instant::now();
        let idle = Idle::new(start);
        idle.expired(T).await;
        assert_eq!(start.elapsed(), T);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_in_flight_hold_it_and_the_wait_restarts_at_their_end() {
        let start = Instant::now();
        let idle = Idle::new(start);
        let first = idle.begin(Version::HTTP_2).expect("h2 is watched");
        let second = idle.begin(Version::HTTP_2).expect("h2 is watched");
        let watch = {
            let idle = Arc::clone(&idle);
            tokio::spawn(async move { idle.expired(T).await })
        };
        tokio::time::sleep(T * 5).await;
        drop(first);
        tokio::time::sleep(T * 5).await;
        assert!(!watch.is_finished(), "a request is still in flight");
        drop(second);
        watch.await.unwrap();
        assert_eq!(start.elapsed(), T * 11);
    }

    #[tokio::test(start_paused = true)]
    async fn an_http1_connection_is_left_to_hyper() {
        let idle = Idle::new(Instant::now());
        assert!(idle.begin(Version::HTTP_11).is_none());
        assert!(idle.begin(Version::HTTP_2).is_none(), "retired for good");
        let waited = tokio::time::timeout(T * 100, idle.expired(T)).await;
        assert!(waited.is_err(), "never expires");
    }

    #[tokio::test]
    async fn a_body_ends_its_request_when_it_ends() {
        use http_body_util::BodyExt;
        let idle = Idle::new(Instant::now());
        let busy = idle.begin(Version::HTTP_2);
        let mut body = Held::new(http_body_util::Full::new(bytes::Bytes::from("x")), busy);
        assert_eq!(idle.0.borrow().active, 1);
        while let Some(frame) = body.frame().await {
            frame.unwrap();
        }
        assert_eq!(
            idle.0.borrow().active,
            0,
            "ended before the body is dropped"
        );
    }
}
