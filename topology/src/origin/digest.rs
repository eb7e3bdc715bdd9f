//! The `sum=1` knob: the origin states the size and the SHA-256 of the body it sends, so a
//! client behind any number of caches can check every byte it gets against what the origin
//! meant (`strait sim run soak` does, for every answer).
//!
//! Contract:
//! * [`SIZE_HEADER`] is the body's length in bytes (decimal), [`SHA256_HEADER`] the SHA-256 of
//!   the whole body as 64 lowercase hex digits;
//! * both describe the whole representation: a cache that answers a range (206) forwards them
//!   unchanged, so they do not describe the part sent;
//! * [`check`] says whether a body received whole matches the fields beside it.

use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

/// Length of the whole body in bytes.
pub const SIZE_HEADER: HeaderName = HeaderName::from_static("x-content-size");
/// SHA-256 of the whole body, lowercase hex.
pub const SHA256_HEADER: HeaderName = HeaderName::from_static("x-content-sha256");

/// The SHA-256 of `body` as 64 lowercase hex digits.
pub fn sha256_hex(body: &[u8]) -> String {
    let hash = Sha256::digest(body);
    let mut hex = String::with_capacity(64);
    for byte in hash {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Adds [`SIZE_HEADER`] and [`SHA256_HEADER`] for `body`.
pub fn stamp(headers: &mut HeaderMap, body: &[u8]) {
    headers.insert(SIZE_HEADER, HeaderValue::from(body.len() as u64));
    if let Ok(v) = HeaderValue::from_str(&sha256_hex(body)) {
        headers.insert(SHA256_HEADER, v);
    }
}

/// What [`check`] found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// A field is absent or not a size / 64 hex digits.
    Missing,
    /// The body is shorter than stated.
    Short { stated: u64, got: u64 },
    /// The body is longer than stated.
    Long { stated: u64, got: u64 },
    /// The size is right, the bytes are not.
    Bytes,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Missing => write!(f, "no valid {SIZE_HEADER} and {SHA256_HEADER}"),
            Mismatch::Short { stated, got } => write!(f, "{got} of {stated} bytes"),
            Mismatch::Long { stated, got } => write!(f, "{got} bytes, {stated} stated"),
            Mismatch::Bytes => write!(f, "the body's SHA-256 differs from {SHA256_HEADER}"),
        }
    }
}

/// The size and SHA-256 the fields state.
pub fn stated(headers: &HeaderMap) -> Option<(u64, &str)> {
    let size = headers.get(SIZE_HEADER)?.to_str().ok()?.parse().ok()?;
    let sha = headers.get(SHA256_HEADER)?.to_str().ok()?;
    let valid = sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then_some((size, sha))
}

/// Whether `body`, received whole, is what the fields in `headers` state.
pub fn check(headers: &HeaderMap, body: &[u8]) -> Result<(), Mismatch> {
    let (size, sha) = stated(headers).ok_or(Mismatch::Missing)?;
    let got = body.len() as u64;
    if got < size {
        return Err(Mismatch::Short { stated: size, got });
    }
    if got > size {
        return Err(Mismatch::Long { stated: size, got });
    }
    if sha256_hex(body) != sha {
        return Err(Mismatch::Bytes);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_inputs() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_stamped_body_checks_and_any_change_is_named() {
        let mut h = HeaderMap::new();
        stamp(&mut h, b"hello world");
        assert_eq!(h[SIZE_HEADER], "11");
        assert_eq!(check(&h, b"hello world"), Ok(()));
        assert_eq!(
            check(&h, b"hello"),
            Err(Mismatch::Short { stated: 11, got: 5 })
        );
        assert_eq!(
            check(&h, b"hello world!"),
            Err(Mismatch::Long {
                stated: 11,
                got: 12
            })
        );
        assert_eq!(check(&h, b"hello_world"), Err(Mismatch::Bytes));
        assert_eq!(check(&HeaderMap::new(), b"x"), Err(Mismatch::Missing));
        h.insert(SHA256_HEADER, HeaderValue::from_static("ABC"));
        assert_eq!(check(&h, b"hello world"), Err(Mismatch::Missing));
    }
}
