//! The differential test's services and the model's noting connection table.
//!
//! Contract: [`services_alive`] builds the same service list for both datapaths (ports 80 DR,
//! 81 TUN, 82 NAT, 83 DR without backends, 84 DR and 85 NAT source-hashed, 86 NAT whose
//! backends have no MAC; TCP and UDP), three backends `backend(1..=3)` with the given
//! weights and liveness; [`PHASES`] is the run's schedule of (weights, alive); [`Noting`]
//! wraps the model's table and notes whether `decide` found an entry and inserted one.
#![allow(dead_code)]

use std::cell::Cell;

use strait_lb::maglev::DEFAULT_TABLE_SIZE;
use strait_lb::packet::parse::FiveTuple;
use strait_lb::packet::service::{
    Backend, ConnTable, FlowHash, MemConnTable, Mode, NatOrigin, Service, ServiceKey,
};

/// The VIP of every service.
pub const VIP: [u8; 4] = [10, 0, 0, 100];
/// IP protocol numbers.
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;

pub fn backend(i: u8, weight: u32) -> Backend {
    Backend {
        ip: [10, 0, 1, i],
        mac: [0x02, 0, 0, 0, 0x01, i],
        port: 8000 + u16::from(i),
        weight,
        alive: true,
    }
}

/// A TCP flow from client `192.168.1.<c>` to the VIP (clients 0 to 3 are routed through the
/// next-hop fixture's gateway).
pub fn client_flow(c: u8, sport: u16, dport: u16) -> FiveTuple {
    FiveTuple {
        src: [192, 168, 1, c],
        dst: VIP,
        sport,
        dport,
        proto: TCP,
    }
}

/// (weights, alive) of the three backends, one phase per 500 frames.
pub const PHASES: [([u32; 3], [bool; 3]); 12] = [
    ([100, 100, 100], [true, true, true]),
    ([0, 100, 100], [false, true, true]),
    ([100, 100, 100], [true, true, true]),
    ([0, 100, 100], [true, true, true]),
    ([0, 100, 300], [true, true, true]),
    ([0, 0, 300], [true, false, true]),
    ([100, 0, 0], [true, false, false]),
    ([0, 0, 0], [false, false, false]),
    ([100, 100, 100], [false, true, true]),
    ([0, 100, 300], [true, true, true]),
    ([100, 0, 100], [true, false, true]),
    ([100, 100, 100], [true, true, true]),
];

/// A connection table that notes what `decide` did with it (the model's own, inside).
pub struct Noting {
    pub table: MemConnTable,
    /// The last `get` found an entry.
    pub found: Cell<bool>,
    /// An `insert` happened (a new or rescheduled flow).
    pub inserted: bool,
}

impl ConnTable for Noting {
    fn get(&mut self, flow: &FiveTuple) -> Option<u32> {
        let b = self.table.get(flow);
        self.found.set(b.is_some());
        b
    }
    fn get_syn(&mut self, flow: &FiveTuple) -> Option<u32> {
        let b = self.table.get_syn(flow);
        self.found.set(b.is_some());
        b
    }
    fn mark_closing(&mut self, flow: &FiveTuple) {
        self.table.mark_closing(flow);
    }

    fn insert(&mut self, flow: FiveTuple, backend: u32) {
        self.inserted = true;
        self.table.insert(flow, backend);
    }
    fn insert_half_open(&mut self, flow: FiveTuple, backend: u32) {
        self.inserted = true;
        self.table.insert_half_open(flow, backend);
    }
    fn insert_reply_half_open(&mut self, reply: FiveTuple, origin: NatOrigin) {
        self.table.insert_reply_half_open(reply, origin);
    }
    fn admit(&mut self, flow: &FiveTuple, backend: u32) -> bool {
        self.table.admit(flow, backend)
    }
    fn get_reply(&mut self, reply: &FiveTuple) -> Option<NatOrigin> {
        self.table.get_reply(reply)
    }
    fn get_reply_syn(&mut self, reply: &FiveTuple) -> Option<NatOrigin> {
        self.table.get_reply_syn(reply)
    }
    fn insert_reply(&mut self, reply: FiveTuple, origin: NatOrigin) {
        self.table.insert_reply(reply, origin);
    }
}

pub fn services(weights: [u32; 3]) -> Vec<(ServiceKey, Service)> {
    services_alive(weights, [true; 3])
}

pub fn services_alive(weights: [u32; 3], alive: [bool; 3]) -> Vec<(ServiceKey, Service)> {
    let mut out = Vec::new();
    let modes = [
        (86, Mode::Nat, false, FlowHash::FiveTuple),
        (80, Mode::Dr, false, FlowHash::FiveTuple),
        (81, Mode::Tun, false, FlowHash::FiveTuple),
        (82, Mode::Nat, false, FlowHash::FiveTuple),
        (83, Mode::Dr, true, FlowHash::FiveTuple),
        (84, Mode::Dr, false, FlowHash::Source),
        (85, Mode::Nat, false, FlowHash::Source),
    ];
    for (port, mode, empty, hash) in modes {
        for proto in [TCP, UDP] {
            let mut bs: Vec<Backend> = if empty {
                Vec::new()
            } else {
                (1..=3u8)
                    .map(|i| Backend {
                        alive: alive[usize::from(i) - 1],
                        ..backend(i, weights[usize::from(i) - 1])
                    })
                    .collect()
            };
            if port == 86 {
                // 10.0.1.1 (neighbour), 10.0.1.3 (none), 10.0.2.3 (no route); no MACs.
                bs[2].ip = [10, 0, 2, 3];
                bs[1].ip = [10, 0, 1, 3];
                bs.iter_mut().for_each(|b| b.mac = [0; 6]);
            }
            let mut svc = Service::new(mode, bs, DEFAULT_TABLE_SIZE).unwrap();
            svc.hash = hash;
            out.push((
                ServiceKey {
                    vip: VIP,
                    port,
                    proto,
                },
                svc,
            ));
        }
    }
    out
}
