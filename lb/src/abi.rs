//! Rust mirrors of the BPF ABI in `ebpf/include/strait.h` (map keys, values and settings).
//!
//! Contract: every type here is `#[repr(C)]` with the same field order, widths and explicit
//! pad fields as its C struct, so its bytes are the map's bytes. Fields named `__be*` in C
//! hold network-order bytes: they are `[u8; N]` here (no host/network confusion possible).
//! The unit test parses the header's `_Static_assert` sizes and `STRAIT_OFFSET` lines and
//! compares them with `size_of` / `offset_of!`, and checks the shared constants.

/// Largest Maglev table size (`STRAIT_MAGLEV_MAX`, the default M).
pub const MAGLEV_MAX: u32 = 65_537;
/// Maglev table slots in the `maglev` map (`STRAIT_MAGLEV_SLOTS`).
pub const MAGLEV_SLOTS: u32 = 64;
/// Entries of the `services` map (`STRAIT_MAX_SERVICES`).
pub const MAX_SERVICES: u32 = 32;
/// Entries of the `backends` and `backend_stats` maps (`STRAIT_MAX_BACKENDS`).
pub const MAX_BACKENDS: u32 = 4096;
/// Default bound of the `conns` LRU map (`STRAIT_MAX_CONNS`).
pub const MAX_CONNS: u32 = 1 << 20;

/// `STRAIT_MODE_DR`.
pub const MODE_DR: u8 = 0;
/// `STRAIT_MODE_TUN`.
pub const MODE_TUN: u8 = 1;
/// `STRAIT_MODE_NAT`.
pub const MODE_NAT: u8 = 2;
/// `STRAIT_HASH_FIVE_TUPLE`: new flows hashed on the 5-tuple (maglev, wrr).
pub const HASH_FIVE_TUPLE: u8 = 0;
/// `STRAIT_HASH_SOURCE`: new flows hashed on the client address (sh).
pub const HASH_SOURCE: u8 = 1;
/// `STRAIT_EGRESS_NAT`: egress devmap entry of NAT forwards.
pub const EGRESS_NAT: u32 = 0;
/// `STRAIT_EGRESS_CLIENT`: egress devmap entry of NAT replies.
pub const EGRESS_CLIENT: u32 = 1;
/// `STRAIT_EGRESS_MAX`: entries of the egress devmap.
pub const EGRESS_MAX: u32 = 2;
/// `STRAIT_DIR_FORWARD`: a client → VIP entry of `conns`.
pub const DIR_FORWARD: u8 = 0;
/// `STRAIT_DIR_REPLY`: a backend → client (NAT reply) entry of `conns`.
pub const DIR_REPLY: u8 = 1;

/// Names of the maps and globals in the object (symbol names).
pub mod names {
    /// `services` hash map.
    pub const SERVICES: &str = "services";
    /// `backends` array.
    pub const BACKENDS: &str = "backends";
    /// `maglev` array.
    pub const MAGLEV: &str = "maglev";
    /// `conns` LRU hash map.
    pub const CONNS: &str = "conns";
    /// `counters` per-CPU array.
    pub const COUNTERS: &str = "counters";
    /// `backend_stats` per-CPU array.
    pub const BACKEND_STATS: &str = "backend_stats";
    /// `egress` devmap.
    pub const EGRESS: &str = "egress";
    /// The `volatile const` director settings.
    pub const DIRECTOR: &str = "STRAIT_DIRECTOR";
    /// The XDP program.
    pub const PROGRAM: &str = "strait_director";
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
}

impl Counter {
    /// Number of counters (`STRAIT_CNT_MAX`).
    pub const COUNT: u32 = 12;

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
    ];

    /// The counter of a drop reason of the model.
    pub fn of_drop(reason: crate::packet::decide::DropReason) -> Counter {
        use crate::packet::decide::DropReason;
        match reason {
            DropReason::NoBackend => Counter::DropNoBackend,
            DropReason::BadBackendIndex => Counter::DropBadBackend,
            DropReason::EncapTooBig => Counter::DropEncapTooBig,
            DropReason::NoRoute => Counter::DropNoRoute,
            DropReason::NoNeighbour => Counter::DropNoNeigh,
        }
    }

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
        }
    }
}

/// `struct strait_service_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct ServiceKey {
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
pub struct Service {
    /// Maglev slot (`< MAGLEV_SLOTS`).
    pub table_slot: u32,
    /// Maglev table size; 0 = no table (new flows dropped).
    pub table_size: u32,
    /// Index of backend 0 in the `backends` map.
    pub backend_base: u32,
    /// Number of backends.
    pub backend_count: u32,
    /// `MODE_*`.
    pub mode: u8,
    /// `HASH_*`.
    pub hash: u8,
    /// Zero.
    pub pad: [u8; 2],
}

/// `struct strait_backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct Backend {
    /// Address (network order).
    pub ip: [u8; 4],
    /// MAC of the backend or next hop.
    pub mac: [u8; 6],
    /// NAT port (network order).
    pub port: [u8; 2],
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
    pub backend: u32,
    /// Reply entries: VIP to restore (network order).
    pub vip: [u8; 4],
    /// Reply entries: port to restore (network order).
    pub vport: [u8; 2],
    /// Zero.
    pub pad: [u8; 2],
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
    unsafe impl aya::Pod for super::Stats {}
    unsafe impl aya::Pod for super::Director {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    const HEADER: &str = include_str!("../../ebpf/include/strait.h");

    /// `(struct, number)` from `_Static_assert(sizeof(struct NAME) == N, …)` lines.
    fn sizes() -> Vec<(String, usize)> {
        HEADER
            .lines()
            .filter_map(|l| l.strip_prefix("_Static_assert(sizeof(struct "))
            .map(|rest| {
                let (name, rest) = rest.split_once(") == ").unwrap();
                let (n, _) = rest.split_once(',').unwrap();
                (name.to_string(), n.parse().unwrap())
            })
            .collect()
    }

    /// `(struct, field, offset)` from `STRAIT_OFFSET(NAME, FIELD, N);` lines.
    fn offsets() -> Vec<(String, String, usize)> {
        HEADER
            .lines()
            .filter_map(|l| l.strip_prefix("STRAIT_OFFSET(")?.strip_suffix(");"))
            .map(|args| {
                let v: Vec<&str> = args.split(", ").collect();
                assert_eq!(v.len(), 3, "{args}");
                (v[0].to_string(), v[1].to_string(), v[2].parse().unwrap())
            })
            .collect()
    }

    /// The value of `#define NAME VALUE`.
    fn define(name: &str) -> String {
        let prefix = format!("#define {name} ");
        let line = HEADER.lines().find_map(|l| l.strip_prefix(prefix.as_str()));
        let value = line.unwrap();
        let value = value.split("/*").next().unwrap_or(value);
        value.trim().to_string()
    }

    /// `(name, value)` of the `STRAIT_CNT_NAME = N,` enum lines, name lower-cased.
    fn counters() -> Vec<(String, u32)> {
        HEADER
            .lines()
            .filter_map(|l| l.trim().strip_prefix("STRAIT_CNT_"))
            .map(|rest| {
                let (name, rest) = rest.split_once(" = ").unwrap();
                let n = rest.split(',').next().unwrap();
                (name.to_lowercase(), n.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn sizes_match_the_header() {
        let rust = [
            ("strait_service_key", size_of::<ServiceKey>()),
            ("strait_service", size_of::<Service>()),
            ("strait_backend", size_of::<Backend>()),
            ("strait_conn_key", size_of::<ConnKey>()),
            ("strait_conn", size_of::<Conn>()),
            ("strait_stats", size_of::<Stats>()),
            ("strait_director", size_of::<Director>()),
        ];
        let c = sizes();
        assert_eq!(c.len(), rust.len());
        for (name, size) in rust {
            let found = c.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
            assert_eq!(found, Some(size), "size of {name}");
        }
    }

    #[test]
    fn offsets_match_the_header() {
        let rust: Vec<(&str, &str, usize)> = vec![
            ("strait_service_key", "vip", offset_of!(ServiceKey, vip)),
            ("strait_service_key", "port", offset_of!(ServiceKey, port)),
            ("strait_service_key", "proto", offset_of!(ServiceKey, proto)),
            ("strait_service_key", "pad", offset_of!(ServiceKey, pad)),
            (
                "strait_service",
                "table_slot",
                offset_of!(Service, table_slot),
            ),
            (
                "strait_service",
                "table_size",
                offset_of!(Service, table_size),
            ),
            (
                "strait_service",
                "backend_base",
                offset_of!(Service, backend_base),
            ),
            (
                "strait_service",
                "backend_count",
                offset_of!(Service, backend_count),
            ),
            ("strait_service", "mode", offset_of!(Service, mode)),
            ("strait_service", "hash", offset_of!(Service, hash)),
            ("strait_service", "pad", offset_of!(Service, pad)),
            ("strait_backend", "ip", offset_of!(Backend, ip)),
            ("strait_backend", "mac", offset_of!(Backend, mac)),
            ("strait_backend", "port", offset_of!(Backend, port)),
            ("strait_conn_key", "src", offset_of!(ConnKey, src)),
            ("strait_conn_key", "dst", offset_of!(ConnKey, dst)),
            ("strait_conn_key", "sport", offset_of!(ConnKey, sport)),
            ("strait_conn_key", "dport", offset_of!(ConnKey, dport)),
            ("strait_conn_key", "proto", offset_of!(ConnKey, proto)),
            ("strait_conn_key", "dir", offset_of!(ConnKey, dir)),
            ("strait_conn_key", "pad", offset_of!(ConnKey, pad)),
            ("strait_conn", "backend", offset_of!(Conn, backend)),
            ("strait_conn", "vip", offset_of!(Conn, vip)),
            ("strait_conn", "vport", offset_of!(Conn, vport)),
            ("strait_conn", "pad", offset_of!(Conn, pad)),
            ("strait_stats", "packets", offset_of!(Stats, packets)),
            ("strait_stats", "bytes", offset_of!(Stats, bytes)),
            ("strait_stats", "flows", offset_of!(Stats, flows)),
            ("strait_director", "mac", offset_of!(Director, mac)),
            ("strait_director", "pad", offset_of!(Director, pad)),
            ("strait_director", "ip", offset_of!(Director, ip)),
            (
                "strait_director",
                "nat_ifindex",
                offset_of!(Director, nat_ifindex),
            ),
            (
                "strait_director",
                "client_ifindex",
                offset_of!(Director, client_ifindex),
            ),
            ("strait_director", "nat_mac", offset_of!(Director, nat_mac)),
            ("strait_director", "pad2", offset_of!(Director, pad2)),
        ];
        let c = offsets();
        assert_eq!(c.len(), rust.len());
        for (s, f, off) in rust {
            let found = c.iter().find(|(cs, cf, _)| cs == s && cf == f).map(|e| e.2);
            assert_eq!(found, Some(off), "offset of {s}.{f}");
        }
    }

    #[test]
    fn constants_match_the_header() {
        assert_eq!(define("STRAIT_MAGLEV_MAX"), MAGLEV_MAX.to_string());
        assert_eq!(define("STRAIT_MAGLEV_SLOTS"), MAGLEV_SLOTS.to_string());
        assert_eq!(define("STRAIT_MAX_SERVICES"), MAX_SERVICES.to_string());
        assert_eq!(define("STRAIT_MAX_BACKENDS"), MAX_BACKENDS.to_string());
        assert_eq!(define("STRAIT_MAX_CONNS"), "(1 << 20)");
        assert_eq!(MAX_CONNS, 1 << 20);
        assert_eq!(define("STRAIT_MODE_DR"), MODE_DR.to_string());
        assert_eq!(define("STRAIT_MODE_TUN"), MODE_TUN.to_string());
        assert_eq!(define("STRAIT_MODE_NAT"), MODE_NAT.to_string());
        assert_eq!(
            define("STRAIT_HASH_FIVE_TUPLE"),
            HASH_FIVE_TUPLE.to_string()
        );
        assert_eq!(define("STRAIT_HASH_SOURCE"), HASH_SOURCE.to_string());
        assert_eq!(define("STRAIT_DIR_FORWARD"), DIR_FORWARD.to_string());
        assert_eq!(define("STRAIT_DIR_REPLY"), DIR_REPLY.to_string());
        assert_eq!(
            crate::maglev::DEFAULT_TABLE_SIZE,
            MAGLEV_MAX,
            "the default Maglev size must fit the map"
        );
        assert_eq!(
            crate::packet::service::DEFAULT_CONN_CAPACITY,
            MAX_CONNS as usize
        );
        // enum strait_counter values, in order.
        assert_eq!(define("STRAIT_EGRESS_NAT"), EGRESS_NAT.to_string());
        assert_eq!(define("STRAIT_EGRESS_CLIENT"), EGRESS_CLIENT.to_string());
        assert_eq!(define("STRAIT_EGRESS_MAX"), EGRESS_MAX.to_string());
        let c = counters();
        let all = Counter::ALL;
        assert_eq!(c.len(), all.len() + 1);
        for (i, k) in all.into_iter().enumerate() {
            assert_eq!(k as usize, i);
            assert!(c.contains(&(k.as_str().to_string(), k as u32)), "{k:?}");
        }
        assert!(c.contains(&("max".to_string(), Counter::COUNT)));
    }
}
