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
//!   `STREAM_WINDOW` plus one chunk (see `state.rs`). A dropped reader unregisters at once.
//! * Every byte a fill holds is charged to one budget shared by the table and its
//!   [`Fills::private`] tables (`limits.inflight`, `budget.rs`): over it, a storing fill goes to
//!   streaming mode and a streaming fill keeps nothing its readers have not taken.
//! * A reader that keeps a streaming writer waiting, a whole window behind, for
//!   `limits.stream_lag` is detached ([`FollowError::Detached`]) when that frees another reader
//!   or budget bytes (`state/window.rs`); readers all slow together are waited for.
//!
//! A fill that finishes is removed from the table before the caller stores the object; a
//! request arriving in between misses both and leads a new fill (a rare duplicate fetch, never
//! a wrong answer).

mod budget;
mod reader;
pub mod resume;
mod shared;
mod state;
mod wake;
mod writer;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use budget::Budget;
pub use reader::FillReader;
use shared::Shared;
pub use state::STREAM_WINDOW;
pub use writer::FillWriter;

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
    /// This reader stayed a whole stream window behind the others for `stream_lag` (or was
    /// cut while the node was over its `inflight` budget); the others went on without it.
    #[error("reader detached: too far behind the shared stream")]
    Detached,
}

impl FollowError {
    /// Stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            FollowError::Released => "released",
            FollowError::TimedOut => "timed_out",
            FollowError::Aborted => "aborted",
            FollowError::Detached => "detached",
        }
    }
}

type Table<H> = Mutex<HashMap<String, Arc<Shared<H>>>>;

/// The in-flight fills, by primary key, and the byte budget they share.
pub struct Fills<H> {
    table: Arc<Table<H>>,
    budget: Arc<Budget>,
}

/// The outcome of [`Fills::join`].
pub enum Join<H> {
    /// This caller fetches from the origin and writes the fill.
    Lead(FillWriter<H>),
    /// Another caller is fetching; read its response.
    Follow(FillReader<H>),
}

impl<H: Send + Sync + 'static> Fills<H> {
    /// A table of its own (no `inflight` limit until [`Fills::configure`]).
    pub fn new() -> Self {
        Self::with_budget(Arc::new(Budget::new()))
    }

    fn with_budget(budget: Arc<Budget>) -> Self {
        Self {
            table: Arc::new(Mutex::new(HashMap::new())),
            budget,
        }
    }

    /// A fill of `key` that nobody can join (it is in no table) and that charges this
    /// table's budget: what a request going forward alone leads.
    pub fn alone(&self, key: &str) -> FillWriter<H> {
        let shared = Arc::new(Shared::new(self.budget.clone()));
        FillWriter::alone(key, shared, self.table.clone(), self.budget.clone())
    }

    /// Sets `limits.inflight` (bytes all fills may hold) and `limits.stream_lag`.
    pub fn configure(&self, inflight: u64, stream_lag: Duration) {
        self.budget.configure(inflight, stream_lag);
    }

    /// Body bytes held by fills now (this table's and its private ones).
    pub fn inflight_bytes(&self) -> u64 {
        self.budget.held()
    }

    /// The configured `inflight` limit.
    pub fn inflight_limit(&self) -> u64 {
        self.budget.limit()
    }

    /// Readers detached so far (lagging, or cut over budget).
    pub fn detached(&self) -> u64 {
        self.budget.detached()
    }

    /// Fills that stopped storing because the budget was exceeded, so far.
    pub fn over_budget(&self) -> u64 {
        self.budget.over_budget()
    }

    /// The first caller for a key leads (fetches from the origin); later callers follow until
    /// the leader publishes a non-shareable head, finishes, aborts, or closes to new followers.
    pub fn join(&self, key: &str) -> Join<H> {
        let mut table = self.table.lock();
        if let Some(shared) = table.get(key) {
            // Registered under the table lock: see the module doc.
            return Join::Follow(FillReader::new(shared.clone(), true));
        }
        let shared = Arc::new(Shared::new(self.budget.clone()));
        table.insert(key.to_owned(), shared.clone());
        Join::Lead(FillWriter::new(
            key,
            shared,
            self.table.clone(),
            self.budget.clone(),
        ))
    }

    /// A fill of `key` is in the table (a `join` now would follow it).
    pub fn is_filling(&self, key: &str) -> bool {
        self.table.lock().contains_key(key)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

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

    pub(super) fn head(s: &str) -> Arc<String> {
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
        assert!(fills.is_filling("/a") && !fills.is_filling("/c"));
        w.publish(head("200"), true);
        assert_eq!(f.head(WAIT).await.as_deref().map(String::as_str), Ok("200"));
        assert_eq!(fills.in_flight(), 2);
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
}
