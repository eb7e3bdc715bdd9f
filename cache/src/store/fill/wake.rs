//! Wakers taken out of a fill's state under its lock, woken once the lock is released.
//!
//! Contract: every `State` transition that can unblock a waiter (a chunk, the head, the end,
//! a release of buffered chunks) moves the waiters' wakers into a [`Wake`]; the caller drops the
//! `Wake` after the lock guard, so woken tasks never contend for a lock still held, and a waiter
//! that parked its waker under the lock before the transition is always woken (no lost wake-up).

use std::task::Waker;

/// Wakers taken out of the state, woken when this is dropped (after the lock is released).
#[derive(Default)]
pub(super) struct Wake(Vec<Waker>);

impl Wake {
    pub(super) fn add(&mut self, waker: Option<Waker>) {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use bytes::Bytes;

    use super::super::state::{Read, State};
    use super::super::FollowError;
    use super::*;

    /// A waker that records that it was woken.
    struct Flag(AtomicBool);

    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn flag() -> (Arc<Flag>, Waker) {
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        (flag.clone(), Waker::from(flag))
    }

    fn woken(flag: &Flag) -> bool {
        flag.0.load(Ordering::SeqCst)
    }

    fn bytes(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn waiters_are_woken_only_after_the_wake_is_dropped() {
        let mut st = State::<()>::new(Arc::new(super::super::budget::Budget::new()));
        let reader = st.register(false);
        st.stream_only(&mut Wake::default());
        assert_eq!(st.read(reader, &mut Wake::default()), Read::Pending);
        let (reader_flag, reader_waker) = flag();
        st.park_reader(reader, &reader_waker);
        let mut wake = Wake::default();
        st.push(bytes("data"), &mut wake);
        assert!(!woken(&reader_flag));
        drop(wake);
        assert!(woken(&reader_flag));

        let (writer_flag, writer_waker) = flag();
        st.park_writer(&writer_waker);
        let mut wake = Wake::default();
        assert_eq!(st.read(reader, &mut wake), Read::Chunk(bytes("data")));
        drop(wake);
        assert!(woken(&writer_flag), "a release wakes the writer");
    }

    #[test]
    fn the_end_wakes_head_and_body_waiters() {
        let mut st = State::<()>::new(Arc::new(super::super::budget::Budget::new()));
        let reader = st.register(true);
        assert_eq!(st.head(reader), None);
        let (flag, waker) = flag();
        st.park_reader(reader, &waker);
        st.abort(&mut Wake::default());
        assert!(woken(&flag));
        assert_eq!(st.head(reader), Some(Err(FollowError::Aborted)));
        assert_eq!(
            st.read(reader, &mut Wake::default()),
            Read::Failed(FollowError::Aborted)
        );
    }
}
