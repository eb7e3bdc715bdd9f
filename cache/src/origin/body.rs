//! A response body from an origin server, as the node's own HTTP/1.1 client (`h1`) reads it.
//!
//! Contract: a body that fails (a bad chunk, a close before its length, a reset) after its
//! head was taken is the origin server's fault, counted once where it is seen, here: the
//! server's `errors`, the node's `origin_errors` and a passive-ejection failure, and one
//! warning. The request counts as a success for passive ejection only when its body did not
//! fail (it ended, or its reader let it go): a server that sends good heads and cuts every body
//! is ejected like one that fails outright. A head that already failed (5xx) was counted
//! there, once. By then the head may have gone to a client, so no 502 can replace it; whoever
//! reads the body cuts what it sends where it can never look complete (`http::lite`,
//! `http::body`) and stores nothing (`http::fill::drive`). A failure that follows the
//! client's own upload failing is the client's, and blames nobody here.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::h1::LeanBody;
use super::pool::Server;
use super::upload::{client_fault, UploadWatch};
use crate::stats::{bump, Counters};

/// Boxed error of an origin body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An origin server's response body.
pub struct OriginBody {
    inner: LeanBody,
    /// Who answers for a failure; taken at the first one.
    blame: Option<Box<Blame>>,
}

/// The server a body comes from, and what its failure counts against.
pub(super) struct Blame {
    pub server: Arc<Server>,
    pub pool: Arc<str>,
    pub counters: Arc<Counters>,
    /// The pool's passive ejection: consecutive failures, backoff.
    pub passive: (u32, std::time::Duration),
    /// The client's upload, when the request carried one.
    pub upload: Option<UploadWatch>,
    /// The head was a failure (5xx), counted as one already.
    pub head_failed: bool,
    /// The request's outcome is recorded (the body failed).
    pub settled: bool,
}

impl Blame {
    fn charge(&mut self, error: &dyn std::fmt::Display) {
        self.settled = true;
        if self.upload.as_ref().and_then(client_fault).is_some() {
            return;
        }
        bump(&self.counters.origin_errors);
        tracing::warn!(pool = %self.pool, server = %self.server.addr, error = %error,
            "origin body broken after its head: cut short, not stored");
        if !self.head_failed {
            bump(&self.server.errors);
            self.passive(true);
        }
    }

    /// Record the request's outcome for passive ejection.
    fn passive(&self, failed: bool) {
        let (failures, backoff) = self.passive;
        if failures == 0 {
            return;
        }
        let ejected =
            self.server
                .health
                .lock()
                .on_response(failed, failures, backoff, Instant::now());
        if ejected {
            tracing::warn!(pool = %self.pool, server = %self.server.addr, backoff = ?backoff,
                "server ejected after consecutive failed requests");
        }
    }
}

impl Drop for Blame {
    /// The body did not fail: a good head's request succeeded.
    fn drop(&mut self) {
        if !self.settled && !self.head_failed {
            self.passive(false);
        }
    }
}

impl OriginBody {
    /// A body read by the node's own client.
    pub fn lean(body: LeanBody) -> OriginBody {
        OriginBody {
            inner: body,
            blame: None,
        }
    }

    /// The same body, its failure charged to `blame`.
    pub(super) fn blaming(mut self, blame: Blame) -> OriginBody {
        self.blame = Some(Box::new(blame));
        self
    }
}

impl Body for OriginBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner)
            .poll_frame(cx)
            .map_err(BoxError::from);
        if let Poll::Ready(Some(Err(e))) = &polled {
            if let Some(mut blame) = this.blame.take() {
                blame.charge(e);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn blame(server: &Arc<Server>, counters: &Arc<Counters>, head_failed: bool) -> Blame {
        Blame {
            server: Arc::clone(server),
            pool: Arc::from("p"),
            counters: Arc::clone(counters),
            passive: (2, Duration::from_secs(10)),
            upload: None,
            head_failed,
            settled: false,
        }
    }

    #[test]
    fn bodies_that_break_eject_a_server_whose_heads_are_good() {
        let server = Arc::new(Server::new("127.0.0.1:1".parse().unwrap(), 1));
        let counters = Arc::new(Counters::default());
        // A broken body, then a whole one: the count starts over.
        blame(&server, &counters, false).charge(&"cut");
        drop(blame(&server, &counters, false));
        blame(&server, &counters, false).charge(&"cut");
        assert!(server.available(Instant::now()));
        // Two broken bodies in a row: ejected.
        blame(&server, &counters, false).charge(&"cut");
        assert!(!server.available(Instant::now()));
        assert_eq!(server.errors.load(std::sync::atomic::Ordering::Relaxed), 3);
        assert_eq!(
            counters
                .origin_errors
                .load(std::sync::atomic::Ordering::Relaxed),
            3
        );
    }

    #[test]
    fn a_failed_head_is_not_counted_twice() {
        let server = Arc::new(Server::new("127.0.0.1:1".parse().unwrap(), 1));
        let counters = Arc::new(Counters::default());
        blame(&server, &counters, true).charge(&"cut");
        drop(blame(&server, &counters, true));
        assert_eq!(server.errors.load(std::sync::atomic::Ordering::Relaxed), 0);
        assert!(
            server.available(Instant::now()),
            "no passive failure recorded here"
        );
    }
}
