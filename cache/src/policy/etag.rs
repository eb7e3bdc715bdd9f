//! Entity tags (RFC 9110 §8.8.3) and their weak and strong comparison (§8.8.3.2).
//!
//! Contract: [`EntityTag::parse`] accepts exactly one `[W/]"opaque"` (surrounding whitespace
//! allowed); [`parse_condition`] reads an `If-Match`/`If-None-Match` value: `*` or a list of
//! entity tags, None when malformed. Opaque bytes are compared exactly.

/// One entity tag; `opaque` excludes the quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityTag<'a> {
    pub weak: bool,
    pub opaque: &'a [u8],
}

/// An `If-None-Match` / `If-Match` field value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition<'a> {
    /// `*`: any current representation.
    Any,
    Tags(Vec<EntityTag<'a>>),
}

impl<'a> EntityTag<'a> {
    /// Parses a single entity tag such as an `ETag` value.
    pub fn parse(value: &'a [u8]) -> Option<EntityTag<'a>> {
        let (tag, rest) = parse_prefix(value.trim_ascii())?;
        rest.is_empty().then_some(tag)
    }

    /// Weak comparison: opaque tags equal, weakness ignored.
    pub fn weak_eq(&self, other: &EntityTag<'_>) -> bool {
        self.opaque == other.opaque
    }

    /// Strong comparison: neither is weak and opaque tags equal.
    pub fn strong_eq(&self, other: &EntityTag<'_>) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }
}

/// Parses `*` or `#entity-tag`; None when malformed or an empty list.
pub fn parse_condition(value: &[u8]) -> Option<Condition<'_>> {
    let value = value.trim_ascii();
    if value == b"*" {
        return Some(Condition::Any);
    }
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        while let Some((&b, tail)) = rest.split_first() {
            if b == b',' || b == b' ' || b == b'\t' {
                rest = tail;
            } else {
                break;
            }
        }
        if rest.is_empty() {
            break;
        }
        let (tag, tail) = parse_prefix(rest)?;
        tags.push(tag);
        rest = tail.trim_ascii_start();
        if !rest.is_empty() && rest[0] != b',' {
            return None;
        }
    }
    (!tags.is_empty()).then_some(Condition::Tags(tags))
}

/// Parses an entity tag at the start of `s`; returns it and what follows.
fn parse_prefix(s: &[u8]) -> Option<(EntityTag<'_>, &[u8])> {
    let (weak, s) = match s.strip_prefix(b"W/") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let s = s.strip_prefix(b"\"")?;
    let end = s.iter().position(|&b| b == b'"')?;
    let opaque = &s[..end];
    if !opaque
        .iter()
        .all(|&b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
    {
        return None;
    }
    Some((EntityTag { weak, opaque }, &s[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(s: &'static str) -> EntityTag<'static> {
        EntityTag::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn parses_strong_and_weak_tags() {
        assert_eq!(
            tag("\"abc\""),
            EntityTag {
                weak: false,
                opaque: b"abc"
            }
        );
        assert_eq!(
            tag(" W/\"a,b\" "),
            EntityTag {
                weak: true,
                opaque: b"a,b"
            }
        );
        assert_eq!(
            tag("\"\""),
            EntityTag {
                weak: false,
                opaque: b""
            }
        );
    }

    #[test]
    fn rejects_malformed_tags() {
        for bad in ["abc", "\"abc", "w/\"abc\"", "\"a\" \"b\"", "\"a b\""] {
            assert_eq!(EntityTag::parse(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn weak_comparison_ignores_weakness() {
        assert!(tag("W/\"1\"").weak_eq(&tag("\"1\"")));
        assert!(tag("W/\"1\"").weak_eq(&tag("W/\"1\"")));
        assert!(!tag("\"1\"").weak_eq(&tag("\"2\"")));
    }

    #[test]
    fn strong_comparison_needs_two_strong_tags() {
        assert!(tag("\"1\"").strong_eq(&tag("\"1\"")));
        assert!(!tag("W/\"1\"").strong_eq(&tag("\"1\"")));
        assert!(!tag("\"1\"").strong_eq(&tag("W/\"1\"")));
        assert!(!tag("\"1\"").strong_eq(&tag("\"2\"")));
    }

    #[test]
    fn condition_lists_and_star() {
        assert_eq!(parse_condition(b" * "), Some(Condition::Any));
        let Some(Condition::Tags(tags)) = parse_condition(b"\"a\", W/\"b\",,\"c,d\"") else {
            panic!("not a list");
        };
        let opaques: Vec<&[u8]> = tags.iter().map(|t| t.opaque).collect();
        assert_eq!(opaques, [&b"a"[..], b"b", b"c,d"]);
        assert!(tags[1].weak);
        assert_eq!(parse_condition(b"\"a\" \"b\""), None);
        assert_eq!(parse_condition(b""), None);
        assert_eq!(parse_condition(b"a, *"), None);
    }
}
