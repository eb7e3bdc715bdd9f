//! The ARP responder for the VIPs a director owns (RFC 826): the model of `ebpf/lib/arp.h`.
//!
//! Why the datapath answers and not the kernel: on a director of a failover pair the VIPs are
//! no kernel addresses. Only the VRRP master may make them reachable, and it does so by
//! answering ARP for them here ([`crate::datapath::Datapath::set_owned`]). A director killed
//! without a word (SIGKILL) loses its XDP link or packet sockets with its process, so it stops
//! answering at once; a kernel address would outlive the process and keep drawing the
//! clients' traffic to a host that no longer forwards it.
//!
//! Contract ([`answer`], pure): a frame is answered when all of these hold, in this order:
//! * it has at least [`ARP_FRAME_LEN`] bytes (Ethernet 14 + ARP for IPv4 over Ethernet 28;
//!   longer frames carry Ethernet padding, kept as it is);
//! * its EtherType (bytes 12..14, no VLAN tag: a tagged ARP frame is the kernel's) is
//!   [`ETH_P_ARP`];
//! * its Ethernet destination is the broadcast address or the interface's MAC (a unicast
//!   request to another host is not ours, as the kernel's `arp_rcv` drops `PACKET_OTHERHOST`);
//! * hardware type 1 (Ethernet), protocol type `0x0800`, hardware length 6, protocol length 4,
//!   operation 1 (request);
//! * sender IP ≠ target IP: a gratuitous ARP (an announcement) asks nothing. An RFC 5227
//!   probe (sender 0.0.0.0) is answered, as the kernel answers one for its own address;
//! * the target IP is in the [`OwnedVips`] given (the caller gives the set of the interface
//!   the frame arrived on: none on the inner interface).
//!
//! The reply is the request rewritten in place (same length, bytes after the ARP payload
//! untouched): Ethernet destination := the request's sender hardware address, source := the
//! interface's MAC; operation := 2 (reply); sender hardware := the interface's MAC, sender
//! IP := the VIP (the request's target IP); target hardware and IP := the request's sender
//! hardware and IP. Anything else is `None`: the frame goes on, unchanged, to the IP path,
//! which hands it to the kernel.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::parse::{ETH_HLEN, ETH_P_IPV4};

/// ARP EtherType.
pub const ETH_P_ARP: u16 = 0x0806;
/// ARP payload length for IPv4 over Ethernet (RFC 826).
pub const ARP_LEN: usize = 28;
/// The shortest frame that can be answered: Ethernet header and ARP payload.
pub const ARP_FRAME_LEN: usize = ETH_HLEN + ARP_LEN;
/// ARP hardware type of Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;
/// ARP operation: request.
pub const OP_REQUEST: u16 = 1;
/// ARP operation: reply.
pub const OP_REPLY: u16 = 2;
/// Most VIPs one director answers for (`STRAIT_MAX_OWNED`, the bound of the `owned` map).
pub const MAX_OWNED: usize = 256;

/// The Ethernet broadcast address.
const BROADCAST: [u8; 6] = [0xff; 6];

// Offsets inside the frame (Ethernet header first, then the ARP payload).
const HTYPE: usize = ETH_HLEN;
const PTYPE: usize = ETH_HLEN + 2;
const HLEN: usize = ETH_HLEN + 4;
const PLEN: usize = ETH_HLEN + 5;
const OP: usize = ETH_HLEN + 6;
const SHA: usize = ETH_HLEN + 8;
const SPA: usize = ETH_HLEN + 14;
const THA: usize = ETH_HLEN + 18;
const TPA: usize = ETH_HLEN + 24;

/// More VIPs than [`MAX_OWNED`] were asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{count} distinct VIPs to answer ARP for, at most {MAX_OWNED}")]
pub struct TooManyOwned {
    /// How many distinct VIPs were given.
    pub count: usize,
}

/// The VIPs an interface answers ARP requests for (at most [`MAX_OWNED`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedVips {
    vips: BTreeSet<[u8; 4]>,
}

impl OwnedVips {
    /// No VIP: every ARP frame is the kernel's.
    pub const NONE: OwnedVips = OwnedVips {
        vips: BTreeSet::new(),
    };

    /// The set of `vips` (duplicates count once); more than [`MAX_OWNED`] is refused.
    pub fn new(vips: &[Ipv4Addr]) -> Result<OwnedVips, TooManyOwned> {
        let vips: BTreeSet<[u8; 4]> = vips.iter().map(|v| v.octets()).collect();
        if vips.len() > MAX_OWNED {
            return Err(TooManyOwned { count: vips.len() });
        }
        Ok(OwnedVips { vips })
    }

    /// Whether `ip` is owned.
    pub fn contains(&self, ip: [u8; 4]) -> bool {
        self.vips.contains(&ip)
    }

    /// Whether no VIP is owned.
    pub fn is_empty(&self) -> bool {
        self.vips.is_empty()
    }

    /// The owned VIPs, in address order.
    pub fn iter(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.vips.iter().map(|v| Ipv4Addr::from(*v))
    }
}

fn be16(frame: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([frame[at], frame[at + 1]])
}

fn ip_at(frame: &[u8], at: usize) -> [u8; 4] {
    [frame[at], frame[at + 1], frame[at + 2], frame[at + 3]]
}

/// Whether `frame` is a request this interface answers (see the module doc).
fn is_owned_request(frame: &[u8], owned: &OwnedVips, mac: [u8; 6]) -> bool {
    if frame.len() < ARP_FRAME_LEN || be16(frame, 12) != ETH_P_ARP {
        return false;
    }
    let dst = &frame[0..6];
    if dst != BROADCAST && dst != mac {
        return false;
    }
    let ipv4_over_ethernet = be16(frame, HTYPE) == HTYPE_ETHERNET
        && be16(frame, PTYPE) == ETH_P_IPV4
        && frame[HLEN] == 6
        && frame[PLEN] == 4;
    if !ipv4_over_ethernet || be16(frame, OP) != OP_REQUEST {
        return false;
    }
    let (spa, tpa) = (ip_at(frame, SPA), ip_at(frame, TPA));
    spa != tpa && owned.contains(tpa)
}

/// Turns an answered request into its reply in place (see the module doc); `false`, frame
/// untouched, when it is not one.
pub fn reply_in_place(frame: &mut [u8], owned: &OwnedVips, mac: [u8; 6]) -> bool {
    if !is_owned_request(frame, owned, mac) {
        return false;
    }
    let mut sha = [0u8; 6];
    sha.copy_from_slice(&frame[SHA..SHA + 6]);
    let (spa, tpa) = (ip_at(frame, SPA), ip_at(frame, TPA));
    frame[0..6].copy_from_slice(&sha);
    frame[6..12].copy_from_slice(&mac);
    frame[OP..OP + 2].copy_from_slice(&OP_REPLY.to_be_bytes());
    frame[SHA..SHA + 6].copy_from_slice(&mac);
    frame[SPA..SPA + 4].copy_from_slice(&tpa);
    frame[THA..THA + 6].copy_from_slice(&sha);
    frame[TPA..TPA + 4].copy_from_slice(&spa);
    true
}

/// The reply to `frame` when this interface answers it (see the module doc).
pub fn answer(frame: &[u8], owned: &OwnedVips, mac: [u8; 6]) -> Option<Vec<u8>> {
    let mut out = frame.to_vec();
    reply_in_place(&mut out, owned, mac).then_some(out)
}

/// An ARP frame for IPv4 over Ethernet (for tests and the integration tests' clients):
/// Ethernet from `sha` to `dst`, operation `op`, sender `sha`/`spa`, target `tha`/`tpa`.
pub fn frame(
    dst: [u8; 6],
    op: u16,
    (sha, spa): ([u8; 6], [u8; 4]),
    (tha, tpa): ([u8; 6], [u8; 4]),
) -> Vec<u8> {
    let mut f = Vec::with_capacity(ARP_FRAME_LEN);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    f.extend_from_slice(&HTYPE_ETHERNET.to_be_bytes());
    f.extend_from_slice(&ETH_P_IPV4.to_be_bytes());
    f.extend_from_slice(&[6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa);
    f
}

/// A broadcast request from `sha`/`spa` for `tpa` (target hardware address zero).
pub fn request(sha: [u8; 6], spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    frame(BROADCAST, OP_REQUEST, (sha, spa), ([0; 6], tpa))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xd1];
    const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
    const CLIENT: [u8; 4] = [10, 0, 0, 7];
    const VIP: [u8; 4] = [10, 0, 0, 100];

    fn owned() -> OwnedVips {
        OwnedVips::new(&[VIP.into(), Ipv4Addr::new(10, 0, 0, 101)]).unwrap()
    }

    #[test]
    fn an_owned_request_becomes_its_reply() {
        let req = request(CLIENT_MAC, CLIENT, VIP);
        let out = answer(&req, &owned(), MAC).expect("answered");
        let want = frame(CLIENT_MAC, OP_REPLY, (MAC, VIP), (CLIENT_MAC, CLIENT));
        assert_eq!(out, want);
        // Field by field, as RFC 826 has it.
        assert_eq!(out[0..6], CLIENT_MAC, "to the requester");
        assert_eq!(out[6..12], MAC, "from the interface");
        assert_eq!(out[12..14], [8, 6]);
        assert_eq!(out[20..22], [0, 2], "reply");
        assert_eq!(
            (out[22..28].to_vec(), out[28..32].to_vec()),
            (MAC.to_vec(), VIP.to_vec())
        );
        assert_eq!(
            (out[32..38].to_vec(), out[38..42].to_vec()),
            (CLIENT_MAC.to_vec(), CLIENT.to_vec())
        );
    }

    #[test]
    fn padding_is_kept_and_a_unicast_request_to_us_is_answered() {
        let mut req = request(CLIENT_MAC, CLIENT, VIP);
        req.extend_from_slice(&[0xab; 18]); // padded to 60 bytes
        let out = answer(&req, &owned(), MAC).unwrap();
        assert_eq!(out.len(), 60);
        assert_eq!(out[42..], [0xab; 18]);
        // A neighbour re-validating its entry asks our MAC directly.
        let mut unicast = request(CLIENT_MAC, CLIENT, VIP);
        unicast[0..6].copy_from_slice(&MAC);
        assert_eq!(
            answer(&unicast, &owned(), MAC),
            answer(&req[..42], &owned(), MAC)
        );
    }

    #[test]
    fn an_rfc5227_probe_is_answered() {
        let probe = request(CLIENT_MAC, [0; 4], VIP);
        let out = answer(&probe, &owned(), MAC).unwrap();
        assert_eq!(out[38..42], [0; 4]);
        assert_eq!(out[0..6], CLIENT_MAC);
    }

    #[test]
    fn everything_else_is_left_alone() {
        let ok = request(CLIENT_MAC, CLIENT, VIP);
        let o = owned();
        let not_owned = request(CLIENT_MAC, CLIENT, [10, 0, 0, 102]);
        let gratuitous = request(CLIENT_MAC, VIP, VIP);
        let reply = frame(MAC, OP_REPLY, (CLIENT_MAC, CLIENT), (MAC, VIP));
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("not owned", not_owned),
            ("gratuitous", gratuitous),
            ("a reply", reply),
            ("truncated", ok[..41].to_vec()),
            ("empty", Vec::new()),
        ];
        let mut patched = |what: &'static str, at: usize, bytes: &[u8]| {
            let mut f = ok.clone();
            f[at..at + bytes.len()].copy_from_slice(bytes);
            cases.push((what, f));
        };
        patched("IPv4 EtherType", 12, &[8, 0]);
        patched("VLAN tagged", 12, &[0x81, 0]);
        patched("htype 6 (IEEE 802)", HTYPE, &[0, 6]);
        patched("ptype IPv6", PTYPE, &[0x86, 0xdd]);
        patched("hlen 8", HLEN, &[8]);
        patched("plen 16", PLEN, &[16]);
        patched("op 3 (RARP)", OP, &[0, 3]);
        patched("to another host", 0, &[2, 0, 0, 0, 0, 0x55]);
        patched("multicast destination", 0, &[1, 0, 0x5e, 0, 0, 1]);
        for (what, f) in &cases {
            assert_eq!(answer(f, &o, MAC), None, "{what}");
            let mut copy = f.clone();
            assert!(!reply_in_place(&mut copy, &o, MAC), "{what}");
            assert_eq!(&copy, f, "{what}: untouched");
        }
        assert!(answer(&ok, &OwnedVips::NONE, MAC).is_none(), "owning none");
        assert!(answer(&ok, &o, MAC).is_some());
    }

    /// `packet::process` answers before the IP path, from the director's MAC, and recording
    /// nothing; every other ARP frame is passed (broadcast ones as not ours, `super::ingress`);
    /// IP frames are decided as without VIPs.
    #[test]
    fn process_answers_first_and_passes_the_rest() {
        use crate::packet::service::MemConnTable;
        use crate::packet::testutil::{hops, services, Spec, DIRECTOR, VIP as SERVICE_VIP};
        use crate::packet::{process, Action, Ingress};
        let (s, t) = (services(), hops());
        let owned = OwnedVips::new(&[SERVICE_VIP.into()]).unwrap();
        let here = Ingress::Client(&owned);
        let mut conns = MemConnTable::new(16);
        let req = request(CLIENT_MAC, CLIENT, SERVICE_VIP);
        let a = process(&req, here, &s, &mut conns, &DIRECTOR, &t);
        let want = frame(
            CLIENT_MAC,
            OP_REPLY,
            (DIRECTOR.mac, SERVICE_VIP),
            (CLIENT_MAC, CLIENT),
        );
        assert_eq!(a, Action::ArpReply(want));
        assert_eq!(conns.len(), 0);
        for f in [
            request(CLIENT_MAC, CLIENT, [10, 0, 0, 102]),
            request(CLIENT_MAC, SERVICE_VIP, SERVICE_VIP),
        ] {
            assert_eq!(
                process(&f, here, &s, &mut conns, &DIRECTOR, &t),
                Action::NotOurs
            );
            let mut to_us = f.clone();
            to_us[0..6].copy_from_slice(&DIRECTOR.mac);
            assert_eq!(
                process(&to_us, here, &s, &mut conns, &DIRECTOR, &t),
                Action::Pass
            );
        }
        let none = process(&req, Ingress::CLIENT, &s, &mut conns, &DIRECTOR, &t);
        assert_eq!(none, Action::NotOurs);
        let ip = Spec::tcp(4000, 80).build();
        let with = process(&ip, here, &s, &mut MemConnTable::new(16), &DIRECTOR, &t);
        let without = process(&ip, Ingress::CLIENT, &s, &mut conns, &DIRECTOR, &t);
        assert!(matches!(with, Action::Tx(_)), "{with:?}");
        assert_eq!(with, without);
    }

    #[test]
    fn the_set_is_bounded_and_deduplicated() {
        let many: Vec<Ipv4Addr> = (0..=MAX_OWNED as u32)
            .map(|i| Ipv4Addr::from(0x0a00_0000 + i))
            .collect();
        assert_eq!(
            OwnedVips::new(&many),
            Err(TooManyOwned {
                count: MAX_OWNED + 1
            })
        );
        let full = OwnedVips::new(&many[..MAX_OWNED]).unwrap();
        assert_eq!(full.iter().count(), MAX_OWNED);
        let twice = OwnedVips::new(&[VIP.into(), VIP.into()]).unwrap();
        assert_eq!(twice.iter().collect::<Vec<_>>(), [Ipv4Addr::from(VIP)]);
        assert!(OwnedVips::NONE.is_empty() && !twice.is_empty());
        let mut dup = many[..MAX_OWNED].to_vec();
        dup.push(many[0]);
        assert!(OwnedVips::new(&dup).is_ok(), "a duplicate does not count");
    }
}
