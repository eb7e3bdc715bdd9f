//! Frames of the differential test: a xorshift generator and a builder of well-formed
//! Ethernet/IPv4/TCP-or-UDP frames with correct checksums (optional VLAN tag, IP options,
//! fragment word, Ethernet padding, UDP without checksum, TCP flags: opening SYN, SYN+ACK,
//! ACK, PSH|ACK, FIN, RST, any TTL), [`tcp_flags`], the generator's mix of TCP flags, and
//! [`arp`], the generator's ARP frames.
#![allow(dead_code)]

use strait_lb::packet::arp;
use strait_lb::packet::csum::{ipv4_header_checksum, l4_checksum, l4_csum_offset};

const UDP: u8 = 17;

/// Xorshift64, deterministic per seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a generated frame looks like before corruption.
pub struct Shape {
    pub vlan: Option<u16>,
    pub options: usize,
    pub proto: u8,
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub sport: u16,
    pub dport: u16,
    pub payload: usize,
    pub frag: u16,
    pub padding: usize,
    /// UDP only: send checksum 0 ("none", RFC 768).
    pub udp_no_csum: bool,
    /// TCP only: the flags byte (CWR ECE URG ACK PSH RST SYN FIN).
    pub tcp_flags: u8,
    /// The IPv4 TTL.
    pub ttl: u8,
}

impl Shape {
    /// A plain TCP segment: no VLAN tag, no IP options, DF set, TTL 64, 4 payload bytes.
    pub fn tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, tcp_flags: u8) -> Shape {
        Shape {
            vlan: None,
            options: 0,
            proto: 6,
            src,
            dst,
            sport,
            dport,
            payload: 4,
            frag: 0x4000,
            padding: 0,
            udp_no_csum: false,
            tcp_flags,
            ttl: 64,
        }
    }
}

/// TCP flags SYN, SYN+ACK, ACK, PSH+ACK, FIN+ACK, RST+ACK, SYN+FIN (an opening SYN too).
pub const SYN: u8 = 0x02;
pub const SYN_ACK: u8 = 0x12;
pub const ACK: u8 = 0x10;
pub const PSH_ACK: u8 = 0x18;

/// A TCP flags byte: an opening SYN one time in four (SYN+FIN among them), SYN+ACK one in
/// eight, else mid-connection segments (ACK, PSH+ACK, FIN+ACK, RST+ACK).
pub fn tcp_flags(rng: &mut Rng) -> u8 {
    match rng.below(16) {
        0..=2 => SYN,
        3 => SYN | 0x01,
        4 | 5 => SYN_ACK,
        6..=8 => ACK,
        9 => 0x11,
        10 => 0x14,
        _ => PSH_ACK,
    }
}

/// A well-formed frame with correct checksums.
pub fn frame(s: &Shape) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0xd1, 0x02, 0, 0, 0, 0, 0xc1];
    if let Some(v) = s.vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00]);
    let l3 = f.len();
    let mut l4 = Vec::new();
    l4.extend_from_slice(&s.sport.to_be_bytes());
    l4.extend_from_slice(&s.dport.to_be_bytes());
    if s.proto == UDP {
        l4.extend_from_slice(&((8 + s.payload) as u16).to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
    } else {
        l4.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, s.tcp_flags]);
        l4.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    }
    l4.extend((0..s.payload).map(|i| i as u8));
    let at = l4_csum_offset(s.proto);
    let c = l4_checksum(s.src, s.dst, s.proto, &l4, at);
    if !(s.proto == UDP && s.udp_no_csum) {
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let hlen = 20 + s.options;
    f.push(0x40 | (hlen / 4) as u8);
    f.push(0x10);
    f.extend_from_slice(&((hlen + l4.len()) as u16).to_be_bytes());
    f.extend_from_slice(&s.sport.wrapping_mul(31).to_be_bytes());
    f.extend_from_slice(&s.frag.to_be_bytes());
    f.extend_from_slice(&[s.ttl, s.proto, 0, 0]);
    f.extend_from_slice(&s.src);
    f.extend_from_slice(&s.dst);
    f.resize(f.len() + s.options, 1);
    let c = ipv4_header_checksum(&f[l3..l3 + hlen]);
    f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&l4);
    f.resize(f.len() + s.padding, 0);
    f
}

/// An ARP frame for one of `targets` from a client, as a LAN carries them and worse: mostly
/// broadcast requests, some RFC 5227 probes (sender 0.0.0.0), gratuitous ARPs (sender =
/// target), replies and operation 3, unicast to `own` (the director's MAC), to another host
/// or to a multicast group; Ethernet padding to 60 bytes one time in three; one in eight
/// with a VLAN tag, one in eight with a wrong hardware or protocol type or length, one in
/// eight truncated anywhere from 14 to 41 bytes.
pub fn arp(rng: &mut Rng, own: [u8; 6], targets: &[[u8; 4]]) -> Vec<u8> {
    let sha = [2, 0, 0, 0, 0, 0x10 + rng.below(4) as u8];
    let tpa = targets[rng.below(targets.len() as u64) as usize];
    let spa = match rng.below(8) {
        0 => tpa,
        1 => [0; 4],
        _ => [192, 168, 1, 1 + rng.below(8) as u8],
    };
    let dst = match rng.below(8) {
        0 => own,
        1 => [2, 0, 0, 0, 0, 0x55],
        2 => [1, 0, 0x5e, 0, 0, 1],
        _ => [0xff; 6],
    };
    let op = match rng.below(8) {
        0 => arp::OP_REPLY,
        1 => 3,
        _ => arp::OP_REQUEST,
    };
    let tha = if op == arp::OP_REQUEST { [0; 6] } else { own };
    let mut f = arp::frame(dst, op, (sha, spa), (tha, tpa));
    if rng.below(3) == 0 {
        f.resize(60, 0);
    }
    match rng.below(8) {
        0 => {
            let tag = [0x81, 0x00, 0, rng.below(256) as u8];
            f.splice(12..12, tag);
        }
        1 => {
            // htype, ptype, hlen or plen off by one bit.
            let at = [14, 15, 16, 17, 18, 19][rng.below(6) as usize];
            f[at] ^= 1 << rng.below(8);
        }
        2 => f.truncate(14 + rng.below(28) as usize),
        _ => {}
    }
    f
}
