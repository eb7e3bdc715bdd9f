//! ICMP errors the director sends instead of forwarding: "fragmentation needed" (path MTU of
//! TUN forwards) and "time exceeded" (NAT forwards and replies whose TTL runs out).
//!
//! Contract (the C twin is `ebpf/lib/icmp.h`):
//! * `over_mtu`: a TUN datagram is too big when `mtu != 0` and its inner total length + 20
//!   (the outer header of `super::rewrite::encapsulate`) exceeds `mtu`, the MTU of the
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
//!   fragment, and a sender that leaves DF clear does no path-MTU discovery anyway.
//! * `reply` builds both: the same bytes with the ICMP type and code, the second word
//!   (`rest`) and the IPv4 source as parameters.
//! * `time_exceeded`: ICMP type 11 "time exceeded", code 0 "time to live exceeded in
//!   transit" (RFC 792), second word 0, same Ethernet, IPv4 and quoted payload as
//!   [`frag_needed`] (the quoted header is the datagram as received, TTL included), but the
//!   IPv4 source is the address of the interface the frame arrived on and the reply leaves by
//!   (RFC 1812 §4.3.2.4), not the VIP: NAT forwards (client side) `Director::ip` from
//!   `Director::mac`, NAT replies (inner side) `Director::nat_ip` from `Director::nat_mac`.
//! * `ttl_expired`: NAT makes the director the backends' router, so it forwards as a router
//!   does (RFC 1812 §5.3.1, the kernel's `ip_forward`, which nftables DNAT goes through): a
//!   frame arriving with TTL <= 1 is not forwarded but answered with `time_exceeded`
//!   (`Action::TimeExceeded`, `XDP_TX`); any other is forwarded with its TTL decremented
//!   (`rewrite::nat_destination` / `nat_source`). `process` checks it after `decide`
//!   scheduled and recorded the flow (as the MTU check: a later packet with a normal TTL
//!   follows the recorded backend) and before the next-hop lookup (the reply needs none).
//!   DR forwards on the same link (L2 only, not a hop) and TUN sends a new outer header with
//!   TTL 64 (the inner datagram is the backend's to route): neither touches the TTL.
//! * `routed_over_mtu`: a NAT datagram keeps its size, so it is too big when `mtu != 0` and
//!   its total length exceeds `mtu`, the MTU of the interface it leaves by: forwards the inner
//!   interface's (`Director::nat_mtu`), replies the client-facing one's (`Director::mtu`).
//!   `process` checks it after the TTL (a router's order: the kernel's `ip_forward` too) and
//!   before the next-hop lookup: DF set, [`frag_needed_routed`] (`Action::TooBig`), DF clear,
//!   dropped (`DropReason::TooBig`; a router would fragment, XDP cannot).
//! * [`frag_needed_routed`]: the "fragmentation needed" of [`frag_needed`] as a router sends
//!   it (RFC 1812 §4.3.2.4, §5.2.7.1): from the interface the frame arrived on, as
//!   `time_exceeded` (forwards `Director::mac`/`ip`, replies `nat_mac`/`nat_ip`), next-hop
//!   MTU = the egress MTU itself (no header is added), at most 65535.
//! * DR leaves by the interface it arrived on with the frame's size: nothing to check.

use super::csum::{ipv4_header_checksum, ones_sum};
use super::parse::{Flow, IPV4_MIN_HLEN};

/// TTL of the ICMP reply.
pub(crate) const ICMP_TTL: u8 = 64;
/// IP protocol number of ICMP.
pub(crate) const PROTO_ICMP: u8 = 1;
/// ICMP type "destination unreachable".
pub(crate) const ICMP_DEST_UNREACH: u8 = 3;
/// Its code "fragmentation needed and DF set".
pub(crate) const ICMP_FRAG_NEEDED: u8 = 4;
/// ICMP type "time exceeded".
pub(crate) const ICMP_TIME_EXCEEDED: u8 = 11;
/// Its code "time to live exceeded in transit".
pub(crate) const ICMP_TTL_EXCEEDED: u8 = 0;
/// Bytes of the original datagram's payload quoted after its header (RFC 792).
pub(crate) const QUOTED_PAYLOAD: usize = 8;

/// Whether the TUN encapsulation of `flow` exceeds `mtu` (see the module doc).
pub(crate) fn over_mtu(flow: &Flow, mtu: u32) -> bool {
    let encapsulated = flow.l3_end - flow.l3_offset + IPV4_MIN_HLEN;
    mtu != 0 && u64::try_from(encapsulated).unwrap_or(u64::MAX) > u64::from(mtu)
}

/// The ICMP "fragmentation needed" reply to `frame` (see the module doc), from `smac`.
pub fn frag_needed(frame: &[u8], flow: &Flow, smac: [u8; 6], mtu: u32) -> Vec<u8> {
    let next_hop = u16::try_from(mtu.saturating_sub(20)).unwrap_or(u16::MAX);
    reply(
        frame,
        flow,
        smac,
        flow.tuple.dst,
        [ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED],
        u32::from(next_hop),
    )
}

/// The ICMP "time exceeded in transit" reply to `frame` (see the module doc): from `smac`
/// and `saddr`, the MAC and address of the interface the frame arrived on (and the reply
/// leaves by).
pub(crate) fn time_exceeded(frame: &[u8], flow: &Flow, smac: [u8; 6], saddr: [u8; 4]) -> Vec<u8> {
    reply(
        frame,
        flow,
        smac,
        saddr,
        [ICMP_TIME_EXCEEDED, ICMP_TTL_EXCEEDED],
        0,
    )
}

/// Whether a routed (NAT) datagram, its size unchanged, exceeds the MTU `mtu` of the
/// interface it leaves by (see the module doc).
pub(crate) fn routed_over_mtu(flow: &Flow, mtu: u32) -> bool {
    let len = flow.l3_end - flow.l3_offset;
    mtu != 0 && u64::try_from(len).unwrap_or(u64::MAX) > u64::from(mtu)
}

/// The ICMP "fragmentation needed" a router sends for a datagram over its egress MTU `mtu`:
/// from `smac` and `saddr`, the interface the frame arrived on, next-hop MTU = `mtu` (see
/// the module doc).
pub fn frag_needed_routed(
    frame: &[u8],
    flow: &Flow,
    smac: [u8; 6],
    saddr: [u8; 4],
    mtu: u32,
) -> Vec<u8> {
    let next_hop = u16::try_from(mtu).unwrap_or(u16::MAX);
    reply(
        frame,
        flow,
        smac,
        saddr,
        [ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED],
        u32::from(next_hop),
    )
}

/// Whether a NAT frame is not forwarded for its TTL (see the module doc).
pub(crate) fn ttl_expired(flow: &Flow) -> bool {
    flow.ttl <= 1
}

/// The ICMP error `kind` (type, code) with second word `rest` answering `frame`: back to its
/// source MAC and address, from `smac` and `saddr` (see the module doc).
pub(crate) fn reply(
    frame: &[u8],
    flow: &Flow,
    smac: [u8; 6],
    saddr: [u8; 4],
    kind: [u8; 2],
    rest: u32,
) -> Vec<u8> {
    let l2 = flow.l3_offset;
    let quoted = &frame[l2..flow.l4_offset + QUOTED_PAYLOAD];
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
    ip[12..16].copy_from_slice(&saddr);
    ip[16..20].copy_from_slice(&flow.tuple.src);
    let c = ipv4_header_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    out.extend_from_slice(&ip);
    let icmp = out.len();
    out.extend_from_slice(&[kind[0], kind[1], 0, 0]);
    out.extend_from_slice(&rest.to_be_bytes());
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
    fn time_exceeded_is_type_11_code_0_from_the_given_address() {
        let mut s = Spec::udp(5000, 82);
        s.ttl = 1;
        s.vlan = Some(7);
        s.options = vec![1; 12];
        s.payload = vec![3; 40];
        s.padding = 4;
        let inp = s.build();
        let f = flow(&inp);
        let from = [10, 0, 1, 254];
        let out = time_exceeded(&inp, &f, DIRECTOR.nat_mac, from);
        let quoted = 32 + 8;
        assert_eq!(out.len(), 18 + 28 + quoted);
        assert_eq!(out[0..6], inp[6..12]);
        assert_eq!(out[6..12], DIRECTOR.nat_mac);
        assert_eq!(out[12..18], inp[12..18], "VLAN tag and EtherType");
        assert!(sums_to_ffff(&out[18..38]), "IPv4 header checksum");
        assert!(sums_to_ffff(&out[38..]), "ICMP checksum");
        assert_eq!(out[38..46], [11, 0, out[40], out[41], 0, 0, 0, 0]);
        assert_eq!(
            out[46..],
            inp[18..18 + quoted],
            "as received, TTL 1 included"
        );
        let p = SlicedPacket::from_ethernet(&out).unwrap();
        let Some(NetSlice::Ipv4(ip)) = p.net else {
            panic!("{:?}", p.net);
        };
        let h = ip.header();
        assert_eq!((h.source(), h.destination()), (from, CLIENT));
        assert_eq!((h.ttl(), h.protocol().0, h.identification()), (64, 1, 0));
        let Some(TransportSlice::Icmpv4(icmp)) = p.transport else {
            panic!("{:?}", p.transport);
        };
        assert_eq!(
            icmp.icmp_type(),
            Icmpv4Type::TimeExceeded(etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit)
        );
        assert_eq!(
            icmp.checksum(),
            icmp.icmp_type().calc_checksum(icmp.payload())
        );
        assert!(ttl_expired(&f));
        s.ttl = 0;
        assert!(ttl_expired(&flow(&s.build())));
        s.ttl = 2;
        assert!(!ttl_expired(&flow(&s.build())));
    }

    #[test]
    fn frag_needed_is_the_generic_reply_from_the_vip() {
        let inp = Spec::tcp(40000, 81).build();
        let f = flow(&inp);
        let out = frag_needed(&inp, &f, DIRECTOR.mac, 1500);
        let generic = reply(&inp, &f, DIRECTOR.mac, VIP, [3, 4], 1480);
        assert_eq!(out, generic);
        assert_eq!(out[26..30], VIP);
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
