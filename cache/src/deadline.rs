//! A coarse time bound for the request path's many short waits that almost never time out (a
//! peer `Lookup`'s first answer within `peer_timeout`, an origin's response head within
//! `first_byte_timeout`), cheaper than a timer each.
//!
//! A tokio timer per exchange costs a clock read, an insertion into the runtime's timer wheel
//! at the first wait and a removal when the answer comes: some 700 instructions of a remote
//! hit's 16k at the asking node, some 600 of a pass-through miss's 24k, for a bound that
//! almost never fires. Here each thread keeps
//! one list of waits; a wait registers (its deadline, its waker) only once it has to wait,
//! and one ticker task per thread, running only while the list is not empty, reads the clock
//! every [`TICK`] and wakes the waits whose deadline has passed.
//!
//! Contract: [`within`] resolves to the future's output when it completes first, or to
//! `Err(Elapsed)` no sooner than `limit` after its first wait and about one tick later (the
//! deadline counts from the ticker's first clock reading after the wait registered, never
//! from an older one: a ticker held up by a busy thread makes waits late, never early). A
//! wait that completes or is dropped leaves nothing behind; the ticker ends when no wait is
//! left.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// How often the ticker reads the clock while waits are registered.
pub const TICK: Duration = Duration::from_millis(10);

/// The bound passed first.
#[derive(Debug, PartialEq, Eq)]
pub struct Elapsed;

/// One thread's waits.
#[derive(Default)]
struct Shard {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    ticking: bool,
    slots: Vec<Slot>,
    free: Vec<usize>,
}

impl State {
    /// Waits registered now.
    fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

#[derive(Default)]
struct Slot {
    /// A wait is registered here.
    used: bool,
    limit: Duration,
    /// Set by the first tick after the wait registered.
    deadline: Option<Instant>,
    waker: Option<Waker>,
    fired: bool,
}

thread_local! {
    static SHARD: Arc<Shard> = Arc::new(Shard::default());
}

/// `fut`, bounded by `limit` (see the module doc).
pub fn within<F: Future>(limit: Duration, fut: F) -> Within<F> {
    Within {
        fut,
        limit,
        reg: None,
    }
}

/// The future [`within`] returns (for an `Unpin` future: pin it first, as `ask` does).
pub struct Within<F> {
    fut: F,
    limit: Duration,
    reg: Option<Registered>,
}

impl<F> Drop for Within<F> {
    fn drop(&mut self) {
        if let Some(r) = self.reg.take() {
            r.shard.release(r.slot);
        }
    }
}

struct Registered {
    shard: Arc<Shard>,
    slot: usize,
    /// The waker registered, to skip the lock when the task's waker is the same.
    waker: Waker,
}

impl<F: Future + Unpin> Future for Within<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(v) = Pin::new(&mut this.fut).poll(cx) {
            if let Some(r) = this.reg.take() {
                r.shard.release(r.slot);
            }
            return Poll::Ready(Ok(v));
        }
        match &mut this.reg {
            None => {
                let shard = SHARD.with(Arc::clone);
                let slot = shard.register(this.limit, cx.waker());
                this.reg = Some(Registered {
                    shard,
                    slot,
                    waker: cx.waker().clone(),
                });
            }
            Some(r) => {
                let same = r.waker.will_wake(cx.waker());
                if r.shard.check(r.slot, (!same).then(|| cx.waker())) {
                    if let Some(r) = this.reg.take() {
                        r.shard.release(r.slot);
                    }
                    return Poll::Ready(Err(Elapsed));
                }
                if !same {
                    r.waker = cx.waker().clone();
                }
            }
        }
        Poll::Pending
    }
}

impl Shard {
    /// A wait of `limit` (counted from the next tick); starts the ticker when it is not
    /// running. No clock is read here.
    fn register(self: &Arc<Self>, limit: Duration, waker: &Waker) -> usize {
        let mut s = self.state.lock();
        let slot = Slot {
            used: true,
            limit,
            deadline: None,
            waker: Some(waker.clone()),
            fired: false,
        };
        let at = match s.free.pop() {
            Some(at) => {
                s.slots[at] = slot;
                at
            }
            None => {
                s.slots.push(slot);
                s.slots.len() - 1
            }
        };
        if !s.ticking {
            s.ticking = true;
            drop(s);
            tokio::spawn(tick(Arc::clone(self)));
        }
        at
    }

    /// Whether the wait in `slot` has passed its deadline (the ticker woke it); stores a new
    /// waker when given one.
    fn check(&self, slot: usize, waker: Option<&Waker>) -> bool {
        let mut s = self.state.lock();
        let slot = &mut s.slots[slot];
        if let Some(w) = waker {
            slot.waker = Some(w.clone());
        }
        slot.fired
    }

    fn release(&self, slot: usize) {
        let mut s = self.state.lock();
        s.slots[slot] = Slot::default();
        s.free.push(slot);
    }

    /// Starts the clock of the waits registered since the last tick, and wakes those past
    /// their deadline at `now`; whether any wait is left.
    fn expire(&self, now: Instant) -> bool {
        let mut wake = Vec::new();
        let mut s = self.state.lock();
        for slot in s.slots.iter_mut().filter(|s| s.used && !s.fired) {
            match slot.deadline {
                None => slot.deadline = Some(now + slot.limit),
                Some(d) if d <= now => {
                    slot.fired = true;
                    wake.extend(slot.waker.take());
                }
                Some(_) => {}
            }
        }
        let left = s.live() > 0;
        if !left {
            s.ticking = false;
            s.slots.clear();
            s.free.clear();
        }
        drop(s);
        for w in wake {
            w.wake();
        }
        left
    }
}

/// Ends a ticker that did not end by itself (its runtime dropped it while waits were left):
/// they are woken and time out rather than wait for a tick that will not come, and the next
/// wait starts another ticker. A ticker that ended by itself (nothing left to wait for) does
/// nothing here: `expire` cleared `ticking` under the lock, and a wait registered since, on
/// another thread of a multi-threaded runtime, belongs to the ticker it started.
struct Ticking {
    shard: Arc<Shard>,
    ended: bool,
}

impl Drop for Ticking {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let mut s = self.shard.state.lock();
        for slot in &mut s.slots {
            if slot.used {
                slot.fired = true;
                if let Some(w) = slot.waker.take() {
                    w.wake();
                }
            }
        }
        s.ticking = false;
    }
}

async fn tick(shard: Arc<Shard>) {
    let mut guard = Ticking {
        shard,
        ended: false,
    };
    loop {
        tokio::time::sleep(TICK).await;
        if !guard.shard.expire(Instant::now()) {
            guard.ended = true;
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> (usize, bool, usize) {
        SHARD.with(|s| {
            let s = s.state.lock();
            (s.live(), s.ticking, s.slots.len())
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_that_ends_first_gives_its_output_and_leaves_nothing() {
        let quick = within(
            Duration::from_millis(100),
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                7
            }),
        );
        assert_eq!(quick.await, Ok(7));
        assert_eq!(state().0, 0);
        // Ready at once: not even registered.
        assert_eq!(
            within(Duration::from_millis(1), Box::pin(async { 1 })).await,
            Ok(1)
        );
        // The ticker stops once nothing waits.
        tokio::time::sleep(TICK * 3).await;
        assert_eq!(state(), (0, false, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_times_out_at_its_limit_within_two_ticks() {
        for limit in [Duration::from_millis(50), Duration::from_millis(1000)] {
            let start = Instant::now();
            let r = within(limit, Box::pin(std::future::pending::<()>())).await;
            let took = start.elapsed();
            assert_eq!(r, Err(Elapsed));
            assert!(
                took >= limit && took <= limit + 2 * TICK,
                "{limit:?}: {took:?}"
            );
            assert_eq!(state().0, 0);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_counts_its_limit_from_the_first_tick_after_it_registered() {
        // The ticker is held up (this test never yields to it): whatever clock reading it had
        // before, a wait registered now starts its limit at the tick that sees it, so a busy
        // thread makes waits late, never early.
        let shard = Arc::new(Shard::default());
        let waker = futures_util::task::noop_waker();
        let t0 = Instant::now();
        let old = shard.register(Duration::from_millis(50), &waker);
        assert!(shard.expire(t0), "the first tick starts its clock");
        let late = t0 + Duration::from_millis(300);
        let new = shard.register(Duration::from_millis(50), &waker);
        assert!(shard.expire(late));
        assert!(shard.check(old, None), "50 ms after its first tick: out");
        assert!(
            !shard.check(new, None),
            "registered after that tick: its limit starts now"
        );
        assert!(shard.expire(late + Duration::from_millis(49)));
        assert!(!shard.check(new, None));
        shard.expire(late + Duration::from_millis(50));
        assert!(shard.check(new, None));
        shard.release(old);
        shard.release(new);
        assert!(!shard.expire(late + Duration::from_secs(1)), "none left");
    }

    #[tokio::test(start_paused = true)]
    async fn many_waits_each_keep_their_own_deadline_and_dropped_ones_leave() {
        let short = tokio::spawn(within(
            Duration::from_millis(40),
            Box::pin(std::future::pending::<()>()),
        ));
        let long = tokio::spawn(within(
            Duration::from_millis(400),
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                "done"
            }),
        ));
        let dropped = tokio::spawn(within(
            Duration::from_millis(40),
            Box::pin(std::future::pending::<()>()),
        ));
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(state().0, 3);
        dropped.abort();
        let _ = dropped.await;
        assert_eq!(state().0, 2);
        assert_eq!(short.await.unwrap(), Err(Elapsed));
        assert_eq!(long.await.unwrap(), Ok("done"));
        tokio::time::sleep(TICK * 3).await;
        assert_eq!(state(), (0, false, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_ticker_that_ended_leaves_a_wait_registered_after_it_alone() {
        // A multi-threaded runtime runs a ticker on any thread: the thread that owns the shard
        // may register a wait (and start a new ticker) between the old ticker's last `expire`
        // (nothing left) and the end of its task. That wait is the new ticker's, not fired.
        let shard = Arc::new(Shard::default());
        let waker = futures_util::task::noop_waker();
        let first = shard.register(Duration::from_millis(50), &waker);
        shard.release(first);
        assert!(
            !shard.expire(Instant::now()),
            "nothing left: this ticker ends"
        );
        let new = shard.register(Duration::from_secs(1), &waker);
        drop(Ticking {
            shard: Arc::clone(&shard),
            ended: true,
        });
        assert!(
            !shard.check(new, None),
            "the wait registered after it is not fired"
        );
        assert!(shard.state.lock().ticking, "its own ticker runs");
        // A ticker its runtime dropped with waits left fires them.
        drop(Ticking {
            shard: Arc::clone(&shard),
            ended: false,
        });
        assert!(shard.check(new, None));
        shard.release(new);
    }
}
