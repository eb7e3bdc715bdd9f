//! Health of one origin server: the active-check rise/fall state machine and passive ejection.
//!
//! Pure, no I/O: every decision is a function of its inputs, `now` included.
//!
//! * Active checks (`on_check`): a server starts `Up`, goes `Down` after `fall` consecutive
//!   failed checks and comes back `Up` after `rise` consecutive successful ones (HAProxy's
//!   model). A success resets the failure run and a failure resets the success run, so only
//!   unbroken runs count. `rise` or `fall` of 0 behave as 1.
//! * Passive ejection (`on_response`): real requests that fail (connect failure, reset, 5xx)
//!   are counted; after `failures` consecutive ones the server is ejected for `backoff` and
//!   the count starts over. A successful request resets the count but does not lift an
//!   ejection already in force; coming back `Up` through active checks does. `failures` of 0 disables passive ejection.
//! * A server takes new requests (`available`) when it is `Up` and not ejected.

use std::time::{Duration, Instant, SystemTime};

/// Longest passive ejection; larger backoffs are cut to this.
pub const MAX_EJECTION: Duration = Duration::from_secs(86_400);

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

/// Health record of one server; owned by its pool, updated by checks and responses.
#[derive(Debug, Clone)]
pub struct Health {
    state: ServerState,
    since: SystemTime,
    /// Consecutive failed active checks (reset by a success).
    check_failures: u32,
    /// Consecutive successful active checks (reset by a failure).
    check_successes: u32,
    last_check: Option<CheckOutcome>,
    /// Consecutive failed real requests (reset by a success or an ejection).
    response_failures: u32,
    /// End of the current or last passive ejection; may lie in the past.
    ejected_until: Option<Instant>,
}

impl Health {
    /// A new server starts Up (as HAProxy does when checks start), `since` = now.
    pub fn new(now: SystemTime) -> Health {
        Health {
            state: ServerState::Up,
            since: now,
            check_failures: 0,
            check_successes: 0,
            last_check: None,
            response_failures: 0,
            ejected_until: None,
        }
    }

    /// Active check result: Down after `fall` consecutive failures, Up after `rise`
    /// consecutive successes; returns the new state when it changed.
    pub fn on_check(
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
            (self.state == ServerState::Up && self.check_failures >= fall.max(1))
                .then_some(ServerState::Down)
        };
        if let Some(state) = next {
            self.state = state;
            self.since = now;
            if state == ServerState::Up {
                // Active checks vouch for the server again: a passive ejection from before it
                // went down no longer applies.
                self.ejected_until = None;
                self.response_failures = 0;
            }
        }
        next
    }

    /// Passive result of a real request (failure = connect failure, reset or 5xx): after
    /// `failures` consecutive failures the server is ejected until `now + backoff`; a success
    /// resets the count. Returns true when this call ejected it.
    ///
    /// `failures == 0` disables ejection. Failures of requests still in flight while the
    /// server is already ejected neither count nor extend the ejection.
    pub fn on_response(
        &mut self,
        failure: bool,
        failures: u32,
        backoff: Duration,
        now: Instant,
    ) -> bool {
        if !failure {
            self.response_failures = 0;
            return false;
        }
        if failures == 0 || self.is_ejected(now) {
            return false;
        }
        self.response_failures = self.response_failures.saturating_add(1);
        if self.response_failures < failures {
            return false;
        }
        self.response_failures = 0;
        // Bounded so that a huge configured backoff cannot overflow the clock.
        let backoff = backoff.min(MAX_EJECTION);
        self.ejected_until = Some(now.checked_add(backoff).unwrap_or(now));
        true
    }

    /// Takes new requests: Up and not ejected at `now`.
    pub fn available(&self, now: Instant) -> bool {
        self.state == ServerState::Up && !self.is_ejected(now)
    }

    /// State decided by the active checks.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// Time of the last state change (or of creation).
    pub fn since(&self) -> SystemTime {
        self.since
    }

    /// Result of the most recent active check, if any ran.
    pub fn last_check(&self) -> Option<&CheckOutcome> {
        self.last_check.as_ref()
    }

    /// End of the current or most recent passive ejection (may lie in the past).
    pub fn ejected_until(&self) -> Option<Instant> {
        self.ejected_until
    }

    fn is_ejected(&self, now: Instant) -> bool {
        self.ejected_until.is_some_and(|until| now < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(ok: bool) -> CheckOutcome {
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

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn state_names() {
        assert_eq!(ServerState::Up.as_str(), "up");
        assert_eq!(ServerState::Down.as_str(), "down");
    }

    #[test]
    fn new_server_is_up_without_checks() {
        let h = Health::new(at(100));
        assert_eq!(h.state(), ServerState::Up);
        assert_eq!(h.since(), at(100));
        assert_eq!(h.last_check(), None);
        assert_eq!(h.ejected_until(), None);
        assert!(h.available(Instant::now()));
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
    fn passive_failures_eject_until_backoff_expires() {
        let t0 = Instant::now();
        let backoff = Duration::from_secs(10);
        let mut h = Health::new(at(0));
        assert!(!h.on_response(true, 3, backoff, t0));
        assert!(!h.on_response(true, 3, backoff, t0));
        assert!(h.available(t0));
        let t1 = t0 + Duration::from_secs(1);
        assert!(h.on_response(true, 3, backoff, t1));
        assert_eq!(h.ejected_until(), Some(t1 + backoff));
        assert!(!h.available(t1));
        assert!(!h.available(t1 + Duration::from_millis(9_999)));
        assert!(h.available(t1 + backoff));
        // Ejection does not change the active-check state.
        assert_eq!(h.state(), ServerState::Up);
    }

    #[test]
    fn failures_while_ejected_do_not_extend_the_ejection() {
        let t0 = Instant::now();
        let backoff = Duration::from_secs(5);
        let mut h = Health::new(at(0));
        assert!(h.on_response(true, 1, backoff, t0));
        assert!(!h.on_response(true, 1, backoff, t0 + Duration::from_secs(2)));
        assert_eq!(h.ejected_until(), Some(t0 + backoff));
        // After expiry the count starts over and a new failure run ejects again.
        let t2 = t0 + Duration::from_secs(6);
        assert!(h.on_response(true, 1, backoff, t2));
        assert_eq!(h.ejected_until(), Some(t2 + backoff));
    }

    #[test]
    fn success_resets_the_passive_count() {
        let t0 = Instant::now();
        let backoff = Duration::from_secs(10);
        let mut h = Health::new(at(0));
        assert!(!h.on_response(true, 3, backoff, t0));
        assert!(!h.on_response(true, 3, backoff, t0));
        assert!(!h.on_response(false, 3, backoff, t0));
        assert!(!h.on_response(true, 3, backoff, t0));
        assert!(!h.on_response(true, 3, backoff, t0));
        assert_eq!(h.ejected_until(), None);
        assert!(h.on_response(true, 3, backoff, t0));
    }

    #[test]
    fn success_does_not_lift_an_ejection() {
        let t0 = Instant::now();
        let mut h = Health::new(at(0));
        assert!(h.on_response(true, 1, Duration::from_secs(10), t0));
        assert!(!h.on_response(false, 1, Duration::from_secs(10), t0));
        assert!(!h.available(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn zero_failures_disables_passive_ejection() {
        let t0 = Instant::now();
        let mut h = Health::new(at(0));
        for _ in 0..100 {
            assert!(!h.on_response(true, 0, Duration::from_secs(10), t0));
        }
        assert_eq!(h.ejected_until(), None);
        assert!(h.available(t0));
    }

    #[test]
    fn huge_backoff_is_capped() {
        let t0 = Instant::now();
        let mut h = Health::new(at(0));
        assert!(h.on_response(true, 1, Duration::MAX, t0));
        assert_eq!(h.ejected_until(), Some(t0 + MAX_EJECTION));
    }

    #[test]
    fn down_server_is_unavailable_even_when_not_ejected() {
        let mut h = Health::new(at(0));
        h.on_check(outcome(false), 1, 1, at(1));
        assert_eq!(h.ejected_until(), None);
        assert!(!h.available(Instant::now()));
    }

    #[test]
    fn coming_back_up_through_checks_lifts_a_passive_ejection() {
        let t0 = Instant::now();
        let mut h = Health::new(SystemTime::UNIX_EPOCH);
        assert!(h.on_response(true, 1, Duration::from_secs(60), t0));
        assert!(!h.available(t0));
        let bad = CheckOutcome {
            ok: false,
            detail: "x".into(),
            latency: Duration::ZERO,
        };
        let good = CheckOutcome {
            ok: true,
            detail: "200".into(),
            latency: Duration::ZERO,
        };
        assert_eq!(
            h.on_check(bad, 1, 1, SystemTime::UNIX_EPOCH),
            Some(ServerState::Down)
        );
        assert_eq!(
            h.on_check(good, 1, 1, SystemTime::UNIX_EPOCH),
            Some(ServerState::Up)
        );
        assert!(h.available(t0));
        assert_eq!(h.ejected_until(), None);
    }
}
