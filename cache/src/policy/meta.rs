//! What the store keeps about a stored response besides its headers and body, and the age
//! arithmetic of RFC 9111 §4.2.3 over it.
//!
//! Contract: `current_age = corrected_initial_age + (now - response_time)` (a clock that went
//! backwards adds nothing); a response is fresh while `freshness_lifetime > current_age`
//! (§4.2); [`StoredMeta::ttl`] is their difference in whole seconds and may be negative.

use std::time::{Duration, SystemTime};

/// Meta of a stored response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMeta {
    /// When the request that produced the response was sent.
    pub request_time: SystemTime,
    /// When the response was received.
    pub response_time: SystemTime,
    /// §4.2.3 `corrected_initial_age`.
    pub corrected_initial_age: Duration,
    /// §4.2.1 freshness lifetime (0 = always stale).
    pub freshness_lifetime: Duration,
    /// Always revalidate before reuse (response `no-cache`).
    pub no_cache: bool,
    /// `must-revalidate`, `proxy-revalidate` or `s-maxage` present: never serve stale.
    pub must_revalidate: bool,
    /// RFC 5861 response `stale-while-revalidate` window.
    pub stale_while_revalidate: Option<Duration>,
    /// RFC 5861 response `stale-if-error` window.
    pub stale_if_error: Option<Duration>,
}

impl StoredMeta {
    /// §4.2.3 `current_age`.
    pub fn current_age(&self, now: SystemTime) -> Duration {
        let resident = now
            .duration_since(self.response_time)
            .unwrap_or(Duration::ZERO);
        self.corrected_initial_age.saturating_add(resident)
    }

    /// Remaining freshness in whole seconds: `lifetime - age` rounded down, so it is negative
    /// as soon as the response is stale (RFC 9211 §2.5) and never negative while fresh.
    pub fn ttl(&self, now: SystemTime) -> i64 {
        let lifetime = self.freshness_lifetime.as_nanos() as i128;
        let age = self.current_age(now).as_nanos() as i128;
        let secs = (lifetime - age).div_euclid(1_000_000_000);
        // Stale from the instant the age reaches the lifetime: -1 then, not 0.
        let secs = if lifetime <= age { secs.min(-1) } else { secs };
        secs.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// §4.2: `freshness_lifetime > current_age`.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        self.freshness_lifetime > self.current_age(now)
    }

    /// How long past its lifetime the response is (zero while fresh).
    pub fn staleness(&self, now: SystemTime) -> Duration {
        self.current_age(now)
            .saturating_sub(self.freshness_lifetime)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A meta received at `t(0)` with the given initial age and lifetime (seconds).
    pub(crate) fn meta(initial_age: u64, lifetime: u64) -> StoredMeta {
        StoredMeta {
            request_time: t(0),
            response_time: t(0),
            corrected_initial_age: Duration::from_secs(initial_age),
            freshness_lifetime: Duration::from_secs(lifetime),
            no_cache: false,
            must_revalidate: false,
            stale_while_revalidate: None,
            stale_if_error: None,
        }
    }

    pub(crate) fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    #[test]
    fn current_age_adds_resident_time() {
        assert_eq!(meta(5, 60).current_age(t(10)), Duration::from_secs(15));
    }

    #[test]
    fn clock_going_backwards_adds_nothing() {
        let m = meta(5, 60);
        assert_eq!(
            m.current_age(t(0) - Duration::from_secs(30)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn ttl_counts_down_and_goes_negative() {
        let m = meta(10, 60);
        assert_eq!(m.ttl(t(0)), 50);
        assert_eq!(
            m.ttl(t(49) + Duration::from_millis(999)),
            0,
            "fresh for 1 ms"
        );
        // Found by the `dates` fuzz target: the instant the age reaches the lifetime the
        // response is stale, and its ttl says so (it was 0).
        assert_eq!(m.ttl(t(50)), -1);
        assert_eq!(m.ttl(t(80)), -30);
    }

    #[test]
    fn fresh_until_age_reaches_lifetime() {
        let m = meta(0, 60);
        assert!(m.is_fresh(t(59)));
        assert!(!m.is_fresh(t(60)));
        assert!(!meta(0, 0).is_fresh(t(0)));
    }

    #[test]
    fn staleness_is_zero_while_fresh() {
        let m = meta(0, 60);
        assert_eq!(m.staleness(t(30)), Duration::ZERO);
        assert_eq!(m.staleness(t(75)), Duration::from_secs(15));
    }
}
