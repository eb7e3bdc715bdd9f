//! Frame parsing and classification: Ethernet II, at most one 802.1Q tag, IPv4, TCP/UDP ports.
//!
//! Contract: [`parse`] is a pure, total function of the frame bytes (never panics, never reads
//! out of bounds) and classifies every frame exactly as the XDP program must:
//! * [`Parsed::NotIpv4`]: the EtherType (after one optional 802.1Q tag, `0x8100`) is not IPv4
//!   (ARP, IPv6, a second stacked tag, …);
//! * [`Parsed::Malformed`]: a header is truncated or inconsistent, checked in this order:
//!   Ethernet (14 bytes), VLAN tag (4 more), fixed IPv4 header (20 bytes), version = 4,
//!   IHL ≥ 5 (RFC 791 §3.1), IHL options present, total length ≥ IHL × 4 and within the
//!   frame (trailing Ethernet padding after the datagram is allowed and ignored), then for
//!   unfragmented TCP/UDP the fixed L4 header (TCP 20 bytes, RFC 9293 §3.1; UDP 8 bytes,
//!   RFC 768) inside the datagram;
//! * [`Parsed::Fragment`] (RFC 791 §2.3: MF set or fragment offset ≠ 0): later fragments carry
//!   no ports (`flow: None`); a first fragment carries its 5-tuple when its fixed L4 header is
//!   complete, and is balanced on it;
//! * [`Parsed::OtherProtocol`]: a whole IPv4 datagram that is neither TCP nor UDP (ICMP, …);
//! * [`Parsed::Flow`]: an unfragmented TCP or UDP datagram.
//!
//! A flow (whole datagram or first fragment with ports) also carries
//! [`Flow::opening_syn`]: TCP with SYN set and ACK clear in its fixed header (RFC 9293 §3.1,
//! the flags byte at offset 13), the segment that opens a connection; and [`Flow::closing`]:
//! TCP with FIN or RST set there (its connection entry then takes the shorter
//! `tcp_fin_timeout`); and [`Flow::syn`]: SYN set there, ACK or not (its lookup leaves a
//! half-open entry half-open); none for UDP.
//!
//! Checksums are not verified here (the kernel or the backend does it), as in the XDP program.

/// IPv4 EtherType.
pub(crate) const ETH_P_IPV4: u16 = 0x0800;
/// 802.1Q VLAN tag EtherType (TPID).
pub(crate) const ETH_P_8021Q: u16 = 0x8100;
/// Ethernet II header length (destination MAC, source MAC, EtherType).
pub(crate) const ETH_HLEN: usize = 14;
/// 802.1Q tag length.
pub(crate) const VLAN_HLEN: usize = 4;
/// Fixed IPv4 header length (IHL = 5).
pub(crate) const IPV4_MIN_HLEN: usize = 20;
/// Fixed TCP header length (data offset = 5).
pub(crate) const TCP_HLEN: usize = 20;
/// UDP header length.
pub(crate) const UDP_HLEN: usize = 8;
/// IP protocol number of TCP.
pub(crate) const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub(crate) const PROTO_UDP: u8 = 17;
/// IP protocol number of IP-in-IP (RFC 2003).
pub(crate) const PROTO_IPIP: u8 = 4;
/// Offset of the flags byte in the TCP header (CWR ECE URG ACK PSH RST SYN FIN).
pub(crate) const TCP_FLAGS_OFFSET: usize = 13;
/// TCP flag SYN.
pub(crate) const TCP_SYN: u8 = 0x02;
/// TCP flag ACK.
pub(crate) const TCP_ACK: u8 = 0x10;
/// TCP FIN flag.
pub(crate) const TCP_FIN: u8 = 0x01;
/// TCP RST flag.
pub(crate) const TCP_RST: u8 = 0x04;

/// Why a frame is [`Parsed::Malformed`]; each reason has one counter in the datapath.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Malformed {
    /// Fewer than 14 bytes.
    TruncatedEthernet,
    /// An 802.1Q tag without its 4 bytes.
    TruncatedVlan,
    /// Fewer than 20 bytes of IPv4 header.
    TruncatedIpv4,
    /// Version nibble is not 4.
    BadVersion,
    /// IHL below 5.
    BadIhl,
    /// The IHL announces options beyond the end of the frame.
    TruncatedIpv4Options,
    /// Total length below the header length or beyond the end of the frame.
    BadTotalLength,
    /// An unfragmented TCP datagram shorter than the fixed TCP header.
    TruncatedTcp,
    /// An unfragmented UDP datagram shorter than the UDP header.
    TruncatedUdp,
}

impl Malformed {
    /// Stable name for counters and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::TruncatedEthernet => "truncated_ethernet",
            Malformed::TruncatedVlan => "truncated_vlan",
            Malformed::TruncatedIpv4 => "truncated_ipv4",
            Malformed::BadVersion => "bad_version",
            Malformed::BadIhl => "bad_ihl",
            Malformed::TruncatedIpv4Options => "truncated_ipv4_options",
            Malformed::BadTotalLength => "bad_total_length",
            Malformed::TruncatedTcp => "truncated_tcp",
            Malformed::TruncatedUdp => "truncated_udp",
        }
    }
}

/// The 5-tuple of a packet, in the direction it travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    /// Source address (network byte order, as in the header).
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// Source port (host integer).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// IP protocol (`PROTO_TCP` or `PROTO_UDP`).
    pub proto: u8,
}

impl FiveTuple {
    /// The tuple of the opposite direction (source and destination swapped).
    pub fn reversed(&self) -> FiveTuple {
        FiveTuple {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
        }
    }
}

/// A TCP or UDP packet with the offsets the rewrites need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// Addresses, ports and protocol.
    pub tuple: FiveTuple,
    /// VLAN id (12 bits) when the frame carries an 802.1Q tag.
    pub vlan: Option<u16>,
    /// Offset of the IPv4 header in the frame (14, or 18 with a VLAN tag).
    pub l3_offset: usize,
    /// Offset of the TCP/UDP header (`l3_offset + IHL × 4`).
    pub l4_offset: usize,
    /// End of the IPv4 datagram (`l3_offset + total length`); bytes after it are L2 padding.
    pub l3_end: usize,
    /// The IPv4 "don't fragment" flag.
    pub(crate) dont_fragment: bool,
    /// True for the first fragment of a fragmented datagram (its L4 checksum covers data
    /// not present in this frame).
    pub(crate) first_fragment: bool,
    /// A TCP segment with SYN set and ACK clear (a connection opening: `decide` schedules it
    /// anew instead of following the connection table). False for UDP and SYN+ACK.
    pub opening_syn: bool,
    /// A TCP segment with FIN or RST set (its connection is closing). False for UDP.
    pub closing: bool,
    /// A TCP segment with SYN set, ACK or not: its lookup does not make a half-open entry
    /// established (`packet::conntable`). False for UDP.
    pub syn: bool,
    /// The IPv4 TTL as received (NAT decrements it; <= 1: ICMP time exceeded, `packet::icmp`).
    pub ttl: u8,
}

/// Classification of one frame (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// Not IPv4: handed to the kernel.
    NotIpv4,
    /// Unparsable: handed to the kernel, which counts and drops it.
    Malformed(Malformed),
    /// A fragment; `flow` is set for a first fragment with a complete fixed L4 header.
    Fragment {
        /// Fragment offset 0 (with MF set).
        first: bool,
        /// The 5-tuple and offsets of a first fragment.
        flow: Option<Flow>,
    },
    /// A whole IPv4 datagram of another protocol.
    OtherProtocol(u8),
    /// A whole TCP or UDP datagram.
    Flow(Flow),
}

impl Parsed {
    /// The flow to balance: whole TCP/UDP datagrams and first fragments with ports.
    pub fn flow(&self) -> Option<&Flow> {
        match self {
            Parsed::Flow(f) => Some(f),
            Parsed::Fragment { flow: Some(f), .. } => Some(f),
            _ => None,
        }
    }
}

/// Big-endian u16 at `at`; the caller has checked the bounds (returns 0 otherwise).
pub(crate) fn be16(frame: &[u8], at: usize) -> u16 {
    match frame.get(at..at + 2) {
        Some(b) => u16::from_be_bytes([b[0], b[1]]),
        None => 0,
    }
}

/// Four bytes at `at` (zeros when out of bounds; callers check first).
pub(crate) fn addr(frame: &[u8], at: usize) -> [u8; 4] {
    let mut a = [0u8; 4];
    if let Some(b) = frame.get(at..at + 4) {
        a.copy_from_slice(b);
    }
    a
}

/// Classifies `frame` (see the module doc for the rules and their order).
pub fn parse(frame: &[u8]) -> Parsed {
    if frame.len() < ETH_HLEN {
        return Parsed::Malformed(Malformed::TruncatedEthernet);
    }
    let mut ethertype = be16(frame, 12);
    let mut l3 = ETH_HLEN;
    let mut vlan = None;
    if ethertype == ETH_P_8021Q {
        if frame.len() < ETH_HLEN + VLAN_HLEN {
            return Parsed::Malformed(Malformed::TruncatedVlan);
        }
        vlan = Some(be16(frame, 14) & 0x0fff);
        ethertype = be16(frame, 16);
        l3 += VLAN_HLEN;
    }
    if ethertype != ETH_P_IPV4 {
        return Parsed::NotIpv4;
    }
    if frame.len() < l3 + IPV4_MIN_HLEN {
        return Parsed::Malformed(Malformed::TruncatedIpv4);
    }
    let ver_ihl = frame[l3];
    if ver_ihl >> 4 != 4 {
        return Parsed::Malformed(Malformed::BadVersion);
    }
    let hlen = usize::from(ver_ihl & 0x0f) * 4;
    if hlen < IPV4_MIN_HLEN {
        return Parsed::Malformed(Malformed::BadIhl);
    }
    if frame.len() < l3 + hlen {
        return Parsed::Malformed(Malformed::TruncatedIpv4Options);
    }
    let total = usize::from(be16(frame, l3 + 2));
    if total < hlen || frame.len() < l3 + total {
        return Parsed::Malformed(Malformed::BadTotalLength);
    }
    let frag = be16(frame, l3 + 6);
    let more_fragments = frag & 0x2000 != 0;
    let offset = frag & 0x1fff;
    let proto = frame[l3 + 9];
    let l4 = l3 + hlen;
    let l3_end = l3 + total;
    if offset != 0 {
        return Parsed::Fragment {
            first: false,
            flow: None,
        };
    }
    let l4_len = match proto {
        PROTO_TCP => TCP_HLEN,
        PROTO_UDP => UDP_HLEN,
        _ if more_fragments => {
            return Parsed::Fragment {
                first: true,
                flow: None,
            }
        }
        other => return Parsed::OtherProtocol(other),
    };
    let complete = l3_end - l4 >= l4_len;
    // Inside the datagram whenever `complete` (TCP: 20 bytes from l4); unused otherwise.
    let tcp_flags = frame.get(l4 + TCP_FLAGS_OFFSET).copied().unwrap_or(0);
    let flow = Flow {
        tuple: FiveTuple {
            src: addr(frame, l3 + 12),
            dst: addr(frame, l3 + 16),
            sport: be16(frame, l4),
            dport: be16(frame, l4 + 2),
            proto,
        },
        vlan,
        l3_offset: l3,
        l4_offset: l4,
        l3_end,
        dont_fragment: frag & 0x4000 != 0,
        first_fragment: more_fragments,
        opening_syn: complete && proto == PROTO_TCP && tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN,
        closing: complete && proto == PROTO_TCP && tcp_flags & (TCP_FIN | TCP_RST) != 0,
        syn: complete && proto == PROTO_TCP && tcp_flags & TCP_SYN != 0,
        ttl: frame[l3 + 8],
    };
    match (more_fragments, complete) {
        (true, true) => Parsed::Fragment {
            first: true,
            flow: Some(flow),
        },
        (true, false) => Parsed::Fragment {
            first: true,
            flow: None,
        },
        (false, true) => Parsed::Flow(flow),
        (false, false) if proto == PROTO_TCP => Parsed::Malformed(Malformed::TruncatedTcp),
        (false, false) => Parsed::Malformed(Malformed::TruncatedUdp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::testutil::{Spec, CLIENT, VIP};

    fn flow_of(p: Parsed) -> Flow {
        match p {
            Parsed::Flow(f) => f,
            other => panic!("expected a flow, got {other:?}"),
        }
    }

    #[test]
    fn plain_tcp_and_udp_flows() {
        let f = flow_of(parse(&Spec::tcp(40000, 80).build()));
        assert_eq!(
            f.tuple,
            FiveTuple {
                src: CLIENT,
                dst: VIP,
                sport: 40000,
                dport: 80,
                proto: PROTO_TCP
            }
        );
        assert_eq!((f.l3_offset, f.l4_offset, f.l3_end), (14, 34, 34 + 25));
        assert_eq!(
            (f.vlan, f.dont_fragment, f.first_fragment),
            (None, true, false)
        );
        let f = flow_of(parse(&Spec::udp(5353, 53).build()));
        assert_eq!(
            (f.tuple.proto, f.tuple.sport, f.tuple.dport),
            (PROTO_UDP, 5353, 53)
        );
        assert_eq!((f.l4_offset, f.l3_end), (34, 34 + 13));
    }

    #[test]
    fn opening_syn_is_tcp_syn_without_ack() {
        let syn_of = |proto: u8, flags: u8, frag: u16| {
            let mut s = Spec::tcp(40000, 80);
            s.proto = proto;
            s.tcp_flags = flags;
            s.frag = frag;
            parse(&s.build()).flow().map(|f| f.opening_syn)
        };
        // SYN, SYN with FIN or PSH (still no ACK): openings; also in a first fragment.
        for flags in [0x02, 0x03, 0x0a, 0xc2] {
            assert_eq!(syn_of(PROTO_TCP, flags, 0x4000), Some(true), "{flags:#x}");
            assert_eq!(syn_of(PROTO_TCP, flags, 0x2000), Some(true), "{flags:#x}");
        }
        // SYN+ACK, ACK, PSH+ACK, FIN+ACK, RST, nothing: not openings.
        for flags in [0x12, 0x10, 0x18, 0x11, 0x04, 0x00] {
            assert_eq!(syn_of(PROTO_TCP, flags, 0x4000), Some(false), "{flags:#x}");
            assert_eq!(syn_of(PROTO_TCP, flags, 0x2000), Some(false), "{flags:#x}");
        }
        // UDP: the byte where TCP keeps its flags (payload here) is never read as flags.
        let mut udp = Spec::udp(40000, 80);
        udp.payload = vec![0x02; 20];
        let f = udp.build();
        assert_eq!(f[34 + TCP_FLAGS_OFFSET], 0x02);
        assert!(!flow_of(parse(&f)).opening_syn);
        assert_eq!(syn_of(PROTO_UDP, 0x02, 0x4000), Some(false));
    }

    #[test]
    fn closing_is_tcp_fin_or_rst() {
        let closing_of = |proto: u8, flags: u8| {
            let mut s = Spec::tcp(40000, 80);
            s.proto = proto;
            s.tcp_flags = flags;
            parse(&s.build()).flow().map(|f| f.closing)
        };
        for flags in [0x01, 0x11, 0x04, 0x14, 0x03, 0x19] {
            assert_eq!(closing_of(PROTO_TCP, flags), Some(true), "{flags:#x}");
        }
        for flags in [0x02, 0x10, 0x12, 0x18, 0x00] {
            assert_eq!(closing_of(PROTO_TCP, flags), Some(false), "{flags:#x}");
        }
        let mut udp = Spec::udp(40000, 80);
        udp.payload = vec![0x11; 20];
        assert!(!flow_of(parse(&udp.build())).closing);
    }

    #[test]
    fn vlan_options_and_padding() {
        let mut s = Spec::tcp(1, 2);
        s.vlan = Some(0x2005);
        s.options = vec![1, 1, 1, 1, 7, 3, 4, 0];
        s.padding = 6;
        s.frag = 0;
        let f = flow_of(parse(&s.build()));
        assert_eq!(f.vlan, Some(5));
        assert_eq!((f.l3_offset, f.l4_offset, f.l3_end), (18, 46, 46 + 25));
        assert!(!f.dont_fragment);
        assert_eq!((f.tuple.sport, f.tuple.dport), (1, 2));
    }

    #[test]
    fn non_ipv4_frames() {
        let mut arp = Spec::tcp(1, 2).build();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(parse(&arp), Parsed::NotIpv4);
        let mut v6 = arp.clone();
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(parse(&v6), Parsed::NotIpv4);
        // A second stacked tag is not followed.
        let mut s = Spec::tcp(1, 2);
        s.vlan = Some(1);
        let mut qinq = s.build();
        qinq[16..18].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(parse(&qinq), Parsed::NotIpv4);
        let mut icmp = Spec::tcp(1, 2).build();
        icmp[23] = 1;
        assert_eq!(parse(&icmp), Parsed::OtherProtocol(1));
    }

    #[test]
    fn fragments() {
        let mut s = Spec::udp(7, 9);
        s.frag = 0x2000;
        let p = parse(&s.build());
        let Parsed::Fragment {
            first: true,
            flow: Some(f),
        } = p
        else {
            panic!("expected a first fragment with ports, got {p:?}");
        };
        assert!(f.first_fragment);
        assert_eq!((f.tuple.sport, f.tuple.dport), (7, 9));
        assert_eq!(p.flow(), Some(&f));
        s.frag = 0x2000 | 185;
        let later = Parsed::Fragment {
            first: false,
            flow: None,
        };
        assert_eq!(parse(&s.build()), later);
        s.frag = 185;
        assert_eq!(parse(&s.build()), later);
        assert_eq!(later.flow(), None);
        // A first fragment too short for its L4 header, and one of another protocol.
        let mut s = Spec::tcp(1, 2);
        s.payload.clear();
        s.frag = 0x2000;
        let mut short = s.build();
        short.truncate(14 + 20 + 12);
        short[16..18].copy_from_slice(&32u16.to_be_bytes());
        let first_no_ports = Parsed::Fragment {
            first: true,
            flow: None,
        };
        assert_eq!(parse(&short), first_no_ports);
        let mut icmp = Spec::tcp(1, 2);
        icmp.frag = 0x2000;
        let mut icmp = icmp.build();
        icmp[23] = 1;
        assert_eq!(parse(&icmp), first_no_ports);
    }

    #[test]
    fn truncation_at_every_header_boundary() {
        let mut s = Spec::tcp(1, 2);
        s.vlan = Some(3);
        s.options = vec![1; 4];
        let full = s.build();
        // l3 = 18, l4 = 42, end = 42 + 25.
        let expect = |len: usize| match len {
            0..=13 => Parsed::Malformed(Malformed::TruncatedEthernet),
            14..=17 => Parsed::Malformed(Malformed::TruncatedVlan),
            18..=37 => Parsed::Malformed(Malformed::TruncatedIpv4),
            38..=41 => Parsed::Malformed(Malformed::TruncatedIpv4Options),
            _ => Parsed::Malformed(Malformed::BadTotalLength),
        };
        for len in 0..full.len() {
            assert_eq!(parse(&full[..len]), expect(len), "length {len}");
        }
        assert!(matches!(parse(&full), Parsed::Flow(_)));
        // Total length cutting into the L4 header (frame long enough).
        for (proto, want, min) in [
            (PROTO_TCP, Malformed::TruncatedTcp, TCP_HLEN),
            (PROTO_UDP, Malformed::TruncatedUdp, UDP_HLEN),
        ] {
            let mut f = Spec::tcp(1, 2).build();
            f[23] = proto;
            for l4 in 0..min {
                f[16..18].copy_from_slice(&((20 + l4) as u16).to_be_bytes());
                assert_eq!(parse(&f), Parsed::Malformed(want), "l4 length {l4}");
            }
            f[16..18].copy_from_slice(&((20 + min) as u16).to_be_bytes());
            assert!(matches!(parse(&f), Parsed::Flow(_)));
        }
    }

    #[test]
    fn bad_version_ihl_and_total_length() {
        let good = Spec::tcp(1, 2).build();
        let mut f = good.clone();
        f[14] = 0x65;
        assert_eq!(parse(&f), Parsed::Malformed(Malformed::BadVersion));
        for ihl in 0..5u8 {
            f[14] = 0x40 | ihl;
            assert_eq!(parse(&f), Parsed::Malformed(Malformed::BadIhl), "ihl {ihl}");
        }
        f[14] = 0x4f;
        assert_eq!(
            parse(&f),
            Parsed::Malformed(Malformed::TruncatedIpv4Options)
        );
        let mut f = good.clone();
        f[16..18].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(parse(&f), Parsed::Malformed(Malformed::BadTotalLength));
        f[16..18].copy_from_slice(&((good.len() - 13) as u16).to_be_bytes());
        assert_eq!(parse(&f), Parsed::Malformed(Malformed::BadTotalLength));
        assert_eq!(Malformed::BadIhl.as_str(), "bad_ihl");
    }
}
