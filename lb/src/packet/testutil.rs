//! Test helpers: a packet builder with correct checksums, a xorshift generator, a service
//! fixture and a next-hop table. Test-only (`#[cfg(test)]`).

use super::csum::{ipv4_header_checksum, l4_checksum, l4_csum_offset};
use super::nexthop::{Egress, Route, StaticNextHops};
use super::parse::{PROTO_TCP, PROTO_UDP};
use super::rewrite::Director;
use super::service::{Backend, Mode, Service, ServiceKey, Services};

/// Director used by the fixtures.
pub(crate) const DIRECTOR: Director = Director {
    mac: [0x02, 0, 0, 0, 0, 0xd1],
    ip: [10, 0, 0, 2],
    mtu: 1500,
    nat_mac: NAT_EGRESS_MAC,
    nat_ip: [10, 0, 1, 254],
    nat_mtu: 1500,
};
/// Client address of the fixtures.
pub(crate) const CLIENT: [u8; 4] = [192, 168, 1, 10];
/// VIP of the fixtures (port 80 = DR, 81 = TUN, 82 = NAT, on TCP and UDP).
pub(crate) const VIP: [u8; 4] = [10, 0, 0, 100];

/// A frame to build.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub vlan: Option<u16>,
    pub options: Vec<u8>,
    pub proto: u8,
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub sport: u16,
    pub dport: u16,
    pub payload: Vec<u8>,
    /// Raw flags + fragment offset word.
    pub frag: u16,
    pub tos: u8,
    pub id: u16,
    /// UDP only: send checksum 0 (none).
    pub udp_no_csum: bool,
    /// Bytes of Ethernet padding after the datagram.
    pub padding: usize,
    /// TCP only: the flags byte (default PSH|ACK, mid-connection).
    pub tcp_flags: u8,
    /// The IPv4 TTL (default 64).
    pub ttl: u8,
}

impl Spec {
    /// A TCP segment (PSH|ACK) from the client to the VIP, DF set, no options.
    pub(crate) fn tcp(sport: u16, dport: u16) -> Spec {
        Spec {
            vlan: None,
            options: Vec::new(),
            proto: PROTO_TCP,
            src: CLIENT,
            dst: VIP,
            sport,
            dport,
            payload: b"hello".to_vec(),
            frag: 0x4000,
            tos: 0,
            id: 0x1234,
            udp_no_csum: false,
            padding: 0,
            tcp_flags: 0x18,
            ttl: 64,
        }
    }

    /// An opening TCP SYN from the client to the VIP (otherwise as [`Spec::tcp`]).
    pub(crate) fn syn(sport: u16, dport: u16) -> Spec {
        Spec {
            tcp_flags: 0x02,
            ..Spec::tcp(sport, dport)
        }
    }

    /// A UDP packet from the client to the VIP.
    pub(crate) fn udp(sport: u16, dport: u16) -> Spec {
        Spec {
            proto: PROTO_UDP,
            ..Spec::tcp(sport, dport)
        }
    }

    /// The frame bytes, with correct IPv4 and TCP/UDP checksums.
    pub(crate) fn build(&self) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 0xd1, 0x02, 0, 0, 0, 0, 0xc1];
        if let Some(v) = self.vlan {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&v.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let l3 = f.len();
        let mut l4 = Vec::new();
        l4.extend_from_slice(&self.sport.to_be_bytes());
        l4.extend_from_slice(&self.dport.to_be_bytes());
        if self.proto == PROTO_UDP {
            let len = (8 + self.payload.len()) as u16;
            l4.extend_from_slice(&len.to_be_bytes());
            l4.extend_from_slice(&[0, 0]);
        } else {
            l4.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, self.tcp_flags]);
            l4.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
        }
        l4.extend_from_slice(&self.payload);
        let at = l4_csum_offset(self.proto);
        if !(self.proto == PROTO_UDP && self.udp_no_csum) {
            let mut c = l4_checksum(self.src, self.dst, self.proto, &l4, at);
            if self.proto == PROTO_UDP && c == 0 {
                c = 0xffff;
            }
            l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        let hlen = 20 + self.options.len();
        let total = (hlen + l4.len()) as u16;
        f.push(0x40 | (hlen / 4) as u8);
        f.push(self.tos);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&self.id.to_be_bytes());
        f.extend_from_slice(&self.frag.to_be_bytes());
        f.extend_from_slice(&[self.ttl, self.proto, 0, 0]);
        f.extend_from_slice(&self.src);
        f.extend_from_slice(&self.dst);
        f.extend_from_slice(&self.options);
        let c = ipv4_header_checksum(&f[l3..l3 + hlen]);
        f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&l4);
        f.resize(f.len() + self.padding, 0);
        f
    }
}

/// Xorshift64 generator (Marsaglia), deterministic per seed.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Backend `i` (1-based): 10.0.1.i, MAC 02:00:00:00:01:i, NAT port 8000 + i.
pub(crate) fn backend(i: u8, weight: u32) -> Backend {
    Backend {
        ip: [10, 0, 1, i],
        mac: [0x02, 0, 0, 0, 0x01, i],
        port: 8000 + u16::from(i),
        weight,
        alive: true,
    }
}

/// Services on [`VIP`]: port 80 DR, 81 TUN, 82 NAT, for TCP and UDP, three equal backends,
/// Maglev size 65537.
pub(crate) fn services() -> Services {
    let mut s = Services::new();
    for (port, mode) in [(80, Mode::Dr), (81, Mode::Tun), (82, Mode::Nat)] {
        for proto in [PROTO_TCP, PROTO_UDP] {
            let bs = vec![backend(1, 100), backend(2, 100), backend(3, 100)];
            let svc = match Service::new(mode, bs, crate::maglev::DEFAULT_TABLE_SIZE) {
                Ok(svc) => svc,
                Err(e) => panic!("fixture service: {e}"),
            };
            s.insert(
                ServiceKey {
                    vip: VIP,
                    port,
                    proto,
                },
                svc,
            );
        }
    }
    s
}

/// MAC of the NAT egress interface in [`hops`].
pub(crate) const NAT_EGRESS_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xe1];
/// MAC of the client egress interface in [`hops`].
pub(crate) const CLIENT_EGRESS_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xe0];
/// MAC of the client-side gateway in [`hops`].
pub(crate) const GATEWAY_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// Next hops: backends on-link on the NAT egress (each with its own MAC as neighbour), every
/// client through gateway 10.0.0.1 on the client egress.
pub(crate) fn hops() -> StaticNextHops {
    let mut t = StaticNextHops::default();
    t.macs.insert(Egress::Nat, NAT_EGRESS_MAC);
    t.macs.insert(Egress::Client, CLIENT_EGRESS_MAC);
    t.routes.push(Route {
        prefix: [10, 0, 1, 0],
        len: 24,
        egress: Egress::Nat,
        via: None,
    });
    t.routes.push(Route {
        prefix: [0; 4],
        len: 0,
        egress: Egress::Client,
        via: Some([10, 0, 0, 1]),
    });
    for i in 1..=3 {
        let b = backend(i, 0);
        t.neighbours.insert((Egress::Nat, b.ip), b.mac);
    }
    t.neighbours
        .insert((Egress::Client, [10, 0, 0, 1]), GATEWAY_MAC);
    t
}
