//! The shared state of one fill: the response head, the body chunks, the readers' positions and
//! the wakers of everyone waiting.
//!
//! Contract:
//! * Chunks are numbered from 0 in push order; a reader's position is the number of the next
//!   chunk it reads (plus a byte offset inside it, used only after compaction, see `finish`).
//! * Storing mode (the default) keeps every chunk, so a reader registered at any time reads from
//!   byte 0. Streaming mode releases every chunk that all live readers have read, and the writer
//!   waits while more than `STREAM_WINDOW` bytes are buffered (so at most `STREAM_WINDOW` plus
//!   one chunk is ever held).
//! * No lost wake-ups: a waiter stores its `Waker` under the same lock under which the
//!   condition it waits for is changed; whoever changes it takes the wakers under the lock and
//!   wakes them after releasing it. Wakers, not `tokio::sync::Notify`, because the reader is
//!   also an `http_body::Body`, whose `poll_frame` must not own a boxed future.
//! * Unregistering a reader (drop) releases what it held back and wakes the writer.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use super::FollowError;

/// In streaming mode, the most bytes buffered ahead of the slowest live reader before `push`
/// waits.
pub const STREAM_WINDOW: u64 = 1024 * 1024;

/// How the body ended, if it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Open,
    Finished,
    Aborted,
}

/// One reader's standing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Standing {
    /// Reads the fill; holds back the release of chunks it has not read yet.
    Live,
    /// A follower sent away by a non-shareable head.
    Released,
    /// Registered after chunks were released: it can never read from byte 0.
    Missed,
}

struct Slot {
    /// Number of the next chunk to read.
    next: u64,
    /// Bytes of chunk `next` already read (non-zero only after compaction).
    skip: usize,
    standing: Standing,
    /// A follower (joined through the table), as opposed to a reader of the leader.
    follower: bool,
    waker: Option<Waker>,
}

struct State<H> {
    head: Option<Arc<H>>,
    shareable: bool,
    chunks: VecDeque<Bytes>,
    /// Number of `chunks[0]`.
    first: u64,
    /// Sum of the lengths in `chunks`.
    buffered: u64,
    end: End,
    streaming: bool,
    readers: HashMap<u64, Slot>,
    next_reader_id: u64,
    writer_waker: Option<Waker>,
}

/// The state of one fill, shared by its writer and readers.
pub(super) struct Shared<H> {
    state: Mutex<State<H>>,
}

/// Wakers taken under the lock, woken when dropped (after the lock is released).
#[derive(Default)]
struct Wake(Vec<Waker>);

impl Wake {
    fn add(&mut self, waker: Option<Waker>) {
        self.0.extend(waker);
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        for waker in self.0.drain(..) {
            waker.wake();
        }
    }
}

impl<H> State<H> {
    fn end_seq(&self) -> u64 {
        self.first + self.chunks.len() as u64
    }

    fn take_reader_wakers(&mut self, wake: &mut Wake) {
        for slot in self.readers.values_mut() {
            wake.add(slot.waker.take());
        }
    }

    /// Streaming mode: drops the chunks every live reader has read; wakes the writer if any.
    fn release_consumed(&mut self, wake: &mut Wake) {
        if !self.streaming {
            return;
        }
        let end = self.end_seq();
        let slowest = self
            .readers
            .values()
            .filter(|s| s.standing == Standing::Live)
            .map(|s| s.next)
            .min()
            .unwrap_or(end);
        let mut released = false;
        while self.first < slowest {
            let Some(chunk) = self.chunks.pop_front() else {
                break;
            };
            self.buffered -= chunk.len() as u64;
            self.first += 1;
            released = true;
        }
        if released {
            wake.add(self.writer_waker.take());
        }
    }

    /// Replaces the chunks by one contiguous body (one copy), moving every reader to the same
    /// byte. Requires every chunk since number 0 (storing mode).
    fn compact(&mut self) -> Bytes {
        if self.chunks.len() == 1 {
            return self.chunks[0].clone();
        }
        let mut starts = Vec::with_capacity(self.chunks.len() + 1);
        let mut body = BytesMut::with_capacity(usize::try_from(self.buffered).unwrap_or(0));
        for chunk in &self.chunks {
            starts.push(body.len());
            body.extend_from_slice(chunk);
        }
        starts.push(body.len());
        let body = body.freeze();
        let end = self.end_seq();
        for slot in self.readers.values_mut() {
            if slot.next >= end {
                slot.next = 1;
                slot.skip = 0;
            } else {
                // `next < end` and `first == 0`, so `next` indexes `starts`.
                slot.skip = starts[slot.next as usize] + slot.skip;
                slot.next = 0;
            }
        }
        self.chunks.clear();
        if !body.is_empty() {
            self.chunks.push_back(body.clone());
        }
        self.first = 0;
        body
    }
}

impl<H> Shared<H> {
    pub(super) fn new() -> Self {
        Self {
            state: Mutex::new(State {
                head: None,
                shareable: true,
                chunks: VecDeque::new(),
                first: 0,
                buffered: 0,
                end: End::Open,
                streaming: false,
                readers: HashMap::new(),
                next_reader_id: 0,
                writer_waker: None,
            }),
        }
    }

    /// Registers a reader at byte 0; returns its id.
    pub(super) fn register(&self, follower: bool) -> u64 {
        let mut st = self.state.lock();
        let id = st.next_reader_id;
        st.next_reader_id += 1;
        let standing = if st.first > 0 {
            Standing::Missed
        } else if follower && st.head.is_some() && !st.shareable {
            Standing::Released
        } else {
            Standing::Live
        };
        st.readers.insert(
            id,
            Slot {
                next: 0,
                skip: 0,
                standing,
                follower,
                waker: None,
            },
        );
        id
    }

    pub(super) fn unregister(&self, id: u64) {
        let mut wake = Wake::default();
        let mut st = self.state.lock();
        st.readers.remove(&id);
        st.release_consumed(&mut wake);
    }

    pub(super) fn poll_head(
        &self,
        id: u64,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Arc<H>, FollowError>> {
        let mut st = self.state.lock();
        let ended = st.end != End::Open;
        let head = st.head.clone();
        let Some(slot) = st.readers.get_mut(&id) else {
            return Poll::Ready(Err(FollowError::Aborted));
        };
        if slot.standing == Standing::Released {
            return Poll::Ready(Err(FollowError::Released));
        }
        match head {
            Some(head) => Poll::Ready(Ok(head)),
            None if ended => Poll::Ready(Err(FollowError::Aborted)),
            None => {
                slot.waker = Some(cx.waker().clone());
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
        let (first, end, streaming) = (st.first, st.end, st.streaming);
        let available = st.chunks.len() as u64;
        let Some(slot) = st.readers.get_mut(&id) else {
            return Poll::Ready(Some(Err(FollowError::Aborted)));
        };
        match slot.standing {
            Standing::Released => return Poll::Ready(Some(Err(FollowError::Released))),
            Standing::Missed => return Poll::Ready(Some(Err(FollowError::Aborted))),
            Standing::Live => {}
        }
        let index = slot.next - first;
        if index < available {
            let skip = std::mem::take(&mut slot.skip);
            slot.next += 1;
            // `index < chunks.len()`, checked just above.
            let chunk = st.chunks[index as usize].slice(skip..);
            if streaming {
                st.release_consumed(&mut wake);
            }
            return Poll::Ready(Some(Ok(chunk)));
        }
        match end {
            End::Finished => Poll::Ready(None),
            End::Aborted => Poll::Ready(Some(Err(FollowError::Aborted))),
            End::Open => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// True once the reader has read every byte of a finished body.
    pub(super) fn is_end_of_body(&self, id: u64) -> bool {
        let st = self.state.lock();
        st.end == End::Finished
            && st
                .readers
                .get(&id)
                .is_some_and(|s| s.standing == Standing::Live && s.next >= st.end_seq())
    }

    pub(super) fn publish(&self, head: Arc<H>, shareable: bool) {
        let mut wake = Wake::default();
        let mut st = self.state.lock();
        st.head = Some(head);
        st.shareable = shareable;
        st.take_reader_wakers(&mut wake);
        if !shareable {
            // Followers leave now; they no longer hold back the release of chunks.
            for slot in st.readers.values_mut().filter(|s| s.follower) {
                slot.standing = Standing::Released;
            }
            st.release_consumed(&mut wake);
        }
    }

    pub(super) fn push(&self, chunk: Bytes) {
        let mut wake = Wake::default();
        let mut st = self.state.lock();
        st.buffered += chunk.len() as u64;
        st.chunks.push_back(chunk);
        st.take_reader_wakers(&mut wake);
        st.release_consumed(&mut wake);
    }

    /// Ready unless streaming with more than `STREAM_WINDOW` buffered.
    pub(super) fn poll_window(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.state.lock();
        if !st.streaming || st.buffered <= STREAM_WINDOW {
            return Poll::Ready(());
        }
        st.writer_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    pub(super) fn stream_only(&self) {
        let mut wake = Wake::default();
        let mut st = self.state.lock();
        st.streaming = true;
        st.release_consumed(&mut wake);
    }

    /// Ends the body; returns it whole if still in storing mode.
    pub(super) fn finish(&self) -> Option<Bytes> {
        let mut wake = Wake::default();
        let mut st = self.state.lock();
        st.end = End::Finished;
        st.take_reader_wakers(&mut wake);
        if st.streaming {
            None
        } else {
            Some(st.compact())
        }
    }

    pub(super) fn abort(&self) {
        let mut wake = Wake::default();
        let mut st = self.state.lock();
        st.end = End::Aborted;
        st.take_reader_wakers(&mut wake);
    }

    pub(super) fn buffered_bytes(&self) -> u64 {
        self.state.lock().buffered
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::{follow, lead, read_all, WAIT};
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

    #[tokio::test]
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
            for i in 0..=window_chunks {
                w.push(chunk(i, CHUNK)).await;
            }
            // The next push is past the window: tell the test, then wait for the reader.
            let _ = blocked_tx.send(());
            for i in 0..64 {
                w.push(chunk(i, CHUNK)).await;
            }
            let left = w.buffered_bytes();
            w.finish();
            left
        });
        assert_eq!(blocked_rx.await, Ok(()));
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
}
