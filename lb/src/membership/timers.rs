//! The timers foca asks for, due in deadline order (the order they were asked for among
//! equal deadlines). Pure: the gossip loop sleeps until [`Timers::next_deadline`].

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use foca::Timer;

use super::identity::NodeIdentity;

/// Most pending timers; foca keeps a few per member, so this only guards against a bug.
pub(super) const MAX_TIMERS: usize = 65_536;

struct Entry {
    at: Instant,
    seq: u64,
    timer: Timer<NodeIdentity>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Pending timers.
#[derive(Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

impl Timers {
    /// Schedule `timer` at `now + after`; false (dropped) beyond [`MAX_TIMERS`].
    pub(super) fn push(
        &mut self,
        now: Instant,
        after: Duration,
        timer: Timer<NodeIdentity>,
    ) -> bool {
        if self.heap.len() >= MAX_TIMERS {
            return false;
        }
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            at: now + after,
            seq: self.seq,
            timer,
        }));
        true
    }

    /// When the earliest timer is due.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.0.at)
    }

    /// The earliest timer if it is due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Timer<NodeIdentity>> {
        if self.heap.peek()?.0.at <= now {
            self.heap.pop().map(|e| e.0.timer)
        } else {
            None
        }
    }

    /// Pending timers.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    /// No pending timer.
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::TimerToken;

    #[test]
    fn timers_come_out_by_deadline_then_by_order_of_arrival() {
        let now = Instant::now();
        let mut t = Timers::default();
        let probe = |n: TimerToken| Timer::ProbeRandomMember(n);
        t.push(now, Duration::from_millis(30), probe(3));
        t.push(now, Duration::from_millis(10), probe(1));
        t.push(now, Duration::from_millis(10), probe(2));
        assert_eq!(t.len(), 3);
        assert_eq!(t.next_deadline(), Some(now + Duration::from_millis(10)));
        assert_eq!(t.pop_due(now), None);
        let at = now + Duration::from_millis(20);
        assert_eq!(t.pop_due(at), Some(probe(1)));
        assert_eq!(t.pop_due(at), Some(probe(2)));
        assert_eq!(t.pop_due(at), None);
        assert_eq!(t.pop_due(now + Duration::from_secs(1)), Some(probe(3)));
        assert!(t.is_empty());
    }
}
