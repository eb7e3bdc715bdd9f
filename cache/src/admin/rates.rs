//! Rates over the last interval for the stats page and `/stats.json`: a [`Sampler`] keeps the
//! totals of a previous read and their time; each read of the page or of `/stats.json`
//! compares its totals with them. The kept sample is replaced when it is at least
//! [`MIN_INTERVAL`] old, so the interval is the time since a read at least that much earlier
//! (the page's own 5 s refresh makes it 5 s); no task ticks in the background. The first read
//! has no rates. Pure: the caller passes the time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A kept sample is replaced once it is this old.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The cumulative figures rates are computed from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// Client responses (every status class).
    pub responses: u64,
    pub responses_5xx: u64,
    /// Cache lookups answered from a store (local or the owner's).
    pub hits: u64,
    /// Cache lookups that went to the origin (local or the owner's miss).
    pub misses: u64,
    /// Bytes written to clients.
    pub sent_bytes: u64,
    /// Requests sent to each origin server, by `pool/addr`.
    pub servers: HashMap<String, u64>,
}

/// Rates over one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Rates {
    pub interval: Duration,
    /// Client responses per second.
    pub requests_per_sec: f64,
    /// Bytes written to clients per second.
    pub bytes_per_sec: f64,
    /// 5xx responses per second.
    pub errors_5xx_per_sec: f64,
    /// 5xx responses / responses in the interval (None without responses).
    pub error_5xx_ratio: Option<f64>,
    /// Hits / (hits + misses) in the interval (None without lookups).
    pub hit_ratio: Option<f64>,
    /// Requests per second to each origin server, by `pool/addr`.
    pub servers: HashMap<String, f64>,
}

/// The previous sample.
#[derive(Debug, Default)]
pub struct Sampler {
    kept: Option<(Instant, Totals)>,
}

/// `part / whole`, None when `whole` is 0.
pub fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Sampler {
    /// Rates from the kept sample to `now` (None on the first read or within the same
    /// instant); keeps `now` when the kept sample is [`MIN_INTERVAL`] old.
    pub fn observe(&mut self, at: Instant, now: &Totals) -> Option<Rates> {
        let Some((then, old)) = &self.kept else {
            self.kept = Some((at, now.clone()));
            return None;
        };
        let interval = at.saturating_duration_since(*then);
        let rates = (!interval.is_zero()).then(|| rates(interval, old, now));
        if interval >= MIN_INTERVAL {
            self.kept = Some((at, now.clone()));
        }
        rates
    }
}

fn rates(interval: Duration, old: &Totals, now: &Totals) -> Rates {
    let secs = interval.as_secs_f64();
    // A counter that went down (a server re-created by a reload) counts from zero.
    let delta = |new: u64, old: u64| new.checked_sub(old).unwrap_or(new);
    let per_sec = |new: u64, old: u64| delta(new, old) as f64 / secs;
    let responses = delta(now.responses, old.responses);
    let errors = delta(now.responses_5xx, old.responses_5xx);
    let hits = delta(now.hits, old.hits);
    let lookups = hits + delta(now.misses, old.misses);
    let servers = now
        .servers
        .iter()
        .map(|(k, &n)| {
            let before = old.servers.get(k).copied().unwrap_or(0);
            (k.clone(), per_sec(n, before))
        })
        .collect();
    Rates {
        interval,
        requests_per_sec: responses as f64 / secs,
        bytes_per_sec: per_sec(now.sent_bytes, old.sent_bytes),
        errors_5xx_per_sec: errors as f64 / secs,
        error_5xx_ratio: ratio(errors, responses),
        hit_ratio: ratio(hits, lookups),
        servers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(responses: u64, errors: u64, hits: u64, bytes: u64, srv: u64) -> Totals {
        Totals {
            responses,
            responses_5xx: errors,
            hits,
            misses: responses - hits,
            sent_bytes: bytes,
            servers: HashMap::from([("p/127.0.0.1:1".to_owned(), srv)]),
        }
    }

    #[test]
    fn the_first_read_has_no_rates_and_the_next_compares_with_it() {
        let t0 = Instant::now();
        let mut s = Sampler::default();
        assert_eq!(s.observe(t0, &totals(10, 0, 5, 1000, 3)), None);
        let r = s
            .observe(t0 + Duration::from_secs(2), &totals(30, 2, 15, 5000, 7))
            .unwrap();
        assert_eq!(r.interval, Duration::from_secs(2));
        assert_eq!(r.requests_per_sec, 10.0);
        assert_eq!(r.bytes_per_sec, 2000.0);
        assert_eq!(r.errors_5xx_per_sec, 1.0);
        assert_eq!(r.error_5xx_ratio, Some(0.1));
        assert_eq!(r.hit_ratio, Some(0.5));
        assert_eq!(r.servers["p/127.0.0.1:1"], 2.0);
    }

    #[test]
    fn reads_closer_than_the_minimum_interval_keep_the_older_sample() {
        let t0 = Instant::now();
        let mut s = Sampler::default();
        s.observe(t0, &totals(0, 0, 0, 0, 0));
        let ms = Duration::from_millis;
        let r = s.observe(t0 + ms(500), &totals(5, 0, 0, 0, 0)).unwrap();
        assert_eq!(r.interval, ms(500));
        // Still measured from t0: the 500 ms read was not kept.
        let r = s.observe(t0 + ms(1500), &totals(15, 0, 0, 0, 0)).unwrap();
        assert_eq!((r.interval, r.requests_per_sec), (ms(1500), 10.0));
        // Now from t0 + 1.5 s.
        let r = s.observe(t0 + ms(2500), &totals(25, 0, 0, 0, 0)).unwrap();
        assert_eq!((r.interval, r.requests_per_sec), (ms(1000), 10.0));
        assert_eq!(r.error_5xx_ratio, Some(0.0));
        assert_eq!(r.hit_ratio, Some(0.0));
        // No time passed: no rates.
        assert_eq!(s.observe(t0 + ms(2500), &totals(25, 0, 0, 0, 0)), None);
    }

    #[test]
    fn a_counter_that_went_down_counts_from_zero() {
        let t0 = Instant::now();
        let mut s = Sampler::default();
        s.observe(t0, &totals(0, 0, 0, 0, 100));
        let r = s
            .observe(t0 + Duration::from_secs(1), &totals(0, 0, 0, 0, 4))
            .unwrap();
        assert_eq!(r.servers["p/127.0.0.1:1"], 4.0);
        assert_eq!((r.error_5xx_ratio, r.hit_ratio), (None, None));
    }
}
