//! RFC 9213 §2.1 targeted cache-control fields (e.g. `CDN-Cache-Control`), parsed as RFC 8941
//! Structured Fields dictionaries.
//!
//! Contract: [`parse`] returns None when the combined field value is empty or is not a valid
//! dictionary (e.g. uppercase keys, trailing comma, bad string escape): RFC 9213 then says to
//! ignore the field. Otherwise each member maps to a directive: a member without a value (or
//! `?1`) sets a flag, `?0` leaves it unset, `max-age`-style directives need a non-negative
//! sf-integer (saturated at 2^31) and are not consumed otherwise (RFC 9213 §2.1 "SHOULD NOT
//! consume values that violate these inferred constraints"); `no-cache`/`private` are set by any
//! value but `?0` (a field-name list, or anything unexpected: the safe reading for a shared
//! cache). Parameters are ignored. A later duplicate key replaces an
//! earlier one (RFC 8941 §4.2.2).

use http::HeaderValue;

use super::cache_control::{CacheControl, MaxStale, DELTA_SECONDS_MAX};

/// The parts of an sf-item value that directives use.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Bool(bool),
    Integer(i64),
    /// Any other well-formed item or inner list (string, token, decimal, bytes, date ...).
    Other,
}

/// Parses the targeted field lines (combined with ", "); None = ignore the field.
pub(crate) fn parse<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> Option<CacheControl> {
    let mut combined = Vec::new();
    for v in values {
        if !combined.is_empty() {
            combined.extend_from_slice(b", ");
        }
        combined.extend_from_slice(v.as_bytes());
    }
    let members = Parser::new(combined.trim_ascii()).dictionary()?;
    let mut cc = CacheControl::default();
    for (key, value) in members {
        apply(&mut cc, &key, &value);
    }
    Some(cc)
}

fn apply(cc: &mut CacheControl, key: &str, value: &Value) {
    let flag = *value == Value::Bool(true);
    let seconds = match value {
        Value::Integer(n) if *n >= 0 => Some((*n as u64).min(DELTA_SECONDS_MAX)),
        _ => None,
    };
    match key {
        "max-age" => cc.max_age = seconds.or(cc.max_age),
        "s-maxage" => cc.s_maxage = seconds.or(cc.s_maxage),
        "min-fresh" => cc.min_fresh = seconds.or(cc.min_fresh),
        "stale-while-revalidate" => {
            cc.stale_while_revalidate = seconds.or(cc.stale_while_revalidate)
        }
        "stale-if-error" => cc.stale_if_error = seconds.or(cc.stale_if_error),
        "max-stale" => {
            if flag {
                cc.max_stale = Some(MaxStale::Any);
            } else if let Some(n) = seconds {
                cc.max_stale = Some(MaxStale::Secs(n));
            }
        }
        "no-cache" => cc.no_cache = *value != Value::Bool(false),
        "private" => cc.private = *value != Value::Bool(false),
        "no-store" => cc.no_store = flag,
        "public" => cc.public = flag,
        "must-revalidate" => cc.must_revalidate = flag,
        "proxy-revalidate" => cc.proxy_revalidate = flag,
        "no-transform" => cc.no_transform = flag,
        "immutable" => cc.immutable = flag,
        "only-if-cached" => cc.only_if_cached = flag,
        _ => {}
    }
}

/// A cursor over the field value; every method returns None on a syntax error.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a [u8]) -> Self {
        Parser { s, i: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip(&mut self, pred: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&pred) {
            self.i += 1;
        }
    }

    /// RFC 8941 §4.2.2; an empty input is rejected (an empty field is ignored).
    fn dictionary(&mut self) -> Option<Vec<(String, Value)>> {
        let mut members: Vec<(String, Value)> = Vec::new();
        loop {
            let key = self.key()?;
            let value = if self.peek() == Some(b'=') {
                self.i += 1;
                self.member_value()?
            } else {
                self.parameters()?;
                Value::Bool(true)
            };
            match members.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => members.push((key, value)),
            }
            self.skip(|b| b == b' ' || b == b'\t');
            match self.peek() {
                None => return Some(members),
                Some(b',') => self.i += 1,
                Some(_) => return None,
            }
            self.skip(|b| b == b' ' || b == b'\t');
            self.peek()?; // a trailing comma is an error
        }
    }

    fn key(&mut self) -> Option<String> {
        let start = self.i;
        match self.peek() {
            Some(b) if b.is_ascii_lowercase() || b == b'*' => self.i += 1,
            _ => return None,
        }
        self.skip(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.' | b'*')
        });
        Some(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn member_value(&mut self) -> Option<Value> {
        if self.peek() == Some(b'(') {
            self.inner_list()?;
            self.parameters()?;
            return Some(Value::Other);
        }
        let v = self.bare_item()?;
        self.parameters()?;
        Some(v)
    }

    fn inner_list(&mut self) -> Option<()> {
        self.i += 1; // '('
        loop {
            self.skip(|b| b == b' ');
            if self.peek()? == b')' {
                self.i += 1;
                return Some(());
            }
            self.bare_item()?;
            self.parameters()?;
            match self.peek()? {
                b' ' | b')' => {}
                _ => return None,
            }
        }
    }

    fn parameters(&mut self) -> Option<()> {
        while self.peek() == Some(b';') {
            self.i += 1;
            self.skip(|b| b == b' ');
            self.key()?;
            if self.peek() == Some(b'=') {
                self.i += 1;
                self.bare_item()?;
            }
        }
        Some(())
    }

    fn bare_item(&mut self) -> Option<Value> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => self.number(),
            b'"' => self.string().map(|()| Value::Other),
            b'?' => {
                let v = match self.s.get(self.i + 1)? {
                    b'0' => false,
                    b'1' => true,
                    _ => return None,
                };
                self.i += 2;
                Some(Value::Bool(v))
            }
            b':' => {
                self.i += 1;
                self.skip(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
                if self.peek()? != b':' {
                    return None;
                }
                self.i += 1;
                Some(Value::Other)
            }
            b'@' => {
                self.i += 1;
                match self.number()? {
                    Value::Integer(_) => Some(Value::Other),
                    _ => None,
                }
            }
            b if b.is_ascii_alphabetic() || b == b'*' => {
                self.i += 1;
                self.skip(|b| is_tchar(b) || b == b':' || b == b'/');
                Some(Value::Other)
            }
            _ => None,
        }
    }

    /// sf-integer (at most 15 digits) or sf-decimal (12.3 digits at most).
    fn number(&mut self) -> Option<Value> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let start = self.i;
        self.skip(|b| b.is_ascii_digit());
        let int_digits = self.i - start;
        if int_digits == 0 {
            return None;
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            let frac_start = self.i;
            self.skip(|b| b.is_ascii_digit());
            let frac = self.i - frac_start;
            return (int_digits <= 12 && (1..=3).contains(&frac)).then_some(Value::Other);
        }
        if int_digits > 15 {
            return None;
        }
        let n = self.s[start..self.i]
            .iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
        Some(Value::Integer(if negative { -n } else { n }))
    }

    fn string(&mut self) -> Option<()> {
        self.i += 1; // opening quote
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                b'\\' => match self.s.get(self.i + 1)? {
                    b'"' | b'\\' => self.i += 2,
                    _ => return None,
                },
                0x20..=0x7e => self.i += 1,
                _ => return None,
            }
        }
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &'static str) -> Option<CacheControl> {
        parse([HeaderValue::from_static(v)].iter())
    }

    #[test]
    fn parses_dictionary_members() {
        let c = p("max-age=60, s-maxage=30;x=1, must-revalidate, stale-if-error=5").unwrap();
        assert_eq!(c.max_age, Some(60));
        assert_eq!(c.s_maxage, Some(30));
        assert_eq!(c.stale_if_error, Some(5));
        assert!(c.must_revalidate);
    }

    #[test]
    fn boolean_false_and_field_name_lists() {
        let c = p(r#"no-store=?0, public=?1, no-cache="set-cookie", private=(a b)"#).unwrap();
        assert!(!c.no_store);
        assert!(c.public && c.no_cache && c.private);
        let c = p("no-cache=?0, private=set-cookie").unwrap();
        assert!(!c.no_cache && c.private);
    }

    #[test]
    fn wrongly_typed_values_are_not_consumed() {
        let c = p(r#"max-age="60", s-maxage=1.5, min-fresh=-3, no-store=1"#).unwrap();
        assert_eq!(c, CacheControl::default());
    }

    #[test]
    fn later_duplicate_replaces_earlier() {
        assert_eq!(p("max-age=1, max-age=2").unwrap().max_age, Some(2));
    }

    #[test]
    fn large_integers_saturate() {
        assert_eq!(
            p("max-age=999999999999999").unwrap().max_age,
            Some(DELTA_SECONDS_MAX)
        );
    }

    #[test]
    fn unknown_directives_still_make_a_valid_field() {
        // RFC 9213 §3.1: "none" keeps the field non-empty so Cache-Control stays ignored.
        assert_eq!(p("none"), Some(CacheControl::default()));
    }

    #[test]
    fn syntax_errors_reject_the_field() {
        for bad in [
            "",
            "   ",
            "Max-Age=5",
            "max-age=5,",
            "max-age=5 no-store",
            r#"private="a\q""#,
            "max-age=1234567890123456",
            "x=?2",
            "1max=3",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn several_lines_are_one_dictionary() {
        let lines = [
            HeaderValue::from_static("max-age=9"),
            HeaderValue::from_static("no-store"),
        ];
        let c = parse(lines.iter()).unwrap();
        assert_eq!(c.max_age, Some(9));
        assert!(c.no_store);
    }
}
