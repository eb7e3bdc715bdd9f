//! The state of one fill, without locking: the response head, the body chunks, each reader's
//! position and the wakers of whoever waits.
//!
//! Contract:
//! * Chunks are numbered from 0 in push order; a reader's position is the number of the next
//!   chunk it reads (plus a byte offset inside it, non-zero only after compaction).
//! * Storing mode (the default) keeps every chunk, so a reader registered at any time reads from
//!   byte 0; `finish` compacts the chunks into one body (one copy) that readers keep reading
//!   from their byte on, so the body is held once, not twice.
//! * Streaming mode drops every chunk that all live readers have read, so what is held is what
//!   the slowest live reader has not read yet; the writer waits while that exceeds the window
//!   ([`STREAM_WINDOW`], or 0 while the node is over its `inflight` budget). A reader that keeps
//!   the writer waiting for `stream_lag` is detached (see `state/window.rs`). A reader
//!   registered after chunks were dropped has "missed" byte 0 and gets `Aborted`.
//! * Every byte held is charged to the node's [`Budget`] and given back when its chunk is
//!   dropped or the state is (`Drop`), so the budget can never leak.
//! * Every transition that can unblock a waiter moves its waker into a `Wake` (see `wake.rs`).

mod window;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::task::Waker;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::budget::Budget;
pub(super) use super::wake::Wake;
use super::FollowError;
pub(super) use window::Window;

/// In streaming mode, the most bytes buffered ahead of the slowest live reader before `push`
/// waits (so at most this plus one chunk is ever held).
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
    /// Fell a whole window behind for too long (or was cut over budget): sent away.
    Detached,
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
    /// Body bytes read so far (the byte offset of its position).
    read_bytes: u64,
    /// Since when it has kept the writer waiting, a whole window behind; cleared once it
    /// catches up to within half a window.
    lagging_since: Option<Instant>,
}

/// The outcome of one read attempt.
#[derive(Debug, PartialEq)]
pub(super) enum Read {
    Chunk(Bytes),
    End,
    Failed(FollowError),
    Pending,
}

pub(super) struct State<H> {
    head: Option<Arc<H>>,
    shareable: bool,
    chunks: VecDeque<Bytes>,
    /// Number of `chunks[0]`.
    first: u64,
    /// Sum of the lengths in `chunks`; exactly what is charged to `budget`.
    buffered: u64,
    /// Body bytes pushed so far.
    pushed: u64,
    budget: Arc<Budget>,
    end: End,
    streaming: bool,
    readers: HashMap<u64, Slot>,
    next_reader_id: u64,
    writer_waker: Option<Waker>,
}

impl<H> State<H> {
    pub(super) fn new(budget: Arc<Budget>) -> Self {
        Self {
            head: None,
            shareable: true,
            chunks: VecDeque::new(),
            first: 0,
            buffered: 0,
            pushed: 0,
            budget,
            end: End::Open,
            streaming: false,
            readers: HashMap::new(),
            next_reader_id: 0,
            writer_waker: None,
        }
    }

    /// Registers a reader at byte 0; returns its id.
    pub(super) fn register(&mut self, follower: bool) -> u64 {
        let id = self.next_reader_id;
        self.next_reader_id += 1;
        let standing = if self.first > 0 {
            Standing::Missed
        } else if follower && self.head.is_some() && !self.shareable {
            Standing::Released
        } else {
            Standing::Live
        };
        let slot = Slot {
            next: 0,
            skip: 0,
            standing,
            follower,
            waker: None,
            read_bytes: 0,
            lagging_since: None,
        };
        self.readers.insert(id, slot);
        id
    }

    pub(super) fn unregister(&mut self, id: u64, wake: &mut Wake) {
        self.readers.remove(&id);
        self.release_consumed(wake);
    }

    /// The head for reader `id`, or None while it is not published.
    pub(super) fn head(&self, id: u64) -> Option<Result<Arc<H>, FollowError>> {
        match self.readers.get(&id).map(|s| s.standing) {
            Some(Standing::Released) => Some(Err(FollowError::Released)),
            Some(Standing::Detached) => Some(Err(FollowError::Detached)),
            Some(_) => match &self.head {
                Some(head) => Some(Ok(head.clone())),
                None if self.end != End::Open => Some(Err(FollowError::Aborted)),
                None => None,
            },
            None => Some(Err(FollowError::Aborted)),
        }
    }

    /// Reads the next chunk of reader `id`.
    pub(super) fn read(&mut self, id: u64, wake: &mut Wake) -> Read {
        let (first, available) = (self.first, self.chunks.len() as u64);
        let Some(slot) = self.readers.get_mut(&id) else {
            return Read::Failed(FollowError::Aborted);
        };
        match slot.standing {
            Standing::Released => return Read::Failed(FollowError::Released),
            Standing::Missed => return Read::Failed(FollowError::Aborted),
            Standing::Detached => return Read::Failed(FollowError::Detached),
            Standing::Live => {}
        }
        let index = slot.next - first;
        if index < available {
            let skip = std::mem::take(&mut slot.skip);
            slot.next += 1;
            // `index < chunks.len()`, checked just above.
            let chunk = self.chunks[index as usize].slice(skip..);
            slot.read_bytes += chunk.len() as u64;
            self.caught_up(id, wake);
            self.release_consumed(wake);
            return Read::Chunk(chunk);
        }
        match self.end {
            End::Finished => Read::End,
            End::Aborted => Read::Failed(FollowError::Aborted),
            End::Open => Read::Pending,
        }
    }

    /// Reader `id` waits (for the head or a chunk); `waker` replaces its previous one.
    pub(super) fn park_reader(&mut self, id: u64, waker: &Waker) {
        if let Some(slot) = self.readers.get_mut(&id) {
            slot.waker = Some(waker.clone());
        }
    }

    /// The writer waits for the window; `waker` replaces its previous one.
    pub(super) fn park_writer(&mut self, waker: &Waker) {
        self.writer_waker = Some(waker.clone());
    }

    /// True once reader `id` has read every byte of a finished body.
    pub(super) fn is_end_of_body(&self, id: u64) -> bool {
        let end = self.end_seq();
        self.end == End::Finished
            && self
                .readers
                .get(&id)
                .is_some_and(|s| s.standing == Standing::Live && s.next >= end)
    }

    /// Publishes the head; a non-shareable one sends every follower away.
    pub(super) fn publish(&mut self, head: Arc<H>, shareable: bool, wake: &mut Wake) {
        self.head = Some(head);
        self.shareable = shareable;
        if !shareable {
            for slot in self.readers.values_mut().filter(|s| s.follower) {
                slot.standing = Standing::Released;
            }
            self.release_consumed(wake);
        }
        self.take_reader_wakers(wake);
    }

    /// Appends a chunk; true if the node is now over its budget while this fill still keeps
    /// everything (the writer should switch it to streaming mode).
    pub(super) fn push(&mut self, chunk: Bytes, wake: &mut Wake) -> bool {
        let len = chunk.len() as u64;
        let over = self.budget.charge(len);
        self.buffered += len;
        self.pushed += len;
        self.chunks.push_back(chunk);
        self.take_reader_wakers(wake);
        self.release_consumed(wake);
        over && !self.streaming
    }

    /// True in streaming mode once no reader is left to serve: the rest of the body is of no
    /// use to anyone (it will not be stored).
    pub(super) fn is_orphaned(&self) -> bool {
        self.streaming && !self.readers.values().any(|s| s.standing == Standing::Live)
    }

    pub(super) fn stream_only(&mut self, wake: &mut Wake) {
        self.streaming = true;
        self.release_consumed(wake);
    }

    /// Ends the body; returns it whole if still in storing mode. With `own`, the body is always
    /// a copy of its own (exact size, pinning no buffer it was pushed from), which the readers
    /// then read too; without, a single chunk is returned as it was pushed.
    pub(super) fn finish(&mut self, own: bool, wake: &mut Wake) -> Option<Bytes> {
        self.end = End::Finished;
        self.take_reader_wakers(wake);
        if self.streaming {
            None
        } else {
            Some(self.compact(own))
        }
    }

    pub(super) fn abort(&mut self, wake: &mut Wake) {
        self.end = End::Aborted;
        self.take_reader_wakers(wake);
    }

    /// Body bytes pushed so far: the byte offset where the body goes on.
    pub(super) fn pushed(&self) -> u64 {
        self.pushed
    }

    #[cfg(test)]
    pub(super) fn buffered(&self) -> u64 {
        self.buffered
    }

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
        let slowest = self
            .readers
            .values()
            .filter(|s| s.standing == Standing::Live)
            .map(|s| s.next)
            .min()
            .unwrap_or_else(|| self.end_seq());
        let mut released = false;
        while self.first < slowest {
            let Some(chunk) = self.chunks.pop_front() else {
                break;
            };
            self.buffered -= chunk.len() as u64;
            self.budget.release(chunk.len() as u64);
            self.first += 1;
            released = true;
        }
        if released {
            wake.add(self.writer_waker.take());
        }
    }

    /// Replaces the chunks by one contiguous body (one copy), moving every reader to the same
    /// byte of it. Storing mode only: every chunk since number 0 is still here.
    fn compact(&mut self, own: bool) -> Bytes {
        if self.chunks.len() == 1 && !own {
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
                slot.skip += starts[slot.next as usize];
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

impl<H> Drop for State<H> {
    fn drop(&mut self) {
        self.budget.release(self.buffered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    fn read(st: &mut State<()>, id: u64) -> Read {
        st.read(id, &mut Wake::default())
    }

    fn push(st: &mut State<()>, s: &'static str) {
        st.push(bytes(s), &mut Wake::default());
    }

    #[test]
    fn compaction_keeps_every_reader_at_its_byte() {
        let mut st = State::<()>::new(Arc::new(Budget::new()));
        let (fresh, partway, done) = (st.register(true), st.register(true), st.register(false));
        for s in ["ab", "cd", "ef"] {
            push(&mut st, s);
        }
        assert_eq!(read(&mut st, partway), Read::Chunk(bytes("ab")));
        for s in ["ab", "cd", "ef"] {
            assert_eq!(read(&mut st, done), Read::Chunk(bytes(s)));
        }
        assert_eq!(
            st.finish(false, &mut Wake::default()),
            Some(bytes("abcdef"))
        );
        assert_eq!(st.chunks.len(), 1, "the chunks were replaced by the body");
        assert_eq!(read(&mut st, fresh), Read::Chunk(bytes("abcdef")));
        assert_eq!(read(&mut st, partway), Read::Chunk(bytes("cdef")));
        for id in [fresh, partway, done] {
            assert_eq!(read(&mut st, id), Read::End);
            assert!(st.is_end_of_body(id));
        }
    }

    #[test]
    fn streaming_keeps_what_the_slowest_live_reader_has_not_read() {
        let mut st = State::<()>::new(Arc::new(Budget::new()));
        let (fast, slow) = (st.register(false), st.register(true));
        st.stream_only(&mut Wake::default());
        for s in ["aa", "bbb", "cccc"] {
            push(&mut st, s);
        }
        for _ in 0..3 {
            assert!(matches!(read(&mut st, fast), Read::Chunk(_)));
        }
        assert_eq!(st.buffered(), 9);
        assert_eq!(read(&mut st, slow), Read::Chunk(bytes("aa")));
        assert_eq!(st.buffered(), 7);
        st.unregister(slow, &mut Wake::default());
        assert_eq!(st.buffered(), 0);
        assert_eq!(st.first, 3);
    }

    #[test]
    fn a_reader_registered_after_a_release_missed_byte_0() {
        let mut st = State::<()>::new(Arc::new(Budget::new()));
        st.stream_only(&mut Wake::default());
        push(&mut st, "gone");
        assert_eq!(st.buffered(), 0, "nobody reads: nothing is kept");
        let late = st.register(false);
        assert_eq!(read(&mut st, late), Read::Failed(FollowError::Aborted));
    }

    #[test]
    fn a_private_head_releases_followers_only() {
        let mut st = State::<u16>::new(Arc::new(Budget::new()));
        let (leader, follower) = (st.register(false), st.register(true));
        st.stream_only(&mut Wake::default());
        st.publish(Arc::new(200), false, &mut Wake::default());
        assert_eq!(st.head(leader), Some(Ok(Arc::new(200))));
        assert_eq!(st.head(follower), Some(Err(FollowError::Released)));
        st.push(bytes("x"), &mut Wake::default());
        assert_eq!(
            st.read(leader, &mut Wake::default()),
            Read::Chunk(bytes("x"))
        );
        assert_eq!(st.buffered(), 0, "the released follower holds nothing back");
        let read = st.read(follower, &mut Wake::default());
        assert_eq!(read, Read::Failed(FollowError::Released));
    }

    #[test]
    fn the_window_applies_in_streaming_mode_only() {
        let mut st = State::<()>::new(Arc::new(Budget::new()));
        let _reader = st.register(false);
        st.push(
            Bytes::from(vec![0; STREAM_WINDOW as usize + 1]),
            &mut Wake::default(),
        );
        let now = Instant::now();
        assert_eq!(st.window(now, &mut Wake::default()), Window::Open);
        st.stream_only(&mut Wake::default());
        assert_eq!(st.window(now, &mut Wake::default()), Window::Wait(None));
    }
}
