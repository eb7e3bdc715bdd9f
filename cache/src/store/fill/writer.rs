//! The leader's side of a fill: publishes the head, pushes the body, ends it.
//!
//! Contract: the head is published once; body chunks are pushed in order; exactly one of
//! `finish` / `abort` / drop ends the fill, and each removes it from the table first (if
//! `publish(non-shareable)` or `stream_only` has not already), so no follower joins an ended
//! fill. In streaming mode `push` waits while more than the window is held, and detaches the
//! readers that keep it waiting for `stream_lag` (see `state/window.rs`). A push that takes the
//! node over its `inflight` budget turns a storing fill into a streaming one.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use tokio::time::{Instant, Sleep};

use super::budget::Budget;
use super::shared::Shared;
use super::state::Window;
use super::{FillReader, Table};
#[cfg(doc)]
use super::{FollowError, STREAM_WINDOW};

/// The leader's handle: publishes the head and the body. Dropping it without `finish` aborts.
pub struct FillWriter<H> {
    key: String,
    shared: Arc<Shared<H>>,
    table: Arc<Table<H>>,
    budget: Arc<Budget>,
    /// In streaming mode (`stream_only` ran).
    streaming: bool,
    /// Wakes the writer at a lagging reader's deadline; made at the first such wait.
    timer: Option<Pin<Box<Sleep>>>,
    /// Still in the table (joinable).
    in_table: bool,
    /// `finish` or `abort` ran.
    done: bool,
}

impl<H> FillWriter<H> {
    pub(super) fn new(
        key: &str,
        shared: Arc<Shared<H>>,
        table: Arc<Table<H>>,
        budget: Arc<Budget>,
    ) -> Self {
        Self {
            key: key.to_owned(),
            shared,
            table,
            budget,
            streaming: false,
            timer: None,
            in_table: true,
            done: false,
        }
    }

    /// A writer in no table (see [`super::Fills::alone`]): `table` is never touched.
    pub(super) fn alone(
        key: &str,
        shared: Arc<Shared<H>>,
        table: Arc<Table<H>>,
        budget: Arc<Budget>,
    ) -> Self {
        let mut w = Self::new(key, shared, table, budget);
        w.in_table = false;
        w
    }

    /// Leader's own reader (its client reads the body like any follower). Call before publish
    /// and before `stream_only`; a reader created after chunks were released gets `Aborted`.
    pub fn reader(&self) -> FillReader<H> {
        FillReader::new(self.shared.clone(), false)
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

    /// Append body bytes; wakes readers. If the node is now over its `inflight` budget, a
    /// storing fill goes to streaming mode (as [`stream_only`](Self::stream_only); it will not
    /// be stored). In streaming mode, then waits while more than the window ([`STREAM_WINDOW`],
    /// 0 over budget) is buffered ahead of the slowest live reader, detaching readers that keep
    /// it waiting for `stream_lag` ([`FollowError::Detached`]). The chunk is taken at the first
    /// poll: cancelling the future only skips the wait.
    pub async fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() && self.shared.push(chunk) && !self.streaming {
            self.budget.count_over_budget();
            self.stream_only();
        }
        let (shared, timer) = (&self.shared, &mut self.timer);
        poll_fn(|cx| loop {
            match shared.poll_window(cx, Instant::now()) {
                Window::Open => return Poll::Ready(()),
                Window::Wait(None) => return Poll::Pending,
                Window::Wait(Some(at)) => {
                    let t = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                    if t.deadline() != at {
                        t.as_mut().reset(at);
                    }
                    if t.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    // The deadline passed: decide again (the laggard is detached).
                }
            }
        })
        .await;
    }

    /// Body complete. Removes the fill from the table; readers see the end of the body. Returns
    /// the whole body as one `Bytes` (one copy at most, shared with the readers still reading)
    /// if still in storing mode, else None.
    pub fn finish(mut self) -> Option<Bytes> {
        self.leave_table();
        self.done = true;
        self.shared.finish(false)
    }

    /// Like [`finish`](Self::finish), but runs `store` on the body *before* any reader can see
    /// its end, and before the fill leaves the table: there is no moment when a new request
    /// finds neither the fill nor the stored object, and a client that has read the whole
    /// response finds the object stored when it asks again. `last`, the body's final chunk, is
    /// appended at the same moment (a caller that knows the length holds it back, so the
    /// client cannot complete its response earlier). The body is always a copy of its own
    /// (exact size, pinning none of the buffers it was pushed from), and the readers still
    /// reading read that same copy: store it as it is. `store` runs under the fill's lock: it
    /// must not touch this fill (join its key, read it), or it deadlocks.
    pub fn finish_with<R>(
        mut self,
        last: Option<Bytes>,
        store: impl FnOnce(Option<Bytes>) -> R,
    ) -> R {
        self.done = true;
        let r = self.shared.finish_with(last, store);
        self.leave_table();
        r
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
        self.streaming = true;
        self.leave_table();
        self.shared.stream_only();
    }

    /// True in streaming mode once every reader is gone or detached: nobody needs the rest of
    /// the body (the caller may stop reading it and abort).
    pub fn is_orphaned(&self) -> bool {
        self.shared.is_orphaned()
    }

    /// Body bytes pushed so far: the offset at which a writer that takes over the fill
    /// (`resume`) goes on, whatever its readers have read.
    pub fn pushed(&self) -> u64 {
        self.shared.pushed()
    }

    /// Body bytes currently held.
    #[cfg(test)]
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::super::tests::{follow, head, lead, read_all, WAIT};
    use super::super::{Fills, FollowError, STREAM_WINDOW};
    use super::Instant;

    const CHUNK: usize = 64 * 1024;
    const LAG: Duration = Duration::from_millis(500);

    fn chunk() -> Bytes {
        Bytes::from(vec![5u8; CHUNK])
    }

    /// Reads to the end on its own task; returns the byte count and how it ended.
    fn spawn_reader(
        mut r: super::super::FillReader<String>,
    ) -> tokio::task::JoinHandle<(usize, Option<FollowError>)> {
        tokio::spawn(async move {
            let mut n = 0;
            loop {
                match r.next_chunk().await {
                    Some(Ok(c)) => n += c.len(),
                    Some(Err(e)) => return (n, Some(e)),
                    None => return (n, None),
                }
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_reads_nothing_is_detached_after_stream_lag() {
        const TOTAL: usize = 8 * 1024 * 1024;
        let fills = Fills::<String>::new();
        fills.configure(u64::MAX, LAG);
        let mut w = lead(&fills, "/big");
        let fast = spawn_reader(w.reader());
        let mut stuck = w.reader();
        w.stream_only();
        let started = Instant::now();
        for _ in 0..TOTAL / CHUNK {
            w.push(chunk()).await;
        }
        assert_eq!(w.finish(), None);
        assert_eq!(
            started.elapsed(),
            LAG,
            "the writer waited exactly stream_lag"
        );
        assert_eq!(fast.await.ok(), Some((TOTAL, None)));
        assert_eq!(stuck.next_chunk().await, Some(Err(FollowError::Detached)));
        assert_eq!(fills.detached(), 1);
        assert_eq!(fills.inflight_bytes(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_slow_reader_is_waited_for() {
        let fills = Fills::<String>::new();
        fills.configure(u64::MAX, LAG);
        let mut w = lead(&fills, "/big");
        let mut r = w.reader();
        w.stream_only();
        for _ in 0..STREAM_WINDOW as usize / CHUNK {
            w.push(chunk()).await;
        }
        let waited = tokio::time::timeout(LAG * 20, w.push(chunk())).await;
        assert!(waited.is_err(), "the writer waits for its only reader");
        assert_eq!(
            r.next_chunk().await.map(|c| c.map(|c| c.len())),
            Some(Ok(CHUNK))
        );
        assert_eq!(fills.detached(), 0);
    }

    #[tokio::test]
    async fn the_budget_is_charged_while_bytes_are_held_and_zero_after() {
        let fills = Fills::<String>::new();
        let mut stored = lead(&fills, "/stored");
        let mut streamed = lead(&fills, "/streamed");
        let mut r = streamed.reader();
        streamed.stream_only();
        let mut late = stored.reader();
        stored.push(Bytes::from_static(b"abc")).await;
        stored.push(Bytes::from_static(b"de")).await;
        streamed.push(Bytes::from_static(b"xyz")).await;
        assert_eq!(fills.inflight_bytes(), 8);
        assert_eq!(r.next_chunk().await, Some(Ok(Bytes::from_static(b"xyz"))));
        assert_eq!(fills.inflight_bytes(), 5, "read stream chunks are released");
        assert_eq!(stored.finish(), Some(Bytes::from_static(b"abcde")));
        assert_eq!(
            fills.inflight_bytes(),
            5,
            "a reader still reads the finished body"
        );
        assert_eq!(read_all(&mut late).await, (b"abcde".to_vec(), None));
        drop(late);
        assert_eq!(fills.inflight_bytes(), 0);
        drop(streamed);
        drop(r);
        assert_eq!(fills.inflight_bytes(), 0);
        // A fill alone charges the same budget, and nobody joins it.
        let mut p = fills.alone("/p");
        assert_eq!(fills.in_flight(), 0);
        let again = lead(&fills, "/p");
        p.push(Bytes::from_static(b"12")).await;
        assert_eq!(fills.inflight_bytes(), 2);
        p.abort();
        assert_eq!(fills.inflight_bytes(), 0);
        assert_eq!(
            fills.in_flight(),
            1,
            "the alone fill's end leaves the table's own"
        );
        again.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_fill_over_budget_streams_and_is_not_stored() {
        let fills = Fills::<String>::new();
        fills.configure(4 * CHUNK as u64, LAG);
        let mut w = lead(&fills, "/a");
        let reader = spawn_reader(w.reader());
        w.publish(head("200"), true);
        for _ in 0..64 {
            w.push(chunk()).await;
            assert!(fills.inflight_bytes() <= 5 * CHUNK as u64);
        }
        assert_eq!(fills.over_budget(), 1);
        assert_eq!(
            fills.in_flight(),
            0,
            "a streaming fill takes no new followers"
        );
        assert_eq!(w.finish(), None, "not stored");
        assert_eq!(reader.await.ok(), Some((64 * CHUNK, None)));
        assert_eq!(fills.inflight_bytes(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn over_budget_a_reader_that_reads_nothing_is_cut() {
        let fills = Fills::<String>::new();
        fills.configure(4 * CHUNK as u64, LAG);
        let mut w = lead(&fills, "/a");
        let mut stuck = w.reader();
        let started = Instant::now();
        for _ in 0..16 {
            w.push(chunk()).await;
        }
        assert_eq!(started.elapsed(), LAG);
        assert!(w.is_orphaned());
        assert_eq!(stuck.next_chunk().await, Some(Err(FollowError::Detached)));
        assert_eq!(fills.inflight_bytes(), 0);
    }

    #[tokio::test]
    async fn finish_with_gives_a_copy_of_a_single_chunk_that_readers_share() {
        let fills = Fills::<String>::new();
        let mut w = lead(&fills, "/a");
        let mut r = w.reader();
        let chunk = Bytes::from(vec![7u8; 100]);
        w.push(chunk.clone()).await;
        let body = w.finish_with(None, |b| b).unwrap_or_default();
        assert_eq!(body, chunk);
        assert_ne!(body.as_ptr(), chunk.as_ptr(), "a copy");
        let read = r.next_chunk().await.unwrap_or(Ok(Bytes::new()));
        assert_eq!(
            read.map(|b| b.as_ptr()),
            Ok(body.as_ptr()),
            "shared with the reader"
        );
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

    #[tokio::test]
    async fn finish_with_appends_the_last_chunk_and_stores_before_leaving_the_table() {
        let fills = Fills::new();
        let mut w = lead(&fills, "/a");
        let mut early = follow(&fills, "/a");
        w.publish(head("200"), true);
        w.push(Bytes::from_static(b"bo")).await;
        let stored = w.finish_with(Some(Bytes::from_static(b"dy")), |body| {
            assert_eq!(body.as_deref(), Some(&b"body"[..]));
            // Still in the table while the object is stored: no request finds neither.
            // (Nothing here may touch the fill itself: its lock is held.)
            assert_eq!(fills.in_flight(), 1);
            body
        });
        assert_eq!(stored.as_deref(), Some(&b"body"[..]));
        assert_eq!(fills.in_flight(), 0);
        assert_eq!(read_all(&mut early).await, (b"body".to_vec(), None));
        let _new = lead(&fills, "/a");
    }
}
