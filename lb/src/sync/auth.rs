//! Authentication of sync datagrams: `payload || tag`, the tag being the first [`TAG_LEN`]
//! bytes (128 bits; RFC 2104 §5 allows truncating to half the output) of HMAC-SHA256 over the
//! domain label `strait-sync-v1\0` and the payload, with the `hmac` and `sha2` crates.
//!
//! Contract:
//! * The key is per direction: [`Key::derive`] makes it from the shared secret (the bytes of
//!   `secret_file`) and the sender's and receiver's addresses, as HMAC-SHA256(secret,
//!   `strait-sync-key\0` || sender || receiver). The sender seals with `derive(secret, me,
//!   peer)`, the receiver opens with `derive(secret, peer, me)`: a datagram reflected back to
//!   its sender, or replayed towards a third director, does not verify.
//! * [`open`] returns the payload only when the tag checks (compared in constant time,
//!   `Mac::verify_truncated_left`); anything shorter than a tag, or with any bit changed, is
//!   [`Unauthenticated`].
//! * Without a key (`None`: sync explicitly configured unauthenticated) a datagram is the
//!   bare payload, both ways.

use std::fmt;
use std::net::Ipv4Addr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of tag appended to each datagram when a key is set.
pub const TAG_LEN: usize = 16;
/// Keeps sync tags apart from tags made with the same key for other protocols.
const DOMAIN: &[u8] = b"strait-sync-v1\0";
/// Keeps the derived keys apart from other uses of the secret.
const KEY_LABEL: &[u8] = b"strait-sync-key\0";

/// The key of one direction (sender → receiver). Its `Debug` shows no key material.
#[derive(Clone)]
pub struct Key {
    /// HMAC-SHA256 already keyed with the derived key (cloned for each datagram).
    mac: Hmac<Sha256>,
}

impl Key {
    /// The key of datagrams from `sender` to `receiver` under `secret`. `None` only if the
    /// HMAC implementation refused a key, which it does for no length (HMAC takes keys of any
    /// length; the config asks for at least 16 bytes).
    pub fn derive(secret: &[u8], sender: Ipv4Addr, receiver: Ipv4Addr) -> Option<Key> {
        let mut kdf = <Hmac<Sha256> as Mac>::new_from_slice(secret).ok()?;
        kdf.update(KEY_LABEL);
        kdf.update(&sender.octets());
        kdf.update(&receiver.octets());
        let derived = kdf.finalize().into_bytes();
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&derived).ok()?;
        Some(Key { mac })
    }

    /// The MAC of `payload`, ready to finalize or verify.
    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut m = self.mac.clone();
        m.update(DOMAIN);
        m.update(payload);
        m
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

/// A datagram whose tag is missing or wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("unauthenticated datagram")]
pub struct Unauthenticated;

/// Bytes the tag adds under `key` (0 without a key).
pub fn tag_len(key: Option<&Key>) -> usize {
    if key.is_some() {
        TAG_LEN
    } else {
        0
    }
}

/// The datagram to send for `payload`: the payload with its tag appended (as it is without
/// a key).
pub fn seal(key: Option<&Key>, mut payload: Vec<u8>) -> Vec<u8> {
    if let Some(key) = key {
        let tag = key.mac(&payload).finalize().into_bytes();
        payload.extend_from_slice(&tag[..TAG_LEN]);
    }
    payload
}

/// The payload of a received datagram, if it authenticates under `key`.
pub fn open<'d>(key: Option<&Key>, datagram: &'d [u8]) -> Result<&'d [u8], Unauthenticated> {
    let Some(key) = key else {
        return Ok(datagram);
    };
    let at = datagram.len().checked_sub(TAG_LEN).ok_or(Unauthenticated)?;
    let (payload, tag) = datagram.split_at(at);
    key.mac(payload)
        .verify_truncated_left(tag)
        .map(|()| payload)
        .map_err(|_| Unauthenticated)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef";
    const A: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

    fn key(secret: &[u8], from: Ipv4Addr, to: Ipv4Addr) -> Key {
        Key::derive(secret, from, to).expect("HMAC takes any key")
    }

    #[test]
    fn a_sealed_datagram_opens_with_the_receivers_key_for_its_direction() {
        let a_to_b = key(SECRET, A, B);
        let d = seal(Some(&a_to_b), b"hello".to_vec());
        assert_eq!(d.len(), 5 + TAG_LEN);
        assert_eq!(&d[..5], b"hello");
        // B derives the same key for A → B.
        assert_eq!(open(Some(&key(SECRET, A, B)), &d), Ok(&b"hello"[..]));
        // Reflected back to A, it is checked with B → A's key and fails.
        assert_eq!(open(Some(&key(SECRET, B, A)), &d), Err(Unauthenticated));
        // Another secret, or another receiver, fails too.
        let other = b"fedcba9876543210";
        assert_eq!(open(Some(&key(other, A, B)), &d), Err(Unauthenticated));
        let c = Ipv4Addr::new(10, 77, 0, 3);
        assert_eq!(open(Some(&key(SECRET, A, c)), &d), Err(Unauthenticated));
    }

    #[test]
    fn without_a_key_datagrams_are_the_bare_payload() {
        assert_eq!(seal(None, b"hello".to_vec()), b"hello");
        assert_eq!(open(None, b"hello"), Ok(&b"hello"[..]));
        assert_eq!(open(None, b""), Ok(&b""[..]));
        assert_eq!(tag_len(None), 0);
        assert_eq!(tag_len(Some(&key(SECRET, A, B))), TAG_LEN);
    }

    #[test]
    fn tampered_short_and_untagged_datagrams_are_refused() {
        let k = key(SECRET, A, B);
        let d = seal(Some(&k), b"payload".to_vec());
        for i in 0..d.len() {
            for bit in 0..8 {
                let mut t = d.clone();
                t[i] ^= 1 << bit;
                assert_eq!(
                    open(Some(&k), &t),
                    Err(Unauthenticated),
                    "byte {i} bit {bit}"
                );
            }
        }
        for n in 0..d.len() {
            assert_eq!(open(Some(&k), &d[..n]), Err(Unauthenticated), "cut at {n}");
        }
        assert_eq!(open(Some(&k), b"payload"), Err(Unauthenticated));
        // An empty payload still carries a tag.
        let empty = seal(Some(&k), Vec::new());
        assert_eq!(open(Some(&k), &empty), Ok(&b""[..]));
    }

    #[test]
    fn the_key_does_not_show_in_debug_output() {
        assert_eq!(format!("{:?}", key(SECRET, A, B)), "Key(..)");
    }
}
