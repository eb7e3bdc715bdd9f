//! Interim (1xx) responses from an origin, relayed to the client before the final response
//! (RFC 9110 §15.2) and never stored.
//!
//! Contract:
//! * [`is_relayed`]: every 1xx but `100 Continue` (hyper answers a client's
//!   `Expect: 100-continue` itself when the request body is first read, so an origin's 100 is
//!   not the client's) and `101 Switching Protocols` (never asked for: the origin client refuses
//!   it). [`encode`] writes one as an HTTP/1.1 head, hop-by-hop and framing fields removed.
//! * A client connection has one [`InterimLine`]; each HTTP/1.1 request on it gets a
//!   [`InterimSink`] ([`InterimLine::begin`]), which the request carries to the origin client.
//!   HTTP/1.0 and HTTP/2 requests get none, so nothing is relayed to them (RFC 9110 §15.2: not
//!   to HTTP/1.0; hyper has no way to send a 1xx on an HTTP/2 stream).
//! * A sink only writes while its request is the line's current one and still open: once its
//!   final response is on its way ([`InterimSink::finish`], [`InterimSink::close`]) or the next
//!   request began, what it is given is dropped (a background refresh never relays). At most
//!   [`MAX_PENDING`] bytes wait at a time; an interim beyond them is dropped.
//! * Who writes: the connection's own loop takes the bytes ([`InterimSink::take`]) between
//!   its awaits; under hyper, `interim_io::InterimIo` writes them when hyper flushes with an
//!   empty write buffer, and the request's final response waits until they are written
//!   ([`InterimSink::finish`]), so they can neither split nor follow a response.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode};
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::policy::headers::{connection_tokens, is_hop_by_hop};

/// Interim bytes a request may have waiting to be written; more are dropped.
pub const MAX_PENDING: usize = 64 * 1024;

/// True for the interim statuses relayed to the client (see the module contract).
pub fn is_relayed(status: StatusCode) -> bool {
    status.is_informational()
        && status != StatusCode::CONTINUE
        && status != StatusCode::SWITCHING_PROTOCOLS
}

/// Append an interim response head: status line, its fields but hop-by-hop and framing ones
/// (and those its `Connection` names), blank line.
pub fn encode(out: &mut Vec<u8>, status: StatusCode, headers: &HeaderMap) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let named = connection_tokens(headers);
    for (name, value) in headers {
        let framing = *name == CONTENT_LENGTH || *name == TRANSFER_ENCODING;
        if framing || is_hop_by_hop(name) || named.contains(name) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// One client connection's interim responses waiting to be written.
#[derive(Default)]
pub struct InterimLine {
    state: Mutex<State>,
    /// Told when bytes are queued (the connection's own loop waits on it).
    queued: Notify,
}

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    /// The current request's number; sinks of earlier ones are stale.
    current: u64,
    /// The current request may still relay.
    open: bool,
    /// The task that writes under hyper, woken when bytes are queued.
    writer: Option<Waker>,
    /// The request waiting for its interims to be written.
    drained: Option<Waker>,
}

/// Where one request's interim responses go.
#[derive(Clone)]
pub struct InterimSink {
    line: Arc<InterimLine>,
    request: u64,
}

impl std::fmt::Debug for InterimSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterimSink")
            .field("request", &self.request)
            .finish()
    }
}

impl InterimLine {
    pub fn new() -> Arc<InterimLine> {
        Arc::new(InterimLine::default())
    }

    /// A new request starts: the sink it relays through (earlier ones go stale).
    pub fn begin(self: &Arc<Self>) -> InterimSink {
        let mut st = self.state.lock();
        st.current += 1;
        st.open = true;
        st.pending.clear();
        InterimSink {
            line: Arc::clone(self),
            request: st.current,
        }
    }

    /// Write what is waiting with `write` (called by the writer under hyper when hyper's own
    /// buffer is empty): Ready once nothing waits, Pending (or an error) as `write` says.
    pub fn poll_drain(
        &self,
        cx: &mut Context<'_>,
        mut write: impl FnMut(&mut Context<'_>, &[u8]) -> Poll<std::io::Result<usize>>,
    ) -> Poll<std::io::Result<()>> {
        let mut st = self.state.lock();
        if !st.writer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            st.writer = Some(cx.waker().clone());
        }
        while !st.pending.is_empty() {
            match write(cx, &st.pending) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => drop(st.pending.drain(..n)),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if let Some(w) = st.drained.take() {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl InterimSink {
    /// Queue an interim response from the origin for the client, when it is one to relay and
    /// this request may still relay (see the module contract).
    pub fn relay(&self, status: StatusCode, headers: &HeaderMap) {
        if !is_relayed(status) {
            return;
        }
        let mut head = Vec::with_capacity(256);
        encode(&mut head, status, headers);
        let mut st = self.line.state.lock();
        if !(st.open && st.current == self.request) {
            return;
        }
        if st.pending.len() + head.len() > MAX_PENDING {
            tracing::debug!(
                status = status.as_u16(),
                "interim response dropped: too many bytes waiting"
            );
            return;
        }
        st.pending.extend_from_slice(&head);
        let writer = st.writer.clone();
        drop(st);
        self.line.queued.notify_one();
        if let Some(w) = writer {
            w.wake();
        }
    }

    /// Under hyper: wait until this request's interims are written, then stop relaying. The
    /// final response is handed to hyper only after this, so it follows them.
    pub async fn finish(&self) {
        poll_fn(|cx| {
            let mut st = self.line.state.lock();
            if st.current != self.request || st.pending.is_empty() {
                if st.current == self.request {
                    st.open = false;
                }
                return Poll::Ready(());
            }
            st.drained = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// On the connection's own loop: the bytes waiting now (the loop writes them itself).
    pub fn take(&self) -> Vec<u8> {
        let mut st = self.line.state.lock();
        if st.current != self.request {
            return Vec::new();
        }
        std::mem::take(&mut st.pending)
    }

    /// On the connection's own loop: stop relaying; the bytes still waiting, to write before
    /// the final response.
    pub fn close(&self) -> Vec<u8> {
        let mut st = self.line.state.lock();
        if st.current != self.request {
            return Vec::new();
        }
        st.open = false;
        std::mem::take(&mut st.pending)
    }

    /// Resolves when bytes may have been queued (the connection's own loop waits on it).
    pub async fn queued(&self) {
        self.line.queued.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_map as map;

    #[test]
    fn which_interims_are_relayed() {
        for code in [102, 103, 104, 199] {
            assert!(is_relayed(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [100, 101, 200, 204, 304] {
            assert!(!is_relayed(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }

    #[test]
    fn encoded_head_drops_hop_by_hop_and_framing() {
        let h = map(&[
            ("link", "</a.css>; rel=preload"),
            ("link", "</b.js>; rel=preload"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("content-length", "0"),
            ("keep-alive", "timeout=5"),
        ]);
        let mut out = Vec::new();
        encode(&mut out, StatusCode::EARLY_HINTS, &h);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\
             link: </b.js>; rel=preload\r\n\r\n"
        );
    }

    #[test]
    fn only_the_current_open_request_relays() {
        let line = InterimLine::new();
        let h = map(&[("link", "</a>")]);
        let first = line.begin();
        first.relay(StatusCode::CONTINUE, &h);
        assert!(first.take().is_empty(), "100 is never relayed");
        first.relay(StatusCode::EARLY_HINTS, &h);
        assert!(first.take().starts_with(b"HTTP/1.1 103"));
        first.relay(StatusCode::PROCESSING, &h);
        assert!(first.close().starts_with(b"HTTP/1.1 102"));
        first.relay(StatusCode::EARLY_HINTS, &h);
        assert!(first.take().is_empty(), "closed");
        let second = line.begin();
        first.relay(StatusCode::EARLY_HINTS, &h);
        assert!(second.take().is_empty(), "a stale sink relays nothing");
        second.relay(StatusCode::EARLY_HINTS, &h);
        assert!(!second.take().is_empty());
    }

    #[test]
    fn pending_bytes_are_bounded() {
        let line = InterimLine::new();
        let sink = line.begin();
        let big = "x".repeat(40 * 1024);
        let mut h = HeaderMap::new();
        h.insert("link", big.parse().unwrap());
        sink.relay(StatusCode::EARLY_HINTS, &h);
        sink.relay(StatusCode::EARLY_HINTS, &h);
        let taken = sink.take();
        assert!(taken.len() > 40 * 1024 && taken.len() < MAX_PENDING);
    }

    #[tokio::test]
    async fn finish_waits_until_the_writer_drained_them() {
        let line = InterimLine::new();
        let sink = line.begin();
        sink.relay(StatusCode::EARLY_HINTS, &map(&[("link", "</a>")]));
        let waiter = tokio::spawn({
            let sink = sink.clone();
            async move { sink.finish().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        let mut written = Vec::new();
        let drained = poll_fn(|cx| {
            line.poll_drain(cx, |_, b| {
                let n = b.len().min(5);
                written.extend_from_slice(&b[..n]);
                Poll::Ready(Ok(n))
            })
        })
        .await;
        assert!(drained.is_ok());
        waiter.await.unwrap();
        assert!(written.starts_with(b"HTTP/1.1 103 Early Hints\r\n"));
        sink.relay(StatusCode::EARLY_HINTS, &map(&[("link", "</a>")]));
        assert!(sink.take().is_empty(), "finished: relays no more");
    }
}
