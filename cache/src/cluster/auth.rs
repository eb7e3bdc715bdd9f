//! Optional authentication of peer connections with a shared secret: HMAC-SHA256 (the
//! RustCrypto `hmac` and `sha2` crates), truncated to 16 bytes.
//!
//! Contract:
//! * each side sends a `Hello` with a fresh [`random_nonce`]; `Hello`s are never tagged;
//! * then both derive one key per direction,
//!   `HMAC(secret, "strait-peer v1" || client_nonce || server_nonce || direction)`, where
//!   direction is 0 for client → server and 1 for server → client;
//! * every later frame ends with `HMAC(direction key, seq || length || type || stream || payload)`
//!   truncated to [`TAG_LEN`] bytes, where `seq` is an implicit `u64` (big-endian) counting
//!   that direction's tagged frames from 0 (in the order they are written on the connection,
//!   whatever their streams), and `length || type || stream` are the frame's first 9 bytes as sent
//!   (length, type and stream id).
//!
//! So a frame with a flipped bit, replayed, reordered, dropped (the next one fails), taken
//! from another connection (other nonces) or from the other direction, or sent by a node
//! with another secret fails verification with `tag mismatch`. Tags are compared in constant
//! time. Frames are authenticated, not encrypted.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the tag after each authenticated frame.
pub const TAG_LEN: usize = 16;
/// Bytes of a `Hello` nonce.
pub const NONCE_LEN: usize = 16;

const LABEL: &[u8] = b"strait-peer v1";
const CLIENT_TO_SERVER: u8 = 0;
const SERVER_TO_CLIENT: u8 = 1;

type HmacSha256 = Hmac<Sha256>;

/// A fresh nonce for a `Hello`, from the operating system's random source.
pub fn random_nonce() -> std::io::Result<[u8; NONCE_LEN]> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce)
        .map_err(|e| std::io::Error::other(format!("no random nonce: {e}")))?;
    Ok(nonce)
}

/// HMAC-SHA256 keyed with `key` (any length is accepted).
fn keyed(key: &[u8]) -> HmacSha256 {
    match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of every length (long ones are hashed first).
        Err(_) => unreachable!("HMAC rejected a key length"),
    }
}

/// One direction of a connection: its key and the sequence number of its next frame.
#[derive(Clone)]
struct Direction {
    /// Keyed once; cloned per frame so the key schedule is not redone.
    mac: HmacSha256,
    seq: u64,
}

impl Direction {
    fn derive(secret: &[u8], client: &[u8; NONCE_LEN], server: &[u8; NONCE_LEN], dir: u8) -> Self {
        let mut mac = keyed(secret);
        mac.update(LABEL);
        mac.update(client);
        mac.update(server);
        mac.update(&[dir]);
        let key = mac.finalize().into_bytes();
        Direction {
            mac: keyed(&key),
            seq: 0,
        }
    }

    fn mac_of(&self, head: &[u8], payload: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(&self.seq.to_be_bytes());
        mac.update(head);
        mac.update(payload);
        mac
    }
}

/// The tagging state of one connection end, kept by the codec.
#[derive(Clone)]
pub(crate) struct FrameAuth {
    send: Direction,
    recv: Direction,
}

impl std::fmt::Debug for FrameAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameAuth")
            .field("send_seq", &self.send.seq)
            .field("recv_seq", &self.recv.seq)
            .finish_non_exhaustive()
    }
}

impl FrameAuth {
    /// Keys for the end that is the client (`is_client`) or the server of the connection.
    pub(crate) fn new(
        secret: &[u8],
        client_nonce: &[u8; NONCE_LEN],
        server_nonce: &[u8; NONCE_LEN],
        is_client: bool,
    ) -> FrameAuth {
        let c2s = Direction::derive(secret, client_nonce, server_nonce, CLIENT_TO_SERVER);
        let s2c = Direction::derive(secret, client_nonce, server_nonce, SERVER_TO_CLIENT);
        let (send, recv) = if is_client { (c2s, s2c) } else { (s2c, c2s) };
        FrameAuth { send, recv }
    }

    /// The tag of the next frame sent (`head` = length and type bytes); advances the
    /// sequence.
    pub(crate) fn sign(&mut self, head: &[u8], payload: &[u8]) -> [u8; TAG_LEN] {
        let full = self.send.mac_of(head, payload).finalize().into_bytes();
        self.send.seq = self.send.seq.wrapping_add(1);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// Whether `tag` is the tag of the next frame received; advances the sequence only when
    /// it is.
    pub(crate) fn verify(&mut self, head: &[u8], payload: &[u8], tag: &[u8]) -> bool {
        let ok = self
            .recv
            .mac_of(head, payload)
            .verify_truncated_left(tag)
            .is_ok();
        if ok {
            self.recv.seq = self.recv.seq.wrapping_add(1);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: [u8; 16] = [1; 16];
    const S: [u8; 16] = [2; 16];

    #[test]
    fn the_two_ends_agree_and_directions_differ() {
        let mut client = FrameAuth::new(b"secret", &C, &S, true);
        let mut server = FrameAuth::new(b"secret", &C, &S, false);
        let t = client.sign(b"\0\0\0\x02\x07", b"\x01");
        assert!(server.verify(b"\0\0\0\x02\x07", b"\x01", &t));
        // The same bytes the other way carry another tag.
        let back = server.sign(b"\0\0\0\x02\x07", b"\x01");
        assert_ne!(back, t);
        assert!(client.verify(b"\0\0\0\x02\x07", b"\x01", &back));
    }

    #[test]
    fn the_sequence_number_is_part_of_the_tag() {
        let mut client = FrameAuth::new(b"secret", &C, &S, true);
        let first = client.sign(b"head!", b"payload");
        let second = client.sign(b"head!", b"payload");
        assert_ne!(first, second);
        let mut server = FrameAuth::new(b"secret", &C, &S, false);
        assert!(!server.verify(b"head!", b"payload", &second), "reordered");
        assert!(server.verify(b"head!", b"payload", &first));
        assert!(!server.verify(b"head!", b"payload", &first), "replayed");
        assert!(server.verify(b"head!", b"payload", &second));
    }

    #[test]
    fn another_secret_or_nonce_gives_other_tags() {
        let mut a = FrameAuth::new(b"secret", &C, &S, true);
        let t = a.sign(b"head!", b"x");
        for mut other in [
            FrameAuth::new(b"secreT", &C, &S, false),
            FrameAuth::new(b"secret", &S, &C, false),
            FrameAuth::new(b"secret", &C, &[3; 16], false),
        ] {
            assert!(!other.verify(b"head!", b"x", &t));
        }
    }

    #[test]
    fn nonces_are_random() {
        let a = random_nonce().expect("a nonce");
        let b = random_nonce().expect("a nonce");
        assert_ne!(a, b);
    }
}
