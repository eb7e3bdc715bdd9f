//! Mangled input: thousands of truncated, bit-flipped, overwritten, resized, random and
//! spliced buffers built from valid frames; the decoder may only answer, never panic.

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use super::{encode_all, pair, raw, samples};
use crate::cluster::frame::PeerCodec;

/// xorshift64*: a fixed sequence, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Decodes until the codec waits or errs, then at end of stream; a panic fails the test.
fn drain(codec: &mut PeerCodec, bytes: &[u8]) {
    let mut buf = BytesMut::from(bytes);
    for _ in 0..64 {
        match codec.decode(&mut buf) {
            Ok(Some(_)) => continue,
            Ok(None) => {
                let _ = codec.decode_eof(&mut buf);
                return;
            }
            Err(_) => return,
        }
    }
}

#[test]
fn mangled_input_never_panics() {
    let frames = samples();
    let encoded: Vec<BytesMut> = frames
        .iter()
        .map(|f| encode_all(&mut PeerCodec::default(), std::slice::from_ref(f)))
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..20_000 {
        let base = &encoded[rng.below(encoded.len())];
        let mut v = base.to_vec();
        match round % 6 {
            // Truncated anywhere.
            0 => v.truncate(rng.below(v.len() + 1)),
            // A few flipped bits.
            1 => {
                for _ in 0..=rng.below(4) {
                    let bit = rng.below(v.len() * 8);
                    v[bit / 8] ^= 1 << (bit % 8);
                }
            }
            // A byte overwritten, the length fixed up so the payload parser sees it.
            2 => {
                let at = 5 + rng.below(v.len().saturating_sub(5));
                if at < v.len() {
                    v[at] = rng.next() as u8;
                }
            }
            // A payload cut or extended, with a consistent length.
            3 => {
                let mut p = v[5..].to_vec();
                if rng.next() & 1 == 0 {
                    p.truncate(rng.below(p.len() + 1));
                } else {
                    p.extend((0..rng.below(8)).map(|_| rng.next() as u8));
                }
                v = raw(v[4], &p);
            }
            // Random bytes after a valid type byte.
            4 => {
                let ty = 1 + rng.below(11) as u8;
                let p: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                v = raw(ty, &p);
            }
            // Two frames spliced at random points.
            _ => {
                let other = &encoded[rng.below(encoded.len())];
                v.truncate(rng.below(v.len() + 1));
                v.extend_from_slice(&other[rng.below(other.len() + 1)..]);
            }
        }
        drain(&mut PeerCodec::default(), &v);
        let (_, mut s) = pair(b"k", b"k");
        drain(&mut s, &v);
    }
}
