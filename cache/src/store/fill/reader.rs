//! A reader of one fill (the leader's client or a follower): the response head, then the body
//! from byte 0, zero-copy. A reader is an `http_body::Body` (Data = `Bytes`, Error =
//! [`FollowError`]) so the caller hands it to hyper as a response body: the body ends when the
//! fill finishes and fails with the fill's error. Dropping a reader unregisters it at once, so a
//! client that went away never holds the writer back.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};

use super::shared::Shared;
use super::FollowError;

/// A reader of one fill: the response head, then the body from byte 0.
pub struct FillReader<H> {
    shared: Arc<Shared<H>>,
    id: u64,
}

impl<H> FillReader<H> {
    pub(super) fn new(shared: Arc<Shared<H>>, follower: bool) -> Self {
        let id = shared.register(follower);
        Self { shared, id }
    }

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

impl<H> Body for FillReader<H> {
    type Data = Bytes;
    type Error = FollowError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, FollowError>>> {
        self.get_mut()
            .poll_chunk(cx)
            .map(|next| next.map(|chunk| chunk.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.shared.is_end_of_body(self.id)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http_body_util::BodyExt;

    use super::super::tests::{follow, lead, WAIT};
    use super::super::Fills;
    use super::*;

    #[test]
    fn a_reader_can_be_a_hyper_response_body() {
        fn body_of_a_spawned_task<T: Body<Data = Bytes> + Send + Sync + Unpin + 'static>() {}
        body_of_a_spawned_task::<FillReader<String>>();
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

    /// The body of the race tests: chunk `i` is `1 + i % 13` bytes of `i % 256`.
    fn race_chunk(i: usize) -> Bytes {
        Bytes::from(vec![(i % 256) as u8; 1 + i % 13])
    }

    fn race_body(chunks: usize) -> Vec<u8> {
        (0..chunks).flat_map(|i| race_chunk(i).to_vec()).collect()
    }

    /// Reads head and body on its own task; returns the body bytes.
    fn spawn_reader(mut r: FillReader<String>) -> tokio::task::JoinHandle<Vec<u8>> {
        tokio::spawn(async move {
            assert!(r.head(WAIT).await.is_ok());
            let mut body = Vec::new();
            let mut n = 0usize;
            while let Some(chunk) = r.next_chunk().await {
                let chunk = chunk.unwrap_or_else(|e| panic!("reader failed: {e}"));
                body.extend_from_slice(&chunk);
                n += 1;
                if n % 5 == 4 {
                    tokio::task::yield_now().await;
                }
            }
            body
        })
    }

    #[tokio::test]
    async fn a_reader_is_a_hyper_body() {
        let fills = Fills::new();
        let mut w = lead(&fills, "/a");
        let f = follow(&fills, "/a");
        w.publish(Arc::new("200".to_owned()), true);
        w.push(Bytes::from_static(b"hello ")).await;
        w.push(Bytes::from_static(b"world")).await;
        assert!(!f.is_end_stream());
        w.finish();
        let collected = f.collect().await.map(|c| c.to_bytes());
        assert_eq!(collected, Ok(Bytes::from_static(b"hello world")));
    }

    #[tokio::test]
    async fn a_body_fails_with_the_fill() {
        let fills = Fills::new();
        let mut w = lead(&fills, "/a");
        let f = follow(&fills, "/a");
        w.push(Bytes::from_static(b"partial")).await;
        w.abort();
        let collected = f.collect().await.map(|c| c.to_bytes());
        assert_eq!(collected, Err(FollowError::Aborted));
    }

    #[tokio::test]
    async fn is_end_stream_after_the_last_byte() {
        let fills = Fills::<String>::new();
        let mut w = lead(&fills, "/a");
        let mut r = w.reader();
        w.push(Bytes::from_static(b"x")).await;
        w.finish();
        assert!(!r.is_end_stream());
        assert_eq!(r.next_chunk().await, Some(Ok(Bytes::from_static(b"x"))));
        assert!(r.is_end_stream());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_readers_get_every_byte_in_order() {
        const CHUNKS: usize = 20_000;
        let fills = Fills::new();
        let mut w = lead(&fills, "/race");
        let mut readers: Vec<_> = (0..8)
            .map(|_| spawn_reader(follow(&fills, "/race")))
            .collect();
        w.publish(Arc::new("200".to_owned()), true);
        for i in 0..CHUNKS {
            if i % 2_500 == 1_000 {
                // Followers joining mid-body race the writer too.
                readers.push(spawn_reader(follow(&fills, "/race")));
            }
            w.push(race_chunk(i)).await;
            if i % 7 == 3 {
                tokio::task::yield_now().await;
            }
        }
        let expected = race_body(CHUNKS);
        assert_eq!(w.finish().as_deref(), Some(&expected[..]));
        assert_eq!(readers.len(), 16);
        for reader in readers {
            let got = tokio::time::timeout(WAIT, reader).await;
            let got = got.ok().and_then(Result::ok);
            assert!(got.as_deref() == Some(&expected[..]), "a reader lost bytes");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_readers_in_streaming_mode_get_every_byte_in_order() {
        // ~3 MB through a 1 MiB window: the writer waits on the readers many times.
        const CHUNKS: usize = 3_000;
        let big = |i: usize| Bytes::from(vec![(i % 256) as u8; 1 + (i * 37) % 2048]);
        let fills = Fills::<String>::new();
        let mut w = lead(&fills, "/race");
        let readers: Vec<_> = (0..8).map(|_| spawn_reader(w.reader())).collect();
        w.stream_only();
        w.publish(Arc::new("200".to_owned()), true);
        for i in 0..CHUNKS {
            w.push(big(i)).await;
        }
        assert_eq!(w.finish(), None);
        let expected: Vec<u8> = (0..CHUNKS).flat_map(|i| big(i).to_vec()).collect();
        for reader in readers {
            let got = tokio::time::timeout(WAIT, reader).await;
            let got = got.ok().and_then(Result::ok);
            assert!(got.as_deref() == Some(&expected[..]), "a reader lost bytes");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn lockstep_readers_never_miss_a_wake_up() {
        // The writer pushes chunk i+1 only after every reader has read chunk i, so every push
        // is the only event that can wake a parked reader: one lost wake-up hangs the test.
        const READERS: usize = 8;
        const ROUNDS: usize = 2_000;
        let fills = Fills::<String>::new();
        let mut w = lead(&fills, "/lockstep");
        let barrier = Arc::new(tokio::sync::Barrier::new(READERS + 1));
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let mut r = follow(&fills, "/lockstep");
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    for i in 0..ROUNDS {
                        assert_eq!(r.next_chunk().await, Some(Ok(race_chunk(i))));
                        barrier.wait().await;
                    }
                    r.next_chunk().await.is_none()
                })
            })
            .collect();
        let writer = async {
            for i in 0..ROUNDS {
                w.push(race_chunk(i)).await;
                barrier.wait().await;
            }
            w.finish().map(|body| body.len())
        };
        let written = tokio::time::timeout(WAIT, writer).await;
        assert_eq!(written.ok(), Some(Some(race_body(ROUNDS).len())));
        for reader in readers {
            let ended = tokio::time::timeout(WAIT, reader).await;
            assert_eq!(ended.ok().and_then(Result::ok), Some(true));
        }
    }
}
