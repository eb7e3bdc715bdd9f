//! Single byte-range requests served from a stored complete representation (RFC 9110 §14).
//!
//! Contract of [`evaluate_range`]:
//! * no Range, another unit, several ranges, several Range lines or a syntactically invalid
//!   value -> [`RangeOutcome::Full`] (the field is ignored, §14.2);
//! * an If-Range that doesn't match -> Full (§13.1.5: an entity tag by strong comparison, a
//!   date by exact equality with Last-Modified);
//! * `a-b`, `a-`, `-n` are clipped to the representation; a first position at or past the
//!   end, a zero-length suffix or an empty representation -> [`RangeOutcome::Unsatisfiable`].

use http::header::{ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use http::{HeaderMap, HeaderValue};

use super::etag::EntityTag;
use super::freshness::http_date;

/// What to send for a request's Range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOutcome {
    /// 200 with the whole representation.
    Full,
    /// 206 with bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// A parsed byte-range-spec.
enum Spec {
    From(u64, Option<u64>),
    Suffix(u64),
}

/// Evaluates the request's Range against a stored representation of `len` bytes.
pub fn evaluate_range(req: &HeaderMap, stored: &HeaderMap, len: u64) -> RangeOutcome {
    let mut lines = req.get_all(RANGE).iter();
    let (Some(value), None) = (lines.next(), lines.next()) else {
        return RangeOutcome::Full;
    };
    let Some(spec) = parse_range(value.as_bytes()) else {
        return RangeOutcome::Full;
    };
    if let Some(if_range) = req.get(IF_RANGE) {
        if !if_range_matches(if_range, stored) {
            return RangeOutcome::Full;
        }
    }
    match spec {
        Spec::From(first, _) if first >= len => RangeOutcome::Unsatisfiable,
        Spec::From(start, last) => {
            let end = last.map_or(len - 1, |l| l.min(len - 1));
            RangeOutcome::Partial { start, end }
        }
        Spec::Suffix(0) => RangeOutcome::Unsatisfiable,
        Spec::Suffix(_) if len == 0 => RangeOutcome::Unsatisfiable,
        Spec::Suffix(n) => RangeOutcome::Partial {
            start: len.saturating_sub(n),
            end: len - 1,
        },
    }
}

/// A request's single byte range as written (RFC 9110 §14.1.2), before a representation's
/// length resolves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// `bytes=first-last`.
    Closed(u64, u64),
    /// `bytes=first-`: from `first` to the end.
    From(u64),
    /// `bytes=-n` (n > 0): the last `n` bytes.
    Suffix(u64),
}

/// The request's single byte range as written, when it has one Range line of one valid
/// range-spec and no `If-Range` (what a range miss may ask the origin for without knowing the
/// representation's length); None otherwise, and for the unsatisfiable `bytes=-0`.
pub fn requested_range(req: &HeaderMap) -> Option<Requested> {
    let mut lines = req.get_all(RANGE).iter();
    let (Some(value), None) = (lines.next(), lines.next()) else {
        return None;
    };
    if req.contains_key(IF_RANGE) {
        return None;
    }
    match parse_range(value.as_bytes())? {
        Spec::From(first, Some(last)) => Some(Requested::Closed(first, last)),
        Spec::From(first, None) => Some(Requested::From(first)),
        Spec::Suffix(0) => None,
        Spec::Suffix(n) => Some(Requested::Suffix(n)),
    }
}

/// `bytes=` followed by exactly one range-spec (empty list members tolerated).
fn parse_range(value: &[u8]) -> Option<Spec> {
    let value = value.trim_ascii();
    let eq = value.iter().position(|&b| b == b'=')?;
    let (unit, specs) = (value[..eq].trim_ascii(), &value[eq + 1..]);
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return None;
    }
    let mut members = specs
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|m| !m.is_empty());
    let (Some(spec), None) = (members.next(), members.next()) else {
        return None;
    };
    let dash = spec.iter().position(|&b| b == b'-')?;
    let (first, last) = (&spec[..dash], &spec[dash + 1..]);
    match (digits(first), digits(last)) {
        (Some(first), Some(last)) if first <= last => Some(Spec::From(first, Some(last))),
        (Some(first), None) if last.is_empty() => Some(Spec::From(first, None)),
        (None, Some(n)) if first.is_empty() => Some(Spec::Suffix(n)),
        _ => None,
    }
}

/// `1*DIGIT` as a saturating u64.
fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |acc, d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// §13.1.5: strong entity-tag comparison, or an HTTP-date equal to Last-Modified.
fn if_range_matches(if_range: &HeaderValue, stored: &HeaderMap) -> bool {
    let raw = if_range.as_bytes().trim_ascii();
    if raw.starts_with(b"\"") || raw.starts_with(b"W/") {
        let current = stored
            .get(ETAG)
            .and_then(|v| EntityTag::parse(v.as_bytes()));
        return match (EntityTag::parse(raw), current) {
            (Some(wanted), Some(current)) => wanted.strong_eq(&current),
            _ => false,
        };
    }
    let mut req = HeaderMap::new();
    req.insert(IF_RANGE, if_range.clone());
    match (http_date(&req, IF_RANGE), http_date(stored, LAST_MODIFIED)) {
        (Some(wanted), Some(modified)) => wanted == modified,
        _ => false,
    }
}

/// `Content-Range: bytes start-end/len`.
pub fn content_range(start: u64, end: u64, len: u64) -> HeaderValue {
    ascii_value(format!("bytes {start}-{end}/{len}"))
}

/// `Content-Range: bytes */len` for a 416.
pub fn unsatisfied_range(len: u64) -> HeaderValue {
    ascii_value(format!("bytes */{len}"))
}

/// A header value from a string of visible ASCII built here; the fallback is unreachable.
fn ascii_value(s: String) -> HeaderValue {
    HeaderValue::try_from(s).unwrap_or_else(|_| HeaderValue::from_static("bytes */0"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeOutcome::{Full, Partial, Unsatisfiable};

    use crate::policy::test_map as map;

    fn eval(range: &'static str, len: u64) -> RangeOutcome {
        evaluate_range(&map(&[("range", range)]), &HeaderMap::new(), len)
    }

    const LM: &str = "Tue, 14 Nov 2023 22:13:20 GMT";

    #[test]
    fn closed_range_clipped_to_length() {
        assert_eq!(eval("bytes=0-9", 100), Partial { start: 0, end: 9 });
        assert_eq!(eval("bytes=90-200", 100), Partial { start: 90, end: 99 });
        assert_eq!(eval("Bytes = 5-5", 100), Partial { start: 5, end: 5 });
    }

    #[test]
    fn open_ended_range() {
        assert_eq!(eval("bytes=10-", 100), Partial { start: 10, end: 99 });
    }

    #[test]
    fn suffix_range() {
        assert_eq!(eval("bytes=-10", 100), Partial { start: 90, end: 99 });
        assert_eq!(eval("bytes=-500", 100), Partial { start: 0, end: 99 });
    }

    #[test]
    fn unsatisfiable_ranges() {
        assert_eq!(eval("bytes=100-", 100), Unsatisfiable);
        assert_eq!(eval("bytes=100-200", 100), Unsatisfiable);
        assert_eq!(eval("bytes=-0", 100), Unsatisfiable);
        assert_eq!(eval("bytes=0-", 0), Unsatisfiable);
        assert_eq!(eval("bytes=-5", 0), Unsatisfiable);
        assert_eq!(eval("bytes=99999999999999999999999-", 100), Unsatisfiable);
    }

    #[test]
    fn ignored_ranges_give_full() {
        for r in [
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=-",
            "bytes 0-1",
            "bytes=--1",
        ] {
            assert_eq!(eval(r, 100), Full, "{r}");
        }
        assert_eq!(
            evaluate_range(&HeaderMap::new(), &HeaderMap::new(), 100),
            Full
        );
        assert_eq!(eval("bytes=0-1,", 100), Partial { start: 0, end: 1 });
    }

    #[test]
    fn two_range_lines_give_full() {
        let req = map(&[("range", "bytes=0-1"), ("range", "bytes=2-3")]);
        assert_eq!(evaluate_range(&req, &HeaderMap::new(), 100), Full);
    }

    #[test]
    fn if_range_etag_uses_strong_comparison() {
        let stored = map(&[("etag", "\"v1\"")]);
        let hit = map(&[("range", "bytes=0-1"), ("if-range", "\"v1\"")]);
        assert_eq!(
            evaluate_range(&hit, &stored, 10),
            Partial { start: 0, end: 1 }
        );
        let other = map(&[("range", "bytes=0-1"), ("if-range", "\"v2\"")]);
        assert_eq!(evaluate_range(&other, &stored, 10), Full);
        let weak = map(&[("range", "bytes=0-1"), ("if-range", "W/\"v1\"")]);
        assert_eq!(evaluate_range(&weak, &stored, 10), Full);
        let weak_stored = map(&[("etag", "W/\"v1\"")]);
        assert_eq!(evaluate_range(&hit, &weak_stored, 10), Full);
    }

    #[test]
    fn if_range_date_must_equal_last_modified() {
        let stored = map(&[("last-modified", LM)]);
        let same = map(&[("range", "bytes=0-1"), ("if-range", LM)]);
        assert_eq!(
            evaluate_range(&same, &stored, 10),
            Partial { start: 0, end: 1 }
        );
        let later = map(&[
            ("range", "bytes=0-1"),
            ("if-range", "Tue, 14 Nov 2023 22:13:21 GMT"),
        ]);
        assert_eq!(evaluate_range(&later, &stored, 10), Full);
        assert_eq!(evaluate_range(&same, &HeaderMap::new(), 10), Full);
    }

    #[test]
    fn requested_range_is_one_spec_as_written_without_if_range() {
        let r = |pairs: &[(&'static str, &'static str)]| requested_range(&map(pairs));
        assert_eq!(r(&[("range", "bytes=5-9")]), Some(Requested::Closed(5, 9)));
        assert_eq!(r(&[("range", "bytes=5-")]), Some(Requested::From(5)));
        assert_eq!(r(&[("range", "bytes=-5")]), Some(Requested::Suffix(5)));
        assert_eq!(r(&[("range", "bytes=-0")]), None);
        assert_eq!(r(&[("range", "bytes=0-1,4-5")]), None);
        assert_eq!(r(&[("range", "bytes=9-5")]), None);
        assert_eq!(r(&[("range", "bytes=5-9"), ("if-range", "\"a\"")]), None);
        assert_eq!(r(&[("range", "bytes=5-"), ("if-range", "\"a\"")]), None);
        assert_eq!(r(&[]), None);
    }

    #[test]
    fn content_range_values() {
        assert_eq!(content_range(0, 9, 100), "bytes 0-9/100");
        assert_eq!(unsatisfied_range(100), "bytes */100");
    }
}
