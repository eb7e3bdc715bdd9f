//! Active checks: the rise/fall state machine of one server (HAProxy's model).
//!
//! Pure, no I/O: every decision is a function of its inputs, `now` included. A server starts
//! `Up`, goes `Down` after `fall` consecutive failed checks and comes back `Up` after `rise`
//! consecutive successful ones. A success resets the failure run and a failure resets the
//! success run, so only unbroken runs count. `rise` or `fall` of 0 behave as 1.
//!
//! A server may instead start `Down` and **joining** (a cache node that joined the cluster
//! a director follows): it takes no new traffic until `rise` checks pass, but it has not
//! failed any either, so what is already on it may stay ([`RiseFall::joining`]). It stops
//! joining when it rises, or when `fall` consecutive checks fail: that is reported as a
//! change to `Down` (now decided by its checks), though its state was `Down` already.

use std::time::{Duration, SystemTime};

/// State decided by the active checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Passing checks (or not yet failed enough of them).
    Up,
    /// Failed `fall` consecutive checks and has not yet passed `rise`.
    Down,
}

impl ServerState {
    /// Name as shown in logs, stats and the admin page.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Up => "up",
            ServerState::Down => "down",
        }
    }
}

/// Result of one active check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Whether the check passed.
    pub ok: bool,
    /// Human-readable result, e.g. `"200"`, `"status 500 (expected 200)"`,
    /// `"timeout after 1s"`, `"connect: Connection refused"`.
    pub detail: String,
    /// Time the check took.
    pub latency: Duration,
}

/// The active-check half of a server's health record (`Health`).
#[derive(Debug, Clone)]
pub(super) struct RiseFall {
    state: ServerState,
    since: SystemTime,
    /// Consecutive failed active checks (reset by a success).
    check_failures: u32,
    /// Consecutive successful active checks (reset by a failure).
    check_successes: u32,
    last_check: Option<CheckOutcome>,
    /// Started down and neither risen nor failed `fall` checks in a row since.
    joining: bool,
}

impl RiseFall {
    /// Up (as HAProxy starts a server when checks start), `since` = now.
    pub(super) fn new(now: SystemTime) -> RiseFall {
        RiseFall {
            state: ServerState::Up,
            since: now,
            check_failures: 0,
            check_successes: 0,
            last_check: None,
            joining: false,
        }
    }

    /// Down until `rise` checks pass (a server that must prove itself before it takes any
    /// traffic: a cache node that joined the cluster), `since` = now.
    pub(super) fn new_down(now: SystemTime) -> RiseFall {
        RiseFall {
            state: ServerState::Down,
            joining: true,
            ..RiseFall::new(now)
        }
    }

    /// Active check result: Down after `fall` consecutive failures, Up after `rise`
    /// consecutive successes; returns the new state when it changed (a joining server that
    /// fails `fall` in a row: `Down`, see the module doc).
    pub(super) fn on_check(
        &mut self,
        o: CheckOutcome,
        rise: u32,
        fall: u32,
        now: SystemTime,
    ) -> Option<ServerState> {
        let ok = o.ok;
        self.last_check = Some(o);
        let next = if ok {
            self.check_failures = 0;
            self.check_successes = self.check_successes.saturating_add(1);
            (self.state == ServerState::Down && self.check_successes >= rise.max(1))
                .then_some(ServerState::Up)
        } else {
            self.check_successes = 0;
            self.check_failures = self.check_failures.saturating_add(1);
            ((self.state == ServerState::Up || self.joining) && self.check_failures >= fall.max(1))
                .then_some(ServerState::Down)
        };
        if let Some(state) = next {
            self.state = state;
            self.since = now;
            self.joining = false;
        }
        next
    }

    /// Started down and has neither risen nor failed `fall` checks in a row since (see the
    /// module doc).
    pub(super) fn joining(&self) -> bool {
        self.joining
    }

    /// State decided by the active checks.
    pub(super) fn state(&self) -> ServerState {
        self.state
    }

    /// Time of the last state change (or of creation).
    pub(super) fn since(&self) -> SystemTime {
        self.since
    }

    /// Result of the most recent active check, if any ran.
    pub(super) fn last_check(&self) -> Option<&CheckOutcome> {
        self.last_check.as_ref()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::health::Health;
    use std::time::Instant;

    pub(in crate::health) fn outcome(ok: bool) -> CheckOutcome {
        CheckOutcome {
            ok,
            detail: if ok {
                "200"
            } else {
                "status 500 (expected 200)"
            }
            .to_string(),
            latency: Duration::from_millis(3),
        }
    }

    pub(in crate::health) fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn state_names() {
        assert_eq!(ServerState::Up.as_str(), "up");
        assert_eq!(ServerState::Down.as_str(), "down");
    }

    #[test]
    fn falls_on_third_failure_then_rises_on_second_success() {
        let mut h = Health::new(at(0));
        assert_eq!(h.on_check(outcome(false), 2, 3, at(1)), None);
        assert_eq!(h.on_check(outcome(false), 2, 3, at(2)), None);
        assert_eq!(h.state(), ServerState::Up);
        assert_eq!(
            h.on_check(outcome(false), 2, 3, at(3)),
            Some(ServerState::Down)
        );
        assert_eq!(h.state(), ServerState::Down);
        assert!(!h.available(Instant::now()));
        // Further failures keep it down without reporting a change.
        assert_eq!(h.on_check(outcome(false), 2, 3, at(4)), None);
        assert_eq!(h.on_check(outcome(true), 2, 3, at(5)), None);
        assert_eq!(h.state(), ServerState::Down);
        assert_eq!(
            h.on_check(outcome(true), 2, 3, at(6)),
            Some(ServerState::Up)
        );
        assert_eq!(h.state(), ServerState::Up);
        assert!(h.available(Instant::now()));
    }

    #[test]
    fn a_success_breaks_the_failure_run() {
        let mut h = Health::new(at(0));
        assert_eq!(h.on_check(outcome(false), 2, 3, at(1)), None);
        assert_eq!(h.on_check(outcome(false), 2, 3, at(2)), None);
        assert_eq!(h.on_check(outcome(true), 2, 3, at(3)), None);
        assert_eq!(h.on_check(outcome(false), 2, 3, at(4)), None);
        assert_eq!(h.on_check(outcome(false), 2, 3, at(5)), None);
        assert_eq!(h.state(), ServerState::Up);
        assert_eq!(
            h.on_check(outcome(false), 2, 3, at(6)),
            Some(ServerState::Down)
        );
    }

    #[test]
    fn a_failure_breaks_the_success_run() {
        let mut h = Health::new(at(0));
        assert_eq!(
            h.on_check(outcome(false), 2, 1, at(1)),
            Some(ServerState::Down)
        );
        assert_eq!(h.on_check(outcome(true), 2, 1, at(2)), None);
        assert_eq!(h.on_check(outcome(false), 2, 1, at(3)), None);
        assert_eq!(h.on_check(outcome(true), 2, 1, at(4)), None);
        assert_eq!(h.state(), ServerState::Down);
        assert_eq!(
            h.on_check(outcome(true), 2, 1, at(5)),
            Some(ServerState::Up)
        );
    }

    #[test]
    fn zero_rise_and_fall_act_as_one() {
        let mut h = Health::new(at(0));
        assert_eq!(
            h.on_check(outcome(false), 0, 0, at(1)),
            Some(ServerState::Down)
        );
        assert_eq!(
            h.on_check(outcome(true), 0, 0, at(2)),
            Some(ServerState::Up)
        );
    }

    #[test]
    fn since_moves_only_on_transitions() {
        let mut h = Health::new(at(10));
        h.on_check(outcome(true), 2, 2, at(11));
        h.on_check(outcome(false), 2, 2, at(12));
        assert_eq!(h.since(), at(10));
        h.on_check(outcome(false), 2, 2, at(13));
        assert_eq!(h.since(), at(13));
        h.on_check(outcome(false), 2, 2, at(14));
        h.on_check(outcome(true), 2, 2, at(15));
        assert_eq!(h.since(), at(13));
        h.on_check(outcome(true), 2, 2, at(16));
        assert_eq!(h.since(), at(16));
    }

    #[test]
    fn last_check_keeps_the_latest_outcome() {
        let mut h = Health::new(at(0));
        h.on_check(outcome(true), 2, 3, at(1));
        h.on_check(outcome(false), 2, 3, at(2));
        assert_eq!(h.last_check(), Some(&outcome(false)));
    }

    #[test]
    fn a_joining_server_stays_joining_until_it_rises_or_fails_fall_in_a_row() {
        let mut h = Health::new_down(at(0));
        assert!(h.joining() && h.state() == ServerState::Down);
        assert!(!Health::new(at(0)).joining());
        // One failure of two: still joining; a success resets the run.
        assert_eq!(h.on_check(outcome(false), 2, 2, at(1)), None);
        assert_eq!(h.on_check(outcome(true), 2, 2, at(2)), None);
        assert!(h.joining());
        // Risen: no longer joining.
        assert_eq!(
            h.on_check(outcome(true), 2, 2, at(3)),
            Some(ServerState::Up)
        );
        assert!(!h.joining());

        // Failing `fall` in a row: down by its checks, reported as a change.
        let mut h = Health::new_down(at(0));
        assert_eq!(h.on_check(outcome(false), 2, 2, at(1)), None);
        assert_eq!(
            h.on_check(outcome(false), 2, 2, at(2)),
            Some(ServerState::Down)
        );
        assert!(!h.joining() && h.state() == ServerState::Down);
        assert_eq!(h.since(), at(2));
        // Then it is an ordinary down server: more failures change nothing.
        assert_eq!(h.on_check(outcome(false), 2, 2, at(3)), None);
        assert!(!h.joining());
    }
}
