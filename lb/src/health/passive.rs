//! Passive ejection: real requests that fail take a server out of rotation for a while.
//!
//! Pure, no I/O: every decision is a function of its inputs, `now` included. Failed requests
//! (connect failure, reset, 5xx) are counted; after `failures` consecutive ones the server is
//! ejected for `backoff` (at most [`MAX_EJECTION`]) and the count starts over. A successful
//! request resets the count but does not lift an ejection already in force; coming back `Up`
//! through active checks does (`Health::on_check`). `failures` of 0 disables passive ejection.

use std::time::{Duration, Instant};

/// Longest passive ejection; larger backoffs are cut to this.
pub(crate) const MAX_EJECTION: Duration = Duration::from_secs(86_400);

/// The passive half of a server's health record (`Health`).
#[derive(Debug, Clone, Default)]
pub(super) struct Ejection {
    /// Consecutive failed real requests (reset by a success or an ejection).
    response_failures: u32,
    /// End of the current or last passive ejection; may lie in the past.
    ejected_until: Option<Instant>,
}

impl Ejection {
    /// Passive result of a real request (failure = connect failure, reset or 5xx): after
    /// `failures` consecutive failures the server is ejected until `now + backoff`; a success
    /// resets the count. Returns true when this call ejected it.
    ///
    /// `failures == 0` disables ejection. Failures of requests still in flight while the
    /// server is already ejected neither count nor extend the ejection.
    pub(super) fn on_response(
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

    /// Forgets the ejection and the failure count: the active checks vouch for the server
    /// again.
    pub(super) fn lift(&mut self) {
        self.ejected_until = None;
        self.response_failures = 0;
    }

    /// End of the current or most recent passive ejection (may lie in the past).
    pub(super) fn ejected_until(&self) -> Option<Instant> {
        self.ejected_until
    }

    /// Ejected at `now`.
    pub(super) fn is_ejected(&self, now: Instant) -> bool {
        self.ejected_until.is_some_and(|until| now < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::rise_fall::tests::at;
    use crate::health::{Health, ServerState};

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
}
