//! A response body from an origin server, whichever client read its head: the node's own
//! HTTP/1.1 client (`h1`) or hyper's (requests with a client body).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::h1::LeanBody;

/// Boxed error of an origin body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An origin server's response body.
pub enum OriginBody {
    Lean(LeanBody),
    Hyper(Incoming),
}

impl Body for OriginBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            OriginBody::Lean(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            OriginBody::Hyper(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            OriginBody::Lean(b) => b.is_end_stream(),
            OriginBody::Hyper(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            OriginBody::Lean(b) => b.size_hint(),
            OriginBody::Hyper(b) => b.size_hint(),
        }
    }
}
