//! Gratuitous ARP: the frame a new master broadcasts for each virtual address so that hosts
//! on the link point their neighbour entry at its MAC, and the socket that sends it.
//!
//! Contract:
//! * [`frame`] is pure: an Ethernet broadcast from `mac` carrying an ARP **request** whose
//!   sender and target protocol addresses are both `ip` and whose sender hardware address is
//!   `mac`; the target hardware address is `ff:ff:ff:ff:ff:ff`, as keepalived sends it (the
//!   frame equals keepalived 2.2.7's byte for byte, `fixtures/garp.bin`).
//! * [`GarpSender::open`] opens an `AF_PACKET`/`SOCK_RAW` socket of protocol 0 (it sends and
//!   never receives) bound to one interface index (0, "any", is refused);
//!   [`GarpSender::send`] transmits one whole frame on it.
//!
//! Why a request and not a reply. Linux (`net/ipv4/arp.c`, `arp_process`), with the
//! default `arp_accept = 0`, updates an *existing* neighbour entry from either op but
//! creates none. Whether it overrides the cached MAC at once depends on `arp_is_garp`: a
//! request counts as gratuitous when sender IP = target IP, whatever its target MAC; a reply
//! only when its target MAC also equals the sender MAC. A frame that is not gratuitous
//! overrides only an entry last updated more than `locktime` ago (1 s by default: "use the
//! FIRST reply"), so an entry the client re-resolved moments before the failover would keep
//! the dead master's MAC. The request needs no such care, is what keepalived sends, and is the
//! ARP Announcement of RFC 5227 §2.3. The namespace test `lb/tests/netns_vrrp.rs` shows
//! both: our request overrides an entry updated a moment before, a reply with a broadcast
//! target MAC does not. Linux leaves the entry STALE (a broadcast does not prove
//! reachability), uses it at once, and confirms the new MAC with a unicast probe later.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

/// Length of a gratuitous ARP frame: Ethernet header (14) and ARP for IPv4 (28).
pub const FRAME_LEN: usize = 42;

/// `ETH_P_ARP`.
const ETHERTYPE_ARP: u16 = 0x0806;

/// ARP operation: request.
const OP_REQUEST: u16 = 1;

/// The gratuitous ARP request announcing that `ip` is at `mac` (see the module doc).
pub fn frame(mac: [u8; 6], ip: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    // Hardware type Ethernet (1), protocol IPv4, address lengths 6 and 4.
    f[14..20].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
    f[20..22].copy_from_slice(&OP_REQUEST.to_be_bytes());
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip.octets());
    f[32..38].copy_from_slice(&[0xff; 6]);
    f[38..42].copy_from_slice(&ip.octets());
    f
}

/// A send-only packet socket on one interface (see the module doc).
#[derive(Debug)]
pub struct GarpSender {
    fd: OwnedFd,
}

impl GarpSender {
    /// Opens the socket and binds it to interface `ifindex`.
    pub fn open(ifindex: u32) -> io::Result<GarpSender> {
        // Protocol 0: no frame is ever queued to this socket.
        let fd = crate::iface::packet_socket(ifindex, 0)?;
        Ok(GarpSender { fd })
    }

    /// Transmits `frame` (a whole Ethernet frame) on the bound interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: frame is valid for reads of its length.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n as usize != frame.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short frame write",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_equals_keepalived_gratuitous_arp() {
        let keepalived = include_bytes!("fixtures/garp.bin");
        let mac = [0x5a, 0x79, 0xff, 0xda, 0x0d, 0x32];
        assert_eq!(&frame(mac, Ipv4Addr::new(10, 77, 0, 103)), keepalived);
    }

    #[test]
    fn frame_is_a_broadcast_request_for_the_address_itself() {
        let mac = [2, 0, 0, 0, 0, 9];
        let ip = Ipv4Addr::new(192, 0, 2, 1);
        let f = frame(mac, ip);
        assert_eq!(&f[0..6], &[0xff; 6], "Ethernet broadcast");
        assert_eq!(&f[6..12], &mac, "Ethernet source");
        assert_eq!(&f[12..14], &[0x08, 0x06], "ethertype ARP");
        assert_eq!(&f[14..20], &[0, 1, 0x08, 0x00, 6, 4], "Ethernet/IPv4");
        assert_eq!(&f[20..22], &[0, 1], "request");
        assert_eq!(&f[22..28], &mac, "sender MAC");
        assert_eq!(&f[28..32], &ip.octets(), "sender IP");
        assert_eq!(&f[38..42], &ip.octets(), "target IP = sender IP");
    }

    #[test]
    fn opening_an_unknown_interface_fails() {
        // Not root: EPERM; root: ENODEV. Either way an error, never a panic.
        assert!(GarpSender::open(u32::MAX).is_err());
        assert!(GarpSender::open(0).is_err());
        assert!(GarpSender::open(0x7fff_fff0).is_err());
    }
}
