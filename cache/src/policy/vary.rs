//! Vary (RFC 9110 §12.5.5) and secondary cache keys (RFC 9111 §4.1).
//!
//! Contract:
//! * [`vary_of`] lowercases, dedups and sorts the listed field names; `*` anywhere, or a
//!   member that isn't a valid field name, gives [`Vary::Star`] (never matches, so not stored).
//! * [`variant_id`] encodes, for each selecting field in the given order, whether the request
//!   has it and its combined value: all field lines joined, list members trimmed and joined
//!   with ", ", empty members dropped. An absent field differs from an empty one. The encoding
//!   is length-prefixed, so distinct inputs never collide.

use http::header::VARY;
use http::{HeaderMap, HeaderName};

/// The selecting fields of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vary {
    /// No Vary (or an empty one): a single variant.
    None,
    /// `Vary: *`: no request can be matched.
    Star,
    /// Selecting field names, lowercase, deduped and sorted.
    Fields(Vec<HeaderName>),
}

/// The Vary of a response.
pub fn vary_of(resp: &HeaderMap) -> Vary {
    let mut fields: Vec<HeaderName> = Vec::new();
    for value in resp.get_all(VARY) {
        for member in value.as_bytes().split(|&b| b == b',') {
            let member = member.trim_ascii();
            if member.is_empty() {
                continue;
            }
            if member == b"*" {
                return Vary::Star;
            }
            match HeaderName::from_bytes(&member.to_ascii_lowercase()) {
                Ok(name) => fields.push(name),
                Err(_) => return Vary::Star,
            }
        }
    }
    if fields.is_empty() {
        return Vary::None;
    }
    fields.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    fields.dedup();
    Vary::Fields(fields)
}

/// Deterministic encoding of the request's values of `fields` (see the module contract).
pub fn variant_id(fields: &[HeaderName], req: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::new();
    for name in fields {
        out.extend_from_slice(name.as_str().as_bytes());
        if !req.contains_key(name) {
            out.push(b'-');
            continue;
        }
        let mut value = Vec::new();
        for line in req.get_all(name) {
            for member in line.as_bytes().split(|&b| b == b',') {
                let member = member.trim_ascii();
                if member.is_empty() {
                    continue;
                }
                if !value.is_empty() {
                    value.extend_from_slice(b", ");
                }
                value.extend_from_slice(member);
            }
        }
        out.push(b'=');
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::policy::test_map as map;

    fn names(list: &[&'static str]) -> Vec<HeaderName> {
        list.iter().map(|n| HeaderName::from_static(n)).collect()
    }

    #[test]
    fn no_vary_is_none() {
        assert_eq!(vary_of(&map(&[])), Vary::None);
        assert_eq!(vary_of(&map(&[("vary", " , ")])), Vary::None);
    }

    #[test]
    fn fields_are_lowercased_deduped_sorted() {
        let h = map(&[
            ("vary", "User-Agent, accept-encoding"),
            ("vary", "Accept-Encoding,Accept"),
        ]);
        assert_eq!(
            vary_of(&h),
            Vary::Fields(names(&["accept", "accept-encoding", "user-agent"]))
        );
    }

    #[test]
    fn star_anywhere_wins() {
        assert_eq!(
            vary_of(&map(&[("vary", "accept"), ("vary", "*")])),
            Vary::Star
        );
        assert_eq!(vary_of(&map(&[("vary", "accept, bad name")])), Vary::Star);
    }

    #[test]
    fn whitespace_and_line_splits_do_not_matter() {
        let f = names(&["accept-encoding"]);
        let a = variant_id(&f, &map(&[("accept-encoding", "gzip,br")]));
        let b = variant_id(&f, &map(&[("accept-encoding", " gzip ,  br ")]));
        let c = variant_id(
            &f,
            &map(&[("accept-encoding", "gzip"), ("accept-encoding", "br")]),
        );
        assert_eq!(a, b);
        assert_eq!(a, c);
    }

    #[test]
    fn different_values_differ() {
        let f = names(&["accept-encoding"]);
        let a = variant_id(&f, &map(&[("accept-encoding", "gzip")]));
        let b = variant_id(&f, &map(&[("accept-encoding", "br")]));
        assert_ne!(a, b);
    }

    #[test]
    fn absent_differs_from_empty() {
        let f = names(&["accept-language"]);
        let absent = variant_id(&f, &map(&[]));
        let empty = variant_id(&f, &map(&[("accept-language", "")]));
        assert_ne!(absent, empty);
    }

    #[test]
    fn values_cannot_bleed_into_the_next_field() {
        let f = names(&["a", "b"]);
        let one = variant_id(&f, &map(&[("a", "x"), ("b", "y")]));
        let other = variant_id(&f, &map(&[("a", "x-bb=y")]));
        assert_ne!(one, other);
        assert_eq!(one, b"a=\0\0\0\x01xb=\0\0\0\x01y".to_vec());
    }

    #[test]
    fn only_selecting_fields_count() {
        let f = names(&["accept"]);
        let a = variant_id(&f, &map(&[("accept", "*/*"), ("cookie", "a=1")]));
        let b = variant_id(&f, &map(&[("accept", "*/*"), ("cookie", "a=2")]));
        assert_eq!(a, b);
    }
}
