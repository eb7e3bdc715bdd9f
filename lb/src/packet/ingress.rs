//! Which frames are the director's: the interface a frame arrived on, and the Ethernet
//! destination a frame for us carries there. The model of step 1 of `ebpf/director.bpf.c`.
//!
//! Why: on a switched LAN a director also receives unicast frames addressed to another host,
//! flooded to every port when the switch no longer knows where that MAC is (its FDB entry aged
//! out, or the owner's port went down). A backup director of a failover pair would then
//! forward its master's traffic: duplicate segments at the backends while both live, and a
//! takeover that seems to happen before it did. The kernel drops such frames itself
//! (`PACKET_OTHERHOST`), but XDP runs before that check, so the datapaths make it.
//!
//! Contract:
//! * [`Ingress`] names the interface a frame arrived on: the client-facing one
//!   ([`Ingress::Client`], with the VIPs it answers ARP for; a one-armed director's only
//!   interface) or the inner one of a NAT director with an `inner_interface` that is another
//!   interface ([`Ingress::Inner`], which answers ARP for none).
//! * [`Ingress::mac`]: the MAC frames for us carry there: `Director::mac` on the client-facing
//!   interface, `Director::nat_mac` on the inner one.
//! * [`is_for`]: whether a frame's Ethernet destination (its first 6 bytes) is that MAC,
//!   exactly. Another host's unicast MAC, a multicast group and the broadcast address are not
//!   (broadcast ARP requests for owned VIPs are answered before this check, `super::arp`). A
//!   MAC of all zeroes (an interface without one, `lo`) matches a destination of all zeroes,
//!   as such frames carry. A frame shorter than 6 bytes has no destination: not ours.
//! * `super::process` hands a frame that is not ours to the kernel without a look
//!   ([`super::Action::NotOurs`], `XDP_PASS`, counted `pass_not_ours`): nothing is parsed,
//!   recorded or rewritten.

use super::arp::OwnedVips;
use super::rewrite::Director;

/// What the inner interface answers ARP for.
static NO_VIPS: OwnedVips = OwnedVips::NONE;

/// The interface a frame arrived on (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress<'a> {
    /// The client-facing interface (`interface`), answering ARP for these VIPs
    /// (`Datapath::set_owned`). Frames for us carry `Director::mac`.
    Client(&'a OwnedVips),
    /// The inner interface of a NAT director (`inner_interface`, another interface than the
    /// client-facing one): answers no ARP. Frames for us carry `Director::nat_mac`.
    Inner,
}

impl Ingress<'static> {
    /// The client-facing interface answering ARP for no VIP (a standalone director, or a
    /// failover director that owns none).
    pub const CLIENT: Ingress<'static> = Ingress::Client(&OwnedVips::NONE);
}

impl<'a> Ingress<'a> {
    /// The VIPs answered for on this interface (none on the inner one).
    pub fn owned(self) -> &'a OwnedVips {
        match self {
            Ingress::Client(owned) => owned,
            Ingress::Inner => &NO_VIPS,
        }
    }

    /// The MAC a frame for us carries as its destination on this interface.
    pub fn mac(self, director: &Director) -> [u8; 6] {
        match self {
            Ingress::Client(_) => director.mac,
            Ingress::Inner => director.nat_mac,
        }
    }
}

/// Whether `frame`'s Ethernet destination is `mac` (see the module doc).
pub fn is_for(frame: &[u8], mac: [u8; 6]) -> bool {
    frame.get(0..6) == Some(&mac[..])
}

#[cfg(test)]
mod tests {
    use super::super::arp::{self, OwnedVips};
    use super::super::service::{ConnTable, MemConnTable};
    use super::super::testutil::*;
    use super::super::{process, Action};
    use super::*;

    /// Another host on the LAN, a multicast group (224.0.0.1's), the broadcast address.
    const OTHER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x55];
    const MULTICAST: [u8; 6] = [0x01, 0, 0x5e, 0, 0, 0x01];
    const BROADCAST: [u8; 6] = [0xff; 6];

    fn to(mac: [u8; 6], mut frame: Vec<u8>) -> Vec<u8> {
        frame[0..6].copy_from_slice(&mac);
        frame
    }

    #[test]
    fn the_destination_must_be_the_interface_mac_exactly() {
        let f = Spec::tcp(1, 80).build();
        assert!(is_for(&f, DIRECTOR.mac));
        for mac in [OTHER, MULTICAST, BROADCAST, [0; 6], DIRECTOR.nat_mac] {
            assert!(!is_for(&f, mac), "{mac:02x?}");
        }
        // One bit off anywhere.
        for i in 0..48 {
            let mut m = DIRECTOR.mac;
            m[i / 8] ^= 1 << (i % 8);
            assert!(!is_for(&f, m), "bit {i}");
        }
        assert!(!is_for(&f[..5], DIRECTOR.mac), "no destination");
        assert!(is_for(&[0; 14], [0; 6]), "zero MAC, zero destination");
        assert_eq!(Ingress::CLIENT.mac(&DIRECTOR), DIRECTOR.mac);
        assert_eq!(Ingress::Inner.mac(&DIRECTOR), DIRECTOR.nat_mac);
        assert!(Ingress::Inner.owned().is_empty());
    }

    /// DR (80), TUN (81) and NAT (82), TCP and UDP, new and established: to another host's
    /// MAC, a multicast group or broadcast, the frame is passed as it is and nothing is
    /// recorded; to ours it is forwarded as before, and afterwards a frame of the now
    /// established flow to another MAC is still not forwarded.
    #[test]
    fn flows_to_another_mac_pass_unmodified_and_unrecorded() {
        let s = services();
        let t = hops();
        for port in [80, 81, 82] {
            for spec in [
                Spec::tcp(7100, port),
                Spec::syn(7101, port),
                Spec::udp(7102, port),
            ] {
                let f = spec.build();
                let mut conns = MemConnTable::new(16);
                for mac in [OTHER, MULTICAST, BROADCAST, DIRECTOR.nat_mac] {
                    let a = process(
                        &to(mac, f.clone()),
                        Ingress::CLIENT,
                        &s,
                        &mut conns,
                        &DIRECTOR,
                        &t,
                    );
                    assert_eq!(a, Action::NotOurs, "port {port} to {mac:02x?}");
                }
                assert_eq!(conns.len(), 0, "port {port}: nothing recorded");
                let ours = process(&f, Ingress::CLIENT, &s, &mut conns, &DIRECTOR, &t);
                let out = match ours {
                    Action::Tx(out) if port != 82 => out,
                    Action::Redirect(out) if port == 82 => out,
                    a => panic!("port {port}: {a:?}"),
                };
                assert_ne!(out, f, "rewritten");
                assert_eq!(conns.len(), 1, "port {port}: recorded");
                let b = conns.get(&parse_tuple(&f));
                let later = process(
                    &to(OTHER, f.clone()),
                    Ingress::CLIENT,
                    &s,
                    &mut conns,
                    &DIRECTOR,
                    &t,
                );
                assert_eq!(
                    later,
                    Action::NotOurs,
                    "port {port}: established, another MAC"
                );
                assert_eq!(conns.get(&parse_tuple(&f)), b);
            }
        }
    }

    fn parse_tuple(f: &[u8]) -> super::super::parse::FiveTuple {
        super::super::parse::parse(f).flow().expect("a flow").tuple
    }

    /// On the inner interface the inner MAC is the one that counts: a NAT reply to it is
    /// rewritten and redirected; to the client-facing MAC (or another) it is not ours. On the
    /// client-facing interface the inner MAC is not ours.
    #[test]
    fn on_the_inner_interface_the_inner_mac_counts() {
        let s = services();
        let t = hops();
        let mut conns = MemConnTable::new(16);
        let fwd = Spec::udp(7200, 82).build();
        let Action::Redirect(out) = process(&fwd, Ingress::CLIENT, &s, &mut conns, &DIRECTOR, &t)
        else {
            panic!("NAT forward");
        };
        let b = backend(out[33], 0);
        let mut reply = Spec::udp(b.port, 7200);
        reply.src = b.ip;
        reply.dst = CLIENT;
        let r = reply.build();
        for mac in [DIRECTOR.mac, OTHER, MULTICAST, BROADCAST] {
            let a = process(
                &to(mac, r.clone()),
                Ingress::Inner,
                &s,
                &mut conns,
                &DIRECTOR,
                &t,
            );
            assert_eq!(
                a,
                Action::NotOurs,
                "reply to {mac:02x?} on the inner interface"
            );
        }
        let Action::Redirect(back) = process(
            &to(DIRECTOR.nat_mac, r.clone()),
            Ingress::Inner,
            &s,
            &mut conns,
            &DIRECTOR,
            &t,
        ) else {
            panic!("a reply to the inner MAC is rewritten");
        };
        assert_eq!(back[26..30], VIP);
        assert_eq!(
            process(
                &to(DIRECTOR.nat_mac, fwd),
                Ingress::CLIENT,
                &s,
                &mut conns,
                &DIRECTOR,
                &t
            ),
            Action::NotOurs
        );
    }

    /// An interface without a MAC (`lo`): frames carry zero MACs, and are ours.
    #[test]
    fn a_zero_mac_takes_zero_destinations() {
        let s = services();
        let t = hops();
        let lo = Director {
            mac: [0; 6],
            nat_mac: [0; 6],
            ..DIRECTOR
        };
        let mut conns = MemConnTable::new(16);
        for port in [80, 81] {
            let f = to([0; 6], Spec::tcp(7300, port).build());
            let a = process(&f, Ingress::CLIENT, &s, &mut conns, &lo, &t);
            assert!(matches!(a, Action::Tx(_)), "port {port}: {a:?}");
            let a = process(&to(OTHER, f), Ingress::CLIENT, &s, &mut conns, &lo, &t);
            assert_eq!(a, Action::NotOurs);
        }
        let f = to([0; 6], Spec::udp(7301, 82).build());
        let a = process(&f, Ingress::Inner, &s, &mut conns, &lo, &t);
        assert!(matches!(a, Action::Redirect(_)), "{a:?}");
    }

    /// Step 0 comes first: a broadcast ARP request for an owned VIP is answered; any other
    /// broadcast or another host's ARP frame is not ours; an ARP frame to our MAC that is not
    /// answered is passed as not IPv4, as before.
    #[test]
    fn arp_is_answered_first_and_other_broadcasts_are_not_ours() {
        let s = services();
        let t = hops();
        let mut conns = MemConnTable::new(16);
        let owned = OwnedVips::new(&[VIP.into()]).unwrap();
        let sha = [0x02, 0, 0, 0, 0, 0xc1];
        let request = arp::request(sha, CLIENT, VIP);
        let here = Ingress::Client(&owned);
        let a = process(&request, here, &s, &mut conns, &DIRECTOR, &t);
        assert!(matches!(a, Action::ArpReply(_)), "{a:?}");
        let other = arp::request(sha, CLIENT, [10, 0, 0, 7]);
        assert_eq!(
            process(&other, here, &s, &mut conns, &DIRECTOR, &t),
            Action::NotOurs
        );
        assert_eq!(
            process(&request, Ingress::Inner, &s, &mut conns, &DIRECTOR, &t),
            Action::NotOurs
        );
        let unicast = to(DIRECTOR.mac, other.clone());
        assert_eq!(
            process(&unicast, here, &s, &mut conns, &DIRECTOR, &t),
            Action::Pass
        );
        assert_eq!(
            process(&to(OTHER, request), here, &s, &mut conns, &DIRECTOR, &t),
            Action::NotOurs
        );
        let ip_broadcast = to(BROADCAST, Spec::udp(7400, 80).build());
        assert_eq!(
            process(&ip_broadcast, here, &s, &mut conns, &DIRECTOR, &t),
            Action::NotOurs
        );
        assert_eq!(conns.len(), 0);
    }
}
