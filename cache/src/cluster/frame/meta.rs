//! [`WireMeta`] ⇄ [`StoredMeta`]: times as ms since the UNIX epoch, durations as ms.
//!
//! Contract: sub-millisecond parts are dropped (truncated), a time before the epoch is sent
//! as the epoch, and values past `u64` ms saturate; a received time that this platform's
//! `SystemTime` cannot hold is a [`FrameError::Time`].

use std::time::{Duration, SystemTime};

use super::{FrameError, WireMeta};
use crate::policy::StoredMeta;

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, ms)
}

fn time(field: &'static str, ms: u64) -> Result<SystemTime, FrameError> {
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .ok_or(FrameError::Time { field, ms })
}

impl From<&StoredMeta> for WireMeta {
    fn from(m: &StoredMeta) -> WireMeta {
        WireMeta {
            request_time_ms: epoch_ms(m.request_time),
            response_time_ms: epoch_ms(m.response_time),
            corrected_initial_age_ms: ms(m.corrected_initial_age),
            freshness_lifetime_ms: ms(m.freshness_lifetime),
            no_cache: m.no_cache,
            must_revalidate: m.must_revalidate,
            stale_while_revalidate_ms: m.stale_while_revalidate.map(ms),
            stale_if_error_ms: m.stale_if_error.map(ms),
        }
    }
}

impl TryFrom<&WireMeta> for StoredMeta {
    type Error = FrameError;

    fn try_from(m: &WireMeta) -> Result<StoredMeta, FrameError> {
        Ok(StoredMeta {
            request_time: time("meta.request_time", m.request_time_ms)?,
            response_time: time("meta.response_time", m.response_time_ms)?,
            corrected_initial_age: Duration::from_millis(m.corrected_initial_age_ms),
            freshness_lifetime: Duration::from_millis(m.freshness_lifetime_ms),
            no_cache: m.no_cache,
            must_revalidate: m.must_revalidate,
            stale_while_revalidate: m.stale_while_revalidate_ms.map(Duration::from_millis),
            stale_if_error: m.stale_if_error_ms.map(Duration::from_millis),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> StoredMeta {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        StoredMeta {
            request_time: t,
            response_time: t + Duration::from_millis(42),
            corrected_initial_age: Duration::from_millis(5_500),
            freshness_lifetime: Duration::from_secs(60),
            no_cache: false,
            must_revalidate: true,
            stale_while_revalidate: Some(Duration::from_secs(30)),
            stale_if_error: None,
        }
    }

    #[test]
    fn millisecond_metas_round_trip_exactly() {
        let m = stored();
        let w = WireMeta::from(&m);
        assert_eq!(w.response_time_ms, 1_700_000_000_165);
        assert_eq!(w.corrected_initial_age_ms, 5_500);
        assert_eq!(w.stale_while_revalidate_ms, Some(30_000));
        assert_eq!(StoredMeta::try_from(&w).expect("in range"), m);
    }

    #[test]
    fn sub_millisecond_parts_are_dropped_and_pre_epoch_times_clamp() {
        let mut m = stored();
        m.freshness_lifetime = Duration::from_micros(1_999);
        m.request_time = SystemTime::UNIX_EPOCH - Duration::from_secs(10);
        let w = WireMeta::from(&m);
        assert_eq!(w.freshness_lifetime_ms, 1);
        assert_eq!(w.request_time_ms, 0);
    }

    #[test]
    fn far_times_are_refused_or_held() {
        let w = WireMeta {
            response_time_ms: u64::MAX,
            ..WireMeta::from(&stored())
        };
        // u64::MAX ms (584 million years) fits a 64-bit-seconds SystemTime; the conversion
        // must never panic either way.
        match StoredMeta::try_from(&w) {
            Ok(m) => assert!(m.response_time > SystemTime::UNIX_EPOCH),
            Err(e) => assert!(e.to_string().contains("meta.response_time"), "{e}"),
        }
    }
}
