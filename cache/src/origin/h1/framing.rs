//! A response's framing (RFC 9112 §6.3) and whether it leaves the connection usable, gathered
//! field by field while the head is parsed, so the head's fields are looked at once.
//!
//! Pure. Contract: feeding every field line of a head to [`Framer::field`] in order and then
//! [`Framer::finish`] decides as the rules below, whatever the order of the lines:
//! * no body for a HEAD request, 1xx, 204 and 304 (reusable);
//! * any `Transfer-Encoding` line: with any `Content-Length` line a refused head
//!   ([`HeadError::LengthWithCoding`]); else chunked when the last non-empty coding of all the
//!   lines is `chunked`, the body running to the close otherwise (not reusable);
//! * `Content-Length`: every member of every line one number of at most 19 digits, all the same
//!   (else [`HeadError::BadLength`]); 0 is no body;
//! * neither: the body runs to the close (not reusable);
//! * reusable also needs the connection kept: HTTP/1.1 unless a `Connection` token is `close`,
//!   HTTP/1.0 only with `keep-alive` and without `close`.

use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderName, StatusCode, Version};

use super::head::{Framing, HeadError};

/// What the framing depends on, from the field lines seen so far.
#[derive(Debug, Default)]
pub struct Framer {
    coding: bool,
    /// Whether the last non-empty coding seen is `chunked` (None: no coding yet).
    last_chunked: Option<bool>,
    /// The length all `Content-Length` members state; Err once one is bad or differs.
    length: Option<Result<u64, HeadError>>,
    close: bool,
    keep_alive: bool,
}

impl Framer {
    /// Note one field line (`name` in any case, a token); true when it is a `Content-Length`.
    pub fn field(&mut self, name: &[u8], value: &[u8]) -> bool {
        let is = |known: &HeaderName| name.len() == known.as_str().len() && is_name(name, known);
        if is(&TRANSFER_ENCODING) {
            self.coding = true;
            for coding in value.split(|b| *b == b',').map(trim) {
                if !coding.is_empty() {
                    self.last_chunked = Some(coding.eq_ignore_ascii_case(b"chunked"));
                }
            }
        } else if is(&CONTENT_LENGTH) {
            for member in value.split(|b| *b == b',') {
                let n = match (self.length, number(trim(member))) {
                    (Some(Err(e)), _) => Err(e),
                    (Some(Ok(f)), Some(n)) if f != n => Err(HeadError::BadLength),
                    (_, Some(n)) => Ok(n),
                    (_, None) => Err(HeadError::BadLength),
                };
                self.length = Some(n);
            }
            return true;
        } else if is(&CONNECTION) {
            for token in value.split(|b| *b == b',').map(trim) {
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        false
    }

    /// The framing and whether the connection may carry another request after the body.
    pub fn finish(
        self,
        status: StatusCode,
        version: Version,
        head_request: bool,
    ) -> Result<(Framing, bool), HeadError> {
        let (framing, framed) = self.framing(status, head_request)?;
        let kept = if version == Version::HTTP_10 {
            self.keep_alive && !self.close
        } else {
            !self.close
        };
        Ok((framing, framed && kept))
    }

    fn framing(
        &self,
        status: StatusCode,
        head_request: bool,
    ) -> Result<(Framing, bool), HeadError> {
        if head_request
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return Ok((Framing::Empty, true));
        }
        if self.coding {
            if self.length.is_some() {
                return Err(HeadError::LengthWithCoding);
            }
            return Ok(if self.last_chunked == Some(true) {
                (Framing::Chunked, true)
            } else {
                (Framing::UntilClose, false)
            });
        }
        match self.length {
            Some(Err(e)) => Err(e),
            Some(Ok(0)) => Ok((Framing::Empty, true)),
            Some(Ok(n)) => Ok((Framing::Length(n), true)),
            None => Ok((Framing::UntilClose, false)),
        }
    }
}

/// Whether the field name `name` (a token, any case) is `known` (lower case letters and `-`):
/// for those, setting bit 5 of a token's byte lower-cases it and makes no other byte equal.
pub fn is_name(name: &[u8], known: &HeaderName) -> bool {
    let known = known.as_str().as_bytes();
    name.len() == known.len() && name.iter().zip(known).all(|(b, k)| b | 0x20 == *k)
}

/// A `Content-Length` member: ASCII digits only, at most 19 of them.
fn number(m: &[u8]) -> Option<u64> {
    if m.is_empty() || m.len() > 19 || !m.iter().all(u8::is_ascii_digit) {
        return None;
    }
    m.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t'))
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(
        fields: &[(&str, &str)],
        status: u16,
        version: Version,
        head: bool,
    ) -> Result<(Framing, bool), HeadError> {
        let mut f = Framer::default();
        for (n, v) in fields {
            f.field(n.as_bytes(), v.as_bytes());
        }
        f.finish(StatusCode::from_u16(status).unwrap(), version, head)
    }

    fn ok(fields: &[(&str, &str)]) -> Result<(Framing, bool), HeadError> {
        decide(fields, 200, Version::HTTP_11, false)
    }

    #[test]
    fn lengths_codings_and_their_conflicts() {
        assert_eq!(
            ok(&[("content-length", "5")]),
            Ok((Framing::Length(5), true))
        );
        assert_eq!(
            ok(&[("content-length", " 7 , 7")]),
            Ok((Framing::Length(7), true))
        );
        assert_eq!(ok(&[("content-length", "0")]), Ok((Framing::Empty, true)));
        assert_eq!(
            ok(&[("content-length", "18446744073709551615")]),
            Err(HeadError::BadLength),
            "20 digits"
        );
        assert_eq!(
            ok(&[("content-length", "9999999999999999999")]),
            Ok((Framing::Length(9_999_999_999_999_999_999), true))
        );
        for bad in ["7, 8", "-1", "+7", "0x10", "", "1 2", ",", "7,"] {
            assert_eq!(
                ok(&[("content-length", bad)]),
                Err(HeadError::BadLength),
                "{bad:?}"
            );
        }
        // A bad length stays bad whatever follows; lines must agree.
        assert_eq!(
            ok(&[("content-length", "x"), ("content-length", "3")]),
            Err(HeadError::BadLength)
        );
        assert_eq!(
            ok(&[("content-length", "3"), ("content-length", "4")]),
            Err(HeadError::BadLength)
        );
        assert_eq!(
            ok(&[("transfer-encoding", "chunked")]),
            Ok((Framing::Chunked, true))
        );
        assert_eq!(
            ok(&[
                ("transfer-encoding", "gzip"),
                ("transfer-encoding", "Chunked ,, ")
            ]),
            Ok((Framing::Chunked, true))
        );
        assert_eq!(
            ok(&[("transfer-encoding", "chunked, gzip")]),
            Ok((Framing::UntilClose, false))
        );
        assert_eq!(
            ok(&[("transfer-encoding", "")]),
            Ok((Framing::UntilClose, false))
        );
        for cl in ["3", "x"] {
            assert_eq!(
                ok(&[("content-length", cl), ("transfer-encoding", "chunked")]),
                Err(HeadError::LengthWithCoding)
            );
        }
        assert_eq!(ok(&[]), Ok((Framing::UntilClose, false)));
    }

    #[test]
    fn no_body_whatever_the_fields_for_head_1xx_204_304() {
        let fields = [("content-length", "x"), ("transfer-encoding", "chunked")];
        for status in [103, 204, 304] {
            assert_eq!(
                decide(&fields, status, Version::HTTP_11, false),
                Ok((Framing::Empty, true))
            );
        }
        assert_eq!(
            decide(&fields, 200, Version::HTTP_11, true),
            Ok((Framing::Empty, true))
        );
    }

    #[test]
    fn connection_tokens_and_the_version_decide_reuse() {
        let cl = ("content-length", "1");
        assert_eq!(
            ok(&[cl, ("connection", "x, Close")]),
            Ok((Framing::Length(1), false))
        );
        let v10 = |f: &[(&str, &str)]| decide(f, 200, Version::HTTP_10, false).unwrap().1;
        assert!(!v10(&[cl]));
        assert!(v10(&[cl, ("connection", "keep-alive")]));
        assert!(!v10(&[
            cl,
            ("connection", "keep-alive"),
            ("connection", "close")
        ]));
    }
}
