//! Authentication of gossip datagrams: `payload || tag`, the tag being the first
//! [`TAG_LEN`] bytes of HMAC-SHA256 (RFC 2104, with the `hmac` and `sha2` crates) over a
//! domain label and the payload. Without a key, datagrams are the bare payload.
//!
//! Contract: [`open`] returns the payload only when the tag checks (compared in constant
//! time); a datagram too short to hold a tag, or with any bit changed, is [`Rejected`].

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of tag appended to each datagram.
pub(super) const TAG_LEN: usize = 16;
/// Keeps gossip tags apart from tags the same key makes for other protocols.
const DOMAIN: &[u8] = b"strait-gossip-v1\0";

/// A datagram that failed authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rejected {
    /// Shorter than a tag.
    Short,
    /// The tag does not match.
    BadTag,
}

/// HMAC over the domain label and `payload` (HMAC takes keys of any length, so `None` does
/// not happen in practice; such a datagram goes out untagged and is rejected by its peer).
fn mac(key: &[u8], payload: &[u8]) -> Option<Hmac<Sha256>> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
    m.update(DOMAIN);
    m.update(payload);
    Some(m)
}

/// The datagram to send for `payload`.
pub(super) fn seal(key: Option<&[u8]>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + TAG_LEN);
    out.extend_from_slice(payload);
    if let Some(m) = key.and_then(|k| mac(k, payload)) {
        let tag = m.finalize().into_bytes();
        out.extend_from_slice(&tag[..TAG_LEN]);
    }
    out
}

/// The payload of a received datagram, if it authenticates.
pub(super) fn open<'d>(key: Option<&[u8]>, datagram: &'d [u8]) -> Result<&'d [u8], Rejected> {
    let Some(key) = key else {
        return Ok(datagram);
    };
    if datagram.len() < TAG_LEN {
        return Err(Rejected::Short);
    }
    let (payload, tag) = datagram.split_at(datagram.len() - TAG_LEN);
    match mac(key, payload).map(|m| m.verify_truncated_left(tag)) {
        Some(Ok(())) => Ok(payload),
        _ => Err(Rejected::BadTag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef";

    #[test]
    fn a_sealed_datagram_opens_with_its_key_only() {
        let d = seal(Some(KEY), b"hello");
        assert_eq!(d.len(), 5 + TAG_LEN);
        assert_eq!(open(Some(KEY), &d), Ok(&b"hello"[..]));
        assert_eq!(open(Some(b"another key, 16+"), &d), Err(Rejected::BadTag));
        assert_eq!(seal(None, b"hello"), b"hello");
        assert_eq!(open(None, b"hello"), Ok(&b"hello"[..]));
    }

    #[test]
    fn tampered_short_and_untagged_datagrams_are_rejected() {
        let d = seal(Some(KEY), b"payload");
        for i in 0..d.len() {
            let mut t = d.clone();
            t[i] ^= 0x01;
            assert_eq!(open(Some(KEY), &t), Err(Rejected::BadTag), "byte {i}");
        }
        assert_eq!(open(Some(KEY), &d[..d.len() - 1]), Err(Rejected::BadTag));
        assert_eq!(open(Some(KEY), &d[..TAG_LEN - 1]), Err(Rejected::Short));
        assert_eq!(open(Some(KEY), b""), Err(Rejected::Short));
        assert_eq!(open(Some(KEY), b"payload"), Err(Rejected::Short));
        // An empty payload still carries a tag.
        let empty = seal(Some(KEY), b"");
        assert_eq!(open(Some(KEY), &empty), Ok(&b""[..]));
    }
}
