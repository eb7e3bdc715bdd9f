//! The frames of `xdp_matches_the_model`: what the generator draws (see that test's doc).
//!
//! Contract: [`generate`] draws one frame (an ARP frame one time in eight, else a flow frame
//! of the services' ports, clients and backends, truncated or made non-IP one time in ten
//! each); [`address`] gives it the destination MAC of the interface it arrives on, or
//! another; [`corrupt`] flips 1 to 3 bits anywhere in a frame, after every checksum was
//! computed. Everything comes from the caller's [`Rng`], so a seed replays a run.

use std::net::Ipv4Addr;

use crate::diffkit::{DIRECTOR, MTU};
use crate::frames::{arp as arp_frame, frame, tcp_flags, Rng, Shape};
use crate::services::{backend, TCP, UDP, VIP};
use strait_lb::packet::arp::OwnedVips;

/// Service ports: 80 DR, 81 TUN, 82 NAT, 83 DR without backends, 84 DR and 85 NAT with
/// source hashing (sh), 86 NAT with backends of no MAC (one without neighbour, one
/// without route); 443 is not a service.
pub const PORTS: [u16; 8] = [80, 81, 82, 83, 84, 85, 86, 443];

/// A second VIP, owned in some phases; an address never owned.
pub const OWNED_TOO: [u8; 4] = [10, 0, 0, 101];
pub const NEVER_OWNED: [u8; 4] = [10, 0, 0, 102];

/// The VIPs answered for in phase `phase`: both, the VIP only, none (as after open).
pub fn owned_in(phase: usize) -> OwnedVips {
    let vips: &[[u8; 4]] = match phase % 3 {
        0 => &[VIP, OWNED_TOO],
        1 => &[VIP],
        _ => &[],
    };
    let vips: Vec<Ipv4Addr> = vips.iter().map(|v| Ipv4Addr::from(*v)).collect();
    OwnedVips::new(&vips).unwrap()
}

/// Another host on the LAN (its frames flooded to the director by a switch).
pub const OTHER_HOST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x55];

/// One frame of the run: mostly well-formed, some truncated or not IP (see the module doc), and
/// whether it is one of the ARP frames (which choose their own destination).
pub fn generate(rng: &mut Rng) -> (Vec<u8>, bool) {
    if rng.below(8) == 0 {
        let targets = [VIP, OWNED_TOO, NEVER_OWNED, DIRECTOR.ip];
        return (arp_frame(rng, DIRECTOR.mac, &targets), true);
    }
    // Few sources and ports, so flows repeat (established) about as often as they start.
    let vlan = (rng.below(4) == 0).then(|| rng.below(4096) as u16);
    let client = [192, 168, 1, 1 + rng.below(8) as u8];
    let client_port = 40000 + rng.below(8) as u16;
    // One frame in ten: a TUN datagram around the MTU (see the module doc).
    let boundary = rng.below(10) == 0;
    // One frame in three comes from a backend's service port (or a neighbour) to a client.
    let reply = rng.below(3) == 0;
    let b = backend(1 + rng.below(3) as u8, 0);
    let mut shape = Shape {
        vlan,
        options: 4 * rng.below(11) as usize,
        proto: if rng.below(2) == 0 { TCP } else { UDP },
        src: if reply { b.ip } else { client },
        dst: if reply { client } else { VIP },
        sport: if reply {
            b.port + u16::from(rng.below(4) == 0)
        } else {
            client_port
        },
        dport: if reply {
            client_port
        } else {
            PORTS[rng.below(PORTS.len() as u64) as usize]
        },
        payload: rng.below(60) as usize,
        frag: match rng.below(12) {
            0 => 0x2000,
            1 => 0x2000 | (1 + rng.below(50) as u16),
            2 => 1 + rng.below(50) as u16,
            3 => 0,
            _ => 0x4000,
        },
        padding: 4 * rng.below(3) as usize,
        udp_no_csum: rng.below(6) == 0,
        tcp_flags: tcp_flags(rng),
        ttl: match rng.below(16) {
            t @ 0..=2 => t as u8,
            _ => 64,
        },
    };
    if boundary {
        let inner = MTU as usize - 21 + rng.below(3) as usize;
        let l4 = if shape.proto == TCP { 20 } else { 8 };
        shape.src = client;
        shape.dst = VIP;
        shape.sport = client_port;
        shape.dport = 81;
        shape.payload = inner - 20 - shape.options - l4;
        shape.frag = if rng.below(2) == 0 { 0x4000 } else { 0 };
    }
    let mut f = frame(&shape);
    match rng.below(10) {
        // Truncated anywhere from the end of the Ethernet header on.
        0 => {
            let n = 14 + rng.below((f.len() - 13) as u64) as usize;
            f.truncate(n);
        }
        // Not IP (ARP, IPv6, a stacked VLAN tag).
        1 => {
            let at = if vlan.is_some() { 16 } else { 12 };
            let t: [[u8; 2]; 3] = [[0x08, 0x06], [0x86, 0xdd], [0x81, 0x00]];
            f[at..at + 2].copy_from_slice(&t[rng.below(3) as usize]);
        }
        _ => {}
    }
    (f, false)
}

/// Addresses `f` as received on the inner interface (`inner`) or the client-facing one:
/// to that interface's MAC most of the time; one frame in 32 each to another host, to a
/// multicast group, to the broadcast address, to the director's other interface.
pub fn address(rng: &mut Rng, mut f: Vec<u8>, inner: bool) -> Vec<u8> {
    let (ours, other_side) = if inner {
        (DIRECTOR.nat_mac, DIRECTOR.mac)
    } else {
        (DIRECTOR.mac, DIRECTOR.nat_mac)
    };
    let dest = match rng.below(32) {
        0 => OTHER_HOST,
        1 => [0x01, 0, 0x5e, 0, 0, 1 + rng.below(250) as u8],
        2 => [0xff; 6],
        3 => other_side,
        _ => ours,
    };
    f[0..6].copy_from_slice(&dest);
    f
}

/// Flips 1 to 3 random bits of `f`, at any offset (see the module doc); returns how many.
pub fn corrupt(rng: &mut Rng, f: &mut [u8]) -> usize {
    let n = 1 + rng.below(3) as usize;
    for _ in 0..n {
        let i = rng.below(f.len() as u64) as usize;
        f[i] ^= 1 << rng.below(8);
    }
    n
}
