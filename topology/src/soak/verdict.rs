//! The verdict on one answer of the soak.
//!
//! Contract of [`classify`]:
//! * no answer (connect refused or reset, the connection closed early, a body cut short that
//!   the framing shows, a timeout): [`Outcome::Expected`] when a node or an origin was down
//!   meanwhile (`disturbed`), else [`Outcome::Unexplained`];
//! * a 5xx: [`Outcome::ExpectedStatus`] when disturbed, else [`Outcome::Unexplained`];
//! * a 200 must carry the whole body: the origin's `X-Content-Size` and `X-Content-Sha256`
//!   (`origin::digest`) must match it, and so must the content the request names
//!   (`object_bytes`, or `dyn <name> <n>\n`); a prefix of it is [`Outcome::Truncated`] (a body
//!   cut short presented as complete), anything else [`Outcome::WrongBody`];
//! * a 206 only answers a range request: `Content-Range: bytes first-last/size` as asked and
//!   the body those bytes of the object, else [`Outcome::WrongBody`] (or `Truncated`);
//! * any other status (304, 4xx, ...) is [`Outcome::BadStatus`].
//!
//! Truncated, wrong-body and bad-status answers are failures of the run; the others are not.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::workload::{Expect, Pick};
use crate::origin::{digest, object_bytes};

/// What a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// A 200 with the whole, right body.
    Full,
    /// A 206 with the right part.
    Partial,
    /// No answer while a node or an origin was down.
    Expected,
    /// A 5xx while a node or an origin was down.
    ExpectedStatus,
    /// No answer, or a 5xx, with everything up.
    Unexplained,
    /// A body that is not the origin's.
    WrongBody,
    /// A body cut short but presented as complete.
    Truncated,
    /// A status the soak never asks for.
    BadStatus,
}

/// Every outcome, in report order.
pub const OUTCOMES: [Outcome; 8] = [
    Outcome::Full,
    Outcome::Partial,
    Outcome::Expected,
    Outcome::ExpectedStatus,
    Outcome::Unexplained,
    Outcome::WrongBody,
    Outcome::Truncated,
    Outcome::BadStatus,
];

impl Outcome {
    /// The outcome's name in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Full => "full",
            Outcome::Partial => "partial",
            Outcome::Expected => "no answer while down",
            Outcome::ExpectedStatus => "5xx while down",
            Outcome::Unexplained => "unexplained",
            Outcome::WrongBody => "wrong body",
            Outcome::Truncated => "truncated",
            Outcome::BadStatus => "bad status",
        }
    }

    /// Whether it fails the run.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Outcome::WrongBody | Outcome::Truncated | Outcome::BadStatus
        )
    }
}

/// An answer as the client read it (the whole body: the framing said it was complete).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The verdict on `got` for `pick`, with what was wrong when it is not [`Outcome::Full`] or
/// [`Outcome::Partial`].
pub fn classify(
    pick: &Pick,
    got: &Result<Answer, String>,
    disturbed: bool,
) -> (Outcome, Option<String>) {
    let a = match got {
        Err(e) if disturbed => return (Outcome::Expected, Some(e.clone())),
        Err(e) => return (Outcome::Unexplained, Some(e.clone())),
        Ok(a) => a,
    };
    let checked = match a.status {
        StatusCode::OK => full(pick, a).map(|()| Outcome::Full),
        StatusCode::PARTIAL_CONTENT => partial(pick, a).map(|()| Outcome::Partial),
        s if s.is_server_error() => {
            let o = if disturbed {
                Outcome::ExpectedStatus
            } else {
                Outcome::Unexplained
            };
            return (o, Some(s.to_string()));
        }
        s => Err((Outcome::BadStatus, s.to_string())),
    };
    match checked {
        Ok(o) => (o, None),
        Err((o, why)) => (o, Some(why)),
    }
}

type Check = Result<(), (Outcome, String)>;

/// A 200's body against the digest fields and the named content.
fn full(pick: &Pick, a: &Answer) -> Check {
    let wrong = |why: String| Err((Outcome::WrongBody, why));
    match digest::check(&a.headers, &a.body) {
        Ok(()) => {}
        Err(m @ digest::Mismatch::Short { .. }) => {
            if is_prefix(pick, &a.body) {
                return Err((Outcome::Truncated, m.to_string()));
            }
            return wrong(m.to_string());
        }
        Err(m) => return wrong(m.to_string()),
    }
    match &pick.expect {
        Expect::Object { name, size } => {
            if a.body != object_bytes(name, *size) {
                return wrong(format!(
                    "not the {size} bytes of {name}, though the digest fields agree"
                ));
            }
        }
        Expect::Dynamic { name } => {
            let text = String::from_utf8_lossy(&a.body);
            let well_formed = text
                .strip_prefix(&format!("dyn {name} "))
                .and_then(|rest| rest.strip_suffix('\n'))
                .is_some_and(|n| n.parse::<u64>().is_ok());
            if !well_formed {
                return wrong(format!("{text:?} is not `dyn {name} <n>`"));
            }
        }
    }
    Ok(())
}

/// Whether `body` is a strict prefix of the content `pick` names.
fn is_prefix(pick: &Pick, body: &[u8]) -> bool {
    match &pick.expect {
        Expect::Object { name, size } => {
            body.len() < *size && object_bytes(name, *size).starts_with(body)
        }
        Expect::Dynamic { name } => format!("dyn {name} ").as_bytes().starts_with(body),
    }
}

/// A 206 against the range asked for and the object's bytes.
fn partial(pick: &Pick, a: &Answer) -> Check {
    let (Some((first, last)), Expect::Object { name, size }) = (pick.range, &pick.expect) else {
        return Err((Outcome::BadStatus, "206 to a request without Range".into()));
    };
    let expected = format!("bytes {first}-{last}/{size}");
    let got = a
        .headers
        .get(http::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if got != expected {
        return Err((
            Outcome::WrongBody,
            format!("Content-Range {got:?}, expected {expected:?}"),
        ));
    }
    let whole = object_bytes(name, *size);
    let part = &whole[first as usize..=last as usize];
    if a.body.len() < part.len() && part.starts_with(&a.body) {
        return Err((
            Outcome::Truncated,
            format!("{} of {} bytes of the range", a.body.len(), part.len()),
        ));
    }
    if a.body != part {
        return Err((
            Outcome::WrongBody,
            format!("not bytes {first}-{last} of {name}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::workload::Kind;

    fn obj(range: Option<(u64, u64)>) -> Pick {
        Pick {
            kind: Kind::Warm,
            target: "/obj/o?size=100&sum=1".into(),
            expect: Expect::Object {
                name: "o".into(),
                size: 100,
            },
            range,
        }
    }

    fn answer(status: u16, body: &[u8], stamp: &[u8]) -> Result<Answer, String> {
        let mut headers = HeaderMap::new();
        digest::stamp(&mut headers, stamp);
        Ok(Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: Bytes::copy_from_slice(body),
        })
    }

    #[test]
    fn the_whole_right_body_is_full_anything_else_fails() {
        let whole = object_bytes("o", 100);
        assert_eq!(
            classify(&obj(None), &answer(200, &whole, &whole), false).0,
            Outcome::Full
        );
        let (o, why) = classify(&obj(None), &answer(200, &whole[..60], &whole), false);
        assert_eq!(o, Outcome::Truncated);
        assert_eq!(why.unwrap(), "60 of 100 bytes");
        let mut bad = whole.clone();
        bad[7] ^= 1;
        assert_eq!(
            classify(&obj(None), &answer(200, &bad, &whole), false).0,
            Outcome::WrongBody
        );
        // Coherent fields, wrong object: still wrong.
        let other = object_bytes("p", 100);
        assert_eq!(
            classify(&obj(None), &answer(200, &other, &other), false).0,
            Outcome::WrongBody
        );
        let mut no_fields = answer(200, &whole, &whole).unwrap();
        no_fields.headers.clear();
        assert_eq!(
            classify(&obj(None), &Ok(no_fields), true).0,
            Outcome::WrongBody
        );
        assert!(Outcome::Truncated.is_failure() && !Outcome::Expected.is_failure());
    }

    #[test]
    fn errors_and_5xx_are_expected_only_while_something_is_down() {
        let e: Result<Answer, String> = Err("connection reset".into());
        assert_eq!(classify(&obj(None), &e, true).0, Outcome::Expected);
        assert_eq!(classify(&obj(None), &e, false).0, Outcome::Unexplained);
        let a = answer(502, b"", b"");
        assert_eq!(classify(&obj(None), &a, true).0, Outcome::ExpectedStatus);
        assert_eq!(classify(&obj(None), &a, false).0, Outcome::Unexplained);
        assert_eq!(
            classify(&obj(None), &answer(404, b"", b""), true).0,
            Outcome::BadStatus
        );
    }

    #[test]
    fn a_206_must_be_the_range_asked_for() {
        let whole = object_bytes("o", 100);
        let mut a = answer(206, &whole[10..=19], &whole).unwrap();
        a.headers.insert(
            http::header::CONTENT_RANGE,
            http::HeaderValue::from_static("bytes 10-19/100"),
        );
        let ranged = obj(Some((10, 19)));
        assert_eq!(classify(&ranged, &Ok(a.clone()), false).0, Outcome::Partial);
        assert_eq!(
            classify(&obj(None), &Ok(a.clone()), false).0,
            Outcome::BadStatus
        );
        assert_eq!(
            classify(&obj(Some((10, 20))), &Ok(a.clone()), false).0,
            Outcome::WrongBody
        );
        let mut short = a.clone();
        short.body = Bytes::copy_from_slice(&whole[10..15]);
        assert_eq!(classify(&ranged, &Ok(short), false).0, Outcome::Truncated);
        let mut wrong = a;
        wrong.body = Bytes::copy_from_slice(&whole[11..=20]);
        assert_eq!(classify(&ranged, &Ok(wrong), false).0, Outcome::WrongBody);
        // A 200 with the whole object also answers a range request.
        assert_eq!(
            classify(&ranged, &answer(200, &whole, &whole), false).0,
            Outcome::Full
        );
    }

    #[test]
    fn dynamic_bodies_are_checked_for_form_and_digest() {
        let pick = Pick {
            kind: Kind::Dynamic,
            target: "/dyn/d?sum=1".into(),
            expect: Expect::Dynamic { name: "d".into() },
            range: None,
        };
        let good = b"dyn d 12\n";
        assert_eq!(
            classify(&pick, &answer(200, good, good), false).0,
            Outcome::Full
        );
        let other = b"dyn e 12\n";
        assert_eq!(
            classify(&pick, &answer(200, other, other), false).0,
            Outcome::WrongBody
        );
        assert_eq!(
            classify(&pick, &answer(200, b"dyn d", good), false).0,
            Outcome::Truncated
        );
    }
}
