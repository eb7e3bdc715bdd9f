//! Request coalescing (single-flight) with read-while-write.
//!
//! Contract:
//! * [`Fills::join`]: the first caller for a primary key leads ([`Join::Lead`]: it fetches from
//!   the origin and writes the fill); later callers follow ([`Join::Follow`]: they read the same
//!   response while it is written, from byte 0, zero-copy).
//! * A fill leaves the table (later callers lead a new one) when its writer publishes a
//!   non-shareable head, calls `stream_only`, finishes, aborts or is dropped. Removal happens
//!   before the state change it announces, under the table lock that `join` holds while it
//!   registers a follower, so a follower either registered in time or leads a new fill.
//! * Followers are released ([`FollowError::Released`]) by a non-shareable head and go to the
//!   origin themselves; readers of an aborted fill get every byte pushed so far, then
//!   [`FollowError::Aborted`]; a dropped writer is an abort.
//! * Memory: storing mode (default) keeps the whole body for the store, bounded by the caller's
//!   `max_object_size` (it calls `stream_only` past it); streaming mode keeps at most
//!   `STREAM_WINDOW` plus one chunk (see `buffer.rs`). A dropped reader unregisters at once.
//!
//! A fill that finishes is removed from the table before the caller stores the object; a
//! request arriving in between misses both and leads a new fill (a rare duplicate fetch, never
//! a wrong answer).

mod body;
mod buffer;

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use buffer::Shared;
pub use buffer::STREAM_WINDOW;

/// Why a reader cannot (or can no longer) follow a fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FollowError {
    /// The response may not be shared with followers; fetch it yourself.
    #[error("fill response not shareable")]
    Released,
    /// The response head did not arrive in time.
    #[error("timed out waiting for the fill's response head")]
    TimedOut,
    /// The fill was cut short (origin error, body truncated, writer dropped).
    #[error("fill aborted")]
    Aborted,
}

impl FollowError {
    /// Stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            FollowError::Released => "released",
            FollowError::TimedOut => "timed_out",
            FollowError::Aborted => "aborted",
        }
    }
}

type Table<H> = Mutex<HashMap<String, Arc<Shared<H>>>>;

/// The in-flight fills, by primary key.
pub struct Fills<H> {
    table: Arc<Table<H>>,
}

/// The outcome of [`Fills::join`].
pub enum Join<H> {
    /// This caller fetches from the origin and writes the fill.
    Lead(FillWriter<H>),
    /// Another caller is fetching; read its response.
    Follow(FillReader<H>),
}

/// The leader's handle: publishes the head and the body. Dropping it without `finish` aborts.
pub struct FillWriter<H> {
    key: String,
    shared: Arc<Shared<H>>,
    table: Arc<Table<H>>,
    /// Still in the table (joinable).
    in_table: bool,
    /// `finish` or `abort` ran.
    done: bool,
}

/// A reader of one fill: the response head, then the body from byte 0.
pub struct FillReader<H> {
    shared: Arc<Shared<H>>,
    id: u64,
}

impl<H: Send + Sync + 'static> Fills<H> {
    pub fn new() -> Self {
        Self {
            table: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The first caller for a key leads (fetches from the origin); later callers follow until
    /// the leader publishes a non-shareable head, finishes, aborts, or closes to new followers.
    pub fn join(&self, key: &str) -> Join<H> {
        let mut table = self.table.lock();
        if let Some(shared) = table.get(key) {
            // Registered under the table lock: see the module doc.
            let id = shared.register(true);
            return Join::Follow(FillReader {
                shared: shared.clone(),
                id,
            });
        }
        let shared = Arc::new(Shared::new());
        table.insert(key.to_owned(), shared.clone());
        Join::Lead(FillWriter {
            key: key.to_owned(),
            shared,
            table: self.table.clone(),
            in_table: true,
            done: false,
        })
    }

    /// Fills in the table (joinable).
    pub fn in_flight(&self) -> usize {
        self.table.lock().len()
    }
}

impl<H: Send + Sync + 'static> Default for Fills<H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H> FillWriter<H> {
    /// Leader's own reader (its client reads the body like any follower). Call before publish
    /// and before `stream_only`; a reader created after chunks were released gets `Aborted`.
    pub fn reader(&self) -> FillReader<H> {
        FillReader {
            id: self.shared.register(false),
            shared: self.shared.clone(),
        }
    }

    /// Publish the response head. `shareable = false` releases every follower at once
    /// ([`FollowError::Released`]: they go to the origin themselves) and removes the fill from
    /// the table so later requests don't join it. The leader's readers get the head either way.
    pub fn publish(&mut self, head: Arc<H>, shareable: bool) {
        if !shareable {
            self.leave_table();
        }
        self.shared.publish(head, shareable);
    }

    /// Append body bytes; wakes readers. In streaming mode, then waits while more than
    /// [`STREAM_WINDOW`] is buffered ahead of the slowest live reader. The chunk is taken at
    /// the first poll: cancelling the future only skips the wait.
    pub async fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.shared.push(chunk);
        }
        poll_fn(|cx| self.shared.poll_window(cx)).await;
    }

    /// Body complete. Removes the fill from the table; readers see the end of the body. Returns
    /// the whole body as one `Bytes` (one copy at most, shared with the readers still reading)
    /// if still in storing mode, else None.
    pub fn finish(mut self) -> Option<Bytes> {
        self.leave_table();
        self.done = true;
        self.shared.finish()
    }

    /// Body cut short / origin error: readers get `Err(Aborted)` after the bytes they already
    /// had; removed from the table. Dropping a writer without `finish` does the same.
    pub fn abort(mut self) {
        self.end_aborted();
    }

    /// The object turned out too big to store: no new followers may join (removed from the
    /// table), chunks every live reader has read are released, and from now on memory is
    /// bounded by [`STREAM_WINDOW`] ("streaming mode").
    pub fn stream_only(&mut self) {
        self.leave_table();
        self.shared.stream_only();
    }

    /// Body bytes currently held.
    pub fn buffered_bytes(&self) -> u64 {
        self.shared.buffered_bytes()
    }

    fn leave_table(&mut self) {
        if !self.in_table {
            return;
        }
        self.in_table = false;
        let mut table = self.table.lock();
        if table
            .get(&self.key)
            .is_some_and(|s| Arc::ptr_eq(s, &self.shared))
        {
            table.remove(&self.key);
        }
    }

    fn end_aborted(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        self.leave_table();
        self.shared.abort();
    }
}

impl<H> Drop for FillWriter<H> {
    fn drop(&mut self) {
        self.end_aborted();
    }
}

impl<H> FillReader<H> {
    /// Wait (at most `wait`) for the head. `Released` if the head is not shareable (followers
    /// only), `Aborted` if the fill ended without a head, `TimedOut` after `wait`.
    pub async fn head(&mut self, wait: Duration) -> Result<Arc<H>, FollowError> {
        let shared = &self.shared;
        let id = self.id;
        match tokio::time::timeout(wait, poll_fn(|cx| shared.poll_head(id, cx))).await {
            Ok(result) => result,
            Err(_) => Err(FollowError::TimedOut),
        }
    }

    /// Next body chunk: `Some(Ok)` in order from byte 0, `None` at the end, `Some(Err(Aborted))`
    /// (repeatedly) if the fill was aborted, `Some(Err(Released))` for a released follower.
    /// Zero-copy (`Bytes` clones).
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, FollowError>> {
        poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// Poll form of [`Self::next_chunk`].
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, FollowError>>> {
        self.shared.poll_chunk(self.id, cx)
    }
}

impl<H> Drop for FillReader<H> {
    fn drop(&mut self) {
        self.shared.unregister(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const WAIT: Duration = Duration::from_secs(5);

    pub(super) fn lead(fills: &Fills<String>, key: &str) -> FillWriter<String> {
        match fills.join(key) {
            Join::Lead(w) => w,
            Join::Follow(_) => panic!("{key}: expected to lead"),
        }
    }

    pub(super) fn follow(fills: &Fills<String>, key: &str) -> FillReader<String> {
        match fills.join(key) {
            Join::Follow(r) => r,
            Join::Lead(_) => panic!("{key}: expected to follow"),
        }
    }

    fn head(s: &str) -> Arc<String> {
        Arc::new(s.to_owned())
    }

    /// Reads to the end; returns the body and how it ended.
    pub(super) async fn read_all(r: &mut FillReader<String>) -> (Vec<u8>, Option<FollowError>) {
        let mut body = Vec::new();
        loop {
            match r.next_chunk().await {
                Some(Ok(chunk)) => body.extend_from_slice(&chunk),
                Some(Err(e)) => return (body, Some(e)),
                None => return (body, None),
            }
        }
    }

    #[tokio::test]
    async fn the_second_join_follows() {
        let fills = Fills::new();
        let mut w = lead(&fills, "/a");
        let mut f = follow(&fills, "/a");
        let _other = lead(&fills, "/b");
        assert_eq!(fills.in_flight(), 2);
        w.publish(head("200"), true);
        assert_eq!(f.head(WAIT).await.as_deref().map(String::as_str), Ok("200"));
        assert_eq!(fills.in_flight(), 2);
    }

    #[tokio::test]
    async fn waiting_for_the_head_times_out() {
        let fills = Fills::new();
        let _w = lead(&fills, "/a");
        let mut f = follow(&fills, "/a");
        let got = f.head(Duration::from_millis(20)).await;
        assert_eq!(got, Err(FollowError::TimedOut));
        assert_eq!(FollowError::TimedOut.as_str(), "timed_out");
    }

    #[tokio::test]
    async fn a_non_shareable_head_releases_followers_and_reopens_the_key() {
        let fills = Fills::new();
        let mut w = lead(&fills, "/a");
        let mut mine = w.reader();
        let waiting = follow(&fills, "/a");
        let mut late = follow(&fills, "/a");
        let waiter = tokio::spawn(async move {
            let mut waiting = waiting;
            waiting.head(WAIT).await
        });
        w.publish(head("200 private"), false);
        assert_eq!(waiter.await.ok(), Some(Err(FollowError::Released)));
        assert_eq!(late.head(WAIT).await, Err(FollowError::Released));
        assert_eq!(late.next_chunk().await, Some(Err(FollowError::Released)));
        assert_eq!(fills.in_flight(), 0);
        let _next = lead(&fills, "/a");
        // The leader's own client is still served.
        assert_eq!(
            mine.head(WAIT).await.as_deref().map(String::as_str),
            Ok("200 private")
        );
        w.push(Bytes::from_static(b"abc")).await;
        assert_eq!(w.finish(), Some(Bytes::from_static(b"abc")));
        assert_eq!(read_all(&mut mine).await, (b"abc".to_vec(), None));
    }

    #[tokio::test]
    async fn abort_gives_the_bytes_so_far_then_aborted() {
        let fills = Fills::new();
        let mut w = lead(&fills, "/a");
        let mut f = follow(&fills, "/a");
        w.publish(head("200"), true);
        w.push(Bytes::from_static(b"ab")).await;
        w.push(Bytes::from_static(b"cd")).await;
        w.abort();
        assert_eq!(fills.in_flight(), 0);
        assert_eq!(f.head(WAIT).await.as_deref().map(String::as_str), Ok("200"));
        let aborted = Some(FollowError::Aborted);
        assert_eq!(read_all(&mut f).await, (b"abcd".to_vec(), aborted));
        assert_eq!(f.next_chunk().await, Some(Err(FollowError::Aborted)));
    }

    #[tokio::test]
    async fn an_abort_before_the_head_wakes_head_waiters() {
        let fills = Fills::new();
        let w = lead(&fills, "/a");
        let mut f = follow(&fills, "/a");
        let waiter = tokio::spawn(async move { f.head(WAIT).await });
        tokio::task::yield_now().await;
        w.abort();
        assert_eq!(waiter.await.ok(), Some(Err(FollowError::Aborted)));
    }

    #[tokio::test]
    async fn finish_returns_the_whole_body() {
        let fills = Fills::new();
        let mut w = lead(&fills, "/a");
        let mut f = follow(&fills, "/a");
        w.publish(head("200"), true);
        for part in ["ab", "cd", "ef"] {
            w.push(Bytes::from_static(part.as_bytes())).await;
        }
        assert_eq!(f.next_chunk().await, Some(Ok(Bytes::from_static(b"ab"))));
        assert_eq!(w.finish(), Some(Bytes::from_static(b"abcdef")));
        assert_eq!(fills.in_flight(), 0);
        // After compaction the reader resumes at its byte, in one piece.
        assert_eq!(f.next_chunk().await, Some(Ok(Bytes::from_static(b"cdef"))));
        assert_eq!(f.next_chunk().await, None);
        let _again = lead(&fills, "/a");
    }

    #[tokio::test]
    async fn a_single_chunk_body_is_not_copied() {
        let fills = Fills::new();
        let mut w = lead(&fills, "/a");
        let chunk = Bytes::from(vec![7u8; 100]);
        w.push(chunk.clone()).await;
        let body = w.finish();
        assert_eq!(body.as_ref().map(|b| b.as_ptr()), Some(chunk.as_ptr()));
    }

    #[tokio::test]
    async fn a_follower_joining_mid_body_reads_from_byte_0() {
        let fills = Fills::new();
        let mut w = lead(&fills, "/a");
        w.publish(head("200"), true);
        w.push(Bytes::from_static(b"hello ")).await;
        w.push(Bytes::from_static(b"big ")).await;
        let mut f = follow(&fills, "/a");
        w.push(Bytes::from_static(b"world")).await;
        assert_eq!(w.finish(), Some(Bytes::from_static(b"hello big world")));
        assert_eq!(f.head(WAIT).await.as_deref().map(String::as_str), Ok("200"));
        assert_eq!(read_all(&mut f).await, (b"hello big world".to_vec(), None));
    }

    #[tokio::test]
    async fn a_dropped_writer_aborts() {
        let fills = Fills::new();
        let mut w = lead(&fills, "/a");
        let mut f = follow(&fills, "/a");
        let mut g = follow(&fills, "/a");
        w.publish(head("200"), true);
        w.push(Bytes::from_static(b"xy")).await;
        drop(w);
        assert_eq!(fills.in_flight(), 0);
        assert_eq!(
            read_all(&mut f).await,
            (b"xy".to_vec(), Some(FollowError::Aborted))
        );
        assert_eq!(
            read_all(&mut g).await,
            (b"xy".to_vec(), Some(FollowError::Aborted))
        );
        let _new = lead(&fills, "/a");
    }

    #[tokio::test]
    async fn a_dropped_writer_before_the_head_aborts_followers() {
        let fills = Fills::<String>::new();
        let w = lead(&fills, "/a");
        let mut f = follow(&fills, "/a");
        drop(w);
        assert_eq!(f.head(WAIT).await, Err(FollowError::Aborted));
    }
}
