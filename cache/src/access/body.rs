//! A response body that counts what it yields and logs its request when dropped: after its
//! last frame was taken, or when the connection gave it up (a cut or a client gone). Off,
//! it is the body as it was, behind one `Option` check per frame.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::Request;
use crate::http::body::{BoxError, ProxyBody};
use crate::http::ctx::Ctx;

/// A [`ProxyBody`], tracked when the access log is on.
pub struct Logged {
    inner: ProxyBody,
    track: Option<Box<Tracking>>,
}

struct Tracking {
    ctx: Arc<Ctx>,
    start: Instant,
    record: Request,
}

impl Logged {
    /// Not tracked.
    pub fn plain(inner: ProxyBody) -> Logged {
        Logged { inner, track: None }
    }

    /// Tracked: `record` gets the bytes and the duration, and is logged on drop.
    pub(super) fn tracked(
        inner: ProxyBody,
        ctx: Arc<Ctx>,
        start: Instant,
        record: Request,
    ) -> Logged {
        Logged {
            inner,
            track: Some(Box::new(Tracking { ctx, start, record })),
        }
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some(t) = self.track.take() {
            let Tracking {
                ctx,
                start,
                mut record,
            } = *t;
            record.duration = start.elapsed();
            ctx.access.log(record);
        }
    }
}

impl Body for Logged {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let (Some(t), Some(Ok(f))) = (this.track.as_mut(), frame.as_ref()) {
            if let Some(d) = f.data_ref() {
                t.record.bytes += d.len() as u64;
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
