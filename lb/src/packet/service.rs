//! The tables the director consults: services (VIP, port, protocol → mode, backends, Maglev
//! table) and the connection table.
//!
//! Contract:
//! * A [`Service`]'s Maglev table indexes its `backends` vector; a backend's index is its
//!   identity in the connection table, so the control plane keeps indices stable while flows
//!   may use them (it drains a backend with weight 0 instead of removing it).
//! * A backend's `alive` flag says whether it may keep its flows: a drained backend (weight
//!   0, alive) keeps them; a dead one (health says down) loses them, as LVS does with
//!   `expire_nodest_conn=1`: `decide` reschedules their next packet as a new flow.
//! * [`ConnTable`] holds two maps, both filled by `decide` when a new flow is balanced: the
//!   forward map (client → VIP 5-tuple → backend index) and, for NAT, the reply map (backend →
//!   client 5-tuple → the VIP and port to restore). The XDP program keeps both in one LRU hash
//!   map; [`MemConnTable`] is a bounded in-memory model of it (oldest insert evicted first).

use std::collections::{HashMap, VecDeque};

use super::parse::FiveTuple;
use crate::maglev::{self, MaglevError, Table};

/// Forwarding mode of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Direct routing: rewrite MACs, transmit on the same interface.
    Dr,
    /// IP-in-IP tunnel (RFC 2003) to the backend.
    Tun,
    /// Destination NAT to the backend address and port; replies are rewritten back.
    Nat,
}

impl Mode {
    /// Stable name for config, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Dr => "dr",
            Mode::Tun => "tun",
            Mode::Nat => "nat",
        }
    }
}

/// Which fields of a new flow choose its table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FlowHash {
    /// The whole 5-tuple (`maglev::flow_hash(src, dst, sport, dport, proto)`): Maglev and wrr.
    #[default]
    FiveTuple,
    /// The client address only (`maglev::flow_hash(src, 0.0.0.0, 0, 0, 0)`): source hashing,
    /// so every connection of one client goes to one backend.
    Source,
}

impl FlowHash {
    /// The hash of a flow under this rule.
    pub fn of(self, t: &FiveTuple) -> u64 {
        match self {
            FlowHash::FiveTuple => maglev::flow_hash(t.src, t.dst, t.sport, t.dport, t.proto),
            FlowHash::Source => maglev::flow_hash(t.src, [0; 4], 0, 0, 0),
        }
    }
}

/// One backend of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// IPv4 address.
    pub ip: [u8; 4],
    /// MAC of the backend, or of the next hop towards it (DR, TUN and NAT forward).
    pub mac: [u8; 6],
    /// Destination port after NAT (ignored by DR and TUN).
    pub port: u16,
    /// Maglev weight; 0 drains (no new flows, established ones stay).
    pub weight: u32,
    /// May keep its established flows (false: down, they are rescheduled).
    pub alive: bool,
}

impl Backend {
    /// Maglev identity: `a.b.c.d:port`.
    pub fn id(&self) -> String {
        let [a, b, c, d] = self.ip;
        format!("{a}.{b}.{c}.{d}:{}", self.port)
    }
}

/// Key of the service table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    /// Virtual IP.
    pub vip: [u8; 4],
    /// Virtual port.
    pub port: u16,
    /// IP protocol (TCP or UDP).
    pub proto: u8,
}

/// A balanced service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Forwarding mode.
    pub mode: Mode,
    /// Maglev table over `backends`; `None` when no backend has a weight above 0.
    pub table: Option<Table>,
    /// Backends, indexed by the table and the connection table.
    pub backends: Vec<Backend>,
    /// Which fields of a new flow pick its table entry.
    pub hash: FlowHash,
}

impl Service {
    /// Builds the Maglev table (of `table_size` slots) from the backends' ids and weights.
    ///
    /// A service whose backends all have weight 0 (or none at all) gets no table: new flows
    /// are dropped, established ones keep their backend.
    pub fn new(
        mode: Mode,
        backends: Vec<Backend>,
        table_size: u32,
    ) -> Result<Service, MaglevError> {
        let weighted: Vec<maglev::Backend> = backends
            .iter()
            .map(|b| maglev::Backend {
                id: b.id(),
                weight: b.weight,
            })
            .collect();
        let table = match Table::build(&weighted, table_size) {
            Ok(t) => Some(t),
            Err(MaglevError::NoBackends) => None,
            Err(e) => return Err(e),
        };
        Ok(Service {
            mode,
            table,
            backends,
            hash: FlowHash::FiveTuple,
        })
    }
}

/// The service table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Services {
    map: HashMap<ServiceKey, Service>,
}

impl Services {
    /// An empty table.
    pub fn new() -> Services {
        Services::default()
    }

    /// Adds or replaces a service.
    pub fn insert(&mut self, key: ServiceKey, service: Service) {
        self.map.insert(key, service);
    }

    /// The service for a destination, if any.
    pub fn get(&self, key: &ServiceKey) -> Option<&Service> {
        self.map.get(key)
    }
}

/// Where a NAT reply must appear to come from: the service's VIP and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NatOrigin {
    /// The virtual IP the client connected to.
    pub vip: [u8; 4],
    /// The virtual port.
    pub port: u16,
}

/// The connection table (see the module doc).
pub trait ConnTable {
    /// Backend index of an established client → VIP flow.
    fn get(&self, flow: &FiveTuple) -> Option<u32>;
    /// Records the backend of a new flow (may evict an old entry).
    fn insert(&mut self, flow: FiveTuple, backend: u32);
    /// For a backend → client reply of a NAT flow: the VIP and port to restore.
    fn get_reply(&self, reply: &FiveTuple) -> Option<NatOrigin>;
    /// Records the reply direction of a new NAT flow (may evict an old entry).
    fn insert_reply(&mut self, reply: FiveTuple, origin: NatOrigin);
}

/// Default bound of [`MemConnTable`] (entries per map), as the BPF LRU map's `max_entries`.
pub const DEFAULT_CONN_CAPACITY: usize = 1 << 20;

/// A bounded map that evicts its oldest insert when full.
#[derive(Debug, Clone)]
struct Bounded<V> {
    map: HashMap<FiveTuple, V>,
    order: VecDeque<FiveTuple>,
    capacity: usize,
}

impl<V> Bounded<V> {
    fn new(capacity: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    fn insert(&mut self, key: FiveTuple, value: V) {
        if self.map.insert(key, value).is_some() {
            return;
        }
        self.order.push_back(key);
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }
}

/// In-memory [`ConnTable`]: two bounded maps (see [`DEFAULT_CONN_CAPACITY`]).
#[derive(Debug, Clone)]
pub struct MemConnTable {
    forward: Bounded<u32>,
    reply: Bounded<NatOrigin>,
}

impl MemConnTable {
    /// A table holding at most `capacity` entries per direction (at least 1).
    pub fn new(capacity: usize) -> MemConnTable {
        MemConnTable {
            forward: Bounded::new(capacity),
            reply: Bounded::new(capacity),
        }
    }

    /// Number of forward entries.
    pub fn len(&self) -> usize {
        self.forward.map.len()
    }

    /// Whether the forward map is empty.
    pub fn is_empty(&self) -> bool {
        self.forward.map.is_empty()
    }

    /// The forward entries (client → VIP 5-tuple, backend index), oldest insert first.
    pub fn forward_entries(&self) -> impl Iterator<Item = (&FiveTuple, u32)> + '_ {
        let f = &self.forward;
        f.order
            .iter()
            .filter_map(move |t| f.map.get(t).map(|&b| (t, b)))
    }
}

impl Default for MemConnTable {
    fn default() -> Self {
        MemConnTable::new(DEFAULT_CONN_CAPACITY)
    }
}

impl ConnTable for MemConnTable {
    fn get(&self, flow: &FiveTuple) -> Option<u32> {
        self.forward.map.get(flow).copied()
    }

    fn insert(&mut self, flow: FiveTuple, backend: u32) {
        self.forward.insert(flow, backend);
    }

    fn get_reply(&self, reply: &FiveTuple) -> Option<NatOrigin> {
        self.reply.map.get(reply).copied()
    }

    fn insert_reply(&mut self, reply: FiveTuple, origin: NatOrigin) {
        self.reply.insert(reply, origin);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(n: u16) -> FiveTuple {
        FiveTuple {
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 100],
            sport: n,
            dport: 80,
            proto: 6,
        }
    }

    #[test]
    fn conn_table_is_bounded_and_evicts_the_oldest() {
        let mut t = MemConnTable::new(2);
        t.insert(tuple(1), 0);
        t.insert(tuple(2), 1);
        t.insert(tuple(1), 2);
        assert_eq!(t.get(&tuple(1)), Some(2));
        t.insert(tuple(3), 0);
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(&tuple(1)), None);
        assert_eq!(t.get(&tuple(2)), Some(1));
        assert_eq!(t.get(&tuple(3)), Some(0));
        let listed: Vec<(FiveTuple, u32)> = t.forward_entries().map(|(k, b)| (*k, b)).collect();
        assert_eq!(listed, vec![(tuple(2), 1), (tuple(3), 0)]);
        let o = NatOrigin {
            vip: [1, 2, 3, 4],
            port: 80,
        };
        t.insert_reply(tuple(9), o);
        assert_eq!(t.get_reply(&tuple(9)), Some(o));
        assert_eq!(t.get_reply(&tuple(1)), None);
    }

    #[test]
    fn service_without_weight_has_no_table() {
        let b = Backend {
            ip: [10, 0, 0, 11],
            mac: [2, 0, 0, 0, 0, 11],
            port: 8080,
            weight: 0,
            alive: true,
        };
        assert_eq!(b.id(), "10.0.0.11:8080");
        let s = Service::new(Mode::Dr, vec![b.clone()], 7).unwrap();
        assert!(s.table.is_none());
        let s = Service::new(Mode::Dr, Vec::new(), 7).unwrap();
        assert!(s.table.is_none());
        assert_eq!(
            Service::new(Mode::Dr, vec![b], 8),
            Err(MaglevError::SizeNotPrime(8))
        );
        assert_eq!(Mode::Tun.as_str(), "tun");
    }

    #[test]
    fn source_hash_ignores_everything_but_the_client_address() {
        let a = tuple(1);
        let mut b = tuple(2);
        b.dst = [10, 9, 9, 9];
        b.proto = 17;
        assert_eq!(FlowHash::Source.of(&a), FlowHash::Source.of(&b));
        assert_ne!(FlowHash::FiveTuple.of(&a), FlowHash::FiveTuple.of(&b));
        let mut c = tuple(1);
        c.src = [10, 0, 0, 2];
        assert_ne!(FlowHash::Source.of(&a), FlowHash::Source.of(&c));
    }
}
