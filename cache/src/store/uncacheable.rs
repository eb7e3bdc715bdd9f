//! Keys whose last answer could not be stored ("hit-for-miss" in Varnish's words): requests for
//! them skip coalescing for a while and go to the origin each on its own, at once.
//!
//! Why: coalescing makes the requests for a key wait on one fill; when that fill's answer turns
//! out not storable (`no-store`, `private`, `Set-Cookie`, no freshness…) they are released and
//! only then go forward, each paying the leader's round trip before its own. For a key that
//! answers like that every time (an API endpoint behind a cache route) every request but one
//! would pay twice. A mark remembers the key for `cache.hit_for_miss`; a request for a marked
//! key is fetched alone (and its answer still stored if it has become storable, which lifts
//! the mark).
//!
//! Contract: [`Marks::mark`] sets a key's mark until now + the configured time (0 disables
//! marking); [`Marks::renew`] sets it so only once less than half of that time is left of it;
//! [`Marks::is_marked`] is true until then; [`Marks::clear`] lifts it. At most
//! [`MAX_MARKS`] keys are remembered (the least recently used go first): memory is bounded
//! whatever the clients ask for.

use std::time::{Duration, Instant};

use quick_cache::sync::Cache;

/// Keys remembered at most.
pub const MAX_MARKS: usize = 65_536;

/// The marked keys, with when each mark ends.
pub struct Marks {
    until: Cache<String, Instant>,
}

impl Default for Marks {
    fn default() -> Self {
        Marks {
            until: Cache::new(MAX_MARKS),
        }
    }
}

impl Marks {
    /// Marks `key` for `ttl` from `now` (nothing when `ttl` is 0).
    pub fn mark(&self, key: &str, ttl: Duration, now: Instant) {
        if !ttl.is_zero() {
            self.until.insert(key.to_owned(), now + ttl);
        }
    }

    /// Marks `key` again after another answer that could not be stored, its mark ending at
    /// `until` (as [`Marks::marked_until`] read it): only when less than half of `ttl` is
    /// left of it, so that a key asked for many times a second is not written back (a new
    /// `String` and an insertion) on every request. The mark then holds at least `ttl / 2`
    /// after the last such answer, and its full `ttl` after the one that renewed it.
    pub fn renew(&self, key: &str, ttl: Duration, now: Instant, until: Instant) {
        if until.saturating_duration_since(now) < ttl / 2 {
            self.mark(key, ttl, now);
        }
    }

    /// Whether `key` is marked at `now`.
    pub fn is_marked(&self, key: &str, now: Instant) -> bool {
        self.marked_until(key, now).is_some()
    }

    /// When `key`'s mark ends, if it is marked at `now`.
    pub fn marked_until(&self, key: &str, now: Instant) -> Option<Instant> {
        self.until.get(key).filter(|until| now < *until)
    }

    /// Lifts `key`'s mark, if any.
    pub fn clear(&self, key: &str) {
        self.until.remove(key);
    }

    /// Keys remembered (marked or expired but not yet evicted).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.until.len()
    }

    /// No key remembered.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_renewed_only_once_less_than_half_its_time_is_left() {
        let m = Marks::default();
        let t0 = Instant::now();
        let ttl = Duration::from_secs(100);
        m.mark("k", ttl, t0);
        let until = m.marked_until("k", t0).unwrap();
        assert_eq!(until, t0 + ttl);
        // 40 s in: 60 s left, more than half: kept as it is.
        m.renew("k", ttl, t0 + Duration::from_secs(40), until);
        assert_eq!(m.marked_until("k", t0), Some(t0 + ttl));
        // 60 s in: 40 s left: renewed for the full time from then.
        let t1 = t0 + Duration::from_secs(60);
        m.renew("k", ttl, t1, until);
        assert_eq!(m.marked_until("k", t1), Some(t1 + ttl));
        assert!(m.is_marked("k", t0 + Duration::from_secs(159)));
        assert_eq!(m.marked_until("k", t1 + ttl), None, "over at its end");
        // A zero time marks nothing, renewed or not.
        m.renew("z", Duration::ZERO, t0, t0);
        assert!(!m.is_marked("z", t0));
    }

    #[test]
    fn a_mark_holds_for_its_time_and_is_lifted_by_clear() {
        let m = Marks::default();
        let t0 = Instant::now();
        let ttl = Duration::from_secs(120);
        assert!(!m.is_marked("k", t0));
        m.mark("k", ttl, t0);
        assert!(m.is_marked("k", t0 + Duration::from_secs(119)));
        assert!(!m.is_marked("k", t0 + ttl), "over at its end");
        assert!(!m.is_marked("other", t0));
        m.clear("k");
        assert!(!m.is_marked("k", t0));
        m.clear("never-marked");
    }

    #[test]
    fn zero_disables_marking() {
        let m = Marks::default();
        m.mark("k", Duration::ZERO, Instant::now());
        assert!(!m.is_marked("k", Instant::now()));
        assert!(m.is_empty());
    }

    #[test]
    fn memory_is_bounded_whatever_the_keys() {
        let m = Marks::default();
        let now = Instant::now();
        for i in 0..(MAX_MARKS * 2) {
            m.mark(&format!("k{i}"), Duration::from_secs(60), now);
        }
        assert!(m.len() <= MAX_MARKS + MAX_MARKS / 8, "{} kept", m.len());
    }
}
