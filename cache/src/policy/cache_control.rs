//! Cache-Control directives (RFC 9111 §5.2) and RFC 9213 targeted fields.
//!
//! Contract:
//! * [`CacheControl::parse`] reads a comma-separated list spread over any number of field lines.
//!   Directive names are case-insensitive, arguments may be tokens or quoted strings (commas
//!   inside quotes do not split), whitespace is tolerated, unknown directives are ignored.
//! * For a directive given twice, the first occurrence wins.
//! * An invalid delta-seconds argument (`max-age=abc`, `max-age`, `max-age=-1`) sets
//!   [`CacheControl::invalid`] and counts as 0, so the response is stale (§4.2.1). Large values
//!   saturate at 2^31 (§1.2.2).
//! * `no-cache` and `private` are set whether qualified by field names or not: a shared cache
//!   treats both forms as the unqualified one.
//! * [`response_directives`] applies RFC 9213 §2.2: the first listed targeted field that is
//!   present, non-empty and a valid Structured Fields dictionary replaces Cache-Control (and
//!   Expires, see `storable`) for this cache.

use http::header::CACHE_CONTROL;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::targeted;

/// Largest delta-seconds value kept; bigger values saturate here (RFC 9111 §1.2.2).
pub const DELTA_SECONDS_MAX: u64 = 2_147_483_648;

/// The `max-stale` request directive (RFC 9111 §5.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxStale {
    /// `max-stale` without a value: any staleness is acceptable.
    Any,
    /// `max-stale=N`: at most N seconds stale.
    Secs(u64),
}

/// The directives of one Cache-Control (or targeted) field, request or response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    pub no_store: bool,
    /// Qualified or not: both mean "revalidate every time" here.
    pub no_cache: bool,
    /// Qualified or not: a shared cache must not store either.
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub no_transform: bool,
    pub immutable: bool,
    /// RFC 9111 §5.2.2.3: store only when the cache understands the status code.
    pub must_understand: bool,
    pub only_if_cached: bool,
    pub max_stale: Option<MaxStale>,
    pub min_fresh: Option<u64>,
    pub stale_while_revalidate: Option<u64>,
    pub stale_if_error: Option<u64>,
    /// A freshness directive had an invalid value (e.g. `max-age=abc`); it counts as 0.
    pub invalid: bool,
}

impl CacheControl {
    /// Parses every given field line as one comma-separated list.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> CacheControl {
        let mut cc = CacheControl::default();
        for value in values {
            directives(value.as_bytes(), |name, arg| cc.apply(name, arg));
        }
        cc
    }

    /// The directives of the Cache-Control field lines of `h`.
    pub fn from_headers(h: &HeaderMap) -> CacheControl {
        CacheControl::parse(h.get_all(CACHE_CONTROL).iter())
    }

    /// True when no directive was recognised.
    pub fn is_empty(&self) -> bool {
        *self == CacheControl::default()
    }

    /// Records one directive; `name` is lowercase.
    fn apply(&mut self, name: &str, arg: Option<&[u8]>) {
        match name {
            "max-age" => self.delta(|cc| &mut cc.max_age, arg),
            "s-maxage" => self.delta(|cc| &mut cc.s_maxage, arg),
            "min-fresh" => self.delta(|cc| &mut cc.min_fresh, arg),
            "stale-while-revalidate" => self.delta(|cc| &mut cc.stale_while_revalidate, arg),
            "stale-if-error" => self.delta(|cc| &mut cc.stale_if_error, arg),
            "max-stale" if self.max_stale.is_none() => {
                self.max_stale = Some(match arg {
                    None => MaxStale::Any,
                    Some(a) => match delta_seconds(a) {
                        Some(n) => MaxStale::Secs(n),
                        None => {
                            self.invalid = true;
                            MaxStale::Secs(0)
                        }
                    },
                });
            }
            "no-store" => self.no_store = true,
            "no-cache" => self.no_cache = true,
            "private" => self.private = true,
            "public" => self.public = true,
            "must-revalidate" => self.must_revalidate = true,
            "proxy-revalidate" => self.proxy_revalidate = true,
            "no-transform" => self.no_transform = true,
            "immutable" => self.immutable = true,
            "must-understand" => self.must_understand = true,
            "only-if-cached" => self.only_if_cached = true,
            _ => {}
        }
    }

    /// Sets a delta-seconds directive unless already set (first one wins).
    fn delta(&mut self, slot: fn(&mut CacheControl) -> &mut Option<u64>, arg: Option<&[u8]>) {
        if slot(self).is_some() {
            return;
        }
        let value = match arg.and_then(delta_seconds) {
            Some(n) => n,
            None => {
                self.invalid = true;
                0
            }
        };
        *slot(self) = Some(value);
    }
}

/// `1*DIGIT`, saturating at [`DELTA_SECONDS_MAX`]; None when not all digits or empty.
pub(crate) fn delta_seconds(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = s.iter().fold(0u64, |acc, d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    Some(n.min(DELTA_SECONDS_MAX))
}

/// The longest directive name [`CacheControl::apply`] knows (`stale-while-revalidate`) fits.
const NAME_MAX: usize = 32;

/// Splits one field line into (lowercase name, unquoted argument) pairs, given to `each` in
/// order. Names longer than [`NAME_MAX`] or not UTF-8 are no directive this cache knows and
/// are skipped (nothing is allocated for a name, nor for an unquoted argument).
fn directives(input: &[u8], mut each: impl FnMut(&str, Option<&[u8]>)) {
    let mut i = 0;
    let len = input.len();
    let is_ws = |b: u8| b == b' ' || b == b'\t';
    let mut lower = [0u8; NAME_MAX];
    while i < len {
        while i < len && (is_ws(input[i]) || input[i] == b',') {
            i += 1;
        }
        if i >= len {
            break;
        }
        let start = i;
        while i < len && !matches!(input[i], b',' | b'=' | b' ' | b'\t') {
            i += 1;
        }
        let raw_name = &input[start..i];
        while i < len && is_ws(input[i]) {
            i += 1;
        }
        let mut quoted = None;
        let mut token = None;
        if i < len && input[i] == b'=' {
            i += 1;
            while i < len && is_ws(input[i]) {
                i += 1;
            }
            if i < len && input[i] == b'"' {
                let (value, next) = quoted_string(input, i + 1);
                quoted = Some(value);
                i = next;
            } else {
                let vstart = i;
                while i < len && !matches!(input[i], b',' | b' ' | b'\t') {
                    i += 1;
                }
                token = Some(&input[vstart..i]);
            }
        }
        // Anything else up to the next comma is junk and ignored.
        while i < len && input[i] != b',' {
            i += 1;
        }
        if raw_name.is_empty() || raw_name.len() > NAME_MAX {
            continue;
        }
        let name = &mut lower[..raw_name.len()];
        name.copy_from_slice(raw_name);
        name.make_ascii_lowercase();
        if let Ok(name) = std::str::from_utf8(name) {
            each(name, quoted.as_deref().or(token));
        }
    }
}

/// Reads a quoted-string body starting after the opening quote; returns the unescaped content
/// and the index after the closing quote (or the end when unterminated).
fn quoted_string(input: &[u8], mut i: usize) -> (Vec<u8>, usize) {
    let mut value = Vec::new();
    while i < input.len() {
        match input[i] {
            b'"' => return (value, i + 1),
            b'\\' if i + 1 < input.len() => {
                value.push(input[i + 1]);
                i += 2;
            }
            b => {
                value.push(b);
                i += 1;
            }
        }
    }
    (value, i)
}

/// RFC 9213: the directives that apply to this cache. `targets` lists the targeted fields in
/// priority order (e.g. an operator-specific field, then `cdn-cache-control`). The first one
/// present, non-empty and parsable wins and Cache-Control is then ignored; the second element
/// names it. Otherwise the Cache-Control directives and None.
pub fn response_directives(
    h: &HeaderMap,
    targets: &[HeaderName],
) -> (CacheControl, Option<HeaderName>) {
    for target in targets {
        if !h.contains_key(target) {
            continue;
        }
        if let Some(cc) = targeted::parse(h.get_all(target).iter()) {
            return (cc, Some(target.clone()));
        }
    }
    (CacheControl::from_headers(h), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_unknown_and_non_utf8_names_are_skipped_and_the_rest_read() {
        let v = HeaderValue::from_bytes(
            b"X-An-Unknown-Directive-Longer-Than-32=\"a,b\", N\xe9=1, NO-STORE, \
              Stale-While-Revalidate=7, max-age=\"5\", private=\"set-cookie\"",
        )
        .unwrap();
        let cc = CacheControl::parse([&v]);
        assert!(cc.no_store && cc.private && !cc.invalid);
        assert_eq!((cc.max_age, cc.stale_while_revalidate), (Some(5), Some(7)));
    }

    fn cc(values: &[&'static str]) -> CacheControl {
        let values: Vec<HeaderValue> = values.iter().map(|v| HeaderValue::from_static(v)).collect();
        CacheControl::parse(values.iter())
    }

    #[test]
    fn parses_common_response_directives() {
        let c = cc(&["public, max-age=60, s-maxage=30, must-revalidate"]);
        assert_eq!(c.max_age, Some(60));
        assert_eq!(c.s_maxage, Some(30));
        assert!(c.public && c.must_revalidate);
        assert!(!c.no_store && !c.private && !c.invalid);
        assert!(!c.must_understand);
        assert!(cc(&["Must-Understand, no-store"]).must_understand);
    }

    #[test]
    fn names_are_case_insensitive_and_whitespace_tolerated() {
        let c = cc(&["  MAX-AGE=10 ,No-Store\t,  PROXY-revalidate  "]);
        assert_eq!(c.max_age, Some(10));
        assert!(c.no_store && c.proxy_revalidate);
    }

    #[test]
    fn list_spans_several_field_lines() {
        let c = cc(&["max-age=5", "no-cache", "stale-while-revalidate=7"]);
        assert_eq!(c.max_age, Some(5));
        assert!(c.no_cache);
        assert_eq!(c.stale_while_revalidate, Some(7));
    }

    #[test]
    fn quoted_arguments_keep_commas_inside() {
        let c = cc(&[r#"no-cache="set-cookie, x-a", private="a", max-age="20""#]);
        assert!(c.no_cache && c.private);
        assert_eq!(c.max_age, Some(20));
        assert!(!c.invalid);
    }

    #[test]
    fn first_duplicate_freshness_directive_wins() {
        let c = cc(&["max-age=10, max-age=99", "s-maxage=1", "s-maxage=2"]);
        assert_eq!(c.max_age, Some(10));
        assert_eq!(c.s_maxage, Some(1));
    }

    #[test]
    fn invalid_delta_seconds_count_as_zero_and_flag() {
        for v in [
            "max-age=abc",
            "max-age",
            "max-age=-1",
            "max-age=1.5",
            "max-age=",
        ] {
            let c = cc(&[v]);
            assert_eq!(c.max_age, Some(0), "{v}");
            assert!(c.invalid, "{v}");
        }
    }

    #[test]
    fn huge_values_saturate_at_two_to_the_31() {
        let c = cc(&["max-age=99999999999999999999999, min-fresh=2147483649"]);
        assert_eq!(c.max_age, Some(DELTA_SECONDS_MAX));
        assert_eq!(c.min_fresh, Some(DELTA_SECONDS_MAX));
        assert!(!c.invalid);
    }

    #[test]
    fn max_stale_with_and_without_value() {
        assert_eq!(cc(&["max-stale"]).max_stale, Some(MaxStale::Any));
        assert_eq!(cc(&["max-stale=30"]).max_stale, Some(MaxStale::Secs(30)));
        let bad = cc(&["max-stale=x"]);
        assert_eq!(bad.max_stale, Some(MaxStale::Secs(0)));
        assert!(bad.invalid);
    }

    #[test]
    fn request_directives() {
        let c = cc(&["only-if-cached, min-fresh=3, no-transform, stale-if-error=9"]);
        assert!(c.only_if_cached && c.no_transform);
        assert_eq!(c.min_fresh, Some(3));
        assert_eq!(c.stale_if_error, Some(9));
    }

    #[test]
    fn unknown_directives_are_ignored() {
        let c = cc(&["foo, bar=\"baz, max-age=3\", community=UCI"]);
        assert!(c.is_empty());
        assert!(cc(&[]).is_empty());
        assert!(!cc(&["immutable"]).is_empty());
    }

    #[test]
    fn plain_cache_control_without_targets() {
        let mut h = HeaderMap::new();
        h.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
        let (c, target) = response_directives(&h, &[]);
        assert_eq!(c.max_age, Some(60));
        assert_eq!(target, None);
    }

    #[test]
    fn cdn_cache_control_takes_precedence() {
        let cdn = HeaderName::from_static("cdn-cache-control");
        let mut h = HeaderMap::new();
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(cdn.clone(), HeaderValue::from_static("max-age=600"));
        let (c, target) = response_directives(&h, std::slice::from_ref(&cdn));
        assert_eq!(c.max_age, Some(600));
        assert!(!c.no_store);
        assert_eq!(target, Some(cdn));
    }

    #[test]
    fn first_listed_target_wins() {
        let ours = HeaderName::from_static("strait-cache-control");
        let cdn = HeaderName::from_static("cdn-cache-control");
        let mut h = HeaderMap::new();
        h.insert(cdn.clone(), HeaderValue::from_static("max-age=600"));
        h.insert(ours.clone(), HeaderValue::from_static("max-age=5"));
        let (c, target) = response_directives(&h, &[ours.clone(), cdn]);
        assert_eq!(c.max_age, Some(5));
        assert_eq!(target, Some(ours));
    }

    #[test]
    fn unparsable_or_empty_target_falls_back() {
        let ours = HeaderName::from_static("strait-cache-control");
        let cdn = HeaderName::from_static("cdn-cache-control");
        let mut h = HeaderMap::new();
        h.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=7"));
        // Uppercase keys are not valid Structured Fields dictionary keys.
        h.insert(cdn.clone(), HeaderValue::from_static("Max-Age=600"));
        h.insert(ours.clone(), HeaderValue::from_static(""));
        let (c, target) = response_directives(&h, &[ours, cdn]);
        assert_eq!(c.max_age, Some(7));
        assert_eq!(target, None);
    }
}
