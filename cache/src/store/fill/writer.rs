//! The leader's side of a fill: publishes the head, pushes the body, ends it.
//!
//! Contract: the head is published once; body chunks are pushed in order; exactly one of
//! `finish` / `abort` / drop ends the fill, and each removes it from the table first (if
//! `publish(non-shareable)` or `stream_only` has not already), so no follower joins an ended
//! fill. In streaming mode `push` waits while more than `STREAM_WINDOW` is held.

use std::future::poll_fn;
use std::sync::Arc;

use bytes::Bytes;

use super::shared::Shared;
use super::{FillReader, Table};
#[cfg(doc)]
use super::{FollowError, STREAM_WINDOW};

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

impl<H> FillWriter<H> {
    pub(super) fn new(key: &str, shared: Arc<Shared<H>>, table: Arc<Table<H>>) -> Self {
        Self {
            key: key.to_owned(),
            shared,
            table,
            in_table: true,
            done: false,
        }
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

    /// Like [`finish`](Self::finish), but runs `store` on the body *before* the fill leaves the
    /// table, so there is no moment when a new request finds neither the fill nor the stored
    /// object (a request joining in between gets the complete body from the fill).
    pub fn finish_with<R>(mut self, store: impl FnOnce(Option<Bytes>) -> R) -> R {
        self.done = true;
        let body = self.shared.finish();
        let r = store(body);
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::tests::{follow, head, lead, read_all, WAIT};
    use super::super::{Fills, FollowError};

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
    async fn finish_with_stores_while_the_fill_is_still_joinable() {
        let fills = Fills::new();
        let mut w = lead(&fills, "/a");
        w.publish(head("200"), true);
        w.push(Bytes::from_static(b"body")).await;
        let mut late = w.finish_with(|body| {
            assert_eq!(body.as_deref(), Some(&b"body"[..]));
            // Still in the table: a request arriving now follows and gets the whole body.
            follow(&fills, "/a")
        });
        assert_eq!(read_all(&mut late).await, (b"body".to_vec(), None));
        assert_eq!(fills.in_flight(), 0);
        let _new = lead(&fills, "/a");
    }
}
