//! Frames and services of the XDP benchmark (`benches/xdp.rs`), and the reference model's
//! verdict for a frame.
//!
//! Contract: [`tcp_frame`] builds a 64-byte frame (Ethernet to the director's MAC, IPv4 without
//! options, TCP ACK|PSH with 10 payload bytes, valid checksums) from `src:sport` to the VIP;
//! [`syn_frame`] a 64-byte opening SYN (IPv4 total length 48: TCP header with the options MSS
//! 1460, NOP, window scale 7, as the reference measurements' `mkpkt.py`, then 2 bytes of
//! Ethernet padding);
//! [`Fixture`] holds the three services (DR, TUN, NAT on [`DR_PORT`], [`TUN_PORT`],
//! [`NAT_PORT`]; three backends each, MACs [`backend_macs`]) and the model's connection table, and [`Fixture::model`]
//! runs `strait_lb::packet::process` on a frame, returning the XDP action and output bytes the
//! director must produce, and [`Fixture::director`] loads a fresh director (production-sized
//! table) with the same services. (A `harness = false` bench runs no `#[test]`s: the bench itself
//! checks every frame with `csum::frame_ok` and against the model before timing.)

use super::netns::nexthops;
use strait_lb::abi;
use strait_lb::maglev::DEFAULT_TABLE_SIZE;
use strait_lb::packet::csum::{ipv4_header_checksum, l4_checksum, l4_csum_offset};
use strait_lb::packet::nexthop::StaticNextHops;
use strait_lb::packet::rewrite::Director;
use strait_lb::packet::service::{
    Backend, MemConnTable, Mode, Service, ServiceKey, Services, DEFAULT_CONN_CAPACITY,
};
use strait_lb::packet::{process, Action, Ingress};
use strait_lb::xdp::XdpDirector;

/// The DR service's port.
pub const DR_PORT: u16 = 80;
/// The TUN service's port.
pub const TUN_PORT: u16 = 81;
/// The NAT service's port.
pub const NAT_PORT: u16 = 82;

const TCP: u8 = 6;
const VIP: [u8; 4] = [10, 0, 0, 100];
const DIRECTOR: Director = Director {
    mac: [0x02, 0, 0, 0, 0, 0xd1],
    ip: [10, 0, 0, 2],
    mtu: 1500,
    nat_mac: nexthops::IN_MAC,
    nat_ip: nexthops::IN_IP,
    nat_mtu: 1500,
};
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xc1];

/// The director's addresses as the BPF program's global, with the egress interfaces of the
/// namespace built by `netns::nexthops::setup` (the benchmark runs inside it).
pub fn bpf_director() -> abi::Director {
    abi::Director {
        mtu: DIRECTOR.mtu,
        nat_mtu: DIRECTOR.nat_mtu,
        ..nexthops::director(DIRECTOR.mac, DIRECTOR.ip)
    }
}

/// The `i`-th (< 65 536) client address of series `series`: distinct for distinct arguments.
pub fn client(series: u8, i: u32) -> [u8; 4] {
    let [_, _, hi, lo] = i.to_be_bytes();
    [172, 16u8.wrapping_add(series), hi, lo]
}

/// A 64-byte TCP frame `src:sport` -> VIP:`dport` (see the module doc).
pub fn tcp_frame(src: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut l4 = Vec::with_capacity(30);
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    // seq 1, ack 1, data offset 5, ACK|PSH, window 65535, checksum 0, urgent 0.
    l4.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    l4.extend((0..10u8).map(|i| b'a' + i));
    frame_of(src, l4, 0)
}

/// A 64-byte opening SYN `src:sport` -> VIP:`dport` (see the module doc).
pub fn syn_frame(src: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut l4 = Vec::with_capacity(28);
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    // seq 1000, ack 0, data offset 7, SYN, window 64240, checksum 0, urgent 0, options.
    l4.extend_from_slice(&[
        0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0x70, 0x02, 0xfa, 0xf0, 0, 0, 0, 0,
    ]);
    l4.extend_from_slice(&[2, 4, 0x05, 0xb4, 1, 3, 3, 7]);
    frame_of(src, l4, 2)
}

/// Ethernet + IPv4 (no options, DF) + `l4` (its checksum filled in) + `padding` zero bytes.
fn frame_of(src: [u8; 4], mut l4: Vec<u8>, padding: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&DIRECTOR.mac);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let at = l4_csum_offset(TCP);
    let c = l4_checksum(src, VIP, TCP, &l4, at);
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    let l3 = f.len();
    let total = (20 + l4.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, TCP, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&VIP);
    let c = ipv4_header_checksum(&f[l3..l3 + 20]);
    f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&l4);
    f.resize(f.len() + padding, 0);
    f
}

/// The backends' MACs, as in every service (the reference program's backends too).
pub fn backend_macs() -> [[u8; 6]; 3] {
    [1u8, 2, 3].map(|i| [0x02, 0, 0, 0, 0x01, i])
}

/// The model side: services and connection table.
pub struct Fixture {
    services: Services,
    conns: MemConnTable,
    hops: StaticNextHops,
}

impl Fixture {
    /// The three services (see the module doc), installed in the model.
    pub fn new() -> Result<Fixture, Box<dyn std::error::Error>> {
        let mut services = Services::new();
        for (key, svc) in Self::build()? {
            services.insert(key, svc);
        }
        Ok(Fixture {
            services,
            conns: MemConnTable::new(DEFAULT_CONN_CAPACITY),
            hops: nexthops::table(),
        })
    }

    fn build() -> Result<Vec<(ServiceKey, Service)>, Box<dyn std::error::Error>> {
        let mut out = Vec::new();
        for (port, mode) in [
            (DR_PORT, Mode::Dr),
            (TUN_PORT, Mode::Tun),
            (NAT_PORT, Mode::Nat),
        ] {
            let backends = (1..=3u8)
                .map(|i| Backend {
                    ip: [10, 0, 1, i],
                    mac: backend_macs()[usize::from(i - 1)],
                    port: 8000 + u16::from(i),
                    weight: 1,
                    alive: true,
                })
                .collect();
            let svc = Service::new(mode, backends, DEFAULT_TABLE_SIZE)?;
            let key = ServiceKey {
                vip: VIP,
                port,
                proto: TCP,
            };
            out.push((key, svc));
        }
        Ok(out)
    }

    /// The services in install order (DR, TUN, NAT).
    pub fn services_list(&self) -> Vec<(ServiceKey, Service)> {
        [DR_PORT, TUN_PORT, NAT_PORT]
            .iter()
            .filter_map(|&port| {
                let key = ServiceKey {
                    vip: VIP,
                    port,
                    proto: TCP,
                };
                self.services.get(&key).map(|s| (key, s.clone()))
            })
            .collect()
    }

    /// A freshly loaded director (connection table of the default size, `abi::MAX_CONNS`)
    /// with the three services installed.
    pub fn director(&self) -> Result<XdpDirector, Box<dyn std::error::Error>> {
        self.director_with(bpf_director())
    }

    /// The same with a new-flow guard of one flow per second per CPU (burst 1): every new
    /// flow after the first goes over budget (DR/TUN forwarded unrecorded, NAT dropped).
    pub fn director_guarded(&self) -> Result<XdpDirector, Box<dyn std::error::Error>> {
        let limit = strait_lb::packet::ratelimit::IcmpLimit::guard(1, 1);
        self.director_with(abi::Director {
            new_flow_cost: limit.cost_ns,
            new_flow_cap: limit.cap_ns,
            ..bpf_director()
        })
    }

    fn director_with(
        &self,
        settings: abi::Director,
    ) -> Result<XdpDirector, Box<dyn std::error::Error>> {
        let mut director = XdpDirector::load(settings, abi::MAX_CONNS)?;
        for (slot, (key, svc)) in (0u32..).zip(self.services_list()) {
            director.install_service(&key, &svc, 2 * slot, 3 * slot)?;
        }
        Ok(director)
    }

    /// The XDP action and output bytes the model gives `frame` (recording new flows).
    pub fn model(&mut self, frame: &[u8]) -> (u32, Vec<u8>) {
        match process(
            frame,
            Ingress::CLIENT,
            &self.services,
            &mut self.conns,
            &DIRECTOR,
            &self.hops,
        ) {
            Action::Pass | Action::NotOurs => (2, frame.to_vec()),
            Action::Drop(_) => (1, frame.to_vec()),
            Action::Tx(out)
            | Action::TooBig(out)
            | Action::TimeExceeded(out)
            | Action::ArpReply(out) => (3, out),
            Action::Redirect(out) => (4, out),
        }
    }
}
