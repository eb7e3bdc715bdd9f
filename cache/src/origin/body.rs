//! A response body from an origin server, whichever client read its head: the node's own
//! HTTP/1.1 client (`h1`) or hyper's (requests with a client body).
//!
//! Contract: a body that fails (a bad chunk, a close before its length, a reset) after its
//! head was taken is the origin server's fault, counted once where it is seen, here: the
//! server's `errors`, the node's `origin_errors` and a passive-ejection failure, and one
//! warning. By then the head may have gone to a client, so no 502 can replace it; whoever
//! reads the body cuts what it sends where it can never look complete (`http::lite`,
//! `http::body`) and stores nothing (`http::fill::drive`). A failure that follows the
//! client's own upload failing is the client's, and blames nobody here.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::h1::LeanBody;
use super::pool::Server;
use super::upload::{client_fault, UploadWatch};
use crate::stats::{bump, Counters};

/// Boxed error of an origin body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An origin server's response body.
pub struct OriginBody {
    inner: Inner,
    /// Who answers for a failure; taken at the first one.
    blame: Option<Box<Blame>>,
}

enum Inner {
    Lean(LeanBody),
    Hyper(Incoming),
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
}

impl Blame {
    fn charge(self, error: &dyn std::fmt::Display) {
        if self.upload.as_ref().and_then(client_fault).is_some() {
            return;
        }
        bump(&self.server.errors);
        bump(&self.counters.origin_errors);
        tracing::warn!(pool = %self.pool, server = %self.server.addr, error = %error,
            "origin body broken after its head: cut short, not stored");
        let (failures, backoff) = self.passive;
        if failures > 0 {
            let ejected =
                self.server
                    .health
                    .lock()
                    .on_response(true, failures, backoff, Instant::now());
            if ejected {
                tracing::warn!(pool = %self.pool, server = %self.server.addr, backoff = ?backoff,
                    "server ejected after consecutive failed requests");
            }
        }
    }
}

impl OriginBody {
    /// A body read by the node's own client.
    pub fn lean(body: LeanBody) -> OriginBody {
        OriginBody {
            inner: Inner::Lean(body),
            blame: None,
        }
    }

    /// A body read by hyper's client.
    pub fn hyper(body: Incoming) -> OriginBody {
        OriginBody {
            inner: Inner::Hyper(body),
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
        let polled = match &mut this.inner {
            Inner::Lean(b) => Pin::new(b).poll_frame(cx).map_err(BoxError::from),
            Inner::Hyper(b) => Pin::new(b).poll_frame(cx).map_err(BoxError::from),
        };
        if let Poll::Ready(Some(Err(e))) = &polled {
            if let Some(blame) = this.blame.take() {
                blame.charge(e);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Lean(b) => b.is_end_stream(),
            Inner::Hyper(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Lean(b) => b.size_hint(),
            Inner::Hyper(b) => b.size_hint(),
        }
    }
}
