//! The lock around one fill's [`State`], and the poll functions of its writer and readers.
//!
//! Contract:
//! * No lost wake-ups: a waiter checks its condition and, if it must wait, stores its `Waker`
//!   under the same lock under which the condition is changed; whoever changes it takes the
//!   wakers under the lock and wakes them after releasing it (`state::Wake`).
//! * Wakers rather than `tokio::sync::Notify`, because a reader is also an `http_body::Body`,
//!   whose `poll_frame` cannot own a boxed `notified()` future without an allocation per wait.
//! * No busy loops: every `Pending` is preceded by parking a waker.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::budget::Budget;
use super::state::{Read, State, Wake, Window};
use super::FollowError;

/// The state of one fill, shared by its writer and readers.
pub(super) struct Shared<H> {
    state: Mutex<State<H>>,
}

impl<H> Shared<H> {
    pub(super) fn new(budget: Arc<Budget>) -> Self {
        Self {
            state: Mutex::new(State::new(budget)),
        }
    }

    /// Registers a reader at byte 0; returns its id.
    pub(super) fn register(&self, follower: bool) -> u64 {
        self.state.lock().register(follower)
    }

    pub(super) fn unregister(&self, id: u64) {
        let mut wake = Wake::default();
        self.state.lock().unregister(id, &mut wake);
    }

    pub(super) fn poll_head(
        &self,
        id: u64,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Arc<H>, FollowError>> {
        let mut st = self.state.lock();
        match st.head(id) {
            Some(result) => Poll::Ready(result),
            None => {
                st.park_reader(id, cx.waker());
                Poll::Pending
            }
        }
    }

    pub(super) fn poll_chunk(
        &self,
        id: u64,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, FollowError>>> {
        let mut wake = Wake::default();
        let mut st = self.state.lock();
        match st.read(id, &mut wake) {
            Read::Chunk(chunk) => Poll::Ready(Some(Ok(chunk))),
            Read::End => Poll::Ready(None),
            Read::Failed(e) => Poll::Ready(Some(Err(e))),
            Read::Pending => {
                st.park_reader(id, cx.waker());
                Poll::Pending
            }
        }
    }

    pub(super) fn is_end_of_body(&self, id: u64) -> bool {
        self.state.lock().is_end_of_body(id)
    }

    pub(super) fn publish(&self, head: Arc<H>, shareable: bool) {
        let mut wake = Wake::default();
        self.state.lock().publish(head, shareable, &mut wake);
    }

    /// Appends a chunk; true if the fill should stop storing (the node is over budget).
    pub(super) fn push(&self, chunk: Bytes) -> bool {
        let mut wake = Wake::default();
        let over = self.state.lock().push(chunk, &mut wake);
        over
    }

    /// Whether the writer may push at `now` (see `state/window.rs`); parks its waker if not.
    pub(super) fn poll_window(&self, cx: &mut Context<'_>, now: Instant) -> Window {
        let mut wake = Wake::default();
        let mut st = self.state.lock();
        let window = st.window(now, &mut wake);
        if window != Window::Open {
            st.park_writer(cx.waker());
        }
        window
    }

    pub(super) fn is_orphaned(&self) -> bool {
        self.state.lock().is_orphaned()
    }

    pub(super) fn stream_only(&self) {
        let mut wake = Wake::default();
        self.state.lock().stream_only(&mut wake);
    }

    /// Ends the body; returns it whole if still in storing mode (`own`: see `State::finish`).
    pub(super) fn finish(&self, own: bool) -> Option<Bytes> {
        let mut wake = Wake::default();
        let body = self.state.lock().finish(own, &mut wake);
        body
    }

    /// Appends `last` (if any), ends the body and runs `store` on it, all under the lock, and
    /// wakes the readers only then: no reader can see the end of the body (or its last bytes)
    /// before `store` has run, so a client that has the whole response and asks again finds
    /// what `store` stored.
    pub(super) fn finish_with<R>(
        &self,
        last: Option<Bytes>,
        store: impl FnOnce(Option<Bytes>) -> R,
    ) -> R {
        let mut wake = Wake::default();
        let mut st = self.state.lock();
        if let Some(chunk) = last {
            st.push(chunk, &mut wake);
        }
        let body = st.finish(true, &mut wake);
        let r = store(body);
        drop(st);
        drop(wake);
        r
    }

    pub(super) fn abort(&self) {
        let mut wake = Wake::default();
        self.state.lock().abort(&mut wake);
    }

    pub(super) fn pushed(&self) -> u64 {
        self.state.lock().pushed()
    }

    #[cfg(test)]
    pub(super) fn buffered_bytes(&self) -> u64 {
        self.state.lock().buffered()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::{follow, lead, read_all, WAIT};
    use super::super::STREAM_WINDOW;
    use super::super::{Fills, FollowError};
    use super::*;

    const CHUNK: usize = 64 * 1024;

    /// Chunk `i` of a recognisable body: every byte is `i % 251`.
    fn chunk(i: usize, len: usize) -> Bytes {
        Bytes::from(vec![(i % 251) as u8; len])
    }

    #[tokio::test]
    async fn stream_only_closes_the_fill_to_new_followers() {
        let fills = Fills::new();
        let mut w = lead(&fills, "/big");
        let _f = follow(&fills, "/big");
        w.stream_only();
        assert_eq!(fills.in_flight(), 0);
        let _other = lead(&fills, "/big");
        assert_eq!(w.finish(), None);
    }

    #[tokio::test]
    async fn stream_only_releases_what_every_reader_has_read() {
        let fills = Fills::<String>::new();
        let mut w = lead(&fills, "/big");
        let mut r = w.reader();
        for i in 0..3 {
            w.push(chunk(i, 10)).await;
        }
        assert_eq!(w.buffered_bytes(), 30);
        assert_eq!(r.next_chunk().await, Some(Ok(chunk(0, 10))));
        assert_eq!(r.next_chunk().await, Some(Ok(chunk(1, 10))));
        assert_eq!(w.buffered_bytes(), 30, "storing mode keeps everything");
        w.stream_only();
        assert_eq!(w.buffered_bytes(), 10);
        // Too late to read from byte 0.
        let mut late = w.reader();
        assert_eq!(late.next_chunk().await, Some(Err(FollowError::Aborted)));
        assert_eq!(r.next_chunk().await, Some(Ok(chunk(2, 10))));
        assert_eq!(w.buffered_bytes(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streaming_memory_stays_within_the_window() {
        const TOTAL: usize = 10 * 1024 * 1024;
        let fills = Fills::<String>::new();
        let mut w = lead(&fills, "/big");
        let mut r = w.reader();
        w.stream_only();
        let reader = tokio::spawn(async move {
            let mut got = 0usize;
            let mut index = 0usize;
            while let Some(Ok(c)) = r.next_chunk().await {
                assert_eq!(c, chunk(index, CHUNK), "chunk {index}");
                got += c.len();
                index += 1;
            }
            got
        });
        let mut peak = 0;
        for i in 0..TOTAL / CHUNK {
            w.push(chunk(i, CHUNK)).await;
            peak = peak.max(w.buffered_bytes());
            assert!(w.buffered_bytes() <= STREAM_WINDOW + CHUNK as u64);
        }
        assert_eq!(w.finish(), None);
        assert_eq!(reader.await.ok(), Some(TOTAL));
        assert!(peak <= STREAM_WINDOW, "after push returns: {peak}");
    }

    // The paused clock: "did not wait" and "waited" are judged on virtual time, so a busy
    // machine can neither make a push that returns at once look late nor end `short` early.
    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_holds_the_writer_back() {
        let fills = Fills::<String>::new();
        let mut w = lead(&fills, "/big");
        let mut r = w.reader();
        w.stream_only();
        let window_chunks = STREAM_WINDOW as usize / CHUNK;
        for i in 0..window_chunks {
            // Up to exactly the window: no wait.
            let pushed = tokio::time::timeout(WAIT, w.push(chunk(i, CHUNK))).await;
            assert!(pushed.is_ok(), "push {i} waited");
        }
        let short = Duration::from_millis(30);
        let over = tokio::time::timeout(short, w.push(chunk(window_chunks, CHUNK))).await;
        assert!(over.is_err(), "push past the window did not wait");
        assert_eq!(w.buffered_bytes(), STREAM_WINDOW + CHUNK as u64);
        assert_eq!(r.next_chunk().await, Some(Ok(chunk(0, CHUNK))));
        assert_eq!(r.next_chunk().await, Some(Ok(chunk(1, CHUNK))));
        assert_eq!(w.buffered_bytes(), STREAM_WINDOW - CHUNK as u64);
        let pushed = tokio::time::timeout(WAIT, w.push(chunk(99, CHUNK))).await;
        assert!(pushed.is_ok());
        assert_eq!(w.buffered_bytes(), STREAM_WINDOW);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_reader_does_not_block_the_writer() {
        let fills = Fills::<String>::new();
        let mut w = lead(&fills, "/big");
        let r = w.reader();
        w.stream_only();
        let (blocked_tx, blocked_rx) = tokio::sync::oneshot::channel();
        let writer = tokio::spawn(async move {
            let window_chunks = STREAM_WINDOW as usize / CHUNK;
            for i in 0..window_chunks {
                w.push(chunk(i, CHUNK)).await;
            }
            // The window is full and the reader has read nothing: the next push waits until
            // the test drops the reader.
            let _ = blocked_tx.send(());
            for i in 0..64 {
                w.push(chunk(i, CHUNK)).await;
            }
            let left = w.buffered_bytes();
            w.finish();
            left
        });
        let full = tokio::time::timeout(WAIT, blocked_rx).await;
        assert_eq!(full.ok(), Some(Ok(())));
        drop(r);
        let left = tokio::time::timeout(WAIT, writer).await;
        assert_eq!(left.ok().and_then(Result::ok), Some(0));
    }

    #[tokio::test]
    async fn followers_released_by_a_private_head_do_not_hold_memory() {
        let fills = Fills::<String>::new();
        let mut w = lead(&fills, "/a");
        let mut mine = w.reader();
        let _follower = follow(&fills, "/a");
        w.stream_only();
        w.publish(std::sync::Arc::new("200".to_owned()), false);
        w.push(chunk(0, 100)).await;
        assert_eq!(mine.next_chunk().await, Some(Ok(chunk(0, 100))));
        assert_eq!(w.buffered_bytes(), 0);
        w.finish();
        assert_eq!(read_all(&mut mine).await, (Vec::new(), None));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_writer_is_woken_by_every_release() {
        // Each chunk alone is over the window, so every push waits until the slowest reader
        // has read it: that read is the only event that can wake the writer.
        const ROUNDS: usize = 500;
        let big = Bytes::from(vec![1u8; STREAM_WINDOW as usize + 1]);
        let fills = Fills::<String>::new();
        let mut w = lead(&fills, "/big");
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let mut r = w.reader();
                tokio::spawn(async move {
                    let mut chunks = 0;
                    while let Some(Ok(_)) = r.next_chunk().await {
                        chunks += 1;
                    }
                    chunks
                })
            })
            .collect();
        w.stream_only();
        let writer = async {
            for _ in 0..ROUNDS {
                w.push(big.clone()).await;
                assert_eq!(w.buffered_bytes(), 0);
            }
            w.finish()
        };
        assert_eq!(tokio::time::timeout(WAIT, writer).await.ok(), Some(None));
        for reader in readers {
            let read = tokio::time::timeout(WAIT, reader).await;
            assert_eq!(read.ok().and_then(Result::ok), Some(ROUNDS));
        }
    }
}
