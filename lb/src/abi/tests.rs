//! Layout test of the ABI mirrors: sizes, offsets and constants parsed from `strait.h`.

use super::*;
use std::mem::{offset_of, size_of};

const HEADER: &str = include_str!("../../../ebpf/include/strait.h");

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
        ("strait_conn_set", size_of::<ConnSet>()),
        ("strait_conn_cached", size_of::<ConnCached>()),
        ("strait_conn_way", size_of::<ConnWay>()),
        ("strait_flow_event", size_of::<FlowEvent>()),
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
        ("strait_service", "id", offset_of!(Service, id)),
        ("strait_service", "gen", offset_of!(Service, gen)),
        ("strait_service", "pad", offset_of!(Service, pad)),
        ("strait_backend", "ip", offset_of!(Backend, ip)),
        ("strait_backend", "mac", offset_of!(Backend, mac)),
        ("strait_backend", "port", offset_of!(Backend, port)),
        ("strait_backend", "flags", offset_of!(Backend, flags)),
        ("strait_backend", "pad", offset_of!(Backend, pad)),
        ("strait_conn_key", "src", offset_of!(ConnKey, src)),
        ("strait_conn_key", "dst", offset_of!(ConnKey, dst)),
        ("strait_conn_key", "sport", offset_of!(ConnKey, sport)),
        ("strait_conn_key", "dport", offset_of!(ConnKey, dport)),
        ("strait_conn_key", "proto", offset_of!(ConnKey, proto)),
        ("strait_conn_key", "dir", offset_of!(ConnKey, dir)),
        ("strait_conn_key", "pad", offset_of!(ConnKey, pad)),
        ("strait_conn", "backend", offset_of!(Conn, backend)),
        ("strait_conn", "slot", offset_of!(Conn, slot)),
        ("strait_conn", "vip", offset_of!(Conn, vip)),
        ("strait_conn", "vport", offset_of!(Conn, vport)),
        ("strait_conn", "id", offset_of!(Conn, id)),
        ("strait_conn", "mode", offset_of!(Conn, mode)),
        ("strait_conn", "gen", offset_of!(Conn, gen)),
        ("strait_conn_way", "key", offset_of!(ConnWay, key)),
        ("strait_conn_way", "value", offset_of!(ConnWay, value)),
        ("strait_stats", "packets", offset_of!(Stats, packets)),
        ("strait_stats", "bytes", offset_of!(Stats, bytes)),
        ("strait_stats", "flows", offset_of!(Stats, flows)),
        ("strait_flow_event", "src", offset_of!(FlowEvent, src)),
        ("strait_flow_event", "dst", offset_of!(FlowEvent, dst)),
        ("strait_flow_event", "sport", offset_of!(FlowEvent, sport)),
        ("strait_flow_event", "dport", offset_of!(FlowEvent, dport)),
        ("strait_flow_event", "proto", offset_of!(FlowEvent, proto)),
        ("strait_flow_event", "mode", offset_of!(FlowEvent, mode)),
        ("strait_flow_event", "pad", offset_of!(FlowEvent, pad)),
        (
            "strait_flow_event",
            "service",
            offset_of!(FlowEvent, service),
        ),
        (
            "strait_flow_event",
            "backend",
            offset_of!(FlowEvent, backend),
        ),
        ("strait_flow_event", "pad2", offset_of!(FlowEvent, pad2)),
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
        ("strait_director", "mtu", offset_of!(Director, mtu)),
        ("strait_director", "nat_ip", offset_of!(Director, nat_ip)),
        (
            "strait_director",
            "conn_mask",
            offset_of!(Director, conn_mask),
        ),
        (
            "strait_director",
            "conn_seed",
            offset_of!(Director, conn_seed),
        ),
        ("strait_conn_set", "busy", offset_of!(ConnSet, busy)),
        ("strait_conn_set", "order", offset_of!(ConnSet, order)),
        ("strait_conn_set", "tag", offset_of!(ConnSet, tag)),
        ("strait_conn_set", "seq", offset_of!(ConnSet, seq)),
        ("strait_conn_set", "seen", offset_of!(ConnSet, seen)),
        ("strait_conn_cached", "key", offset_of!(ConnCached, key)),
        ("strait_conn_cached", "value", offset_of!(ConnCached, value)),
        ("strait_conn_cached", "seq", offset_of!(ConnCached, seq)),
        ("strait_conn_cached", "way", offset_of!(ConnCached, way)),
        ("strait_conn_cached", "pad", offset_of!(ConnCached, pad)),
        (
            "strait_director",
            "conn_cache_mask",
            offset_of!(Director, conn_cache_mask),
        ),
        ("strait_director", "nat_mtu", offset_of!(Director, nat_mtu)),
        (
            "strait_director",
            "icmp_cost",
            offset_of!(Director, icmp_cost),
        ),
        (
            "strait_director",
            "icmp_cap",
            offset_of!(Director, icmp_cap),
        ),
        (
            "strait_director",
            "tcp_idle",
            offset_of!(Director, tcp_idle),
        ),
        (
            "strait_director",
            "udp_idle",
            offset_of!(Director, udp_idle),
        ),
        (
            "strait_director",
            "tcp_fin_idle",
            offset_of!(Director, tcp_fin_idle),
        ),
        ("strait_director", "pad4", offset_of!(Director, pad4)),
        (
            "strait_director",
            "new_flow_cost",
            offset_of!(Director, new_flow_cost),
        ),
        (
            "strait_director",
            "new_flow_cap",
            offset_of!(Director, new_flow_cap),
        ),
        ("strait_conn_set", "way", offset_of!(ConnSet, way)),
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
    assert_eq!(define("STRAIT_CONN_WAYS"), CONN_WAYS.to_string());
    assert_eq!(define("STRAIT_CONN_CACHE_MAX"), "(1 << 15)");
    assert_eq!(CONN_CACHE_MAX, 1 << 15);
    assert_eq!(
        define("STRAIT_CONN_CLAIM_TRIES"),
        CONN_CLAIM_TRIES.to_string()
    );
    assert_eq!(
        define("STRAIT_CONN_SYNCED"),
        format!("{:#X}", u16::from_be_bytes(CONN_SYNCED))
    );
    assert_eq!(
        define("STRAIT_ORDER_IDENTITY"),
        format!("{:#X}U", crate::packet::conntable::ORDER_IDENTITY)
    );
    assert_eq!(define("STRAIT_MAX_OWNED"), MAX_OWNED.to_string());
    assert_eq!(MAX_OWNED as usize, crate::packet::arp::MAX_OWNED);
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
    assert_eq!(define("STRAIT_BACKEND_DEAD"), BACKEND_DEAD.to_string());
    assert_eq!(
        crate::maglev::DEFAULT_TABLE_SIZE,
        MAGLEV_MAX,
        "the default Maglev size must fit the map"
    );
    // enum strait_counter values, in order.
    assert_eq!(define("STRAIT_FLOW_EVENTS_BYTES"), "(1 << 18)");
    assert_eq!(FLOW_EVENTS_BYTES, 1 << 18);
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
