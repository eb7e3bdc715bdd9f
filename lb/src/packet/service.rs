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
//!   client 5-tuple → the VIP and port to restore). The XDP program keeps both in one
//!   set-associative table; [`MemConnTable`] is its model (`packet::conntable`: a full set
//!   replaces its least recently used entry).

use std::collections::HashMap;

use super::conntable::{self, Lookup, Put, SetTable};
use super::parse::FiveTuple;
use super::ratelimit::{Bucket, IcmpLimit};
use crate::abi::{DIR_FORWARD, DIR_REPLY};
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

impl ServiceKey {
    /// The service a client → VIP flow is addressed to: its destination, port and protocol.
    pub fn of(t: &FiveTuple) -> ServiceKey {
        ServiceKey {
            vip: t.dst,
            port: t.dport,
            proto: t.proto,
        }
    }
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

/// The reply direction of NAT flow `t` (client → VIP) to `backend`: the backend → client
/// 5-tuple, and the VIP and port its replies must appear to come from.
pub(crate) fn nat_reply(t: &FiveTuple, backend: &Backend) -> (FiveTuple, NatOrigin) {
    let reply = FiveTuple {
        src: backend.ip,
        dst: t.src,
        sport: backend.port,
        dport: t.sport,
        proto: t.proto,
    };
    let origin = NatOrigin {
        vip: t.dst,
        port: t.dport,
    };
    (reply, origin)
}

/// The connection table (see the module doc).
pub trait ConnTable {
    /// Backend index of an established client → VIP flow (marks the entry used).
    fn get(&mut self, flow: &FiveTuple) -> Option<u32>;
    /// Records the backend of a new flow (may evict an old entry).
    fn insert(&mut self, flow: FiveTuple, backend: u32);
    /// For a backend → client reply of a NAT flow: the VIP and port to restore (marks the
    /// entry used).
    fn get_reply(&mut self, reply: &FiveTuple) -> Option<NatOrigin>;
    /// Records the reply direction of a new NAT flow (may evict an old entry).
    fn insert_reply(&mut self, reply: FiveTuple, origin: NatOrigin);
    /// [`ConnTable::get`] for a segment carrying SYN (not an opening one: a SYN+ACK): the
    /// entry is used, but a half-open one stays half-open (`packet::conntable`).
    fn get_syn(&mut self, flow: &FiveTuple) -> Option<u32>;
    /// [`ConnTable::get_reply`] for a reply carrying SYN (the backend's SYN+ACK): the entry
    /// is used, but a half-open one stays half-open, so the answers of backends to a flood of
    /// spoofed SYNs do not make its entries established.
    fn get_reply_syn(&mut self, reply: &FiveTuple) -> Option<NatOrigin>;
    /// Marks the forward entry of `flow`, if any, closing: the flow sent a TCP FIN or RST
    /// (`packet::conntable`; its entry then expires after the closing timeout). A table
    /// without timeouts may ignore it.
    fn mark_closing(&mut self, _flow: &FiveTuple) {}
    /// Whether new flow `flow`, picked to `backend`, may be recorded: the CPU's (worker's)
    /// new-flow guard (`packet::ratelimit`), charged once per new flow; false: it is not
    /// recorded (`packet::decide`). A table without a guard records every one.
    fn admit(&mut self, _flow: &FiveTuple, _backend: u32) -> bool {
        true
    }
    /// [`ConnTable::insert`] of a new flow: half-open until a later packet without SYN uses
    /// it (`packet::conntable`).
    fn insert_half_open(&mut self, flow: FiveTuple, backend: u32) {
        self.insert(flow, backend);
    }
    /// The entry [`ConnTable::get`] returned was followed (its backend alive in the
    /// service): the XDP program then refreshes an entry recorded under another service
    /// version than the installed one, or under none (a synced entry, `Datapath::install_synced`),
    /// which clears its synced mark; a table that keeps the mark clears it here.
    fn refresh(&mut self, _flow: &FiveTuple) {}
    /// [`ConnTable::insert_reply`] of a new flow: half-open.
    fn insert_reply_half_open(&mut self, reply: FiveTuple, origin: NatOrigin) {
        self.insert_reply(reply, origin);
    }
}

/// Default bound of [`MemConnTable`] (entries, both directions), as the XDP table's.
pub const DEFAULT_CONN_CAPACITY: usize = 1 << 20;

/// An entry of [`MemConnTable`] (the key's direction says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Forward(u32),
    /// A forward entry installed by the HA sync and not recorded here since.
    Synced(u32),
    Reply(NatOrigin),
}

fn key_of(t: &FiveTuple, dir: u8) -> [u8; 16] {
    conntable::key_bytes(t.src, t.dst, t.sport, t.dport, t.proto, dir)
}

fn tuple_of(k: &[u8; 16]) -> FiveTuple {
    FiveTuple {
        src: [k[0], k[1], k[2], k[3]],
        dst: [k[4], k[5], k[6], k[7]],
        sport: u16::from_be_bytes([k[8], k[9]]),
        dport: u16::from_be_bytes([k[10], k[11]]),
        proto: k[12],
    }
}

/// Idle timeouts of forward entries, in ticks of the table's clock (0: never), by protocol.
/// NAT reply entries have none (`packet::conntable`, `ebpf/lib/conntrack.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct IdleTimeouts {
    /// TCP forward entries.
    pub tcp: u32,
    /// TCP forward entries marked closing (the flow sent a FIN or RST).
    pub tcp_fin: u32,
    /// UDP forward entries.
    pub udp: u32,
}

impl IdleTimeouts {
    /// Whether flow `f`, synced from the peer, is already idle past its timeout here (in
    /// ticks of `hz` a second): installing it would only evict a live entry for one that
    /// reads as expired (`Datapath::install_synced` refuses it).
    pub(crate) fn past(self, f: &crate::datapath::SyncedFlow, hz: u32) -> bool {
        let closing = f.state == crate::sync::FlowState::Closing;
        let timeout = self.of(f.tuple.proto, DIR_FORWARD)[usize::from(closing)];
        timeout != 0 && crate::datapath::ticks_of(f.idle, hz) > timeout
    }

    /// The timeouts `[open, closing]` of an entry of protocol `proto` in direction `dir`
    /// (`conntable::expired`).
    pub(crate) fn of(self, proto: u8, dir: u8) -> [u32; 2] {
        match (dir, proto) {
            (DIR_FORWARD, super::parse::PROTO_TCP) => [self.tcp, self.tcp_fin],
            (DIR_FORWARD, _) => [self.udp, self.udp],
            _ => [0, 0],
        }
    }
}

/// A live forward entry of [`MemConnTable::live_forward_entries`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LiveEntry {
    /// The client → VIP 5-tuple.
    pub flow: FiveTuple,
    /// Backend index.
    pub backend: u32,
    /// Ticks since the flow's last packet.
    pub idle: u32,
    /// The flow sent a TCP FIN or RST.
    pub closing: bool,
    /// Half-open (`packet::conntable`).
    pub half_open: bool,
    /// Installed by the HA sync, not recorded here since ([`MemConnTable::install`]).
    pub synced: bool,
}

/// In-memory [`ConnTable`]: one set-associative table for both directions, the XDP
/// program's (`packet::conntable`: same sets, hash and replacement under the same seed). Its
/// clock (`MemConnTable::set_now`, tick 0 until set) stamps records and uses; forward
/// entries idle past `IdleTimeouts` read as absent (counted, `MemConnTable::expired`).
#[derive(Debug, Clone)]
pub struct MemConnTable {
    table: SetTable<Entry>,
    forward: usize,
    evicted: u64,
    evicted_half_open: u64,
    expired: u64,
    now: u32,
    idle: IdleTimeouts,
    /// The new-flow guard ([`MemConnTable::with_new_flow_guard`]), its bucket and clock.
    guard: IcmpLimit,
    bucket: Bucket,
    now_ns: u64,
    unadmitted: u64,
    /// The key of the last forward lookup when it found a synced entry (for `refresh`).
    synced_hit: Option<[u8; 16]>,
}

impl MemConnTable {
    /// A table bounded at `capacity` entries (see `conntable::sets_for`), set hash seed 0.
    pub fn new(capacity: usize) -> MemConnTable {
        MemConnTable::with_seed(capacity, 0)
    }

    /// A table bounded at `capacity` entries whose set hash is keyed by `seed`.
    pub fn with_seed(capacity: usize, seed: u64) -> MemConnTable {
        MemConnTable {
            table: SetTable::new(capacity, seed),
            forward: 0,
            evicted: 0,
            evicted_half_open: 0,
            expired: 0,
            now: 0,
            idle: IdleTimeouts::default(),
            guard: IcmpLimit::NONE,
            bucket: Bucket::default(),
            now_ns: 1,
            unadmitted: 0,
            synced_hit: None,
        }
    }

    /// The same table with a new-flow guard ([`ConnTable::admit`]: one bucket, the table's
    /// nanosecond clock, [`MemConnTable::set_now_ns`]; 1 until set).
    pub fn with_new_flow_guard(mut self, guard: IcmpLimit) -> MemConnTable {
        self.guard = guard;
        self
    }

    /// Sets the new-flow guard's clock (nanoseconds, never 0).
    pub fn set_now_ns(&mut self, ns: u64) {
        self.now_ns = ns.max(1);
    }

    /// New flows the guard did not admit ([`ConnTable::admit`] false).
    pub fn unadmitted(&self) -> u64 {
        self.unadmitted
    }

    /// Evictions ([`MemConnTable::evicted`]) of half-open entries.
    pub fn evicted_half_open(&self) -> u64 {
        self.evicted_half_open
    }

    /// Its idle timeouts (ticks of its clock).
    pub(crate) fn idle_timeouts(&self) -> IdleTimeouts {
        self.idle
    }

    /// The same table with idle timeouts.
    pub(crate) fn with_timeouts(mut self, idle: IdleTimeouts) -> MemConnTable {
        self.idle = idle;
        self
    }

    /// Sets the table's clock: the tick of the next lookups, records and installs.
    pub fn set_now(&mut self, now: u32) {
        self.now = now;
    }

    /// Forward entries found idle past their timeout (each read as absent).
    pub(crate) fn expired(&self) -> u64 {
        self.expired
    }

    /// The forward entries not idle past their timeout at tick `now`, set by set.
    pub(crate) fn live_forward_entries(&self, now: u32) -> Vec<LiveEntry> {
        self.table
            .entries_marked()
            .into_iter()
            .filter_map(|(k, e, seen, half_open)| match e {
                Entry::Forward(b) | Entry::Synced(b)
                    if !conntable::expired(seen, now, self.idle.of(k[12], k[13])) =>
                {
                    Some(LiveEntry {
                        flow: tuple_of(&k),
                        backend: b,
                        idle: conntable::idle_ticks(seen, now),
                        closing: seen & conntable::SEEN_CLOSING != 0,
                        half_open,
                        synced: matches!(e, Entry::Synced(_)),
                    })
                }
                _ => None,
            })
            .collect()
    }

    fn lookup(&mut self, key: [u8; 16], syn: bool) -> Option<Entry> {
        let idle = self.idle.of(key[12], key[13]);
        match self.table.get_at(&key, self.now, idle, syn) {
            Lookup::Hit(e) => Some(e),
            Lookup::Expired => {
                self.expired += 1;
                None
            }
            Lookup::Miss => None,
        }
    }

    fn forward(&mut self, flow: &FiveTuple, syn: bool) -> Option<u32> {
        let key = key_of(flow, DIR_FORWARD);
        let found = self.lookup(key, syn);
        self.synced_hit = matches!(found, Some(Entry::Synced(_))).then_some(key);
        match found {
            Some(Entry::Forward(b) | Entry::Synced(b)) => Some(b),
            _ => None,
        }
    }

    fn reply(&mut self, reply: &FiveTuple, syn: bool) -> Option<NatOrigin> {
        match self.lookup(key_of(reply, DIR_REPLY), syn) {
            Some(Entry::Reply(o)) => Some(o),
            _ => None,
        }
    }

    /// Number of forward entries.
    pub fn len(&self) -> usize {
        self.forward
    }

    /// Whether the table holds no forward entry.
    pub fn is_empty(&self) -> bool {
        self.forward == 0
    }

    /// Entries (either direction) replaced as least recently used of a full set.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// The backend of a forward entry, without marking it used.
    pub fn peek(&self, flow: &FiveTuple) -> Option<u32> {
        match self.table.peek(&key_of(flow, DIR_FORWARD)) {
            Some(Entry::Forward(b) | Entry::Synced(b)) => Some(b),
            _ => None,
        }
    }

    /// The forward entries (client → VIP 5-tuple, backend index), set by set.
    pub fn forward_entries(&self) -> Vec<(FiveTuple, u32)> {
        self.table
            .entries()
            .into_iter()
            .filter_map(|(k, e)| match e {
                Entry::Forward(b) | Entry::Synced(b) => Some((tuple_of(&k), b)),
                Entry::Reply(_) => None,
            })
            .collect()
    }

    fn put(&mut self, key: [u8; 16], entry: Entry, half_open: bool) {
        let put = if half_open {
            self.table.put_half_open(key, entry, self.now)
        } else {
            self.table.put_at(key, entry, self.now)
        };
        if matches!(put, Put::EvictedHalfOpen(_)) {
            self.evicted_half_open += 1;
        }
        match put {
            Put::Replaced => {}
            Put::Added => self.forward += usize::from(key[13] == DIR_FORWARD),
            Put::Evicted(old) | Put::EvictedHalfOpen(old) => {
                self.evicted += 1;
                self.forward += usize::from(key[13] == DIR_FORWARD);
                self.forward -= usize::from(old[13] == DIR_FORWARD);
            }
        }
    }
}

impl Default for MemConnTable {
    fn default() -> Self {
        MemConnTable::new(DEFAULT_CONN_CAPACITY)
    }
}

impl ConnTable for MemConnTable {
    fn get(&mut self, flow: &FiveTuple) -> Option<u32> {
        self.forward(flow, false)
    }

    fn get_syn(&mut self, flow: &FiveTuple) -> Option<u32> {
        self.forward(flow, true)
    }

    fn insert(&mut self, flow: FiveTuple, backend: u32) {
        self.put(key_of(&flow, DIR_FORWARD), Entry::Forward(backend), false);
    }

    fn insert_half_open(&mut self, flow: FiveTuple, backend: u32) {
        self.put(key_of(&flow, DIR_FORWARD), Entry::Forward(backend), true);
    }

    fn insert_reply_half_open(&mut self, reply: FiveTuple, origin: NatOrigin) {
        self.put(key_of(&reply, DIR_REPLY), Entry::Reply(origin), true);
    }

    fn admit(&mut self, _flow: &FiveTuple, _backend: u32) -> bool {
        let admitted = self.bucket.allow(self.guard, self.now_ns);
        self.unadmitted += u64::from(!admitted);
        admitted
    }

    fn get_reply(&mut self, reply: &FiveTuple) -> Option<NatOrigin> {
        self.reply(reply, false)
    }

    fn get_reply_syn(&mut self, reply: &FiveTuple) -> Option<NatOrigin> {
        self.reply(reply, true)
    }

    fn insert_reply(&mut self, reply: FiveTuple, origin: NatOrigin) {
        self.put(key_of(&reply, DIR_REPLY), Entry::Reply(origin), false);
    }

    fn mark_closing(&mut self, flow: &FiveTuple) {
        self.table.mark_closing(&key_of(flow, DIR_FORWARD));
    }

    fn refresh(&mut self, flow: &FiveTuple) {
        // Only a synced entry changes: the last lookup says whether this one is.
        let key = key_of(flow, DIR_FORWARD);
        if self.synced_hit.take() == Some(key) {
            self.table.update(&key, |e| match e {
                Entry::Synced(b) => Entry::Forward(b),
                other => other,
            });
        }
    }
}

mod synced;
#[cfg(test)]
mod synced_tests;

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
    fn conn_table_keeps_both_directions_in_one_bounded_table() {
        use crate::packet::conntable::WAYS;
        // A bound of 4: one set of WAYS ways; the key after that evicts the least recently used.
        let mut t = MemConnTable::new(4);
        t.insert(tuple(1), 0);
        t.insert(tuple(2), 1);
        t.insert(tuple(1), 2);
        assert_eq!(t.get(&tuple(1)), Some(2));
        let o = NatOrigin {
            vip: [1, 2, 3, 4],
            port: 80,
        };
        t.insert_reply(tuple(900), o);
        assert_eq!(t.get_reply(&tuple(900)), Some(o));
        assert_eq!(
            t.get(&tuple(900)),
            None,
            "a reply entry is not a forward one"
        );
        assert_eq!(t.get_reply(&tuple(1)), None);
        let fill = 3..WAYS as u16;
        for n in fill.clone() {
            t.insert(tuple(n), 0);
        }
        assert_eq!((t.len(), t.evicted()), (WAYS - 1, 0));
        // Recency: 2 (oldest), 1, 900 (reply), 3, ...: the lookups above changed nothing (the
        // entries they hit were the most recent; misses touch nothing).
        t.insert(tuple(500), 3);
        assert_eq!((t.len(), t.evicted()), (WAYS - 1, 1));
        assert_eq!(t.peek(&tuple(2)), None);
        let mut listed = t.forward_entries();
        listed.sort_by_key(|e| e.0.sport);
        let mut want: Vec<(FiveTuple, u32)> = vec![(tuple(1), 2)];
        want.extend(fill.map(|n| (tuple(n), 0)));
        want.push((tuple(500), 3));
        assert_eq!(listed, want);
        t.insert(tuple(501), 1);
        assert_eq!(t.peek(&tuple(1)), None);
        assert_eq!((t.len(), t.evicted()), (WAYS - 1, 2));
        // The reply is the least recently used now.
        t.insert(tuple(502), 1);
        assert_eq!(t.get_reply(&tuple(900)), None);
        assert_eq!((t.len(), t.evicted()), (WAYS, 3));
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

    #[test]
    fn a_synced_flow_idle_past_its_timeout_here_is_past() {
        use crate::sync::FlowState;
        use std::time::Duration;
        let idle = IdleTimeouts {
            tcp: 900,
            tcp_fin: 30,
            udp: 0,
        };
        let flow = |proto, state, ms| crate::datapath::SyncedFlow {
            tuple: FiveTuple { proto, ..tuple(1) },
            service: ServiceKey {
                vip: [10, 0, 0, 100],
                port: 80,
                proto,
            },
            backend: 0,
            state,
            idle: Duration::from_millis(ms),
        };
        // Ticks of 1 ms: open TCP after 900, closing after 30, UDP never.
        assert!(!idle.past(&flow(6, FlowState::Open, 900), 1000));
        assert!(idle.past(&flow(6, FlowState::Open, 901), 1000));
        assert!(!idle.past(&flow(6, FlowState::HalfOpen, 30), 1000));
        assert!(idle.past(&flow(6, FlowState::Closing, 31), 1000));
        assert!(!idle.past(&flow(17, FlowState::Open, 10_000_000), 1000));
        // At 250 Hz, 900 ticks are 3.6 s.
        assert!(!idle.past(&flow(6, FlowState::Open, 3_600), 250));
        assert!(idle.past(&flow(6, FlowState::Open, 3_700), 250));
    }

    #[test]
    fn forward_entries_expire_by_protocol_and_replies_never() {
        let mut t = MemConnTable::new(64).with_timeouts(IdleTimeouts {
            tcp: 10,
            tcp_fin: 4,
            udp: 0,
        });
        let tcp = tuple(1);
        let udp = FiveTuple {
            proto: 17,
            ..tuple(2)
        };
        let reply = FiveTuple {
            src: [10, 0, 1, 1],
            dst: tcp.src,
            sport: 8080,
            dport: tcp.sport,
            proto: 6,
        };
        let origin = NatOrigin {
            vip: tcp.dst,
            port: 80,
        };
        t.set_now(100);
        t.insert(tcp, 1);
        t.insert(udp, 2);
        t.insert_reply(reply, origin);
        t.set_now(110);
        assert_eq!((t.get(&tcp), t.get(&udp)), (Some(1), Some(2)));
        assert_eq!(t.live_forward_entries(114).len(), 2);
        t.set_now(122);
        assert_eq!(t.get(&tcp), None, "idle 12 > 10");
        assert_eq!(t.get(&udp), Some(2), "UDP: no timeout");
        assert_eq!(t.get_reply(&reply), Some(origin), "replies: no timeout");
        assert_eq!((t.expired(), t.len()), (1, 2));
        let live = t.live_forward_entries(122);
        assert_eq!(live.len(), 1);
        assert_eq!((live[0].flow, live[0].backend, live[0].idle), (udp, 2, 0));
        // Recorded again: live.
        t.insert(tcp, 0);
        assert_eq!(t.get(&tcp), Some(0));
        assert_eq!(t.len(), 2);
        // A FIN: the closing timeout (4) from now on.
        t.mark_closing(&tcp);
        t.set_now(125);
        assert_eq!(t.get(&tcp), Some(0));
        let closing = t.live_forward_entries(128);
        assert!(closing
            .iter()
            .any(|e| e.flow == tcp && e.closing && e.idle == 4));
        t.set_now(130);
        assert_eq!(t.get(&tcp), None, "idle 6 > 4 once closing");
        assert_eq!(t.expired(), 2);
    }
}
