//! Path MTU of TUN forwards: the too-big test and the ICMP "fragmentation needed" reply.
//!
//! Contract (the C twin is `ebpf/lib/icmp.h`):
//! * [`over_mtu`]: a TUN datagram is too big when `mtu != 0` and its inner total length + 20
//!   (the outer header of [`super::rewrite::encapsulate`]) exceeds `mtu`, the MTU of the
//!   client-facing interface the encapsulated frame leaves through (`XDP_TX`). `mtu == 0`
//!   disables the check.
//! * [`frag_needed`]: the ICMP destination unreachable, code 4 "fragmentation needed and DF
//!   set" (RFC 792; RFC 1191 §4: next-hop MTU = `mtu - 20`, saturating at 0, in the low 16
//!   bits of the second word, the high 16 bits 0) answering the frame: Ethernet destination =
//!   the frame's source MAC, source = the director's, the VLAN tag (if any) and EtherType
//!   kept; IPv4 version 4, IHL 5, TOS 0, total length, ID 0, no flags, offset 0, TTL 64,
//!   protocol 1, source = the frame's destination (the VIP), destination = its source (the
//!   client), full header checksum (RFC 1071); ICMP payload = the original IPv4 header,
//!   options included, and the first 8 bytes of its payload (RFC 792; a [`Flow`] always has
//!   them: parse checks the fixed TCP or UDP header); ICMP checksum over the whole ICMP
//!   message. Nothing follows (no Ethernet padding; the XDP program shrinks the frame).
//! * `process` decides which applies, after `decide` scheduled and recorded the flow: DF set,
//!   [`frag_needed`] (`Action::TooBig`); DF clear, dropped (`DropReason::TooBig`): XDP cannot
//!   fragment, and a sender that leaves DF clear does no path-MTU discovery anyway. DR and
//!   NAT keep the frame's size and are not checked.

use super::csum::{ipv4_header_checksum, ones_sum};
use super::parse::{Flow, IPV4_MIN_HLEN};

/// TTL of the ICMP reply.
pub const ICMP_TTL: u8 = 64;
/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// ICMP type "destination unreachable".
pub const ICMP_DEST_UNREACH: u8 = 3;
/// Its code "fragmentation needed and DF set".
pub const ICMP_FRAG_NEEDED: u8 = 4;
/// Bytes of the original datagram's payload quoted after its header (RFC 792).
pub const QUOTED_PAYLOAD: usize = 8;

/// Whether the TUN encapsulation of `flow` exceeds `mtu` (see the module doc).
pub fn over_mtu(flow: &Flow, mtu: u32) -> bool {
    let encapsulated = flow.l3_end - flow.l3_offset + IPV4_MIN_HLEN;
    mtu != 0 && u64::try_from(encapsulated).unwrap_or(u64::MAX) > u64::from(mtu)
}

/// The ICMP "fragmentation needed" reply to `frame` (see the module doc), from `smac`.
pub fn frag_needed(frame: &[u8], flow: &Flow, smac: [u8; 6], mtu: u32) -> Vec<u8> {
    let l2 = flow.l3_offset;
    let quoted = &frame[l2..flow.l4_offset + QUOTED_PAYLOAD];
    let next_hop = u16::try_from(mtu.saturating_sub(20)).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(l2 + 28 + quoted.len());
    out.extend_from_slice(&frame[6..12]);
    out.extend_from_slice(&smac);
    out.extend_from_slice(&frame[12..l2]);
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    // At most 28 + 60 + 8 bytes.
    ip[2..4].copy_from_slice(&((28 + quoted.len()) as u16).to_be_bytes());
    ip[8] = ICMP_TTL;
    ip[9] = PROTO_ICMP;
    ip[12..16].copy_from_slice(&flow.tuple.dst);
    ip[16..20].copy_from_slice(&flow.tuple.src);
    let c = ipv4_header_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    out.extend_from_slice(&ip);
    let icmp = out.len();
    out.extend_from_slice(&[ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 0, 0, 0, 0]);
    out.extend_from_slice(&next_hop.to_be_bytes());
    out.extend_from_slice(quoted);
    let c = !ones_sum(0, &out[icmp..]);
    out[icmp + 2..icmp + 4].copy_from_slice(&c.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::parse::{parse, Parsed};
    use crate::packet::testutil::{Spec, CLIENT, DIRECTOR, VIP};
    use etherparse::{Icmpv4Type, NetSlice, SlicedPacket, TransportSlice};

    fn flow(frame: &[u8]) -> Flow {
        match parse(frame) {
            Parsed::Flow(f) => f,
            other => panic!("{other:?}"),
        }
    }

    /// RFC 1071 recomputed independently: the 16-bit one's complement sum of a region that
    /// holds its own checksum is 0xffff.
    fn sums_to_ffff(bytes: &[u8]) -> bool {
        let mut sum: u32 = 0;
        for c in bytes.chunks(2) {
            let hi = u32::from(c[0]) << 8;
            let lo = c.get(1).map_or(0, |&b| u32::from(b));
            sum += hi | lo;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum == 0xffff
    }

    #[test]
    fn the_mtu_check_counts_the_outer_header() {
        let mut s = Spec::udp(1, 81);
        s.payload = vec![7; 100];
        let f = flow(&s.build());
        let encapsulated = 20 + 8 + 100 + 20;
        assert!(!over_mtu(&f, encapsulated));
        assert!(over_mtu(&f, encapsulated - 1));
        assert!(!over_mtu(&f, 0), "0 disables the check");
    }

    #[test]
    fn reply_quotes_the_header_and_8_bytes() {
        let mut s = Spec::tcp(40000, 81);
        s.payload = vec![0xaa; 300];
        s.padding = 6;
        let inp = s.build();
        let out = frag_needed(&inp, &flow(&inp), DIRECTOR.mac, 600);
        assert_eq!(out.len(), 14 + 20 + 8 + 20 + 8);
        // Ethernet: back to the sender, from the director.
        assert_eq!(out[0..6], inp[6..12]);
        assert_eq!(out[6..12], DIRECTOR.mac);
        assert_eq!(out[12..14], [0x08, 0x00]);
        // IPv4: checked field by field, then parsed by etherparse.
        assert_eq!(out[14..20], [0x45, 0, 0, 56, 0, 0]);
        assert_eq!(out[20..24], [0, 0, 64, 1]);
        assert!(sums_to_ffff(&out[14..34]), "IPv4 header checksum");
        assert!(sums_to_ffff(&out[34..]), "ICMP checksum");
        assert_eq!(out[34..42], [3, 4, out[36], out[37], 0, 0, 0x02, 0x44]);
        assert_eq!(out[42..], inp[14..14 + 28]);
        let p = SlicedPacket::from_ethernet(&out).unwrap();
        let Some(NetSlice::Ipv4(ip)) = p.net else {
            panic!("{:?}", p.net);
        };
        let h = ip.header();
        assert_eq!((h.source(), h.destination()), (VIP, CLIENT));
        assert_eq!((h.ttl(), h.protocol().0, h.identification()), (64, 1, 0));
        assert!(!h.dont_fragment() && !h.more_fragments());
        assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
        let Some(TransportSlice::Icmpv4(icmp)) = p.transport else {
            panic!("{:?}", p.transport);
        };
        assert_eq!(
            icmp.icmp_type(),
            Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded {
                    next_hop_mtu: 580
                }
            )
        );
        assert_eq!(
            icmp.checksum(),
            icmp.icmp_type().calc_checksum(icmp.payload())
        );
        assert_eq!(icmp.payload(), &inp[14..14 + 28]);
    }

    #[test]
    fn vlan_tag_and_ip_options_are_kept() {
        let mut s = Spec::udp(5000, 81);
        s.vlan = Some(42);
        s.options = vec![1, 1, 1, 1, 0x94, 4, 0, 0];
        s.payload = vec![9; 50];
        let inp = s.build();
        let out = frag_needed(&inp, &flow(&inp), DIRECTOR.mac, 1500);
        let quoted = 20 + 8 + 8; // header with 8 bytes of options, 8 bytes
        assert_eq!(out.len(), 18 + 28 + quoted);
        assert_eq!(out[12..18], inp[12..18], "VLAN tag and EtherType");
        assert_eq!(out[18 + 2..18 + 4], ((28 + quoted) as u16).to_be_bytes());
        assert_eq!(
            out[18 + 28..],
            inp[18..18 + quoted],
            "header, options, 8 bytes"
        );
        assert!(sums_to_ffff(&out[18..38]));
        assert!(sums_to_ffff(&out[38..]));
        assert_eq!(out[44..46], 1480u16.to_be_bytes());
        let p = SlicedPacket::from_ethernet(&out).unwrap();
        assert!(matches!(p.transport, Some(TransportSlice::Icmpv4(_))));
        // A tiny MTU saturates the next-hop field at 0.
        let out = frag_needed(&inp, &flow(&inp), DIRECTOR.mac, 10);
        assert_eq!(out[44..46], [0, 0]);
        assert!(sums_to_ffff(&out[38..]));
    }
}
