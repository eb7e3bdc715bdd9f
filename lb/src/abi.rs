//! Rust mirrors of the BPF ABI in `ebpf/include/strait.h` (map keys, values and settings).
//!
//! Contract: every type here is `#[repr(C)]` with the same field order, widths and explicit
//! pad fields as its C struct, so its bytes are the map's bytes. Fields named `__be*` in C
//! hold network-order bytes: they are `[u8; N]` here (no host/network confusion possible).
//! The unit test parses the header's `_Static_assert` sizes and `STRAIT_OFFSET` lines and
//! compares them with `size_of` / `offset_of!`, and checks the shared constants.

// Without clang (`strait_no_bpf`) the XDP loader, the main user of these mirrors, is left out.
#![cfg_attr(strait_no_bpf, allow(dead_code))]

/// Largest Maglev table size (`STRAIT_MAGLEV_MAX`, the default M).
pub(crate) const MAGLEV_MAX: u32 = 65_537;
/// Maglev table slots in the `maglev` map (`STRAIT_MAGLEV_SLOTS`).
pub(crate) const MAGLEV_SLOTS: u32 = 64;
/// Entries of the `services` map (`STRAIT_MAX_SERVICES`).
pub(crate) const MAX_SERVICES: u32 = 32;
/// Entries of the `backends` and `backend_stats` maps (`STRAIT_MAX_BACKENDS`).
pub(crate) const MAX_BACKENDS: u32 = 4096;
/// Default bound of the connection table, in entries (`STRAIT_MAX_CONNS`).
pub const MAX_CONNS: u32 = 1 << 20;
/// Entries per set of the connection table (`STRAIT_CONN_WAYS`).
pub(crate) const CONN_WAYS: usize = 8;
/// Attempts at claiming a set of the connection table (`STRAIT_CONN_CLAIM_TRIES`).
pub(crate) const CONN_CLAIM_TRIES: u32 = 64;
/// `vport` of a forward entry installed by the HA sync and not recorded since
/// (`STRAIT_CONN_SYNCED`; the program's record writes 0).
pub(crate) const CONN_SYNCED: [u8; 2] = [0xff, 0xff];
/// Largest per-CPU connection cache, in entries (`STRAIT_CONN_CACHE_MAX`).
pub(crate) const CONN_CACHE_MAX: u32 = 1 << 15;
/// Entries of the `owned` map (`STRAIT_MAX_OWNED`); the datapaths bound the set with
/// `packet::arp::MAX_OWNED`, which the ABI test pins to this.
#[cfg(test)]
pub(crate) const MAX_OWNED: u32 = 256;

/// `STRAIT_MODE_DR`.
pub(crate) const MODE_DR: u8 = 0;
/// `STRAIT_MODE_TUN`.
pub(crate) const MODE_TUN: u8 = 1;
/// `STRAIT_MODE_NAT`.
pub(crate) const MODE_NAT: u8 = 2;
/// `STRAIT_HASH_FIVE_TUPLE`: new flows hashed on the 5-tuple (maglev, wrr).
pub(crate) const HASH_FIVE_TUPLE: u8 = 0;
/// `STRAIT_HASH_SOURCE`: new flows hashed on the client address (sh).
pub(crate) const HASH_SOURCE: u8 = 1;
/// Bytes of the `flow_events` ring buffer (`STRAIT_FLOW_EVENTS_BYTES`).
pub const FLOW_EVENTS_BYTES: u32 = 1 << 18;
/// `STRAIT_EGRESS_NAT`: egress devmap entry of NAT forwards.
pub(crate) const EGRESS_NAT: u32 = 0;
/// `STRAIT_EGRESS_CLIENT`: egress devmap entry of NAT replies.
pub(crate) const EGRESS_CLIENT: u32 = 1;
/// `STRAIT_EGRESS_MAX`: entries of the egress devmap.
pub const EGRESS_MAX: u32 = 2;
/// `STRAIT_DIR_FORWARD`: a client → VIP entry of `conns`.
pub const DIR_FORWARD: u8 = 0;
/// `STRAIT_DIR_REPLY`: a backend → client (NAT reply) entry of `conns`.
pub const DIR_REPLY: u8 = 1;
/// `STRAIT_BACKEND_DEAD` (`Backend::flags`): down, its recorded flows are rescheduled.
pub(crate) const BACKEND_DEAD: u8 = 1;

/// Names of the maps and globals in the object (symbol names).
pub(crate) mod names {
    /// `services` hash map.
    pub(crate) const SERVICES: &str = "services";
    /// `service_gen` array.
    pub(crate) const SERVICE_GEN: &str = "service_gen";
    /// `backends` array.
    pub(crate) const BACKENDS: &str = "backends";
    /// `maglev` array.
    pub(crate) const MAGLEV: &str = "maglev";
    /// `conns` array of [`super::ConnSet`] (the set-associative connection table).
    pub(crate) const CONNS: &str = "conns";
    /// `conn_cache` per-CPU array of [`super::ConnCached`].
    pub(crate) const CONN_CACHE: &str = "conn_cache";
    /// `conn_forward` per-CPU array (one `i64`: forward entries held, summed over CPUs).
    pub(crate) const CONN_FORWARD: &str = "conn_forward";
    /// `counters` per-CPU array.
    pub(crate) const COUNTERS: &str = "counters";
    /// `backend_stats` per-CPU array.
    pub(crate) const BACKEND_STATS: &str = "backend_stats";
    /// `flow_events` ring buffer.
    pub(crate) const FLOW_EVENTS: &str = "flow_events";
    /// `egress` devmap.
    pub(crate) const EGRESS: &str = "egress";
    /// The `volatile const` director settings.
    pub(crate) const DIRECTOR: &str = "STRAIT_DIRECTOR";
    /// `owned` hash map (VIP, network order, -> `u32` 0): the VIPs answered for (ARP).
    pub(crate) const OWNED: &str = "owned";
    /// The XDP program.
    pub(crate) const PROGRAM: &str = "strait_director";
}

/// Indices of the `counters` map (`enum strait_counter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Counter {
    /// Not IPv4, passed.
    PassNotIpv4 = 0,
    /// Malformed, passed.
    PassMalformed = 1,
    /// Later fragment or first fragment without ports, passed.
    PassFragment = 2,
    /// Other protocol or not a service, passed.
    PassOther = 3,
    /// New flow forwarded (TX, or redirect for NAT).
    TxNew = 4,
    /// Established flow forwarded.
    TxEstablished = 5,
    /// New flow of a service without backend, dropped.
    DropNoBackend = 6,
    /// Table entry outside the backend list, dropped.
    DropBadBackend = 7,
    /// Encapsulation impossible, dropped.
    DropEncapTooBig = 8,
    /// A NAT reply rewritten back to its VIP and redirected.
    NatReply = 9,
    /// A NAT frame without a route through its egress interface, dropped.
    DropNoRoute = 10,
    /// A NAT frame whose next hop has no MAC, dropped.
    DropNoNeigh = 11,
    /// A flow event lost (ring buffer full); the packet was handled normally.
    EventLost = 12,
    /// A TUN datagram over the MTU once encapsulated, or a NAT one over its egress MTU, DF
    /// clear: dropped (XDP cannot fragment).
    DropTooBig = 13,
    /// The same with DF set: ICMP "fragmentation needed" sent back to its sender.
    IcmpTooBig = 14,
    /// A NAT forward or reply that arrived with TTL <= 1: ICMP "time exceeded" sent back to
    /// its sender.
    IcmpTimeExceeded = 15,
    /// A new flow's record replaced the least recently used entry of a full set of the
    /// connection table (the table is too small for the flows it sees).
    ConnEvicted = 16,
    /// A set of the connection table stayed claimed by other CPUs: a record skipped (the
    /// packet forwarded as decided) or an entry read as absent (the flow scheduled as new).
    ConnBusy = 17,
    /// An ICMP error ("fragmentation needed", "time exceeded") over the CPU's budget
    /// (`icmp_rate`/`icmp_burst`, `packet::ratelimit`): not sent, the frame dropped.
    IcmpLimited = 18,
    /// A forward entry found idle past its protocol's timeout (`tcp_timeout`/`udp_timeout`):
    /// read as absent, its flow scheduled anew.
    ConnExpired = 19,
    /// An ARP request for an owned VIP answered on the client-facing interface
    /// (`packet::arp`, `Datapath::set_owned`).
    ArpReply = 20,
    /// A frame whose Ethernet destination is not the MAC of the interface it arrived on
    /// (another host's unicast frame flooded by a switch, multicast, broadcast other than an
    /// answered ARP request): handed to the kernel without a look (`packet::Action::NotOurs`).
    PassNotOurs = 21,
    /// A new DR or TUN flow over the CPU's (worker's) new-flow budget (`new_flow_rate`,
    /// `packet::decide`): forwarded to its Maglev pick without a record (nor a flow event).
    NewFlowUnrecorded = 22,
    /// A new NAT flow over the CPU's (worker's) new-flow budget: dropped (a NAT flow cannot
    /// work without its reply entry).
    DropNewFlowLimit = 23,
    /// Of `conn_evicted`: the evicted entry was half-open (recorded by an opening SYN, no
    /// packet of its flow since; `packet::conntable`).
    ConnEvictedHalfOpen = 24,
}

impl Counter {
    /// Number of counters (`STRAIT_CNT_MAX`).
    pub(crate) const COUNT: u32 = 25;

    /// Every counter, in index order.
    pub const ALL: [Counter; Counter::COUNT as usize] = [
        Counter::PassNotIpv4,
        Counter::PassMalformed,
        Counter::PassFragment,
        Counter::PassOther,
        Counter::TxNew,
        Counter::TxEstablished,
        Counter::DropNoBackend,
        Counter::DropBadBackend,
        Counter::DropEncapTooBig,
        Counter::NatReply,
        Counter::DropNoRoute,
        Counter::DropNoNeigh,
        Counter::EventLost,
        Counter::DropTooBig,
        Counter::IcmpTooBig,
        Counter::IcmpTimeExceeded,
        Counter::ConnEvicted,
        Counter::ConnBusy,
        Counter::IcmpLimited,
        Counter::ConnExpired,
        Counter::ArpReply,
        Counter::PassNotOurs,
        Counter::NewFlowUnrecorded,
        Counter::DropNewFlowLimit,
        Counter::ConnEvictedHalfOpen,
    ];

    /// Stable name for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Counter::PassNotIpv4 => "pass_not_ipv4",
            Counter::PassMalformed => "pass_malformed",
            Counter::PassFragment => "pass_fragment",
            Counter::PassOther => "pass_other",
            Counter::TxNew => "tx_new",
            Counter::TxEstablished => "tx_established",
            Counter::DropNoBackend => "drop_no_backend",
            Counter::DropBadBackend => "drop_bad_backend",
            Counter::DropEncapTooBig => "drop_encap_too_big",
            Counter::NatReply => "nat_reply",
            Counter::DropNoRoute => "drop_no_route",
            Counter::DropNoNeigh => "drop_no_neigh",
            Counter::EventLost => "event_lost",
            Counter::DropTooBig => "drop_too_big",
            Counter::IcmpTooBig => "icmp_too_big",
            Counter::IcmpTimeExceeded => "icmp_time_exceeded",
            Counter::ConnEvicted => "conn_evicted",
            Counter::ConnBusy => "conn_busy",
            Counter::IcmpLimited => "icmp_limited",
            Counter::ConnExpired => "conn_expired",
            Counter::ArpReply => "arp_reply",
            Counter::PassNotOurs => "pass_not_ours",
            Counter::NewFlowUnrecorded => "new_flow_unrecorded",
            Counter::DropNewFlowLimit => "drop_new_flow_limit",
            Counter::ConnEvictedHalfOpen => "conn_evicted_half_open",
        }
    }
}

/// `struct strait_service_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub(crate) struct ServiceKey {
    /// VIP (network order).
    pub vip: [u8; 4],
    /// Port (network order).
    pub port: [u8; 2],
    /// IP protocol.
    pub proto: u8,
    /// Zero.
    pub pad: u8,
}

/// `struct strait_service`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub(crate) struct Service {
    /// Maglev slot (`< MAGLEV_SLOTS`).
    pub(crate) table_slot: u32,
    /// Maglev table size; 0 = no table (new flows dropped).
    pub table_size: u32,
    /// Index of backend 0 in the `backends` map.
    pub(crate) backend_base: u32,
    /// Number of backends.
    pub(crate) backend_count: u32,
    /// `MODE_*`.
    pub mode: u8,
    /// `HASH_*`.
    pub hash: u8,
    /// Entry in `service_gen` (`< MAX_SERVICES`).
    pub id: u8,
    /// Zero.
    pub pad: u8,
    /// Generation of this version (non-zero, never reused).
    pub(crate) gen: u32,
}

/// `struct strait_backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub(crate) struct Backend {
    /// Address (network order).
    pub ip: [u8; 4],
    /// MAC of the backend or next hop.
    pub mac: [u8; 6],
    /// NAT port (network order).
    pub port: [u8; 2],
    /// `BACKEND_*` flags.
    pub flags: u8,
    /// Zero.
    pub pad: [u8; 3],
}

/// `struct strait_conn_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct ConnKey {
    /// Source address (network order).
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// Source port (network order).
    pub sport: [u8; 2],
    /// Destination port (network order).
    pub dport: [u8; 2],
    /// IP protocol.
    pub proto: u8,
    /// `DIR_*`.
    pub dir: u8,
    /// Zero.
    pub pad: [u8; 2],
}

/// `struct strait_conn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct Conn {
    /// Forward entries: backend index inside the service.
    pub backend: u16,
    /// Forward entries: index in `backends` / `backend_stats`.
    pub slot: u16,
    /// Reply entries: VIP to restore (network order).
    pub vip: [u8; 4],
    /// Reply entries: port to restore (network order).
    pub(crate) vport: [u8; 2],
    /// Forward entries: the service's id.
    pub id: u8,
    /// Forward entries: the service's `MODE_*`.
    pub mode: u8,
    /// Forward entries: the service's generation when recorded (0: none).
    pub(crate) gen: u32,
}

impl Conn {
    /// A forward entry installed by the HA sync and not recorded here since (its `vport` is
    /// `CONN_SYNCED`, `STRAIT_CONN_SYNCED`).
    pub fn synced(&self) -> bool {
        self.vport == CONN_SYNCED
    }
}

/// `struct strait_conn_way`: one way of a set, its key and entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub(crate) struct ConnWay {
    /// The way's key (all zero: empty).
    pub key: ConnKey,
    /// The way's entry.
    pub value: Conn,
}

/// `struct strait_conn_set`: one set of the connection table (`lib/conntrack.h`; the model's
/// rule is `packet::conntable`). A way whose tag is 0 is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub(crate) struct ConnSet {
    /// The set's claim: 0 free, 1 held (writing, or reading a value).
    pub busy: u32,
    /// The ways' recency order and half-open marks (`packet::conntable::Order`).
    pub order: u32,
    /// Each way's tag: 0 empty, else bit 7 the direction (1: forward) and a 7-bit hash.
    pub tag: [u8; CONN_WAYS],
    /// Each way's write count.
    pub seq: [u16; CONN_WAYS],
    /// Each way's last record or use: the low 32 bits of the kernel's jiffies.
    pub seen: [u32; CONN_WAYS],
    /// Each way's key and entry.
    pub way: [ConnWay; CONN_WAYS],
}

/// `struct strait_conn_cached`: a CPU's copy of one way (`conn_cache`, program-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct ConnCached {
    /// The way's key.
    pub key: ConnKey,
    /// The way's entry.
    pub value: Conn,
    /// The way's write count when copied.
    pub seq: u16,
    /// The way.
    pub way: u16,
    /// Zero.
    pub pad: u32,
}

/// `struct strait_stats` (per CPU; sum over CPUs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct Stats {
    /// Packets forwarded.
    pub packets: u64,
    /// Bytes forwarded (as transmitted).
    pub bytes: u64,
    /// New flows assigned.
    pub flows: u64,
}

/// `struct strait_flow_event` (one item of the `flow_events` ring buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub(crate) struct FlowEvent {
    /// Client address (network order).
    pub src: [u8; 4],
    /// VIP.
    pub dst: [u8; 4],
    /// Client port (network order).
    pub sport: [u8; 2],
    /// VIP port (network order).
    pub dport: [u8; 2],
    /// IP protocol.
    pub proto: u8,
    /// `MODE_*` of the service.
    pub mode: u8,
    /// Zero.
    pub pad: [u8; 2],
    /// The service.
    pub service: ServiceKey,
    /// Backend index inside the service.
    pub backend: u32,
    /// Zero.
    pub pad2: u32,
}

/// `struct strait_director` (the `STRAIT_DIRECTOR` global).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct Director {
    /// Interface MAC.
    pub mac: [u8; 6],
    /// Zero.
    pub pad: [u8; 2],
    /// Interface IPv4 address (network order).
    pub ip: [u8; 4],
    /// Interface NAT forwards are redirected to (towards the backends).
    pub nat_ifindex: u32,
    /// Interface NAT replies are redirected to (towards the clients).
    pub client_ifindex: u32,
    /// MAC of `nat_ifindex` (source MAC of NAT forwards sent without a neighbour entry).
    pub nat_mac: [u8; 6],
    /// Zero.
    pub pad2: [u8; 2],
    /// MTU of the client-facing interface: TUN forwards over it get an ICMP "fragmentation
    /// needed" (DF set) or are dropped (`packet::icmp`); 0: not checked.
    pub mtu: u32,
    /// IPv4 address of `nat_ifindex` (network order): source of the ICMP "time exceeded"
    /// answering a NAT reply with TTL <= 1 (`packet::icmp`).
    pub nat_ip: [u8; 4],
    /// Sets of the connection table − 1 (a power of two − 1; set by `XdpDirector::load`).
    pub conn_mask: u32,
    /// Key of the connection table's set hash (`packet::conntable::set_of`).
    pub conn_seed: u64,
    /// Entries of the per-CPU connection cache − 1 (set by `XdpDirector::load`).
    pub conn_cache_mask: u32,
    /// MTU of `nat_ifindex`: NAT forwards over it get an ICMP "fragmentation needed" (DF set)
    /// or are dropped (`packet::icmp`); 0: not checked.
    pub nat_mtu: u32,
    /// Nanoseconds of credit one ICMP error costs (`packet::ratelimit::IcmpLimit`); 0: no
    /// limit.
    pub icmp_cost: u64,
    /// Most nanoseconds of credit a CPU's ICMP budget holds.
    pub icmp_cap: u64,
    /// Jiffies a TCP forward entry may stay unused before it expires (0: never).
    pub tcp_idle: u32,
    /// The same for UDP.
    pub udp_idle: u32,
    /// The same for a TCP entry that saw a FIN or RST.
    pub tcp_fin_idle: u32,
    /// Zero.
    pub pad4: u32,
    /// Nanoseconds of credit one recorded new flow costs (`packet::ratelimit::IcmpLimit`,
    /// the new-flow guard); 0: no guard.
    pub new_flow_cost: u64,
    /// Most nanoseconds of credit a CPU's new-flow budget holds.
    pub new_flow_cap: u64,
}

// SAFETY (all impls below): #[repr(C)] structs of integers and byte arrays with explicit pad
// fields and no implicit padding (checked by the test), so every bit pattern is valid.
#[cfg(not(strait_no_bpf))]
mod pod {
    unsafe impl aya::Pod for super::ServiceKey {}
    unsafe impl aya::Pod for super::Service {}
    unsafe impl aya::Pod for super::Backend {}
    unsafe impl aya::Pod for super::ConnKey {}
    unsafe impl aya::Pod for super::Conn {}
    unsafe impl aya::Pod for super::ConnSet {}
    unsafe impl aya::Pod for super::ConnWay {}
    unsafe impl aya::Pod for super::Stats {}
    unsafe impl aya::Pod for super::Director {}
    unsafe impl aya::Pod for super::FlowEvent {}
}

#[cfg(test)]
mod tests;
