//! The stream window of a fill in streaming mode, and the detaching of readers that hold it.
//!
//! Contract (`now` is a parameter: this is pure logic):
//! * The writer may push while what is held (the bytes the slowest live reader has not read)
//!   is within the window: [`STREAM_WINDOW`], or 0 while the node is over budget.
//! * When the writer must wait, every live reader more than a window behind is *lagging* from
//!   then on, until it catches up to within half a window (hysteresis: a reader that trickles
//!   one chunk at a time stays lagging).
//! * A reader lagging for `stream_lag` is detached, when that helps someone: another live
//!   reader is not lagging (it would be held back), or the node is over budget (the bytes are
//!   needed). A detached reader's next read fails with `Detached`, and the chunks only it
//!   held are released at once. Readers that are all slow together are never detached for it:
//!   the writer waits for them (back-pressure to the origin), and `send_timeout` closes the
//!   ones that take nothing at all.

use tokio::time::Instant;

use super::{Standing, State, Wake, STREAM_WINDOW};

/// What the writer may do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in super::super) enum Window {
    /// Push.
    Open,
    /// Wait for a reader; if `Some`, until then at the latest (a lagging reader's deadline).
    Wait(Option<Instant>),
}

impl<H> State<H> {
    /// Decides whether the writer may push at `now`, detaching readers that have lagged for
    /// `stream_lag` when that helps.
    pub(in super::super) fn window(&mut self, now: Instant, wake: &mut Wake) -> Window {
        if !self.streaming {
            return Window::Open;
        }
        let window = self.budget.window();
        if self.buffered <= window {
            return Window::Open;
        }
        let over = window < STREAM_WINDOW;
        let lag = self.budget.lag();
        let pushed = self.pushed;
        let mut helps = over;
        for slot in self.readers.values_mut() {
            if slot.standing != Standing::Live {
                continue;
            }
            if pushed - slot.read_bytes > window {
                slot.lagging_since.get_or_insert(now);
            }
            helps |= slot.lagging_since.is_none();
        }
        if !helps {
            return Window::Wait(None);
        }
        let mut detached = 0;
        let mut deadline: Option<Instant> = None;
        for slot in self.readers.values_mut() {
            let Some(since) = slot.lagging_since else {
                continue;
            };
            if slot.standing != Standing::Live || pushed - slot.read_bytes <= window {
                continue;
            }
            let due = since + lag;
            if due <= now {
                slot.standing = Standing::Detached;
                slot.lagging_since = None;
                wake.add(slot.waker.take());
                detached += 1;
            } else {
                deadline = Some(deadline.map_or(due, |d| d.min(due)));
            }
        }
        if detached > 0 {
            self.budget.count_detached(detached);
            self.release_consumed(wake);
            if self.buffered <= window {
                return Window::Open;
            }
        }
        Window::Wait(deadline)
    }

    /// After reader `id` read: once within half a window it is no longer lagging, which may let
    /// the writer detach the others (it is woken to decide again).
    pub(super) fn caught_up(&mut self, id: u64, wake: &mut Wake) {
        let window = self.budget.window();
        let pushed = self.pushed;
        let Some(slot) = self.readers.get_mut(&id) else {
            return;
        };
        if slot.lagging_since.is_some() && pushed - slot.read_bytes <= window / 2 {
            slot.lagging_since = None;
            wake.add(self.writer_waker.take());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;

    use super::super::super::budget::Budget;
    use super::super::Read;
    use super::*;
    use crate::store::fill::FollowError;

    const LAG: Duration = Duration::from_secs(2);

    fn streaming(limit: u64) -> (State<()>, Arc<Budget>) {
        let budget = Arc::new(Budget::new());
        budget.configure(limit, LAG);
        let mut st = State::new(budget.clone());
        st.stream_only(&mut Wake::default());
        (st, budget)
    }

    fn half_window() -> Bytes {
        Bytes::from(vec![1u8; STREAM_WINDOW as usize / 2])
    }

    fn fill_past_the_window(st: &mut State<()>) {
        for _ in 0..3 {
            st.push(half_window(), &mut Wake::default());
        }
    }

    fn read_all(st: &mut State<()>, id: u64) {
        while let Read::Chunk(_) = st.read(id, &mut Wake::default()) {}
    }

    #[test]
    fn a_reader_holding_back_another_is_detached_after_the_lag() {
        let (mut st, budget) = streaming(u64::MAX);
        let (fast, slow) = (st.register(false), st.register(true));
        fill_past_the_window(&mut st);
        read_all(&mut st, fast);
        let t0 = Instant::now();
        assert_eq!(
            st.window(t0, &mut Wake::default()),
            Window::Wait(Some(t0 + LAG))
        );
        let almost = t0 + LAG - Duration::from_millis(1);
        assert_eq!(
            st.window(almost, &mut Wake::default()),
            Window::Wait(Some(t0 + LAG))
        );
        assert_eq!(st.window(t0 + LAG, &mut Wake::default()), Window::Open);
        assert_eq!(budget.detached(), 1);
        assert_eq!(
            st.buffered(),
            0,
            "the chunks only the slow reader held are gone"
        );
        assert_eq!(
            st.read(slow, &mut Wake::default()),
            Read::Failed(FollowError::Detached)
        );
        assert_eq!(st.head(slow), Some(Err(FollowError::Detached)));
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn readers_slow_together_are_waited_for() {
        let (mut st, budget) = streaming(u64::MAX);
        let (a, b) = (st.register(false), st.register(true));
        fill_past_the_window(&mut st);
        let t0 = Instant::now();
        assert_eq!(st.window(t0, &mut Wake::default()), Window::Wait(None));
        let later = t0 + LAG * 10;
        assert_eq!(st.window(later, &mut Wake::default()), Window::Wait(None));
        assert_eq!(budget.detached(), 0);
        // `a` catches up: now `b` holds it back, lagging since t0.
        read_all(&mut st, a);
        assert_eq!(st.window(later, &mut Wake::default()), Window::Open);
        assert_eq!(
            st.read(b, &mut Wake::default()),
            Read::Failed(FollowError::Detached)
        );
    }

    #[test]
    fn a_trickling_reader_stays_lagging() {
        let (mut st, budget) = streaming(u64::MAX);
        let (fast, slow) = (st.register(false), st.register(true));
        fill_past_the_window(&mut st);
        read_all(&mut st, fast);
        let t0 = Instant::now();
        assert!(matches!(
            st.window(t0, &mut Wake::default()),
            Window::Wait(_)
        ));
        // One chunk read now and then opens the window for one more push, no more.
        let step = Duration::from_millis(500);
        let mut t = t0;
        while t + step < t0 + LAG {
            assert!(matches!(
                st.read(slow, &mut Wake::default()),
                Read::Chunk(_)
            ));
            assert_eq!(st.window(t, &mut Wake::default()), Window::Open);
            st.push(half_window(), &mut Wake::default());
            read_all(&mut st, fast);
            t += step;
            let w = st.window(t, &mut Wake::default());
            assert_eq!(w, Window::Wait(Some(t0 + LAG)), "at {:?}", t - t0);
        }
        assert_eq!(budget.detached(), 0);
        assert_eq!(st.window(t0 + LAG, &mut Wake::default()), Window::Open);
        assert_eq!(budget.detached(), 1);
    }

    #[test]
    fn a_reader_that_catches_up_is_not_lagging_anymore() {
        let (mut st, budget) = streaming(u64::MAX);
        let (fast, slow) = (st.register(false), st.register(true));
        fill_past_the_window(&mut st);
        read_all(&mut st, fast);
        let t0 = Instant::now();
        assert!(matches!(
            st.window(t0, &mut Wake::default()),
            Window::Wait(_)
        ));
        read_all(&mut st, slow);
        assert_eq!(st.window(t0, &mut Wake::default()), Window::Open);
        fill_past_the_window(&mut st);
        read_all(&mut st, fast);
        let t1 = t0 + LAG + Duration::from_millis(1);
        // Lagging again since t1, not since t0.
        assert_eq!(
            st.window(t1, &mut Wake::default()),
            Window::Wait(Some(t1 + LAG))
        );
        assert_eq!(budget.detached(), 0);
    }

    #[test]
    fn over_budget_the_window_is_empty_and_a_lone_laggard_is_cut() {
        let (mut st, budget) = streaming(STREAM_WINDOW);
        let only = st.register(false);
        fill_past_the_window(&mut st);
        assert!(budget.is_over());
        let t0 = Instant::now();
        assert_eq!(
            st.window(t0, &mut Wake::default()),
            Window::Wait(Some(t0 + LAG))
        );
        assert_eq!(st.window(t0 + LAG, &mut Wake::default()), Window::Open);
        assert_eq!(
            st.read(only, &mut Wake::default()),
            Read::Failed(FollowError::Detached)
        );
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn storing_mode_has_no_window() {
        let budget = Arc::new(Budget::new());
        let mut st = State::<()>::new(budget);
        let _r = st.register(false);
        fill_past_the_window(&mut st);
        assert_eq!(
            st.window(Instant::now(), &mut Wake::default()),
            Window::Open
        );
    }
}
