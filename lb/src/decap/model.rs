//! The reference model of `ebpf/decap.bpf.c`: what the program does to one frame.
//!
//! Contract: [`decapsulate`] returns `Some(frame without its outer IPv4 header)` exactly when
//! the program decapsulates (XDP_PASS with new bytes), and `None` when it passes the frame
//! unmodified. The acceptance rules are the program's (see its header comment): Ethernet with
//! at most one 802.1Q tag, EtherType IPv4; outer header version 4, IHL >= 5, inside the frame,
//! valid checksum (RFC 1071), total length within the frame and >= IHL*4, not a fragment,
//! protocol 4 (RFC 2003); inner header version 4, IHL >= 5, its fixed 20 bytes inside the
//! outer datagram, destination one of `vips`. The output is the L2 header unchanged followed
//! by everything after the outer header (trailing Ethernet padding included).

use std::net::Ipv4Addr;

use crate::packet::csum::ipv4_header_ok;

/// Ethernet header length.
const ETH_HLEN: usize = 14;
/// 802.1Q tag length.
const VLAN_HLEN: usize = 4;
/// 802.1Q TPID.
const ETH_P_8021Q: u16 = 0x8100;
/// IPv4 EtherType.
const ETH_P_IP: u16 = 0x0800;
/// IP-in-IP protocol number (RFC 2003).
pub const PROTO_IPIP: u8 = 4;
/// Fixed IPv4 header length.
const IP_HLEN: usize = 20;

/// The frame after the decapsulation program, or `None` when it passes it unchanged.
pub fn decapsulate(frame: &[u8], vips: &[Ipv4Addr]) -> Option<Vec<u8>> {
    let hlen = accept(frame, vips)?;
    let l3 = l3_offset(frame)?;
    let mut out = Vec::with_capacity(frame.len() - hlen);
    out.extend_from_slice(&frame[..l3]);
    out.extend_from_slice(&frame[l3 + hlen..]);
    Some(out)
}

/// Offset of the IPv4 header when the frame is IPv4 (with at most one VLAN tag).
fn l3_offset(frame: &[u8]) -> Option<usize> {
    let be16 = |at: usize| Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]));
    let mut ethertype = be16(12)?;
    let mut l3 = ETH_HLEN;
    if ethertype == ETH_P_8021Q {
        ethertype = be16(ETH_HLEN + 2)?;
        l3 += VLAN_HLEN;
    }
    (ethertype == ETH_P_IP).then_some(l3)
}

/// The outer header length of a frame the program decapsulates.
fn accept(frame: &[u8], vips: &[Ipv4Addr]) -> Option<usize> {
    let l3 = l3_offset(frame)?;
    let outer = frame.get(l3..l3 + IP_HLEN)?;
    if outer[0] >> 4 != 4 || outer[9] != PROTO_IPIP {
        return None;
    }
    let hlen = usize::from(outer[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([outer[2], outer[3]]));
    if hlen < IP_HLEN || l3 + hlen > frame.len() {
        return None;
    }
    if total < hlen || l3 + total > frame.len() {
        return None;
    }
    let frag = u16::from_be_bytes([outer[6], outer[7]]);
    if frag & 0x3fff != 0 {
        return None;
    }
    if !ipv4_header_ok(&frame[l3..l3 + hlen]) {
        return None;
    }
    if total - hlen < IP_HLEN {
        return None;
    }
    let inner = &frame[l3 + hlen..l3 + hlen + IP_HLEN];
    if inner[0] >> 4 != 4 || inner[0] & 0x0f < 5 {
        return None;
    }
    let dst = Ipv4Addr::new(inner[16], inner[17], inner[18], inner[19]);
    vips.contains(&dst).then_some(hlen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::csum::ipv4_header_checksum;

    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

    /// An IPv4 header of `ihl` words, protocol `proto`, `payload` bytes after it.
    fn ipv4(ihl: u8, proto: u8, src: [u8; 4], dst: [u8; 4], payload: usize) -> Vec<u8> {
        let hlen = usize::from(ihl) * 4;
        let total = u16::try_from(hlen + payload).unwrap();
        let mut h = vec![0u8; hlen];
        h[0] = 0x40 | ihl;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[6] = 0x40;
        h[8] = 64;
        h[9] = proto;
        h[12..16].copy_from_slice(&src);
        h[16..20].copy_from_slice(&dst);
        for (i, b) in h[20..].iter_mut().enumerate() {
            *b = if i == 0 { 1 } else { 0 }; // NOP then EOL options
        }
        let c = ipv4_header_checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h
    }

    /// Ethernet (optionally tagged) + outer (IHL `ihl`) + inner TCP-ish datagram to `dst`.
    fn ipip(vlan: bool, ihl: u8, dst: [u8; 4]) -> Vec<u8> {
        let mut inner = ipv4(5, 6, [192, 168, 1, 7], dst, 20);
        inner.extend_from_slice(&[0xab; 20]);
        let outer = ipv4(ihl, PROTO_IPIP, [10, 0, 0, 2], [10, 0, 0, 11], inner.len());
        let mut f = vec![0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0xd1];
        if vlan {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&outer);
        f.extend_from_slice(&inner);
        f
    }

    #[test]
    fn ipip_to_a_vip_loses_exactly_its_outer_header() {
        for (vlan, ihl) in [(false, 5), (true, 5), (false, 15), (true, 6)] {
            let frame = ipip(vlan, ihl, VIP.octets());
            let l3 = if vlan { 18 } else { 14 };
            let hlen = usize::from(ihl) * 4;
            let out = decapsulate(&frame, &[VIP]).unwrap();
            assert_eq!(out.len(), frame.len() - hlen);
            assert_eq!(out[..l3], frame[..l3]);
            assert_eq!(out[l3..], frame[l3 + hlen..]);
        }
    }

    #[test]
    fn trailing_padding_stays_at_the_end() {
        let mut frame = ipip(false, 5, VIP.octets());
        frame.extend_from_slice(&[0; 6]);
        let out = decapsulate(&frame, &[VIP]).unwrap();
        assert_eq!(out.len(), frame.len() - 20);
        assert!(out.ends_with(&[0; 6]));
    }

    #[test]
    fn other_destinations_and_protocols_pass_unchanged() {
        assert_eq!(decapsulate(&ipip(false, 5, [10, 0, 0, 101]), &[VIP]), None);
        assert_eq!(decapsulate(&ipip(false, 5, VIP.octets()), &[]), None);
        let mut not_ipip = ipip(false, 5, VIP.octets());
        not_ipip[14 + 9] = 6;
        let c = ipv4_header_checksum(&not_ipip[14..34]);
        not_ipip[24..26].copy_from_slice(&c.to_be_bytes());
        assert_eq!(decapsulate(&not_ipip, &[VIP]), None);
        let mut arp = ipip(false, 5, VIP.octets());
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(decapsulate(&arp, &[VIP]), None);
    }

    #[test]
    fn malformed_truncated_and_fragmented_frames_pass() {
        let good = ipip(false, 5, VIP.octets());
        for cut in [0, 13, 14, 33, 34, 53] {
            assert_eq!(decapsulate(&good[..cut], &[VIP]), None, "cut at {cut}");
        }
        let mut bad_sum = good.clone();
        bad_sum[14 + 10] ^= 1;
        assert_eq!(decapsulate(&bad_sum, &[VIP]), None);
        let mut fragment = ipip(false, 5, VIP.octets());
        fragment[14 + 6] = 0x20; // MF, and the checksum fixed below
        fragment[24..26].fill(0);
        let c = ipv4_header_checksum(&fragment[14..34]);
        fragment[24..26].copy_from_slice(&c.to_be_bytes());
        assert_eq!(decapsulate(&fragment, &[VIP]), None);
        let mut bad_inner = good.clone();
        bad_inner[34] = 0x44; // inner IHL 4
        assert_eq!(decapsulate(&bad_inner, &[VIP]), None);
        let mut long = good;
        long[14 + 3] = long[14 + 3].wrapping_add(1); // total length beyond the frame
        let c = {
            long[24..26].fill(0);
            ipv4_header_checksum(&long[14..34])
        };
        long[24..26].copy_from_slice(&c.to_be_bytes());
        assert_eq!(decapsulate(&long, &[VIP]), None);
    }
}
