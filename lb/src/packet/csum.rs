//! Internet checksums: full computation and verification (RFC 1071) and incremental updates
//! (RFC 1624).
//!
//! Contract:
//! * `ones_sum` folds 16-bit big-endian words (an odd trailing byte is padded with zero) into
//!   a one's complement sum; a checksum is its complement.
//! * [`update16`] / [`update32`] apply RFC 1624 §3, eqn. 3, `HC' = ~(~HC + ~m + m')`, for a
//!   16-bit field (or two consecutive ones) changing from `m` to `m'`. The rewrites use only
//!   these; the full functions exist to build packets and to prove the updates right.
//! * UDP (RFC 768): a checksum field of 0 means "none" and stays 0 through rewrites; a
//!   computed or updated checksum of 0 is sent as `0xffff`.
//! * The verifiers (`ipv4_header_ok`, `l4_ok`, [`frame_ok`]) recompute from scratch.

use super::parse::{parse, Flow, Parsed, PROTO_IPIP, PROTO_TCP, PROTO_UDP};

/// One's complement sum of `bytes` added to `start`, folded to 16 bits.
pub(crate) fn ones_sum(start: u32, bytes: &[u8]) -> u16 {
    let mut sum = u64::from(start);
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    fold(sum)
}

/// Folds carries back into the low 16 bits.
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // Lossless: the loop leaves at most 16 bits.
    sum as u16
}

/// RFC 1624 eqn. 3: the checksum `hc` after a 16-bit word changes from `old` to `new`.
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    let sum = u64::from(!hc) + u64::from(!old) + u64::from(new);
    !fold(sum)
}

/// [`update16`] for a 32-bit field (an IPv4 address): both of its 16-bit words.
pub fn update32(hc: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    let hc = update16(
        hc,
        u16::from_be_bytes([old[0], old[1]]),
        u16::from_be_bytes([new[0], new[1]]),
    );
    update16(
        hc,
        u16::from_be_bytes([old[2], old[3]]),
        u16::from_be_bytes([new[2], new[3]]),
    )
}

/// IPv4 header checksum of `header` (the checksum field, bytes 10..12, counts as zero).
pub fn ipv4_header_checksum(header: &[u8]) -> u16 {
    let mut sum = 0u32;
    for (i, c) in header.chunks(2).enumerate() {
        if i != 5 {
            sum += u32::from(ones_sum(0, c));
        }
    }
    !fold(u64::from(sum))
}

/// TCP/UDP checksum over the IPv4 pseudo-header (RFC 9293 §3.1, RFC 768) and `segment`, with
/// the segment's own checksum field (at `csum_at`) counted as zero. Not UDP-adjusted.
pub fn l4_checksum(src: [u8; 4], dst: [u8; 4], proto: u8, segment: &[u8], csum_at: usize) -> u16 {
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src);
    pseudo[4..8].copy_from_slice(&dst);
    pseudo[9] = proto;
    // Segments come from an IPv4 datagram, so their length fits 16 bits.
    pseudo[10..12].copy_from_slice(&(segment.len() as u16).to_be_bytes());
    let mut sum = u32::from(ones_sum(0, &pseudo));
    let before = segment.get(..csum_at).unwrap_or(segment);
    sum += u32::from(ones_sum(0, before));
    if let Some(after) = segment.get(csum_at + 2..) {
        // `before` has even length (`csum_at` is 6 or 16), so word alignment holds.
        sum += u32::from(ones_sum(0, after));
    }
    !fold(u64::from(sum))
}

/// Offset of the checksum field inside the L4 header.
pub fn l4_csum_offset(proto: u8) -> usize {
    if proto == PROTO_UDP {
        6
    } else {
        16
    }
}

/// Whether the IPv4 header `header` (IHL × 4 bytes) has a valid checksum.
pub(crate) fn ipv4_header_ok(header: &[u8]) -> bool {
    ones_sum(0, header) == 0xffff
}

/// Whether the TCP/UDP checksum of an unfragmented `flow` in `frame` is valid (UDP 0 = none).
pub(crate) fn l4_ok(frame: &[u8], flow: &Flow) -> bool {
    let Some(segment) = frame.get(flow.l4_offset..flow.l3_end) else {
        return false;
    };
    let t = &flow.tuple;
    if t.proto == PROTO_UDP && segment.get(6..8) == Some(&[0, 0]) {
        return true;
    }
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&t.src);
    pseudo[4..8].copy_from_slice(&t.dst);
    pseudo[9] = t.proto;
    pseudo[10..12].copy_from_slice(&(segment.len() as u16).to_be_bytes());
    let sum = u32::from(ones_sum(0, &pseudo)) + u32::from(ones_sum(0, segment));
    fold(u64::from(sum)) == 0xffff
}

/// Why [`frame_ok`] rejected a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsumError {
    /// The frame (or the inner packet of IP-in-IP) is not a whole TCP/UDP datagram.
    NotAFlow,
    /// Bad IPv4 header checksum (outer header for IP-in-IP).
    Ipv4,
    /// Bad inner IPv4 header checksum of IP-in-IP.
    InnerIpv4,
    /// Bad TCP/UDP checksum.
    L4,
}

/// Verifies every checksum of a TCP/UDP frame, or of an IP-in-IP frame (outer header, then the
/// inner datagram, which must be a whole TCP/UDP datagram).
pub fn frame_ok(frame: &[u8]) -> Result<(), CsumError> {
    let (l3, hlen, proto) = match parse(frame) {
        Parsed::Flow(f) => (f.l3_offset, f.l4_offset - f.l3_offset, f.tuple.proto),
        Parsed::OtherProtocol(PROTO_IPIP) => {
            let l3 = if frame.get(12..14) == Some(&[0x81, 0x00]) {
                18
            } else {
                14
            };
            let hlen = usize::from(frame[l3] & 0x0f) * 4;
            (l3, hlen, PROTO_IPIP)
        }
        _ => return Err(CsumError::NotAFlow),
    };
    if !ipv4_header_ok(&frame[l3..l3 + hlen]) {
        return Err(CsumError::Ipv4);
    }
    if proto == PROTO_IPIP {
        // Re-frame the inner datagram behind a plain Ethernet header and check it the same way.
        let mut inner = vec![0u8; 12];
        inner.extend_from_slice(&[0x08, 0x00]);
        let end = l3 + usize::from(u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]));
        inner.extend_from_slice(&frame[l3 + hlen..end]);
        return match frame_ok(&inner) {
            Err(CsumError::Ipv4) => Err(CsumError::InnerIpv4),
            other => other,
        };
    }
    match parse(frame) {
        Parsed::Flow(f) if f.tuple.proto == PROTO_TCP || f.tuple.proto == PROTO_UDP => {
            if l4_ok(frame, &f) {
                Ok(())
            } else {
                Err(CsumError::L4)
            }
        }
        _ => Err(CsumError::NotAFlow),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::testutil::{Rng, Spec};

    #[test]
    fn rfc1071_example_sum() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        assert_eq!(
            ones_sum(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
        assert_eq!(ones_sum(0, &[0xab]), 0xab00);
    }

    #[test]
    fn rfc1624_example_update() {
        // RFC 1624 §4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives HC' = 0x0000.
        assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
        assert_eq!(update16(0x1234, 0xabcd, 0xabcd), 0x1234);
    }

    #[test]
    fn known_ipv4_header_checksum() {
        // Widely used example header: checksum b861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ipv4_header_checksum(&h), 0xb861);
        assert!(ipv4_header_ok(&h));
        let mut bad = h;
        bad[8] = 0x3f;
        assert!(!ipv4_header_ok(&bad));
    }

    #[test]
    fn builder_checksums_match_etherparse() {
        let mut rng = Rng(7);
        for i in 0..200 {
            let mut s = if i % 2 == 0 {
                Spec::tcp(rng.next() as u16, 80)
            } else {
                Spec::udp(rng.next() as u16, 53)
            };
            let n = rng.below(40) as usize;
            s.payload = rng.bytes(n);
            s.options = vec![1; 4 * rng.below(3) as usize];
            let f = s.build();
            assert_eq!(frame_ok(&f), Ok(()));
            let p = match etherparse::SlicedPacket::from_ethernet(&f) {
                Ok(p) => p,
                Err(e) => panic!("etherparse: {e:?}"),
            };
            let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
                panic!("no ipv4");
            };
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum());
            match &p.transport {
                Some(etherparse::TransportSlice::Tcp(t)) => {
                    let want = t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap();
                    assert_eq!(t.checksum(), want);
                }
                Some(etherparse::TransportSlice::Udp(u)) => {
                    let want = u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap();
                    assert_eq!(u.checksum(), want);
                }
                other => panic!("transport {other:?}"),
            }
        }
    }

    #[test]
    fn verifier_rejects_each_corruption() {
        let f = Spec::tcp(1000, 80).build();
        assert_eq!(frame_ok(&f), Ok(()));
        let mut bad_ip = f.clone();
        bad_ip[22] ^= 1;
        assert_eq!(frame_ok(&bad_ip), Err(CsumError::Ipv4));
        let mut bad_l4 = f.clone();
        bad_l4[f.len() - 1] ^= 1;
        assert_eq!(frame_ok(&bad_l4), Err(CsumError::L4));
        assert_eq!(frame_ok(&f[..20]), Err(CsumError::NotAFlow));
        let mut none = Spec::udp(1, 2);
        none.udp_no_csum = true;
        assert_eq!(frame_ok(&none.build()), Ok(()));
    }

    #[test]
    fn incremental_update_equals_recomputation() {
        let mut rng = Rng(99);
        for _ in 0..500 {
            let mut h = rng.bytes(20);
            h[0] = 0x45;
            let c = ipv4_header_checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            let new = [
                rng.next() as u8,
                rng.next() as u8,
                rng.next() as u8,
                rng.next() as u8,
            ];
            let old = [h[16], h[17], h[18], h[19]];
            let inc = update32(c, old, new);
            h[16..20].copy_from_slice(&new);
            assert!(ipv4_header_ok(&{
                let mut x = h.clone();
                x[10..12].copy_from_slice(&inc.to_be_bytes());
                x
            }));
            // Equal as one's complement numbers (0x0000 and 0xffff both denote zero).
            let full = ipv4_header_checksum(&h);
            assert!(
                inc == full || (inc | full == 0xffff && inc & full == 0),
                "{inc:x} {full:x}"
            );
        }
    }
}
