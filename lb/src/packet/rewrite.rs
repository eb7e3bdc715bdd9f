//! Output bytes per forwarding mode (DR, TUN, NAT), computed from the input frame.
//!
//! Contract (all functions take a frame already classified by `parse`, with its [`Flow`]):
//! * `rewrite_macs` (DR, and the L2 part of TUN and NAT forward): destination MAC := the
//!   backend's (or next hop's), source MAC := the director's interface MAC; nothing else.
//! * `encapsulate` (TUN, RFC 2003 §3.1): inserts a 20-byte outer IPv4 header between the L2
//!   header (Ethernet and its VLAN tag, kept) and the inner datagram: version 4, IHL 5, TOS and
//!   identification copied from the inner header, DF copied from the inner header, MF and
//!   offset 0, TTL 64, protocol 4, source = director IP, destination = backend IP, total
//!   length = 20 + inner total length, full header checksum. Bytes after the inner datagram
//!   (Ethernet padding) stay at the end, as `bpf_xdp_adjust_head` leaves them.
//! * `nat_destination` / `nat_source` (NAT forward / reply): set the destination (source)
//!   address and port, updating the IPv4 header checksum and the TCP/UDP checksum
//!   incrementally (RFC 1624 eqn. 3; the address is part of the L4 pseudo-header). A UDP
//!   checksum of 0 stays 0; an updated UDP checksum of 0 is written as `0xffff` (RFC 768).
//!   Both also decrement the TTL by one (the director is the backends' router in NAT mode,
//!   as the kernel's forwarding path behind nftables DNAT), updating the IPv4 header checksum
//!   incrementally for the TTL/protocol word (TTL the high byte) before the address; the
//!   caller has checked TTL > 1 (`process` answers TTL <= 1 with ICMP time exceeded,
//!   [`super::icmp`]). DR (L2 only) and TUN (the outer header has its own TTL 64) leave the
//!   TTL alone.
//!   NAT replies keep their MACs: the datapath fills them from its route lookup.

use super::csum::{l4_csum_offset, update16, update32};
use super::parse::{be16, Flow, PROTO_IPIP, PROTO_UDP};

/// TTL of the outer IP-in-IP header.
pub(crate) const TUN_TTL: u8 = 64;

/// The director's own addresses on the interface it transmits from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Director {
    /// Interface MAC (source MAC of forwarded frames).
    pub mac: [u8; 6],
    /// Interface IPv4 address (outer source of IP-in-IP).
    pub ip: [u8; 4],
    /// Interface MTU: the limit of an encapsulated TUN frame ([`super::icmp`]); 0: none.
    pub mtu: u32,
    /// MAC of the inner interface (towards the backends, NAT): source MAC of the ICMP "time
    /// exceeded" answering a NAT reply (`super::icmp::time_exceeded`).
    pub nat_mac: [u8; 6],
    /// IPv4 address of the inner interface: source address of that ICMP.
    pub nat_ip: [u8; 4],
    /// MTU of the inner interface: the limit of a NAT forward ([`super::icmp`]); 0: none.
    pub nat_mtu: u32,
}

/// DR: destination MAC := `dst`, source MAC := `src`. Frames shorter than 12 bytes are left
/// as they are (parse never yields a flow for them).
pub(crate) fn rewrite_macs(frame: &mut [u8], dst: [u8; 6], src: [u8; 6]) {
    if let Some(h) = frame.get_mut(0..12) {
        h[0..6].copy_from_slice(&dst);
        h[6..12].copy_from_slice(&src);
    }
}

/// TUN: the frame with an outer IPv4 header towards `backend_ip` (see the module doc).
///
/// The caller guarantees the result fits (`decide` drops datagrams longer than 65515 bytes).
pub(crate) fn encapsulate(
    frame: &[u8],
    flow: &Flow,
    director: &Director,
    backend_ip: [u8; 4],
) -> Vec<u8> {
    let l3 = flow.l3_offset;
    let inner_len = flow.l3_end - l3;
    let mut out = Vec::with_capacity(frame.len() + 20);
    out.extend_from_slice(&frame[..l3]);
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[1] = frame[l3 + 1];
    // Truncates only if the caller broke the guarantee above.
    h[2..4].copy_from_slice(&((inner_len + 20) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&frame[l3 + 4..l3 + 6]);
    h[6] = if flow.dont_fragment { 0x40 } else { 0 };
    h[8] = TUN_TTL;
    h[9] = PROTO_IPIP;
    h[12..16].copy_from_slice(&director.ip);
    h[16..20].copy_from_slice(&backend_ip);
    let c = super::csum::ipv4_header_checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&frame[l3..]);
    out
}

/// Which end of the flow a NAT rewrite changes.
#[derive(Clone, Copy)]
enum End {
    Source,
    Destination,
}

/// NAT forward: destination address and port := `ip`, `port`, checksums updated.
pub(crate) fn nat_destination(frame: &mut [u8], flow: &Flow, ip: [u8; 4], port: u16) {
    nat(frame, flow, End::Destination, ip, port);
}

/// NAT reply: source address and port := `ip`, `port`, checksums updated.
pub(crate) fn nat_source(frame: &mut [u8], flow: &Flow, ip: [u8; 4], port: u16) {
    nat(frame, flow, End::Source, ip, port);
}

fn nat(frame: &mut [u8], flow: &Flow, end: End, ip: [u8; 4], port: u16) {
    let l3 = flow.l3_offset;
    let l4 = flow.l4_offset;
    let (addr_at, port_at) = match end {
        End::Source => (l3 + 12, l4),
        End::Destination => (l3 + 16, l4 + 2),
    };
    let csum_at = l4 + l4_csum_offset(flow.tuple.proto);
    if frame.len() < csum_at + 2 || frame.len() < addr_at + 4 {
        return;
    }
    let old_ip = super::parse::addr(frame, addr_at);
    let old_port = be16(frame, port_at);

    // TTL first: the high byte of the TTL/protocol word (the caller checked TTL > 1).
    let old_ttl_proto = be16(frame, l3 + 8);
    frame[l3 + 8] = frame[l3 + 8].wrapping_sub(1);
    let hc = update16(be16(frame, l3 + 10), old_ttl_proto, be16(frame, l3 + 8));
    let hc = update32(hc, old_ip, ip);
    frame[l3 + 10..l3 + 12].copy_from_slice(&hc.to_be_bytes());

    let lc = be16(frame, csum_at);
    let udp = flow.tuple.proto == PROTO_UDP;
    if !(udp && lc == 0) {
        let mut lc = update16(update32(lc, old_ip, ip), old_port, port);
        if udp && lc == 0 {
            lc = 0xffff;
        }
        frame[csum_at..csum_at + 2].copy_from_slice(&lc.to_be_bytes());
    }
    frame[addr_at..addr_at + 4].copy_from_slice(&ip);
    frame[port_at..port_at + 2].copy_from_slice(&port.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::csum::frame_ok;
    use crate::packet::parse::{parse, Parsed};
    use crate::packet::testutil::{backend, Spec, DIRECTOR, VIP};

    // Hand-built frames; expected outputs computed by an independent script (full checksums).
    /// TCP 192.168.1.10:40000 -> 10.0.0.100:80, DF, id 0x1234, payload "hi".
    const TCP_IN: [u8; 56] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0xd1, 0x02, 0x00, 0x00, 0x00, 0x00, 0xc1, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x2a, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x5c, 0x84, 0xc0, 0xa8, 0x01, 0x0a,
        0x0a, 0x00, 0x00, 0x64, 0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x50, 0x18, 0xff, 0xff, 0xde, 0xb9, 0x00, 0x00, 0x68, 0x69,
    ];

    /// DR to 10.0.1.2 (MAC 02:00:00:00:01:02) from director MAC 02:00:00:00:00:d1.
    const DR_OUT: [u8; 56] = [
        0x02, 0x00, 0x00, 0x00, 0x01, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0xd1, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x2a, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x5c, 0x84, 0xc0, 0xa8, 0x01, 0x0a,
        0x0a, 0x00, 0x00, 0x64, 0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x50, 0x18, 0xff, 0xff, 0xde, 0xb9, 0x00, 0x00, 0x68, 0x69,
    ];

    /// TUN: outer 10.0.0.2 -> 10.0.1.2, TTL 64, DF, id copied, protocol 4.
    const TUN_OUT: [u8; 76] = [
        0x02, 0x00, 0x00, 0x00, 0x01, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0xd1, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x3e, 0x12, 0x34, 0x40, 0x00, 0x40, 0x04, 0x13, 0x85, 0x0a, 0x00, 0x00, 0x02,
        0x0a, 0x00, 0x01, 0x02, 0x45, 0x00, 0x00, 0x2a, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x5c,
        0x84, 0xc0, 0xa8, 0x01, 0x0a, 0x0a, 0x00, 0x00, 0x64, 0x9c, 0x40, 0x00, 0x50, 0x00, 0x00,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x50, 0x18, 0xff, 0xff, 0xde, 0xb9, 0x00, 0x00, 0x68,
        0x69,
    ];

    /// UDP 192.168.1.10:5000 -> 10.0.0.100:82, payload "ping".
    const UDP_IN: [u8; 46] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0xd1, 0x02, 0x00, 0x00, 0x00, 0x00, 0xc1, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x20, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x5c, 0x83, 0xc0, 0xa8, 0x01, 0x0a,
        0x0a, 0x00, 0x00, 0x64, 0x13, 0x88, 0x00, 0x52, 0x00, 0x0c, 0x41, 0x15, 0x70, 0x69, 0x6e,
        0x67,
    ];

    /// NAT to 10.0.1.2:8002, TTL 63.
    const NAT_OUT: [u8; 46] = [
        0x02, 0x00, 0x00, 0x00, 0x01, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0xd1, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x20, 0x12, 0x34, 0x40, 0x00, 0x3f, 0x11, 0x5c, 0xe5, 0xc0, 0xa8, 0x01, 0x0a,
        0x0a, 0x00, 0x01, 0x02, 0x13, 0x88, 0x1f, 0x42, 0x00, 0x0c, 0x21, 0x87, 0x70, 0x69, 0x6e,
        0x67,
    ];

    fn flow(frame: &[u8]) -> Flow {
        match parse(frame) {
            Parsed::Flow(f) => f,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dr_rewrites_only_the_macs() {
        let b = backend(2, 1);
        let mut out = TCP_IN.to_vec();
        rewrite_macs(&mut out, b.mac, DIRECTOR.mac);
        assert_eq!(out, DR_OUT);
        assert_eq!(frame_ok(&out), Ok(()));
    }

    #[test]
    fn tun_pushes_an_outer_header() {
        let b = backend(2, 1);
        let f = flow(&TCP_IN);
        let mut out = encapsulate(&TCP_IN, &f, &DIRECTOR, b.ip);
        rewrite_macs(&mut out, b.mac, DIRECTOR.mac);
        assert_eq!(out, TUN_OUT);
        assert_eq!(frame_ok(&out), Ok(()));
        // VLAN tag kept, DF and TOS copied, padding kept at the end.
        let mut s = Spec::udp(1, 2);
        s.vlan = Some(9);
        s.frag = 0;
        s.tos = 0xb8;
        s.padding = 3;
        let inp = s.build();
        let out = encapsulate(&inp, &flow(&inp), &DIRECTOR, b.ip);
        assert_eq!(out.len(), inp.len() + 20);
        assert_eq!(out[..18], inp[..18]);
        assert_eq!(out[18..20], [0x45, 0xb8]);
        assert_eq!(out[24..26], [0, 0]);
        assert_eq!(out[38..], inp[18..]);
        assert_eq!(frame_ok(&out), Ok(()));
    }

    #[test]
    fn nat_updates_checksums_incrementally() {
        let b = backend(2, 1);
        let f = flow(&UDP_IN);
        let mut out = UDP_IN.to_vec();
        nat_destination(&mut out, &f, b.ip, b.port);
        rewrite_macs(&mut out, b.mac, DIRECTOR.mac);
        assert_eq!(out, NAT_OUT);
        assert_eq!(frame_ok(&out), Ok(()));
        // And back: the VIP restored, the TTL decremented once more (62).
        let mut back = out.clone();
        nat_destination(&mut back, &flow(&out), VIP, 82);
        assert_eq!(frame_ok(&back), Ok(()));
        assert_eq!((back[22], back[23]), (62, 17));
        assert_eq!(back[12..22], UDP_IN[12..22]);
        assert_eq!(back[26..], UDP_IN[26..]);
        // TCP and IP options.
        let mut s = Spec::tcp(4000, 82);
        s.options = vec![1; 8];
        let inp = s.build();
        let mut out = inp.clone();
        nat_destination(&mut out, &flow(&inp), b.ip, b.port);
        assert_eq!(frame_ok(&out), Ok(()));
        assert_eq!(flow(&out).tuple.dst, b.ip);
        assert_eq!(flow(&out).tuple.dport, b.port);
        nat_source(&mut out, &flow(&inp), [1, 2, 3, 4], 9);
        assert_eq!(frame_ok(&out), Ok(()));
        assert_eq!(
            (flow(&out).tuple.src, flow(&out).tuple.sport),
            ([1, 2, 3, 4], 9)
        );
    }

    /// RFC 1071 over the IPv4 header, recomputed from scratch: the sum including the
    /// checksum field is 0xffff.
    fn header_sums_to_ffff(h: &[u8]) -> bool {
        let mut sum: u32 = h
            .chunks(2)
            .map(|w| u32::from(w[0]) << 8 | u32::from(w[1]))
            .sum();
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum == 0xffff
    }

    #[test]
    fn nat_decrements_the_ttl_in_both_directions() {
        for (ttl, vlan, options) in [(2u8, None, 0), (64, Some(7), 8), (255, None, 40)] {
            let mut s = Spec::tcp(4000, 82);
            s.ttl = ttl;
            s.vlan = vlan;
            s.options = vec![1; options];
            let inp = s.build();
            let f = flow(&inp);
            let l3 = f.l3_offset;
            let hdr = l3..f.l4_offset;
            let mut out = inp.clone();
            nat_destination(&mut out, &f, [10, 0, 1, 2], 8002);
            assert_eq!(out[l3 + 8], ttl - 1, "forward TTL");
            assert_eq!(out[l3 + 9], inp[l3 + 9], "protocol kept");
            assert!(header_sums_to_ffff(&out[hdr.clone()]), "forward {ttl}");
            assert_eq!(frame_ok(&out), Ok(()));
            // etherparse agrees: its own header checksum of the output header.
            let h = etherparse::Ipv4HeaderSlice::from_slice(&out[l3..]).unwrap();
            assert_eq!(h.ttl(), ttl - 1);
            assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
            let mut reply = out.clone();
            nat_source(&mut reply, &flow(&out), VIP, 82);
            assert_eq!(reply[l3 + 8], ttl - 2, "reply TTL");
            assert!(header_sums_to_ffff(&reply[hdr.clone()]), "reply {ttl}");
            assert_eq!(frame_ok(&reply), Ok(()));
            // Nothing else of the header moved but TTL, checksum and the addresses.
            for i in (0..8).chain(20..f.l4_offset - l3) {
                assert_eq!(reply[l3 + i], inp[l3 + i], "header byte {i}");
            }
            assert_eq!(reply[..l3], inp[..l3], "L2 and VLAN tag kept");
        }
    }

    #[test]
    fn dr_and_tun_keep_the_ttl() {
        let b = backend(2, 1);
        let mut s = Spec::udp(1, 81);
        s.ttl = 1;
        let inp = s.build();
        let mut dr = inp.clone();
        rewrite_macs(&mut dr, b.mac, DIRECTOR.mac);
        assert_eq!(dr[12..], inp[12..]);
        let tun = encapsulate(&inp, &flow(&inp), &DIRECTOR, b.ip);
        assert_eq!(tun[14 + 8], TUN_TTL, "outer TTL");
        assert_eq!(
            tun[34..],
            inp[14..],
            "inner datagram untouched, TTL 1 included"
        );
    }

    #[test]
    fn nat_keeps_a_zero_udp_checksum() {
        let mut s = Spec::udp(1, 82);
        s.udp_no_csum = true;
        let inp = s.build();
        let mut out = inp.clone();
        nat_destination(&mut out, &flow(&inp), [10, 0, 1, 2], 8002);
        assert_eq!(out[40..42], [0, 0]);
        assert_eq!(frame_ok(&out), Ok(()));
        assert_ne!(out[24..26], inp[24..26]);
    }
}
