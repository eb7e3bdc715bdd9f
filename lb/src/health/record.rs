//! The health record of one server: the active checks' rise/fall state (`rise_fall`) and
//! passive ejection (`passive`) together.
//!
//! Pure, no I/O: every decision is a function of its inputs, `now` included. A server takes
//! new requests ([`Health::available`]) when it is `Up` and not ejected; coming back `Up`
//! through active checks lifts a passive ejection.

use std::time::{Duration, Instant, SystemTime};

use super::passive::Ejection;
use super::rise_fall::{CheckOutcome, RiseFall, ServerState};

/// Health record of one server; owned by its pool, updated by checks and responses.
#[derive(Debug, Clone)]
pub struct Health {
    /// What the active checks decided.
    checks: RiseFall,
    /// What failed real requests decided.
    ejection: Ejection,
}

impl Health {
    /// A new server starts Up (as HAProxy does when checks start), `since` = now.
    pub fn new(now: SystemTime) -> Health {
        Health {
            checks: RiseFall::new(now),
            ejection: Ejection::default(),
        }
    }

    /// A new server that starts Down and takes traffic only after `rise` passed checks (a
    /// node that joined the cache cluster: gossip seeing it is not proof it serves).
    pub fn new_down(now: SystemTime) -> Health {
        Health {
            checks: RiseFall::new_down(now),
            ejection: Ejection::default(),
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
        let next = self.checks.on_check(o, rise, fall, now);
        if next == Some(ServerState::Up) {
            // Active checks vouch for the server again: a passive ejection from before it
            // went down no longer applies.
            self.ejection.lift();
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
        self.ejection.on_response(failure, failures, backoff, now)
    }

    /// Takes new requests: Up and not ejected at `now`.
    pub fn available(&self, now: Instant) -> bool {
        self.checks.state() == ServerState::Up && !self.ejection.is_ejected(now)
    }

    /// State decided by the active checks.
    pub fn state(&self) -> ServerState {
        self.checks.state()
    }

    /// Started down ([`Health::new_down`]) and has neither risen nor failed `fall` checks in
    /// a row since: no new traffic, but nothing proves it does not serve what it already has.
    pub fn joining(&self) -> bool {
        self.checks.joining()
    }

    /// Time of the last state change (or of creation).
    pub fn since(&self) -> SystemTime {
        self.checks.since()
    }

    /// Result of the most recent active check, if any ran.
    pub fn last_check(&self) -> Option<&CheckOutcome> {
        self.checks.last_check()
    }

    /// End of the current or most recent passive ejection (may lie in the past).
    pub fn ejected_until(&self) -> Option<Instant> {
        self.ejection.ejected_until()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::rise_fall::tests::{at, outcome};

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
