//! Peers this node suspects of hanging: an owner that did not answer within `peer_timeout`
//! (gossip may still list it alive: a stopped process still has its kernel answer TCP
//! handshakes, and gossip takes seconds to declare it dead).
//!
//! Contract:
//! * One timeout marks the peer (`timed_out`): a healthy peer answers a lookup in well under
//!   a millisecond, so missing `peer_timeout` (1 s by default) is strong evidence, and every
//!   request that waits on a hung peer costs its client the whole timeout. While marked,
//!   [`Suspects::admit`] answers [`Admit::Skip`]: the request goes to the key's next node at
//!   once.
//! * The mark lasts [`FIRST_BACKOFF`], doubled for each further timeout in a row up to
//!   [`MAX_BACKOFF`]. When it runs out, one request is let through to try the peer
//!   ([`Admit::Probe`]); the others keep skipping it for twice `peer_timeout` (the time that
//!   request may take; if it is dropped before a verdict, another request tries after that).
//! * Any frame received from the peer in time (`answered`) clears the mark and the backoff.
//! * Transitions (suspected, cleared) are logged once each; the number of marked peers is a
//!   gauge, the timeouts a counter (`peer_timeouts`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long the first mark lasts.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(2);
/// Longest mark.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What a request does about a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Not suspect: ask it.
    Ask,
    /// Suspect, and this request is the one to try it again.
    Probe,
    /// Suspect: go to the key's next node.
    Skip,
}

#[derive(Debug)]
struct Mark {
    /// Skip the peer until then.
    until: Instant,
    /// The current mark's length (doubled by the next timeout).
    backoff: Duration,
}

/// The locally suspect peers, by node id.
#[derive(Debug)]
pub struct Suspects {
    marks: Mutex<HashMap<String, Mark>>,
    /// How long other requests keep skipping a peer while one request tries it.
    probe_hold: Duration,
}

impl Suspects {
    /// A table for peers asked with `peer_timeout`.
    pub fn new(peer_timeout: Duration) -> Suspects {
        Suspects {
            marks: Mutex::new(HashMap::new()),
            probe_hold: peer_timeout.saturating_mul(2),
        }
    }

    /// Whether a request may ask `id` now (see the module doc).
    pub fn admit(&self, id: &str) -> Admit {
        self.admit_at(id, Instant::now())
    }

    fn admit_at(&self, id: &str, now: Instant) -> Admit {
        let mut marks = self.marks.lock();
        let Some(m) = marks.get_mut(id) else {
            return Admit::Ask;
        };
        if now < m.until {
            return Admit::Skip;
        }
        m.until = now + self.probe_hold;
        Admit::Probe
    }

    /// `id` did not answer in time: marks it (or extends its mark). True when it was not
    /// marked before (a transition, to log), and the mark's length.
    pub fn timed_out(&self, id: &str) -> (bool, Duration) {
        self.timed_out_at(id, Instant::now())
    }

    fn timed_out_at(&self, id: &str, now: Instant) -> (bool, Duration) {
        let mut marks = self.marks.lock();
        match marks.get_mut(id) {
            Some(m) => {
                m.backoff = m.backoff.saturating_mul(2).min(MAX_BACKOFF);
                m.until = now + m.backoff;
                (false, m.backoff)
            }
            None => {
                marks.insert(
                    id.to_owned(),
                    Mark {
                        until: now + FIRST_BACKOFF,
                        backoff: FIRST_BACKOFF,
                    },
                );
                (true, FIRST_BACKOFF)
            }
        }
    }

    /// `id` answered: clears its mark. True when it was marked (a transition, to log).
    pub fn answered(&self, id: &str) -> bool {
        let mut marks = self.marks.lock();
        if marks.is_empty() {
            return false;
        }
        marks.remove(id).is_some()
    }

    /// The marked peers' ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.marks.lock().keys().cloned().collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_timeout_marks_and_an_answer_clears() {
        // One instant throughout (not the wrappers' `Instant::now()`): the Skip below must not
        // depend on the test reaching it within the mark's 2 s.
        let s = Suspects::new(Duration::from_millis(500));
        let t0 = Instant::now();
        assert_eq!(s.admit_at("c", t0), Admit::Ask);
        assert_eq!(s.timed_out_at("c", t0), (true, FIRST_BACKOFF));
        assert_eq!(s.admit_at("c", t0), Admit::Skip, "marked for FIRST_BACKOFF");
        assert!(
            !s.timed_out_at("c", t0).0,
            "a second timeout is no new transition"
        );
        assert_eq!(s.admit_at("c", t0), Admit::Skip);
        assert_eq!(s.admit_at("b", t0), Admit::Ask, "only c is marked");
        assert_eq!(s.ids(), ["c"]);
        assert!(s.answered("c"));
        assert!(!s.answered("c"));
        assert_eq!(s.admit_at("c", t0), Admit::Ask);
        assert!(s.ids().is_empty());
    }

    #[test]
    fn an_expired_mark_lets_one_request_try_and_backs_off_on_failure() {
        let s = Suspects::new(Duration::from_millis(500));
        let t0 = Instant::now();
        assert_eq!(s.timed_out_at("c", t0), (true, FIRST_BACKOFF));
        assert_eq!(
            s.admit_at("c", t0 + Duration::from_millis(1999)),
            Admit::Skip
        );
        let expired = t0 + FIRST_BACKOFF;
        assert_eq!(s.admit_at("c", expired), Admit::Probe);
        // The others skip while it tries (probe_hold), then another may try.
        assert_eq!(s.admit_at("c", expired), Admit::Skip);
        assert_eq!(
            s.admit_at("c", expired + s.probe_hold - Duration::from_millis(1)),
            Admit::Skip
        );
        assert_eq!(s.admit_at("c", expired + s.probe_hold), Admit::Probe);
        // The try timed out: twice as long, then capped.
        let t1 = expired + s.probe_hold;
        assert_eq!(s.timed_out_at("c", t1), (false, FIRST_BACKOFF * 2));
        assert_eq!(s.admit_at("c", t1 + FIRST_BACKOFF), Admit::Skip);
        assert_eq!(s.admit_at("c", t1 + FIRST_BACKOFF * 2), Admit::Probe);
        let mut last = Duration::ZERO;
        for _ in 0..5 {
            last = s.timed_out_at("c", t1).1;
        }
        assert_eq!(last, MAX_BACKOFF);
        // A success resets the backoff: the next mark is the first one again.
        assert!(s.answered("c"));
        assert_eq!(s.timed_out_at("c", t1), (true, FIRST_BACKOFF));
    }
}
