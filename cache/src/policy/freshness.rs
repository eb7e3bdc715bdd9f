//! Freshness lifetime and age (RFC 9111 §4.2.1–§4.2.3), for a shared cache.
//!
//! Contract:
//! * [`freshness_lifetime`]: `s-maxage`, then `max-age`, then `Expires - Date`, then a heuristic
//!   (§4.2.2: only for heuristically cacheable statuses or `public`, a percentage of
//!   `Date - Last-Modified` capped at `heuristic_max`). None when there is no freshness
//!   information at all; an unparsable (or conflicting) Expires is a time in the past: Some(0).
//! * [`corrected_initial_age`] follows §4.2.3 literally; an invalid Age field is ignored (§5.1)
//!   and only its first list member is used.

use std::time::{Duration, SystemTime};

use http::header::{AGE, DATE, EXPIRES, LAST_MODIFIED};
use http::{HeaderMap, StatusCode};

use super::cache_control::{delta_seconds, CacheControl};

/// Heuristic freshness settings (§4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshnessParams {
    /// Percentage of the time since Last-Modified (typically 10).
    pub heuristic_percent: u32,
    /// Upper bound of a heuristic lifetime.
    pub heuristic_max: Duration,
}

/// §4.2.1 freshness lifetime; `date` is the Date header, or the response time when absent.
#[cfg(test)]
fn freshness_lifetime(
    status: StatusCode,
    headers: &HeaderMap,
    cc: &CacheControl,
    date: SystemTime,
    params: &FreshnessParams,
) -> Option<Duration> {
    lifetime(status, headers, cc, date, params, true)
}

/// As [`freshness_lifetime`]; `use_expires` is false when an RFC 9213 targeted field applies.
pub(crate) fn lifetime(
    status: StatusCode,
    headers: &HeaderMap,
    cc: &CacheControl,
    date: SystemTime,
    params: &FreshnessParams,
    use_expires: bool,
) -> Option<Duration> {
    if let Some(s) = cc.s_maxage {
        return Some(Duration::from_secs(s));
    }
    if let Some(s) = cc.max_age {
        return Some(Duration::from_secs(s));
    }
    if use_expires {
        if let Some(expires) = expires_of(headers) {
            return Some(match expires {
                Some(at) => at.duration_since(date).unwrap_or(Duration::ZERO),
                None => Duration::ZERO,
            });
        }
    }
    if !(is_heuristically_cacheable(status) || cc.public) {
        return None;
    }
    let last_modified = http_date(headers, LAST_MODIFIED)?;
    let since = date.duration_since(last_modified).unwrap_or(Duration::ZERO);
    let millis = since.as_millis() * u128::from(params.heuristic_percent) / 100;
    let heuristic = Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX));
    Some(heuristic.min(params.heuristic_max))
}

/// None: no Expires. Some(None): invalid (unparsable, or several differing values).
fn expires_of(headers: &HeaderMap) -> Option<Option<SystemTime>> {
    let mut values = headers.get_all(EXPIRES).iter();
    let first = values.next()?;
    if values.any(|v| v != first) {
        return Some(None);
    }
    Some(first.to_str().ok().and_then(super::date::parse))
}

/// The first value of a date field, when it is a valid HTTP-date.
pub(crate) fn http_date(headers: &HeaderMap, name: http::HeaderName) -> Option<SystemTime> {
    let value = headers.get(name)?.to_str().ok()?;
    super::date::parse(value)
}

/// The Date header, when present and valid.
pub fn date_of(headers: &HeaderMap) -> Option<SystemTime> {
    http_date(headers, DATE)
}

/// The Age header (§5.1): first member of the first line; None when absent or invalid.
fn age_of(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(AGE)?.as_bytes();
    let first = value.split(|&b| b == b',').next()?;
    delta_seconds(first.trim_ascii())
}

/// §4.2.3: `max(apparent_age, age_value + response_delay)`.
pub fn corrected_initial_age(
    headers: &HeaderMap,
    request_time: SystemTime,
    response_time: SystemTime,
) -> Duration {
    let apparent_age = date_of(headers)
        .and_then(|date| response_time.duration_since(date).ok())
        .unwrap_or(Duration::ZERO);
    let response_delay = response_time
        .duration_since(request_time)
        .unwrap_or(Duration::ZERO);
    let age_value = Duration::from_secs(age_of(headers).unwrap_or(0));
    apparent_age.max(age_value + response_delay)
}

/// §4.2.2: statuses cacheable by default (RFC 9110 §15.1).
pub fn is_heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const PARAMS: FreshnessParams = FreshnessParams {
        heuristic_percent: 10,
        heuristic_max: Duration::from_secs(3600),
    };

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn date(t: SystemTime) -> HeaderValue {
        HeaderValue::from_str(&httpdate::fmt_http_date(t)).unwrap()
    }

    fn life(h: &HeaderMap, status: u16, d: SystemTime) -> Option<Duration> {
        let cc = CacheControl::from_headers(h);
        freshness_lifetime(StatusCode::from_u16(status).unwrap(), h, &cc, d, &PARAMS)
    }

    fn secs(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n))
    }

    #[test]
    fn s_maxage_beats_max_age_and_expires() {
        let mut h = HeaderMap::new();
        h.insert(
            "cache-control",
            HeaderValue::from_static("max-age=60, s-maxage=5"),
        );
        h.insert(EXPIRES, date(at(1000)));
        assert_eq!(life(&h, 200, at(0)), secs(5));
    }

    #[test]
    fn max_age_beats_expires() {
        let mut h = HeaderMap::new();
        h.insert("cache-control", HeaderValue::from_static("max-age=60"));
        h.insert(EXPIRES, date(at(1000)));
        assert_eq!(life(&h, 200, at(0)), secs(60));
    }

    #[test]
    fn expires_minus_date() {
        let mut h = HeaderMap::new();
        h.insert(EXPIRES, date(at(300)));
        h.insert(DATE, date(at(100)));
        assert_eq!(life(&h, 200, date_of(&h).unwrap()), secs(200));
    }

    #[test]
    fn expires_without_date_uses_response_time() {
        let mut h = HeaderMap::new();
        h.insert(EXPIRES, date(at(300)));
        assert_eq!(life(&h, 200, at(250)), secs(50));
        assert_eq!(life(&h, 200, at(400)), secs(0));
    }

    #[test]
    fn invalid_or_conflicting_expires_is_already_expired() {
        let mut h = HeaderMap::new();
        h.insert(EXPIRES, HeaderValue::from_static("0"));
        h.insert(LAST_MODIFIED, date(at(0)));
        assert_eq!(life(&h, 200, at(1000)), secs(0));
        let mut h = HeaderMap::new();
        h.append(EXPIRES, date(at(300)));
        h.append(EXPIRES, date(at(400)));
        assert_eq!(life(&h, 200, at(0)), secs(0));
    }

    #[test]
    fn invalid_max_age_is_zero_not_heuristic() {
        let mut h = HeaderMap::new();
        h.insert("cache-control", HeaderValue::from_static("max-age=soon"));
        h.insert(LAST_MODIFIED, date(at(0)));
        assert_eq!(life(&h, 200, at(1000)), secs(0));
    }

    #[test]
    fn heuristic_is_ten_percent_of_last_modified_age() {
        let mut h = HeaderMap::new();
        h.insert(LAST_MODIFIED, date(at(0)));
        assert_eq!(life(&h, 200, at(1000)), secs(100));
    }

    #[test]
    fn heuristic_is_capped() {
        let mut h = HeaderMap::new();
        h.insert(LAST_MODIFIED, date(at(0)));
        assert_eq!(life(&h, 200, at(100_000)), secs(3600));
    }

    #[test]
    fn heuristic_needs_cacheable_status_or_public() {
        let mut h = HeaderMap::new();
        h.insert(LAST_MODIFIED, date(at(0)));
        assert_eq!(life(&h, 302, at(1000)), None);
        assert_eq!(life(&h, 404, at(1000)), secs(100));
        h.insert("cache-control", HeaderValue::from_static("public"));
        assert_eq!(life(&h, 302, at(1000)), secs(100));
    }

    #[test]
    fn no_information_at_all_is_none() {
        let mut h = HeaderMap::new();
        h.insert("etag", HeaderValue::from_static("\"x\""));
        assert_eq!(life(&h, 200, at(0)), None);
    }

    #[test]
    fn targeted_fields_ignore_expires() {
        let mut h = HeaderMap::new();
        h.insert(EXPIRES, date(at(300)));
        let cc = CacheControl::default();
        let ok = StatusCode::OK;
        assert_eq!(lifetime(ok, &h, &cc, at(0), &PARAMS, false), None);
        assert_eq!(lifetime(ok, &h, &cc, at(0), &PARAMS, true), secs(300));
    }

    #[test]
    fn corrected_age_uses_apparent_age() {
        let mut h = HeaderMap::new();
        h.insert(DATE, date(at(0)));
        // apparent 10 > 0 + delay 2
        assert_eq!(
            corrected_initial_age(&h, at(8), at(10)),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn corrected_age_adds_response_delay_to_age_header() {
        let mut h = HeaderMap::new();
        h.insert(DATE, date(at(9)));
        h.insert(AGE, HeaderValue::from_static("30"));
        // apparent 1 < 30 + delay 3
        assert_eq!(
            corrected_initial_age(&h, at(7), at(10)),
            Duration::from_secs(33)
        );
    }

    #[test]
    fn age_header_first_member_and_invalid_ignored() {
        let mut h = HeaderMap::new();
        h.insert(AGE, HeaderValue::from_static("5, 100"));
        assert_eq!(
            corrected_initial_age(&h, at(0), at(1)),
            Duration::from_secs(6)
        );
        h.insert(AGE, HeaderValue::from_static("-5"));
        assert_eq!(
            corrected_initial_age(&h, at(0), at(1)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn date_in_future_gives_no_negative_age() {
        let mut h = HeaderMap::new();
        h.insert(DATE, date(at(100)));
        assert_eq!(corrected_initial_age(&h, at(10), at(10)), Duration::ZERO);
    }

    #[test]
    fn heuristically_cacheable_statuses() {
        let yes: Vec<u16> = (100..600)
            .filter(|&s| is_heuristically_cacheable(StatusCode::from_u16(s).unwrap()))
            .collect();
        assert_eq!(
            yes,
            [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501]
        );
    }
}
