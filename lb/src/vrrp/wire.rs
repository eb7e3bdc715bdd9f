//! The VRRPv3 advertisement on the wire (RFC 5798 §5, IPv4 only): pure encoding and decoding.
//!
//! Contract:
//! * [`Advert::encode`] builds the VRRP message alone (what a raw `IPPROTO_VRRP` socket sends;
//!   the kernel adds the IPv4 header): version 3, type 1 (Advertisement), the 12-bit Max
//!   Adver Int in centiseconds, the addresses, and the checksum over the IPv4 pseudo-header
//!   of `src`→`dst` (RFC 5798 §5.2.8; keepalived and the Linux kernel's own VRRP users do the
//!   same), so a unicast advert is encoded once per peer. Out-of-range fields are clamped, not
//!   refused: an interval above 4095 cs is sent as 4095, and only the first 255 addresses are
//!   sent (Count IPvX Addrs is one byte). The config keeps both in range.
//! * [`decode`] takes a whole IPv4 packet (header and options included, as a raw IPv4 socket
//!   delivers it), never panics, and checks in this order: the IPv4 header is complete and
//!   sane ([`Reject::Truncated`], [`Reject::NotIpv4`], [`Reject::IpHeader`]; bytes after the
//!   header's Total Length are ignored), the protocol is 112, then RFC 5798 §7.1's checks in
//!   the RFC's order: TTL 255, version 3 (and type 1, §5.2.2), the complete packet (8 bytes
//!   and exactly Count × 4 address bytes: [`Reject::Count`]), the checksum; last, an interval
//!   of 0 is refused (§5.2.7 gives it no meaning; it would make the timers spin).
//! * Checks that need the configuration (VRID, address owner, address list match) belong to
//!   the caller, as does telling our own packets apart ([`Received::src`]).
//! * [`Reject::as_str`] is the stable counter name of each reason; [`Reject::NAMES`] lists
//!   them all (in [`Reject::index`] order) so stats can show zeros.

use std::net::Ipv4Addr;

use crate::packet::csum::{l4_checksum, ones_sum};

/// IP protocol number of VRRP (RFC 5798 §5.1.1.4).
pub const PROTOCOL: u8 = 112;

/// The VRRP IPv4 multicast group (RFC 5798 §5.1.1.2).
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// The TTL every advert is sent with and must arrive with (RFC 5798 §5.1.1.3).
pub const TTL: u8 = 255;

/// VRRP version implemented (RFC 5798 §5.2.1).
pub const VERSION: u8 = 3;

/// The only VRRP packet type (ADVERTISEMENT, RFC 5798 §5.2.2).
pub const TYPE_ADVERTISEMENT: u8 = 1;

/// Largest Max Adver Int (12 bits, centiseconds: 40.95 s).
pub const MAX_INTERVAL_CS: u16 = 4095;

/// Most addresses one advert carries (Count IPvX Addrs is one byte).
pub const MAX_ADDRS: usize = 255;

/// Fixed part of the VRRP message before the addresses.
pub const HEADER_LEN: usize = 8;

/// Longest IPv4 VRRP packet: a 60-byte IPv4 header (options), the fixed part and 255
/// addresses. A receive buffer of this size never truncates a valid advert.
pub const MAX_PACKET: usize = 60 + HEADER_LEN + 4 * MAX_ADDRS;

/// Offset of the checksum inside the VRRP message.
const CHECKSUM_AT: usize = 6;

/// A VRRPv3 advertisement (RFC 5798 §5.1), IPv4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// Virtual Router Identifier (1..=255 when configured; 0 is carried as received).
    pub vrid: u8,
    /// Priority: 255 for the address owner, 0 when the master stops (RFC 5798 §5.2.4).
    pub priority: u8,
    /// Max Adver Int, in centiseconds (12 bits: 1..=4095; 0 is invalid on receipt).
    pub interval_cs: u16,
    /// The virtual addresses.
    pub addrs: Vec<Ipv4Addr>,
}

impl Advert {
    /// The VRRP payload (what a raw IPPROTO 112 socket sends; the kernel adds the IPv4
    /// header), checksum over the IPv4 pseudo-header (RFC 5798 §5.2.8) for `src`→`dst`.
    pub fn encode(&self, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let addrs = &self.addrs[..self.addrs.len().min(MAX_ADDRS)];
        let interval = self.interval_cs.min(MAX_INTERVAL_CS);
        let mut out = Vec::with_capacity(HEADER_LEN + 4 * addrs.len());
        out.push(VERSION << 4 | TYPE_ADVERTISEMENT);
        out.push(self.vrid);
        out.push(self.priority);
        // Lossless: at most MAX_ADDRS (255) addresses.
        out.push(addrs.len() as u8);
        // The 4 reserved bits are zero; the interval fits the remaining 12.
        out.extend_from_slice(&interval.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        for a in addrs {
            out.extend_from_slice(&a.octets());
        }
        let sum = l4_checksum(src.octets(), dst.octets(), PROTOCOL, &out, CHECKSUM_AT);
        out[CHECKSUM_AT..CHECKSUM_AT + 2].copy_from_slice(&sum.to_be_bytes());
        out
    }
}

/// A whole received IPv4 packet (as a raw IPv4 socket delivers it, IP header included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// IPv4 source: the sender's primary address (compare with the socket's own to spot
    /// our own adverts).
    pub src: Ipv4Addr,
    /// IPv4 destination: [`GROUP`] or, in unicast mode, our address.
    pub dst: Ipv4Addr,
    /// IPv4 TTL (always 255 here: other values are refused).
    pub ttl: u8,
    /// The advertisement.
    pub advert: Advert,
}

/// Why a received packet was dropped (see the module doc for the order of the checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Reject {
    /// Shorter than its IPv4 header, its Total Length, or the 8 fixed VRRP bytes.
    #[error("truncated packet")]
    Truncated,
    /// IP version other than 4.
    #[error("IP version {0}, not 4")]
    NotIpv4(u8),
    /// IHL below 5 words, or a Total Length shorter than the header.
    #[error("malformed IPv4 header")]
    IpHeader,
    /// IP protocol other than 112.
    #[error("IP protocol {0}, not VRRP (112)")]
    Protocol(u8),
    /// TTL other than 255: the packet crossed a router (RFC 5798 §7.1).
    #[error("TTL {0}, not 255")]
    Ttl(u8),
    /// VRRP version other than 3.
    #[error("VRRP version {0}, not 3")]
    Version(u8),
    /// VRRP type other than 1 (Advertisement).
    #[error("VRRP type {0}, not 1 (advertisement)")]
    Type(u8),
    /// Count IPvX Addrs disagrees with the packet's length.
    #[error("{0} addresses announced, the length says otherwise")]
    Count(u8),
    /// The checksum over the pseudo-header and the message is wrong.
    #[error("bad checksum")]
    Checksum,
    /// Max Adver Int of 0.
    #[error("advertisement interval 0")]
    Interval,
}

impl Reject {
    /// Every counter name, in [`Reject::index`] order.
    pub const NAMES: &'static [&'static str] = &[
        "truncated",
        "not_ipv4",
        "ip_header",
        "protocol",
        "ttl",
        "version",
        "type",
        "count",
        "checksum",
        "interval",
    ];

    /// Position of this reason in [`Reject::NAMES`] (an index into a counter array).
    pub fn index(self) -> usize {
        match self {
            Reject::Truncated => 0,
            Reject::NotIpv4(_) => 1,
            Reject::IpHeader => 2,
            Reject::Protocol(_) => 3,
            Reject::Ttl(_) => 4,
            Reject::Version(_) => 5,
            Reject::Type(_) => 6,
            Reject::Count(_) => 7,
            Reject::Checksum => 8,
            Reject::Interval => 9,
        }
    }

    /// The counter name: snake_case and stable.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self.index()]
    }
}

/// Reads one IPv4 VRRP packet (see the module doc for the checks and their order).
pub fn decode(packet: &[u8]) -> Result<Received, Reject> {
    let [first, _, len_hi, len_lo, ..] = *packet else {
        return Err(Reject::Truncated);
    };
    if first >> 4 != 4 {
        return Err(Reject::NotIpv4(first >> 4));
    }
    let header_len = usize::from(first & 0x0f) * 4;
    if header_len < 20 {
        return Err(Reject::IpHeader);
    }
    let total_len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
    if total_len < header_len {
        return Err(Reject::IpHeader);
    }
    let packet = packet.get(..total_len).ok_or(Reject::Truncated)?;
    let ttl = packet[8];
    let protocol = packet[9];
    let src = ipv4_at(packet, 12);
    let dst = ipv4_at(packet, 16);
    if protocol != PROTOCOL {
        return Err(Reject::Protocol(protocol));
    }
    if ttl != TTL {
        return Err(Reject::Ttl(ttl));
    }
    let vrrp = &packet[header_len..];
    let Some(&version_type) = vrrp.first() else {
        return Err(Reject::Truncated);
    };
    if version_type >> 4 != VERSION {
        return Err(Reject::Version(version_type >> 4));
    }
    if version_type & 0x0f != TYPE_ADVERTISEMENT {
        return Err(Reject::Type(version_type & 0x0f));
    }
    let [_, vrid, priority, count, int_hi, int_lo, _, _, ..] = *vrrp else {
        return Err(Reject::Truncated);
    };
    if vrrp.len() != HEADER_LEN + 4 * usize::from(count) {
        return Err(Reject::Count(count));
    }
    if !checksum_ok(src, dst, vrrp) {
        return Err(Reject::Checksum);
    }
    let interval_cs = u16::from_be_bytes([int_hi & 0x0f, int_lo]);
    if interval_cs == 0 {
        return Err(Reject::Interval);
    }
    let addrs = vrrp[HEADER_LEN..]
        .chunks_exact(4)
        .map(|a| Ipv4Addr::new(a[0], a[1], a[2], a[3]))
        .collect();
    Ok(Received {
        src,
        dst,
        ttl,
        advert: Advert {
            vrid,
            priority,
            interval_cs,
            addrs,
        },
    })
}

/// The IPv4 address at `at` (the caller checked the length).
fn ipv4_at(packet: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(packet[at], packet[at + 1], packet[at + 2], packet[at + 3])
}

/// Whether the one's complement sum of the pseudo-header and the message (checksum field
/// included) is all ones (RFC 1071 verification).
fn checksum_ok(src: Ipv4Addr, dst: Ipv4Addr, vrrp: &[u8]) -> bool {
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&dst.octets());
    pseudo[9] = PROTOCOL;
    // The message lies inside an IPv4 packet, so its length fits 16 bits.
    pseudo[10..12].copy_from_slice(&(vrrp.len() as u16).to_be_bytes());
    ones_sum(u32::from(ones_sum(0, &pseudo)), vrrp) == 0xffff
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
