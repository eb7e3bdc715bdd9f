//! Partial content (RFC 9111 §3.3-3.4): which 206 answers may be kept as part of a
//! representation, when parts may be combined, and what to ask the origin for.
//!
//! Contract:
//! * [`content_range_of`]: one `Content-Range: bytes first-last/complete` line with a known
//!   complete length and `first <= last < complete`; anything else (`*` length, another unit,
//!   several lines) is None — such a 206 is relayed, never stored.
//! * [`strong_validator`]: a strong `ETag`, else (no `ETag` at all) a `Last-Modified` at least
//!   60 s before `Date` (RFC 9110 §8.8.2.2); a weak `ETag` gives None. Parts are combined only
//!   when [`Validator::matches`] (strong comparison, §3.4).
//! * [`window`]: the client's `first..=last` widened to `slice` boundaries (clipped to the
//!   complete length when known), so the parts kept line up and a later range reuses them.
//! * [`fetches`]: one request per gap, or one for their hull when there are more than
//!   `MAX_FETCHES` gaps.
//! * [`first_ask`]: with nothing held, what a client's range asks the origin for — a closed
//!   range its window; an open range `first-` everything from the slice boundary at or below
//!   `first` (`bytes=start-`); a suffix `-n` the last `n` bytes rounded up to whole slices
//!   (`bytes=-m`) — or None when that could not be kept (larger than `max_object_size`).

use std::time::{Duration, SystemTime};

use http::header::{CONTENT_RANGE, DATE, ETAG, LAST_MODIFIED};
use http::{HeaderMap, HeaderValue};

use super::etag::EntityTag;
use super::freshness::http_date;
use super::range::Requested;

/// Most origin requests one client range makes for its gaps (more: one for the hull).
pub const MAX_FETCHES: usize = 4;

/// RFC 9110 §8.8.2.2: a Last-Modified this long before Date is a strong validator.
const LAST_MODIFIED_STRONG_AFTER: Duration = Duration::from_secs(60);

/// A 206's `Content-Range`: bytes `first..=last` of `complete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    pub first: u64,
    pub last: u64,
    pub complete: u64,
}

/// The single satisfied byte range a 206 carries (see the module doc).
pub fn content_range_of(h: &HeaderMap) -> Option<ContentRange> {
    let mut lines = h.get_all(CONTENT_RANGE).iter();
    let (Some(v), None) = (lines.next(), lines.next()) else {
        return None;
    };
    let v = std::str::from_utf8(v.as_bytes()).ok()?.trim();
    let (unit, rest) = v.split_once(' ')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let (span, complete) = rest.trim_start().split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let cr = ContentRange {
        first: number(first)?,
        last: number(last)?,
        complete: number(complete)?,
    };
    (cr.first <= cr.last && cr.last < cr.complete).then_some(cr)
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The strong validator a stored part is combined by.
#[derive(Debug, Clone, PartialEq)]
pub enum Validator {
    /// A strong entity tag, as sent.
    ETag(HeaderValue),
    /// A strong Last-Modified date, as sent.
    LastModified(HeaderValue),
}

/// The response's strong validator, if it has one (see the module doc).
pub fn strong_validator(h: &HeaderMap) -> Option<Validator> {
    if let Some(v) = h.get(ETAG) {
        let tag = EntityTag::parse(v.as_bytes())?;
        return (!tag.weak).then(|| Validator::ETag(v.clone()));
    }
    let modified = http_date(h, LAST_MODIFIED)?;
    let date = http_date(h, DATE)?;
    let strong = date
        .duration_since(modified)
        .is_ok_and(|d| d >= LAST_MODIFIED_STRONG_AFTER);
    let value = h.get(LAST_MODIFIED)?.clone();
    strong.then_some(Validator::LastModified(value))
}

impl Validator {
    /// Both name the same representation by strong comparison (RFC 9111 §3.4).
    pub fn matches(&self, other: &Validator) -> bool {
        match (self, other) {
            (Validator::ETag(a), Validator::ETag(b)) => {
                match (
                    EntityTag::parse(a.as_bytes()),
                    EntityTag::parse(b.as_bytes()),
                ) {
                    (Some(a), Some(b)) => a.strong_eq(&b),
                    _ => false,
                }
            }
            (Validator::LastModified(a), Validator::LastModified(b)) => {
                same_date(a, b).unwrap_or(false)
            }
            _ => false,
        }
    }

    /// The `If-Range` value asking for more of this representation (RFC 9110 §13.1.5).
    pub fn if_range(&self) -> HeaderValue {
        match self {
            Validator::ETag(v) | Validator::LastModified(v) => v.clone(),
        }
    }
}

fn same_date(a: &HeaderValue, b: &HeaderValue) -> Option<bool> {
    let date = |v: &HeaderValue| -> Option<SystemTime> {
        let mut h = HeaderMap::new();
        h.insert(LAST_MODIFIED, v.clone());
        http_date(&h, LAST_MODIFIED)
    };
    Some(date(a)? == date(b)?)
}

/// `first..=last` widened to `slice` boundaries, clipped to `complete` when known.
pub fn window(first: u64, last: u64, slice: u64, complete: Option<u64>) -> (u64, u64) {
    let slice = slice.max(1);
    let start = first - first % slice;
    let end = last.saturating_add(slice - last % slice).saturating_sub(1);
    let end = complete.map_or(end, |c| end.min(c.saturating_sub(1)));
    (start, end)
}

/// What to ask the origin for to fill `gaps` (see the module doc).
pub fn fetches(gaps: &[(u64, u64)]) -> Vec<(u64, u64)> {
    match (gaps.first(), gaps.last()) {
        (Some(&(first, _)), Some(&(_, last))) if gaps.len() > MAX_FETCHES => vec![(first, last)],
        _ => gaps.to_vec(),
    }
}

/// One range asked of the origin (its `Range` value: [`Ask::value`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// `bytes=first-last`.
    Span(u64, u64),
    /// `bytes=first-`.
    From(u64),
    /// `bytes=-n`.
    Suffix(u64),
}

impl Ask {
    /// The `Range` field value.
    pub fn value(&self) -> HeaderValue {
        let v = match *self {
            Ask::Span(first, last) => format!("bytes={first}-{last}"),
            Ask::From(first) => format!("bytes={first}-"),
            Ask::Suffix(n) => format!("bytes=-{n}"),
        };
        HeaderValue::try_from(v).unwrap_or_else(|_| HeaderValue::from_static("bytes=0-0"))
    }
}

/// What to ask the origin for when nothing of the representation is held (see the module
/// doc); None: it could not be kept.
pub fn first_ask(requested: Requested, slice: u64, max_object_size: u64) -> Option<Ask> {
    let slice = slice.max(1);
    match requested {
        Requested::Closed(first, last) => {
            let (start, end) = window(first, last, slice, None);
            (end - start < max_object_size).then_some(Ask::Span(start, end))
        }
        Requested::From(first) => Some(Ask::From(first - first % slice)),
        Requested::Suffix(n) => {
            let most = (max_object_size - max_object_size % slice).max(slice);
            let m = n.div_ceil(slice).saturating_mul(slice).min(most);
            (n <= m).then_some(Ask::Suffix(m))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_map as map;

    #[test]
    fn content_range_needs_one_satisfied_range_with_a_complete_length() {
        let cr = |v: &'static str| content_range_of(&map(&[("content-range", v)]));
        let want = ContentRange {
            first: 0,
            last: 9,
            complete: 100,
        };
        assert_eq!(cr("bytes 0-9/100"), Some(want));
        assert_eq!(cr("Bytes  0-9/100"), Some(want));
        for bad in [
            "bytes 0-9/*",
            "bytes */100",
            "bytes 9-0/100",
            "bytes 0-100/100",
            "items 0-9/100",
            "bytes 0-9",
            "bytes -9/100",
            "bytes 0-9/1e3",
        ] {
            assert_eq!(cr(bad), None, "{bad}");
        }
        let two = map(&[
            ("content-range", "bytes 0-9/100"),
            ("content-range", "bytes 0-9/100"),
        ]);
        assert_eq!(content_range_of(&two), None);
        assert_eq!(content_range_of(&HeaderMap::new()), None);
    }

    const LM: &str = "Tue, 14 Nov 2023 22:13:20 GMT";

    #[test]
    fn only_strong_validators_count() {
        let strong = strong_validator(&map(&[("etag", "\"v1\"")]));
        assert_eq!(
            strong,
            Some(Validator::ETag(HeaderValue::from_static("\"v1\"")))
        );
        assert_eq!(strong_validator(&map(&[("etag", "W/\"v1\"")])), None);
        // A weak ETag is not rescued by a Last-Modified.
        let weak_lm = map(&[
            ("etag", "W/\"v1\""),
            ("last-modified", LM),
            ("date", "Wed, 15 Nov 2023 22:13:20 GMT"),
        ]);
        assert_eq!(strong_validator(&weak_lm), None);
        let lm_old = map(&[
            ("last-modified", LM),
            ("date", "Tue, 14 Nov 2023 22:14:20 GMT"),
        ]);
        assert!(matches!(
            strong_validator(&lm_old),
            Some(Validator::LastModified(_))
        ));
        // Modified within the minute before Date: weak (§8.8.2.2).
        let lm_recent = map(&[
            ("last-modified", LM),
            ("date", "Tue, 14 Nov 2023 22:14:19 GMT"),
        ]);
        assert_eq!(strong_validator(&lm_recent), None);
        assert_eq!(strong_validator(&map(&[("last-modified", LM)])), None);
        assert_eq!(strong_validator(&HeaderMap::new()), None);
    }

    #[test]
    fn validators_match_by_strong_comparison_only() {
        let e = |v: &'static str| Validator::ETag(HeaderValue::from_static(v));
        let l = |v: &'static str| Validator::LastModified(HeaderValue::from_static(v));
        assert!(e("\"a\"").matches(&e("\"a\"")));
        assert!(!e("\"a\"").matches(&e("\"b\"")));
        assert!(!e("\"a\"").matches(&e("W/\"a\"")));
        assert!(l(LM).matches(&l("Tuesday, 14-Nov-23 22:13:20 GMT")));
        assert!(!l(LM).matches(&l("Tue, 14 Nov 2023 22:13:21 GMT")));
        assert!(!e("\"a\"").matches(&l(LM)));
        assert_eq!(e("\"a\"").if_range(), "\"a\"");
        assert_eq!(l(LM).if_range(), LM);
    }

    #[test]
    fn windows_align_to_slices_and_clip_to_the_complete_length() {
        assert_eq!(window(0, 0, 100, None), (0, 99));
        assert_eq!(window(150, 160, 100, None), (100, 199));
        assert_eq!(window(99, 100, 100, None), (0, 199));
        assert_eq!(window(100, 199, 100, None), (100, 199));
        assert_eq!(window(150, 160, 100, Some(170)), (100, 169));
        assert_eq!(window(0, u64::MAX - 1, 100, None).1, u64::MAX - 1);
    }

    #[test]
    fn many_gaps_are_fetched_as_their_hull() {
        let few = [(0, 9), (20, 29)];
        assert_eq!(fetches(&few), few.to_vec());
        let many: Vec<_> = (0..=MAX_FETCHES as u64)
            .map(|i| (i * 20, i * 20 + 9))
            .collect();
        assert_eq!(fetches(&many), [(0, MAX_FETCHES as u64 * 20 + 9)]);
        assert!(fetches(&[]).is_empty());
        assert_eq!(Ask::Span(5, 9).value(), "bytes=5-9");
    }

    #[test]
    fn the_first_ask_widens_to_slices_and_stays_within_max_object_size() {
        use Requested::{Closed, From, Suffix};
        assert_eq!(
            first_ask(Closed(150, 160), 100, 1000),
            Some(Ask::Span(100, 199))
        );
        assert_eq!(
            first_ask(Closed(0, 999), 100, 1000),
            Some(Ask::Span(0, 999))
        );
        assert_eq!(first_ask(Closed(0, 1000), 100, 1000), None);
        assert_eq!(first_ask(From(250), 100, 1000), Some(Ask::From(200)));
        assert_eq!(first_ask(From(200), 100, 1000), Some(Ask::From(200)));
        assert_eq!(first_ask(Suffix(1), 100, 1000), Some(Ask::Suffix(100)));
        assert_eq!(first_ask(Suffix(250), 100, 1000), Some(Ask::Suffix(300)));
        // Rounded up past the bound: the bound in whole slices, when that still covers n.
        assert_eq!(first_ask(Suffix(850), 100, 990), Some(Ask::Suffix(900)));
        assert_eq!(first_ask(Suffix(950), 100, 990), None);
        assert_eq!(Ask::From(7).value(), "bytes=7-");
        assert_eq!(Ask::Suffix(7).value(), "bytes=-7");
    }
}
