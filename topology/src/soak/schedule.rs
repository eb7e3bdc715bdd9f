//! When the soak kills what, and for how long; and the record of what was down when, which
//! tells an expected failure (its node or origin was down) from an unexplained one.
//!
//! Contract of [`plan`]: faults come one at a time — the next kill follows the previous
//! restart by a gap drawn from `pacing.gap` — so at most one target is down at any moment;
//! the first comes after `pacing.warmup` plus a gap; each lasts a time drawn from
//! `pacing.down`; none ends later than `duration - pacing.quiet_end` (the end of the run is
//! quiet, with everything up); at most [`MAX_FAULTS`]. The same seed gives the same plan.

use std::time::Duration;

use super::rng::Rng;

/// Most faults in one plan (24 h at one fault every 3 s is 28 800).
pub const MAX_FAULTS: usize = 50_000;
/// Down windows kept by [`Downtime`] (older ones are forgotten once no request can meet them).
pub const MAX_WINDOWS: usize = 64;

/// How faults are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Nothing is killed before this (the cache warms up).
    pub warmup: Duration,
    /// Gap between a restart and the next kill, `(lo, hi)`.
    pub gap: (Duration, Duration),
    /// How long a target stays down, `(lo, hi)`.
    pub down: (Duration, Duration),
    /// Everything is up for at least this long at the end.
    pub quiet_end: Duration,
}

/// The soak's pacing.
pub const DEFAULT_PACING: Pacing = Pacing {
    warmup: Duration::from_secs(3),
    gap: (Duration::from_secs(2), Duration::from_secs(6)),
    down: (Duration::from_secs(1), Duration::from_secs(4)),
    quiet_end: Duration::from_secs(4),
};

/// One fault: target `target` (an index into the caller's list) is killed `at` after the
/// start and started again `down_for` later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub at: Duration,
    pub target: usize,
    pub down_for: Duration,
}

impl Fault {
    /// When the target is started again.
    pub fn back_at(&self) -> Duration {
        self.at + self.down_for
    }
}

/// The faults of a run of `duration` over `targets` targets (see the module contract).
pub fn plan(seed: u64, duration: Duration, targets: usize, pacing: &Pacing) -> Vec<Fault> {
    let mut rng = Rng::new(seed);
    let mut faults = Vec::new();
    if targets == 0 {
        return faults;
    }
    let end = duration.saturating_sub(pacing.quiet_end);
    let mut t = pacing.warmup;
    while faults.len() < MAX_FAULTS {
        let at = t + rng.between(pacing.gap.0, pacing.gap.1);
        let down_for = rng.between(pacing.down.0, pacing.down.1);
        let target = rng.index(targets);
        if at + down_for > end {
            break;
        }
        faults.push(Fault {
            at,
            target,
            down_for,
        });
        t = at + down_for;
    }
    faults
}

/// One target's time down: from its kill to its restart (`None`: still down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    down: Duration,
    up: Option<Duration>,
}

/// What was down when, in time since the start of the run.
#[derive(Debug, Clone, Default)]
pub struct Downtime {
    windows: Vec<Window>,
}

impl Downtime {
    /// A target goes down at `at` (recorded before the kill).
    pub fn down(&mut self, at: Duration) {
        if self.windows.len() >= MAX_WINDOWS {
            self.windows.remove(0);
        }
        self.windows.push(Window { down: at, up: None });
    }

    /// The target that went down last is started again at `at`.
    pub fn up(&mut self, at: Duration) {
        if let Some(w) = self.windows.iter_mut().rev().find(|w| w.up.is_none()) {
            w.up = Some(at);
        }
    }

    /// Whether a request from `start` to `end` met a target down, or one restarted less than
    /// `settle` before (time to be found up again by the director, the cluster or the nodes).
    pub fn disturbed(&self, start: Duration, end: Duration, settle: Duration) -> bool {
        self.windows.iter().any(|w| {
            let until = w.up.map_or(Duration::MAX, |up| up + settle);
            w.down <= end && start <= until
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_plan_is_reproducible_sequential_and_ends_quiet() {
        let run = secs(120);
        let p = plan(42, run, 5, &DEFAULT_PACING);
        assert_eq!(p, plan(42, run, 5, &DEFAULT_PACING));
        assert_ne!(p, plan(43, run, 5, &DEFAULT_PACING));
        assert!(p.len() >= 10, "{}", p.len());
        assert!(p[0].at >= DEFAULT_PACING.warmup + DEFAULT_PACING.gap.0);
        for pair in p.windows(2) {
            assert!(pair[1].at >= pair[0].back_at() + DEFAULT_PACING.gap.0);
        }
        for f in &p {
            assert!(f.target < 5);
            assert!((secs(1)..=secs(4)).contains(&f.down_for));
            assert!(f.back_at() <= run - DEFAULT_PACING.quiet_end);
        }
        let mut seen = [false; 5];
        for f in plan(42, secs(3600), 5, &DEFAULT_PACING) {
            seen[f.target] = true;
        }
        assert_eq!(seen, [true; 5]);
    }

    #[test]
    fn short_runs_and_no_targets_give_few_or_no_faults() {
        assert!(plan(1, secs(8), 5, &DEFAULT_PACING).is_empty());
        assert!(plan(1, secs(60), 0, &DEFAULT_PACING).is_empty());
        assert!(plan(1, secs(86_400), 5, &DEFAULT_PACING).len() <= MAX_FAULTS);
    }

    #[test]
    fn disturbed_while_down_and_for_settle_after() {
        let mut d = Downtime::default();
        assert!(!d.disturbed(secs(0), secs(100), secs(3)));
        d.down(secs(10));
        assert!(d.disturbed(secs(9), secs(10), secs(3)));
        assert!(d.disturbed(secs(50), secs(51), secs(3)), "still down");
        assert!(!d.disturbed(secs(5), secs(9), secs(3)));
        d.up(secs(12));
        assert!(d.disturbed(secs(14), secs(16), secs(3)));
        assert!(!d.disturbed(secs(15) + Duration::from_millis(1), secs(16), secs(3)));
        for i in 0..(MAX_WINDOWS as u64 + 5) {
            d.down(secs(100 + i));
            d.up(secs(100 + i));
        }
        assert_eq!(d.windows.len(), MAX_WINDOWS);
    }
}
