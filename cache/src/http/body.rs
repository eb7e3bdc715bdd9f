//! The response body type handed to hyper: one enum, no boxing on the hit path.

use std::pin::Pin;
use std::task::{Context, Poll};

use crate::origin::body::OriginBody;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::store::fill::FillReader;

use crate::store::object::FillHead;

/// Boxed error of a body stream.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every kind of body a node sends to a client.
pub enum ProxyBody {
    /// No body (HEAD, 304, 204).
    Empty,
    /// A complete body in memory (hits, generated pages). Zero-copy `Bytes`.
    Full(Option<Bytes>),
    /// Streamed from the origin as it arrives (passes, uncacheable responses).
    Upstream(OriginBody),
    /// Read while a fill writes it (misses and coalesced requests); `len` when known.
    Fill {
        reader: FillReader<FillHead>,
        len: Option<u64>,
    },
    /// A body that failed: its error, reported at the next poll (see `defer`).
    Failed(Option<BoxError>),
    /// A byte range of another body: skip `skip` bytes, then pass `remaining` bytes.
    Ranged {
        inner: Box<ProxyBody>,
        skip: u64,
        remaining: u64,
    },
}

impl ProxyBody {
    /// A complete in-memory body.
    pub fn full(b: impl Into<Bytes>) -> ProxyBody {
        ProxyBody::Full(Some(b.into()))
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match this.poll_inner(cx) {
            Poll::Ready(Some(Err(e))) if !matches!(this, ProxyBody::Failed(_)) => {
                defer(this, e, cx)
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Empty => true,
            ProxyBody::Full(b) => b.is_none(),
            ProxyBody::Upstream(inc) => inc.is_end_stream(),
            ProxyBody::Fill { .. } | ProxyBody::Failed(_) => false,
            ProxyBody::Ranged { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Empty => SizeHint::with_exact(0),
            ProxyBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ProxyBody::Upstream(inc) => inc.size_hint(),
            ProxyBody::Fill { len, .. } => match len {
                Some(n) => SizeHint::with_exact(*n),
                None => SizeHint::default(),
            },
            ProxyBody::Failed(_) => SizeHint::default(),
            ProxyBody::Ranged { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}

/// A body error is reported one poll late: the first time, the body says Pending (and wakes
/// itself), so hyper flushes the head and the bytes it has buffered before it sees the error
/// and cuts the connection. The client then gets what arrived, visibly cut short, rather than
/// nothing.
fn defer(
    body: &mut ProxyBody,
    e: BoxError,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
    *body = ProxyBody::Failed(Some(e));
    cx.waker().wake_by_ref();
    Poll::Pending
}

impl ProxyBody {
    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self {
            ProxyBody::Empty => Poll::Ready(None),
            ProxyBody::Failed(e) => Poll::Ready(e.take().map(Err)),
            ProxyBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Upstream(inc) => match Pin::new(inc).poll_frame(cx) {
                Poll::Ready(Some(Ok(f))) => match f.into_data() {
                    Ok(d) => Poll::Ready(Some(Ok(Frame::data(d)))),
                    // Trailers are not forwarded (we don't announce them); end of body.
                    Err(_) => Poll::Ready(None),
                },
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            ProxyBody::Fill { reader, .. } => match Pin::new(reader).poll_frame(cx) {
                Poll::Ready(Some(Ok(f))) => Poll::Ready(Some(Ok(f))),
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            ProxyBody::Ranged {
                inner,
                skip,
                remaining,
            } => loop {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let frame = match Pin::new(inner.as_mut()).poll_frame(cx) {
                    Poll::Ready(Some(Ok(f))) => f,
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(None) => {
                        return Poll::Ready(Some(Err("body ended before the range".into())))
                    }
                    Poll::Pending => return Poll::Pending,
                };
                let Ok(mut data) = frame.into_data() else {
                    continue;
                };
                let len = data.len() as u64;
                if *skip >= len {
                    *skip -= len;
                    continue;
                }
                let start = *skip as usize;
                *skip = 0;
                let take = (len - start as u64).min(*remaining) as usize;
                data = data.slice(start..start + take);
                *remaining -= take as u64;
                return Poll::Ready(Some(Ok(Frame::data(data))));
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn ranged_body_takes_the_middle_of_a_full_body() {
        let b = ProxyBody::Ranged {
            inner: Box::new(ProxyBody::full(&b"0123456789"[..])),
            skip: 2,
            remaining: 5,
        };
        assert_eq!(b.size_hint().exact(), Some(5));
        let out = b.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
        assert_eq!(&out[..], b"23456");
    }

    #[tokio::test]
    async fn ranged_body_fails_when_the_inner_body_is_short() {
        let b = ProxyBody::Ranged {
            inner: Box::new(ProxyBody::full(&b"0123"[..])),
            skip: 2,
            remaining: 5,
        };
        assert!(b.collect().await.is_err());
    }

    #[test]
    fn an_error_is_reported_one_poll_late_so_buffered_bytes_are_flushed_first() {
        let mut b = ProxyBody::Ranged {
            inner: Box::new(ProxyBody::full(&b"0123"[..])),
            skip: 2,
            remaining: 5,
        };
        let waker = futures_util::task::noop_waker_ref();
        let mut cx = Context::from_waker(waker);
        let mut poll = || Pin::new(&mut b).poll_frame(&mut cx);
        assert!(matches!(poll(), Poll::Ready(Some(Ok(_)))));
        assert!(poll().is_pending(), "the error waits one poll");
        assert!(matches!(poll(), Poll::Ready(Some(Err(_)))));
        assert!(matches!(poll(), Poll::Ready(None)));
    }
}
