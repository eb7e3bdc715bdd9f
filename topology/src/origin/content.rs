//! Deterministic object content, validators and conditional-request checks for the test origin.
//!
//! Contract:
//! * [`object_bytes`] is a pure function of `(name, size)`: the same arguments always give the
//!   same bytes, on every machine and every run, and the content does not repeat with a short
//!   period (so a wrong byte range is detected). Byte `i` is byte `i % 8` (little-endian) of
//!   `splitmix64(fnv1a64(name) + i / 8)`.
//! * [`variant_key`] names a `vary=` variant: the object's content and ETag are those of the
//!   variant key instead of the bare name.
//! * [`etag`] is a strong validator (RFC 9110 §8.8.3): `"<16 hex digits of fnv1a64(key, size)>"`.
//! * [`if_none_match_matches`] is the weak comparison of RFC 9110 §13.1.2 (`*` matches any
//!   representation); [`not_modified_since`] is the `If-Modified-Since` test of §13.1.3.

use std::time::{Duration, SystemTime};

/// Seconds since the epoch of the fixed `Last-Modified` of every object: 2026-01-01T00:00:00Z.
const LAST_MODIFIED_SECS: u64 = 1_767_225_600;

/// The fixed `Last-Modified` time of every object (2026-01-01T00:00:00Z).
pub fn last_modified() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(LAST_MODIFIED_SECS)
}

/// FNV-1a, 64 bits: a stable hash (unlike `DefaultHasher`, fixed across Rust releases).
fn fnv1a64(parts: &[&[u8]]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for part in parts {
        for b in part.iter() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
        // A separator byte, so ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(PRIME);
    }
    h
}

/// SplitMix64's output function: a cheap, well-mixed 64-bit permutation.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `size` bytes of object `name` (see the module doc for the rule).
pub fn object_bytes(name: &str, size: usize) -> Vec<u8> {
    let seed = fnv1a64(&[name.as_bytes()]);
    let mut out = vec![0u8; size];
    for (block, chunk) in out.chunks_mut(8).enumerate() {
        let word = splitmix64(seed.wrapping_add(block as u64)).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    out
}

/// The content key of a `vary=` variant: `name`, then `|value` for each varied request field
/// in the order given in `vary=` (an absent field counts as the empty string).
pub fn variant_key(name: &str, values: &[&str]) -> String {
    let mut key = name.to_owned();
    for v in values {
        key.push('|');
        key.push_str(v);
    }
    key
}

/// The strong ETag of `size` bytes of content `key`, quotes included.
pub fn etag(key: &str, size: usize) -> String {
    let h = fnv1a64(&[key.as_bytes(), &(size as u64).to_le_bytes()]);
    format!("\"{h:016x}\"")
}

/// Whether an `If-None-Match` field value (a list of entity-tags, or `*`) matches `etag` under
/// weak comparison (RFC 9110 §8.8.3.2, §13.1.2). A malformed member ends the scan: what was
/// parsed before it still counts.
pub fn if_none_match_matches(field: &str, etag: &str) -> bool {
    let want = etag.strip_prefix("W/").unwrap_or(etag);
    let mut rest = field;
    loop {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        if rest.is_empty() {
            return false;
        }
        if rest.starts_with('*') {
            // `*` matches any current representation, and we always have one.
            return true;
        }
        let tagged = rest.strip_prefix("W/").unwrap_or(rest);
        if !tagged.starts_with('"') {
            return false;
        }
        // The closing quote: entity-tag characters never include DQUOTE (§8.8.3).
        let Some(close) = tagged[1..].find('"').map(|i| i + 1) else {
            return false;
        };
        if tagged[..=close] == *want {
            return true;
        }
        rest = &tagged[close + 1..];
    }
}

/// Whether an `If-Modified-Since` value means "not modified" for `modified` (RFC 9110 §13.1.3):
/// true when the date parses and `modified` is not later than it. An invalid date is ignored.
pub fn not_modified_since(field: &str, modified: SystemTime) -> bool {
    match httpdate::parse_http_date(field.trim()) {
        Ok(since) => modified <= since,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_bytes_are_stable_across_runs() {
        // Pinned: a change of rule would break caches' golden comparisons across versions.
        let a = object_bytes("a", 16);
        assert_eq!(a.len(), 16);
        assert_eq!(a, object_bytes("a", 16));
        assert_eq!(object_bytes("a", 5), a[..5].to_vec());
        assert_ne!(object_bytes("b", 16), a);
        assert_eq!(object_bytes("x", 0), Vec::<u8>::new());
    }

    #[test]
    fn object_bytes_do_not_repeat_with_a_short_period() {
        let bytes = object_bytes("big", 64 * 1024);
        for period in [8usize, 251, 256, 4096] {
            assert_ne!(
                bytes[..period],
                bytes[period..2 * period],
                "period {period}"
            );
        }
    }

    #[test]
    fn object_bytes_prefix_is_independent_of_size() {
        assert_eq!(object_bytes("n", 1000)[..777], object_bytes("n", 777)[..]);
    }

    #[test]
    fn etag_depends_on_key_and_size() {
        let e = etag("a", 10);
        assert_eq!(e.len(), 18);
        assert!(e.starts_with('"') && e.ends_with('"'));
        assert!(e[1..17].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(e, etag("a", 10));
        assert_ne!(e, etag("a", 11));
        assert_ne!(e, etag("b", 10));
        assert_ne!(etag(&variant_key("a", &["gzip"]), 10), e);
    }

    #[test]
    fn variant_key_joins_values() {
        assert_eq!(variant_key("a", &[]), "a");
        assert_eq!(variant_key("a", &["gzip", ""]), "a|gzip|");
    }

    #[test]
    fn if_none_match_uses_weak_comparison_over_a_list() {
        let e = "\"abc\"";
        assert!(if_none_match_matches("\"abc\"", e));
        assert!(if_none_match_matches("W/\"abc\"", e));
        assert!(if_none_match_matches("\"x\", W/\"abc\"", e));
        assert!(if_none_match_matches("\"x,y\",\"abc\"", e));
        assert!(if_none_match_matches("*", e));
        assert!(!if_none_match_matches("\"abcd\"", e));
        assert!(!if_none_match_matches("\"ab\"", e));
        assert!(!if_none_match_matches("", e));
        assert!(!if_none_match_matches("abc", e));
        assert!(!if_none_match_matches("\"unterminated", e));
    }

    #[test]
    fn last_modified_is_new_year_2026() {
        assert_eq!(
            httpdate::fmt_http_date(last_modified()),
            "Thu, 01 Jan 2026 00:00:00 GMT"
        );
    }

    #[test]
    fn if_modified_since_compares_dates() {
        let lm = last_modified();
        assert!(not_modified_since("Thu, 01 Jan 2026 00:00:00 GMT", lm));
        assert!(not_modified_since("Fri, 02 Jan 2026 00:00:00 GMT", lm));
        assert!(!not_modified_since("Wed, 31 Dec 2025 23:59:59 GMT", lm));
        assert!(!not_modified_since("yesterday", lm));
    }
}
