//! The node-wide bound on bytes held by fills (`limits.inflight`), the lag after which a reader
//! of a shared stream is detached (`limits.stream_lag`), and the counters of both.
//!
//! Contract:
//! * `held` is the sum of the body bytes every fill's `State` holds: a state charges a chunk when
//!   it is pushed and releases it when the chunk is dropped (released in streaming mode) or when
//!   the state itself is dropped, so it can never leak and never go below zero.
//! * Over the limit (`held > limit`), a storing fill goes to streaming mode (it will not be
//!   stored) and a streaming fill keeps nothing beyond what its readers take (window 0); see
//!   `state.rs`.
//! * The limit and the lag are set at start and on reload; fills read them at each decision.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::STREAM_WINDOW;

/// Bytes held by fills across the node, with its limit and the detach settings.
#[derive(Debug)]
pub(super) struct Budget {
    held: AtomicU64,
    limit: AtomicU64,
    /// `stream_lag` in nanoseconds.
    lag_ns: AtomicU64,
    /// Readers detached (lagging a window behind, or cut over budget).
    detached: AtomicU64,
    /// Fills that went to streaming mode (not stored) because the budget was exceeded.
    over_budget: AtomicU64,
}

/// The limit when none is configured (unit tests, private fills before `configure`).
const UNLIMITED: u64 = u64::MAX;
/// `stream_lag` when none is configured (the config default).
const DEFAULT_LAG: Duration = Duration::from_secs(2);

impl Budget {
    pub(super) fn new() -> Self {
        Budget {
            held: AtomicU64::new(0),
            limit: AtomicU64::new(UNLIMITED),
            lag_ns: AtomicU64::new(duration_ns(DEFAULT_LAG)),
            detached: AtomicU64::new(0),
            over_budget: AtomicU64::new(0),
        }
    }

    /// Sets `limits.inflight` and `limits.stream_lag`.
    pub(super) fn configure(&self, inflight: u64, stream_lag: Duration) {
        self.limit.store(inflight, Ordering::Relaxed);
        self.lag_ns
            .store(duration_ns(stream_lag), Ordering::Relaxed);
    }

    /// Adds `n` held bytes; true if the total is now over the limit.
    pub(super) fn charge(&self, n: u64) -> bool {
        let held = self.held.fetch_add(n, Ordering::Relaxed) + n;
        held > self.limit.load(Ordering::Relaxed)
    }

    /// Gives back `n` bytes charged before.
    pub(super) fn release(&self, n: u64) {
        if n == 0 {
            return;
        }
        let before = self.held.fetch_sub(n, Ordering::Relaxed);
        debug_assert!(before >= n, "budget released more than charged");
    }

    pub(super) fn is_over(&self) -> bool {
        self.held.load(Ordering::Relaxed) > self.limit.load(Ordering::Relaxed)
    }

    /// How far behind a streaming fill's readers may be before the writer waits: the stream
    /// window, or nothing while the node is over budget.
    pub(super) fn window(&self) -> u64 {
        if self.is_over() {
            0
        } else {
            STREAM_WINDOW
        }
    }

    pub(super) fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    pub(super) fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    pub(super) fn lag(&self) -> Duration {
        Duration::from_nanos(self.lag_ns.load(Ordering::Relaxed))
    }

    pub(super) fn count_detached(&self, n: u64) {
        self.detached.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn count_over_budget(&self) {
        self.over_budget.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn detached(&self) -> u64 {
        self.detached.load(Ordering::Relaxed)
    }

    pub(super) fn over_budget(&self) -> u64 {
        self.over_budget.load(Ordering::Relaxed)
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_and_the_window_closes_over_the_limit() {
        let b = Budget::new();
        b.configure(100, Duration::from_millis(5));
        assert!(!b.charge(60));
        assert!(!b.charge(40), "exactly the limit is not over");
        assert_eq!(b.window(), STREAM_WINDOW);
        assert!(b.charge(1));
        assert_eq!(b.window(), 0);
        b.release(41);
        assert!(!b.is_over());
        assert_eq!(b.held(), 60);
        assert_eq!(b.lag(), Duration::from_millis(5));
    }
}
