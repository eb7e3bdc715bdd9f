//! Three cache nodes as one cache, end to end on loopback (127.0.0.31–39, three per test): every cache key has
//! one owner (rendezvous over the live members), and a request at any node takes one of the
//! four paths — local hit, local miss, remote hit, remote miss — so the cluster stores each
//! object once and fetches it from the origin once. Real `strait node` processes and one
//! `strait sim origin` (see `tests/support`).

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use support::*;

/// Keys requested per test.
const KEYS: usize = 30;

/// Peer and gossip ports of node `i` of the cluster numbered `n` (fixed: seeds must be known
/// before the nodes start; each test has its own cluster number, so tests run in parallel).
fn ports(n: usize, i: usize) -> (u16, u16) {
    let i = (n * 3 + i) as u16;
    (27_300 + i, 27_400 + i)
}

/// Node `i` of cluster `n` listens on its own loopback address.
fn ip(n: usize, i: usize) -> String {
    format!("127.0.0.{}", 31 + n * 3 + i)
}

/// The config of node `i` of cluster `n` in front of `origin`: `extra` tables after the route,
/// `cluster` lines added to `[cluster]`.
fn config_with(n: usize, i: usize, origin: SocketAddr, extra: &str, cluster: &str) -> String {
    let (peer, gossip) = ports(n, i);
    let seeds: Vec<String> = (0..3.max(i))
        .filter(|&j| j != i)
        .map(|j| format!("\"{}:{}\"", ip(n, j), ports(n, j).1))
        .collect();
    format!(
        "[node]\nid = \"{id}\"\nlisten = [\"{ip}:0\"]\nadmin = \"127.0.0.1:0\"\n\n\
         [cluster]\npeer_listen = \"{ip}:{peer}\"\ngossip_listen = \"{ip}:{gossip}\"\n\
         seeds = [{seeds}]\nprobe_interval = \"200ms\"\nsuspect_timeout = \"1s\"\n{cluster}\n\n\
         [[pool]]\nname = \"origin\"\nservers = [{{ addr = \"{origin}\" }}]\n\n\
         [[route]]\npool = \"origin\"\n\n{extra}\n",
        id = ["a", "b", "c", "d"][i],
        ip = ip(n, i),
        seeds = seeds.join(", "),
    )
}

struct Cluster {
    origin: Origin,
    nodes: Vec<Node>,
}

impl Cluster {
    fn start(n: usize, extra: &str) -> Cluster {
        Cluster::start_with(n, extra, "")
    }

    fn start_with(n: usize, extra: &str, cluster: &str) -> Cluster {
        let origin = Origin::start();
        let nodes: Vec<Node> = (0..3)
            .map(|i| Node::start_config(&config_with(n, i, origin.addr, extra, cluster)))
            .collect();
        let c = Cluster { origin, nodes };
        let all_alive = wait_until(Duration::from_secs(15), || (0..3).all(|i| c.alive(i) == 3));
        assert!(all_alive, "members never all alive: {:?}", c.views());
        c
    }

    /// Node `i`'s peer counters, for a failure's message.
    fn peer_counters(&self, i: usize) -> String {
        let n = &self.nodes[i];
        [
            "peer_errors",
            "peer_timeouts",
            "peer_suspect_skips",
            "local_miss",
            "remote_hit",
        ]
        .map(|k| format!("{k} {}", n.counter(k)))
        .join(", ")
    }

    /// Every node's log lines so far, for a failure's message.
    fn logs(&self) -> String {
        let mut out = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            for l in n.proc.lines.try_iter() {
                out.push_str(&format!("node {i}: {l}\n"));
            }
        }
        out
    }

    fn cluster_json(&self, i: usize) -> serde_json::Value {
        let r = admin_request(self.nodes[i].admin, "GET", "/cluster.json", &[]);
        serde_json::from_slice(&r.body).unwrap_or_default()
    }

    fn alive(&self, i: usize) -> usize {
        self.cluster_json(i)["members"]
            .as_array()
            .map_or(0, |m| m.iter().filter(|m| m["state"] == "alive").count())
    }

    fn views(&self) -> Vec<serde_json::Value> {
        (0..3).map(|i| self.cluster_json(i)).collect()
    }
}

fn path(k: usize) -> String {
    format!("/obj/k{k}?size=3000&ttl=300")
}

/// The node a Cache-Status names first (the one nearest the origin).
fn first_member(cs: &str) -> String {
    cs.split(';').next().unwrap_or("").trim().to_string()
}

#[test]
fn every_key_has_one_owner_and_one_origin_fetch() {
    let c = Cluster::start(0, "");
    let mut owner_of: BTreeMap<usize, String> = BTreeMap::new();
    // 1. Every key through node a: a local miss where a owns it, else a remote miss.
    for k in 0..KEYS {
        let r = get(c.nodes[0].addr, &path(k), &[]);
        assert_eq!(r.status, 200, "k{k}: {}", r.text());
        assert_eq!(r.body, object_bytes(&format!("k{k}"), 3000), "k{k} body");
        let cs = r.cache_status().to_string();
        let owner = first_member(&cs);
        if owner == "a" {
            assert_eq!(cs, "a; fwd=miss; stored", "k{k}");
        } else {
            assert_eq!(
                cs,
                format!("{owner}; fwd=miss, a; fwd=miss; stored; detail=peer"),
                "k{k}"
            );
        }
        owner_of.insert(k, owner);
    }
    let owned = |id: &str| owner_of.values().filter(|o| *o == id).count();
    eprintln!(
        "owners of {KEYS} keys: a {}, b {}, c {}",
        owned("a"),
        owned("b"),
        owned("c")
    );
    for id in ["a", "b", "c"] {
        assert!(owned(id) > 0, "node {id} owns none of {KEYS} keys");
    }
    // One Lookup per key a does not own, and no handover probes: the nodes started together.
    let lookups: u64 = (0..3).map(|i| c.nodes[i].counter("peer_lookups")).sum();
    assert_eq!(lookups, (KEYS - owned("a")) as u64, "peer lookups");
    // 2. Every key through every node: a local hit at the owner, a remote hit elsewhere, and
    //    all from the object the owner stored (the origin saw each key once).
    for (i, me) in ["a", "b", "c"].iter().enumerate() {
        for k in 0..KEYS {
            let r = get(c.nodes[i].addr, &path(k), &[]);
            assert_eq!(r.status, 200);
            assert_eq!(r.body, object_bytes(&format!("k{k}"), 3000), "k{k} body");
            let owner = &owner_of[&k];
            assert!(r.has("age"), "k{k} via {me}: no Age");
            // Via: the node that fetched it, the owner that stored it, the node asked.
            let via = r.header("via").unwrap_or("");
            assert!(
                via.starts_with("1.1 a (strait)"),
                "k{k} via {me}: Via {via}"
            );
            assert!(
                via.contains(&format!("1.1 {owner} (strait)")),
                "k{k}: Via {via}"
            );
            assert!(
                via.ends_with(&format!("1.1 {me} (strait)")),
                "k{k}: Via {via}"
            );
            let cs = r.cache_status();
            if owner == me {
                assert!(cs.starts_with(&format!("{me}; hit; ttl=")), "k{k}: {cs}");
            } else {
                assert!(
                    cs.starts_with(&format!("{owner}; hit; ttl="))
                        && cs.ends_with(&format!(", {me}; fwd=miss; detail=peer")),
                    "k{k} via {me}: {cs}"
                );
            }
        }
    }
    for k in 0..KEYS {
        assert_eq!(
            c.origin.count(&format!("/obj/k{k}")),
            1,
            "origin fetches of k{k}"
        );
    }
    // 3. The counters say the same: each object stored once, at its owner.
    let stored: u64 = (0..3).map(|i| c.nodes[i].counter("stored_objects")).sum();
    assert_eq!(stored, KEYS as u64, "objects stored in the cluster");
    let a = &c.nodes[0];
    let remote = (KEYS - owned("a")) as u64;
    assert_eq!(a.counter("remote_miss"), remote);
    assert_eq!(a.counter("remote_hit"), remote);
    assert_eq!(a.counter("local_miss"), owned("a") as u64);
    let pushes: u64 = (1..3).map(|i| c.nodes[i].counter("peer_pushes")).sum();
    assert_eq!(pushes, remote, "objects pushed to their owners");
    // Step 2's remote hits took the asking nodes' lean path: answered from the owner's wire
    // form, one exchange each.
    let wire: u64 = (0..3).map(|i| c.nodes[i].counter("peer_wire_hits")).sum();
    let remote_hits: u64 = ["a", "b", "c"]
        .iter()
        .map(|id| (KEYS - owned(id)) as u64)
        .sum();
    assert_eq!(wire, remote_hits, "remote hits sent as WireHit");
}

#[test]
fn concurrent_misses_at_every_node_make_one_origin_fetch() {
    let c = Cluster::start(1, "");
    // One slow key requested at once through all three nodes: its owner leads one fill (for
    // its own clients and under a lease for a peer's), everyone else waits on it.
    let addrs: Vec<SocketAddr> = c.nodes.iter().map(|n| n.addr).collect();
    let resps = concurrent(&addrs, "/obj/slow?size=200000&ttl=300&delay=400", 5);
    let want = object_bytes("slow", 200_000);
    let mut statuses = BTreeMap::new();
    for r in &resps {
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.body.len(), want.len());
        assert!(r.body == want, "body differs");
        *statuses.entry(r.cache_status().to_string()).or_insert(0) += 1;
    }
    eprintln!("Cache-Status of 15 concurrent requests: {statuses:#?}");
    // One request fetched from the origin (at the owner, or at a peer under the owner's
    // lease); every other one waited on that fill, at the owner or at its own node.
    let fetched: Vec<_> = statuses
        .keys()
        .filter(|s| !s.contains("collapsed"))
        .collect();
    assert_eq!(
        fetched.len(),
        1,
        "{statuses:?}\nat a: {}\nat c: {}\n{}",
        c.peer_counters(0),
        c.peer_counters(2),
        c.logs()
    );
    assert_eq!(statuses[fetched[0]], 1, "{statuses:?}");
    let owner = first_member(fetched[0]);
    for s in statuses.keys() {
        assert_eq!(first_member(s), owner, "{s}");
        let members = s.split(", ").count();
        assert!(members == 1 || s.ends_with("detail=peer"), "{s}");
    }
    assert_eq!(c.origin.count("/obj/slow"), 1, "origin fetches");
}

#[test]
fn an_unreachable_owner_hands_its_keys_to_the_next_owner() {
    let mut c = Cluster::start(2, "");
    // Keys b owns, found through a.
    let mut of_b = Vec::new();
    for k in 0..KEYS {
        let r = get(c.nodes[0].addr, &path(k), &[]);
        if first_member(r.cache_status()) == "b" {
            of_b.push(k);
        }
    }
    assert!(!of_b.is_empty(), "b owns none of {KEYS} keys");
    // b dies without a word. Before the others declare it dead, a request for one of its keys
    // is refused a connection by b and goes to the key's next owner at once (a itself, or c):
    // fetched once more from the origin and stored there.
    let _ = c.nodes[1].proc.child.kill();
    let _ = c.nodes[1].proc.child.wait();
    let mut new_owner: BTreeMap<usize, String> = BTreeMap::new();
    for &k in &of_b {
        let r = get(c.nodes[0].addr, &path(k), &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.body, object_bytes(&format!("k{k}"), 3000));
        let cs = r.cache_status();
        let owner = first_member(cs);
        match owner.as_str() {
            "a" => assert_eq!(cs, "a; fwd=miss; stored", "k{k}"),
            "c" => assert_eq!(cs, "c; fwd=miss, a; fwd=miss; stored; detail=peer", "k{k}"),
            _ => panic!("k{k} after b died: {cs}"),
        }
        new_owner.insert(k, owner);
    }
    assert!(
        c.nodes[0].counter("peer_errors") >= 1,
        "a never failed to reach b"
    );
    let gone = wait_until(Duration::from_secs(10), || {
        c.cluster_json(0)["members"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["id"] == "b" && m["state"] == "dead"))
    });
    assert!(gone, "b never declared dead: {:?}", c.cluster_json(0));
    // Once b is dead everywhere, its keys belong to the nodes that took them over: hits there,
    // whichever node is asked, and no further origin fetch.
    for &k in &of_b {
        let owner = &new_owner[&k];
        for i in [0, 2] {
            let r = get(c.nodes[i].addr, &path(k), &[]);
            assert!(
                r.cache_status().starts_with(&format!("{owner}; hit")),
                "k{k} via node {i} after b left: {}",
                r.cache_status()
            );
        }
        assert_eq!(
            c.origin.count(&format!("/obj/k{k}")),
            2,
            "origin fetches of k{k}"
        );
    }
    c.nodes.truncate(1);
}

fn concurrent(addrs: &[SocketAddr], path: &str, per_node: usize) -> Vec<Resp> {
    let n = addrs.len() * per_node;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, path, addr) = (
                Arc::clone(&barrier),
                path.to_string(),
                addrs[i % addrs.len()],
            );
            std::thread::spawn(move || {
                barrier.wait();
                get(addr, &path, &[])
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("client"))
        .collect()
}

#[test]
fn purge_and_ban_reach_every_node() {
    let mut c = Cluster::start(3, "");
    for k in 0..KEYS {
        assert_eq!(get(c.nodes[0].addr, &path(k), &[]).status, 200);
    }
    let host = "test.example";
    // Purge one key at c (whoever owns it): gone from the cluster, fetched anew.
    let url = format!("http://{host}{}", path(0));
    let r = admin_request(
        c.nodes[2].admin,
        "POST",
        &format!("/purge?url={}", encode(&url)),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    eprintln!("purge at c: {v}");
    assert_eq!(v["removed"], 1, "{v}");
    assert_eq!(v["nodes"].as_object().map(|n| n.len()), Some(3), "{v}");
    assert_eq!(v["failed"], serde_json::json!({}), "{v}");
    let r = get(c.nodes[1].addr, &path(0), &[]);
    assert!(
        r.cache_status().contains("fwd=miss"),
        "{}",
        r.cache_status()
    );
    assert_eq!(c.origin.count("/obj/k0"), 2);
    // Ban every key of the host at a: every node drops its share.
    let r = admin_request(
        c.nodes[0].admin,
        "POST",
        &format!("/ban?prefix={}", encode(&format!("http://{host}/obj/"))),
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    eprintln!("ban at a: {v}");
    assert_eq!(v["removed"], KEYS as u64, "{v}");
    let stored: u64 = (0..3).map(|i| c.nodes[i].counter("stored_objects")).sum();
    assert_eq!(stored, 0);
    // Empty every node on purpose (`strait ctl ban --all`), asked at c.
    for k in 0..KEYS {
        assert_eq!(get(c.nodes[1].addr, &path(k), &[]).status, 200);
    }
    let r = admin_request(c.nodes[2].admin, "POST", "/ban?all=1", &[]);
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    eprintln!("ban --all at c: {v}");
    assert_eq!(v["removed"], KEYS as u64, "{v}");
    assert_eq!(v["all"], true, "{v}");
    assert_eq!(v["nodes"].as_object().map(|n| n.len()), Some(3), "{v}");
    assert_eq!(v["failed"], serde_json::json!({}), "{v}");
    let stored: u64 = (0..3).map(|i| c.nodes[i].counter("stored_objects")).sum();
    assert_eq!(stored, 0);
    // A member that cannot be reached is named, not skipped.
    let _ = c.nodes[1].proc.child.kill();
    let _ = c.nodes[1].proc.child.wait();
    let r = admin_request(
        c.nodes[0].admin,
        "POST",
        &format!("/ban?prefix={}", encode("http://nothing/")),
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    eprintln!("ban with b down: {v}");
    assert!(v["failed"]["b"].is_string(), "{v}");
    c.nodes.truncate(1);
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn a_node_that_joins_takes_its_keys_over_from_their_previous_owners() {
    // d joins a moment after the others: no minimum lead, so it counts as a later join.
    let lead = "handover_min_lead = \"0s\"";
    let mut c = Cluster::start_with(4, "", lead);
    for k in 0..KEYS {
        assert_eq!(get(c.nodes[0].addr, &path(k), &[]).status, 200);
    }
    // d joins: it owns a share of the keys now, and asks their previous owners before the origin.
    c.nodes.push(Node::start_config(&config_with(
        4,
        3,
        c.origin.addr,
        "",
        lead,
    )));
    let all_four = wait_until(Duration::from_secs(15), || {
        (0..4).all(|i| {
            c.cluster_json(i)["members"]
                .as_array()
                .map_or(0, |m| m.iter().filter(|m| m["state"] == "alive").count())
                == 4
        })
    });
    assert!(
        all_four,
        "d never joined everywhere: {:?}",
        c.cluster_json(3)
    );
    let mut taken = 0;
    for k in 0..KEYS {
        let r = get(c.nodes[0].addr, &path(k), &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, object_bytes(&format!("k{k}"), 3000), "k{k} body");
        let cs = r.cache_status();
        if cs.contains("d; fwd=miss; stored; detail=peer") {
            // previous owner's hit, d's takeover, a's remote hit
            let members: Vec<&str> = cs.split(", ").collect();
            assert_eq!(members.len(), 3, "{cs}");
            assert!(members[0].contains("; hit; ttl="), "{cs}");
            assert_eq!(members[2], "a; fwd=miss; detail=peer", "{cs}");
            taken += 1;
            let again = get(c.nodes[3].addr, &path(k), &[]);
            assert!(
                again.cache_status().starts_with("d; hit"),
                "{}",
                again.cache_status()
            );
        } else {
            assert!(!cs.starts_with("d;"), "k{k}: {cs}");
        }
        assert_eq!(
            c.origin.count(&format!("/obj/k{k}")),
            1,
            "k{k} fetched again"
        );
    }
    eprintln!("d took over {taken} of {KEYS} keys from their previous owners");
    assert!(taken > 0, "d owns none of {KEYS} keys");
    assert_eq!(c.nodes[3].counter("handover_hits"), taken);
    c.nodes.truncate(1);
}

#[test]
fn the_peer_port_refuses_garbage_and_strangers() {
    use std::io::{Read, Write};
    use strait_cache::cluster::frame::{Frame, Lookup, LookupMethod, PeerCodec};

    let dir = scratch_dir("cluster-secret");
    let key = dir.join("cluster.key");
    std::fs::write(&key, "a cluster secret of enough bytes\n").expect("key");
    let line = format!("secret_file = \"{}\"", key.display());
    let c = Cluster::start_with(6, "", &line);
    // Authenticated peers work: every key through a, one origin fetch each.
    for k in 0..KEYS {
        let r = get(c.nodes[0].addr, &path(k), &[]);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for k in 0..KEYS {
        let r = get(c.nodes[2].addr, &path(k), &[]);
        assert!(r.cache_status().contains("; hit"), "{}", r.cache_status());
        assert_eq!(c.origin.count(&format!("/obj/k{k}")), 1);
    }
    // Bodies the owner keeps out of its write buffer (inline in the `WireHit`, 4 KiB and up)
    // are tagged as the rest of their frame: each byte-exact as a remote hit, at each node.
    for size in [4096, 16_000, 65_536] {
        for k in 0..KEYS {
            let p = format!("/obj/big{k}?size={size}&ttl=300");
            let want = object_bytes(&format!("big{k}"), size);
            for n in [0, 1, 2] {
                let r = get(c.nodes[n].addr, &p, &[]);
                assert_eq!(r.status, 200, "{p} at {n}: {}", r.text());
                assert!(r.body == want, "{p} at {n}: body differs");
            }
            // Once more where it is not owned: a remote hit.
            let owner = first_member(get(c.nodes[0].addr, &p, &[]).cache_status());
            let asker = if owner == "a" { 1 } else { 0 };
            let r = get(c.nodes[asker].addr, &p, &[]);
            assert!(
                r.cache_status().starts_with(&format!("{owner}; hit")),
                "{p}: {}",
                r.cache_status()
            );
            assert!(r.body == want, "{p}: remote hit body differs");
        }
    }
    for n in 0..3 {
        assert_eq!(
            c.nodes[n].counter("peer_errors"),
            0,
            "{}",
            c.peer_counters(n)
        );
    }
    let b_peer: SocketAddr = format!("{}:{}", ip(6, 1), ports(6, 1).0)
        .parse()
        .expect("addr");
    let closed = |mut s: std::net::TcpStream| {
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return true,
                Ok(_) => continue,
            }
        }
    };
    // 1. Garbage instead of a Hello: the connection is closed.
    let mut s = std::net::TcpStream::connect(b_peer).expect("connect");
    let junk: Vec<u8> = (0..65_536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = s.write_all(&junk);
    assert!(closed(s), "garbage: connection left open");
    // 2. A stranger's Hello and a Lookup with a forged tag: closed before any answer.
    let mut codec = PeerCodec::default();
    let mut out = bytes::BytesMut::new();
    let hello = Frame::Hello {
        version: strait_cache::cluster::frame::VERSION,
        node: "mallory".into(),
        nonce: [7; 16],
    };
    codec.encode_frame(&hello, &mut out).expect("hello");
    let lookup = Frame::Lookup(Lookup {
        key: "test.example/obj/k0?size=3000&ttl=300".into(),
        method: LookupMethod::Get,
        uri: "/obj/k0?size=3000&ttl=300".into(),
        headers: vec![],
        hops: 1,
        flags: Lookup::MAY_LEASE,
    });
    codec.encode_frame(&lookup, &mut out).expect("lookup");
    let mut s = std::net::TcpStream::connect(b_peer).expect("connect");
    // A tag made up without the secret.
    out.extend_from_slice(&[0x5a; 16]);
    s.write_all(&out).expect("send");
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    // b's Hello (a u32 length, type, u32 stream, then the hello) and nothing after it: no
    // Hit, no Miss.
    let hello_len = u32::from_be_bytes(answer[..4].try_into().expect("length")) as usize;
    assert_eq!(
        answer.len(),
        4 + 4 + hello_len,
        "b answered an unauthenticated Lookup"
    );
    // b counted both and still serves.
    let counted = wait_until(Duration::from_secs(5), || {
        c.nodes[1].counter("peer_errors") >= 2
    });
    assert!(counted, "peer_errors {}", c.nodes[1].counter("peer_errors"));
    let r = get(c.nodes[1].addr, &path(0), &[]);
    assert_eq!(r.status, 200);
}

#[test]
fn chunked_answers_are_pushed_and_cut_ones_are_not_stored() {
    let c = Cluster::start(7, "");
    // Chunked origin answers (no Content-Length) for keys other nodes own: pushed as they
    // arrive, stored by the owner with their length, served whole by every node.
    let mut remote = 0;
    for k in 0..12 {
        let p = format!("/obj/ch{k}?size=20000&ttl=300&chunked=1");
        let r = get(c.nodes[0].addr, &p, &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, object_bytes(&format!("ch{k}"), 20_000), "ch{k}");
        let cs = r.cache_status().to_string();
        let owner = first_member(&cs);
        if owner == "a" {
            continue;
        }
        remote += 1;
        assert!(
            cs.ends_with("a; fwd=miss; stored; detail=peer"),
            "ch{k}: {cs}"
        );
        let other = if owner == "b" { 2 } else { 1 };
        let again = get(c.nodes[other].addr, &p, &[]);
        assert!(
            again.cache_status().starts_with(&format!("{owner}; hit")),
            "{}",
            again.cache_status()
        );
        assert_eq!(again.body, object_bytes(&format!("ch{k}"), 20_000));
        assert_eq!(again.header("content-length"), Some("20000"));
        assert_eq!(c.origin.count(&format!("/obj/ch{k}")), 1);
    }
    assert!(remote > 0, "a owned every chunked key");
    // An origin that cuts the body short: the client sees the cut, the owner stores nothing,
    // and the next request goes to the origin again.
    for k in 0..12 {
        let p = format!("/obj/cut{k}?size=20000&ttl=300&chunked=1&cut=9000");
        let r = get(c.nodes[0].addr, &p, &[]);
        let owner = first_member(r.cache_status());
        if owner == "a" {
            continue;
        }
        assert!(r.truncated || r.body.len() < 20_000, "cut{k}: whole body?");
        let again = get(c.nodes[0].addr, &p, &[]);
        assert!(
            !again.cache_status().contains("hit"),
            "cut{k}: {}",
            again.cache_status()
        );
        assert_eq!(c.origin.count(&format!("/obj/cut{k}")), 2, "cut{k}");
        let stored: u64 = (0..3).map(|i| c.nodes[i].counter("stored_objects")).sum();
        assert_eq!(stored, 12, "a cut body was stored");
        return;
    }
    panic!("a owned every cut key");
}

/// A key of `prefix`+N (with `query`) that a peer of a owns, found through a: (path, owner).
fn key_owned_elsewhere(c: &Cluster, prefix: &str, query: &str) -> (String, String) {
    for k in 0..50 {
        let p = format!("/obj/{prefix}{k}?{query}");
        let r = get(c.nodes[0].addr, &p, &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        let owner = first_member(r.cache_status());
        if owner != "a" {
            return (p, owner);
        }
    }
    panic!("a owns every {prefix} key");
}

#[test]
fn the_owner_answers_for_its_stale_objects() {
    let mut c = Cluster::start(8, "");
    // stale-while-revalidate: the owner serves its stale copy at once and refreshes it.
    // max-age=3: the refreshed copy stays fresh long enough to be seen fresh on a loaded
    // machine (at max-age=1 it could go stale again, and be refreshed again, first).
    let (p, owner) = key_owned_elsewhere(
        &c,
        "swr",
        "size=2000&cc=max-age%3D3%2C+stale-while-revalidate%3D60",
    );
    let name = p.split('?').next().unwrap_or("").to_string();
    std::thread::sleep(Duration::from_millis(4100));
    let r = get(c.nodes[0].addr, &p, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 2000);
    let cs = r.cache_status().to_string();
    assert!(
        cs.starts_with(&format!("{owner}; hit; fwd=stale"))
            && cs.ends_with("a; fwd=miss; detail=peer"),
        "stale-while-revalidate through a: {cs}"
    );
    let refreshed = wait_until(Duration::from_secs(5), || c.origin.count(&name) == 2);
    assert!(
        refreshed,
        "the owner did not refresh {name}: {}",
        c.origin.count(&name)
    );
    // The origin counts the refresh when its head arrives; the owner stores it when the body
    // has followed: ask until it is there (a request meanwhile is served stale, not refetched).
    let mut last = String::new();
    let fresh = wait_until(Duration::from_secs(5), || {
        last = get(c.nodes[0].addr, &p, &[]).cache_status().to_string();
        last.starts_with(&format!("{owner}; hit; ttl="))
    });
    assert!(fresh, "{last}");
    assert_eq!(c.origin.count(&name), 2, "one refresh only");
    // The owners answered every stale request themselves (at least the first one).
    let owner_answers =
        |c: &Cluster| -> u64 { (1..3).map(|i| c.nodes[i].counter("peer_answers")).sum() };
    let swr_answers = owner_answers(&c);
    assert!(swr_answers >= 1, "owners' own answers");
    // stale-if-error: the origin is gone; the owner serves its stale copy.
    let (p, owner) = key_owned_elsewhere(
        &c,
        "sie",
        "size=3000&cc=max-age%3D1%2C+stale-if-error%3D600",
    );
    let name = p.split('?').next().unwrap_or("").to_string();
    let want = object_bytes(name.trim_start_matches("/obj/"), 3000);
    std::thread::sleep(Duration::from_millis(2100));
    let _ = c.origin.proc.child.kill();
    let _ = c.origin.proc.child.wait();
    let r = get(c.nodes[0].addr, &p, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == want, "stale body differs");
    let cs = r.cache_status().to_string();
    assert!(
        cs.starts_with(&format!("{owner}; hit; fwd=stale")) && cs.contains("detail=stale-if-error"),
        "stale-if-error through a: {cs}"
    );
    eprintln!("stale answers through a: {cs}");
    assert!(c.nodes[0].counter("remote_hit") >= 2);
    assert_eq!(owner_answers(&c), swr_answers + 1, "owners' own answers");
}

#[test]
fn head_requests_are_answered_from_the_owners_object() {
    let c = Cluster::start(9, "");
    let (p, owner) = key_owned_elsewhere(&c, "hd", "size=5000&ttl=300");
    let name = p.split('?').next().unwrap_or("").to_string();
    // A HEAD through a: the owner's object answers it, no origin request.
    let r = request(c.nodes[0].addr, "HEAD", &p, &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), Some("5000"));
    let cs = r.cache_status().to_string();
    assert!(
        cs.starts_with(&format!("{owner}; hit; ttl=")) && cs.ends_with("a; fwd=miss; detail=peer"),
        "HEAD through a: {cs}"
    );
    assert!(r.has("age") && r.has("etag"));
    // A conditional HEAD that matches: 304.
    let etag = r.header("etag").unwrap_or("").to_string();
    let r = request(
        c.nodes[0].addr,
        "HEAD",
        &p,
        &[("If-None-Match", &etag)],
        b"",
    );
    assert_eq!(r.status, 304);
    assert_eq!(c.origin.count(&name), 1, "HEAD went to the origin");
    // A HEAD for a key nobody holds goes to the origin and stores nothing.
    let stored =
        |c: &Cluster| -> u64 { (0..3).map(|i| c.nodes[i].counter("stored_objects")).sum() };
    let before = stored(&c);
    let (q, _) = (0..50)
        .map(|k| format!("/obj/hn{k}?size=10&ttl=300"))
        .map(|q| {
            let r = request(c.nodes[0].addr, "HEAD", &q, &[], b"");
            (q, r.cache_status().to_string())
        })
        .find(|(_, cs)| cs.ends_with("a; fwd=miss; detail=peer") || cs == "a; fwd=miss")
        .expect("a HEAD miss");
    let name = q.split('?').next().unwrap_or("").to_string();
    assert_eq!(c.origin.count(&name), 1);
    assert_eq!(stored(&c), before, "a HEAD stored something");
}

#[test]
fn hot_copies_answer_at_the_asking_node_until_hot_ttl_and_purges_drop_them() {
    let c = Cluster::start(5, "[cache]\nhot_ttl = \"2s\"\n");
    let (p, owner) = key_owned_elsewhere(&c, "hot", "size=3000&ttl=300");
    let name = p.split('?').next().unwrap_or("").to_string();
    let o = ["a", "b", "c"].iter().position(|n| *n == owner).unwrap();
    let a = &c.nodes[0];
    let body = object_bytes(&name["/obj/".len()..], 3000);
    // The first remote hit asks the owner and keeps a hot copy; the next are answered at a.
    let r = get(a.addr, &p, &[]);
    assert!(
        r.cache_status().ends_with("a; fwd=miss; detail=peer"),
        "{}",
        r.cache_status()
    );
    let lookups = c.nodes[o].counter("peer_lookups");
    for _ in 0..3 {
        let r = get(a.addr, &p, &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, body);
        let cs = r.cache_status();
        assert!(
            cs.starts_with("a; hit; ttl=") && cs.ends_with("; detail=hot"),
            "{cs}"
        );
        assert!(r.has("age"));
        let via = r.header("via").unwrap_or("");
        assert!(via.ends_with("1.1 a (strait)"), "Via {via}");
    }
    let r = request(a.addr, "HEAD", &p, &[], b"");
    assert!(r.body.is_empty() && r.cache_status().ends_with("detail=hot"));
    assert_eq!(r.header("content-length"), Some("3000"));
    assert_eq!(a.counter("hot_hits"), 4);
    assert_eq!(
        c.nodes[o].counter("peer_lookups"),
        lookups,
        "the owner was asked"
    );
    // A purge at the owner drops a's copy with the object: the next request fetches again.
    let url = format!("http://test.example{p}");
    let r = admin_request(
        c.nodes[o].admin,
        "POST",
        &format!("/purge?url={}", encode(&url)),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get(a.addr, &p, &[]);
    assert!(
        !r.cache_status().contains("detail=hot"),
        "{}",
        r.cache_status()
    );
    assert_eq!(c.origin.count(&name), 2, "origin fetches after the purge");
    // A ban does too (the first request after the purge was a miss: one remote hit to copy).
    let r = get(a.addr, &p, &[]);
    assert!(
        r.cache_status().ends_with("detail=peer"),
        "{}",
        r.cache_status()
    );
    assert!(get(a.addr, &p, &[]).cache_status().ends_with("detail=hot"));
    let prefix = encode("http://test.example/obj/hot");
    let r = admin_request(
        c.nodes[o].admin,
        "POST",
        &format!("/ban?prefix={prefix}"),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!get(a.addr, &p, &[]).cache_status().contains("detail=hot"));
    // A copy lasts hot_ttl, then the owner is asked again.
    assert!(get(a.addr, &p, &[]).cache_status().ends_with("detail=peer"));
    assert!(get(a.addr, &p, &[]).cache_status().ends_with("detail=hot"));
    std::thread::sleep(Duration::from_millis(2100));
    let r = get(a.addr, &p, &[]);
    assert!(
        r.cache_status().ends_with("detail=peer"),
        "after hot_ttl: {}",
        r.cache_status()
    );
    // One copy per object in the cluster all along: the owner's.
    let stored: u64 = (0..3).map(|i| c.nodes[i].counter("stored_objects")).sum();
    assert_eq!(stored, 1);
}

#[test]
fn an_unsafe_request_through_any_node_invalidates_the_owners_object() {
    let c = Cluster::start(10, "");
    let (p, owner) = key_owned_elsewhere(&c, "post", "size=500&ttl=3600");
    let name = p.split('?').next().unwrap_or("").to_string();
    let o = usize::from(owner.as_bytes()[0] - b'a');
    let hit = get(c.nodes[0].addr, &p, &[]);
    assert!(
        hit.cache_status().starts_with(&format!("{owner}; hit")),
        "{}",
        hit.cache_status()
    );
    assert_eq!(c.origin.count(&name), 1);
    let before = c.nodes[o].counter("invalidated");
    // A POST to the URL through `a` (the origin answers it 200): RFC 9111 §4.4.
    let r = request(c.nodes[0].addr, "POST", &p, &[], b"new");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        c.nodes[o].counter("invalidated"),
        before + 1,
        "the owner removed it"
    );
    // Read after write, through `a` at once: fetched again, not the replaced object.
    let again = get(c.nodes[0].addr, &p, &[]);
    assert_eq!(again.status, 200);
    assert!(
        !again.cache_status().starts_with(&format!("{owner}; hit")),
        "{}",
        again.cache_status()
    );
    // The origin saw the first GET, the POST, and the GET after it.
    assert_eq!(c.origin.count(&name), 3, "fetched again after the write");
    assert_eq!(c.nodes[0].counter("peer_errors"), 0);
}

/// A client that sends `n` requests for `path` at once and reads nothing for a while: the
/// node's writes of the answers fill the connection's send buffer and then wait on the client.
/// The answers, read once it reads.
fn stalled_pipeline(addr: SocketAddr, path: &str, n: usize) -> Vec<Resp> {
    use std::io::{BufReader, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let req = format!("GET {path} HTTP/1.1\r\nHost: test.example\r\n\r\n");
    s.write_all(req.repeat(n).as_bytes()).expect("write");
    std::thread::sleep(Duration::from_millis(500));
    let mut r = BufReader::new(s);
    (0..n)
        .map(|i| read_response(&mut r, false).unwrap_or_else(|| panic!("answer {i} of {n}")))
        .collect()
}

#[test]
fn clients_that_stall_on_remote_hits_get_every_byte() {
    let c = Cluster::start(11, "");
    // Bodies the asking node reads whole from the owner (up to 64 KiB) and writes to its
    // client from the peer connection's read buffer, copying what a stalled client holds:
    // one under the peer reader's copy bound (32 KiB), one over it; and one it relays as it
    // arrives (over 64 KiB; its frames copied out of the read buffer). Each stalled client
    // asks for more than a loopback connection buffers (some 4 MiB), so the node's writes wait.
    for size in [16_000, 60_000, 200_000] {
        let (p, owner) =
            key_owned_elsewhere(&c, &format!("st{size}-"), &format!("size={size}&ttl=300"));
        let name = p
            .split('?')
            .next()
            .unwrap_or("")
            .trim_start_matches("/obj/")
            .to_string();
        let want = object_bytes(&name, size);
        let addr = c.nodes[0].addr;
        let n = 6 * 1024 * 1024 / size;
        let stalled: Vec<_> = (0..3)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || stalled_pipeline(addr, &p, n))
            })
            .collect();
        // Others keep asking meanwhile, on the same peer connections.
        for _ in 0..20 {
            let r = get(addr, &p, &[]);
            assert_eq!(r.status, 200);
            assert!(r.body == want, "a quick client's body differs");
        }
        for t in stalled {
            for r in t.join().expect("stalled client") {
                assert_eq!(r.status, 200, "{}", r.text());
                assert!(r.body == want, "a stalled client's body differs");
                let cs = r.cache_status();
                // (A long body's followers take the general path: `collapsed` there.)
                assert!(
                    cs.starts_with(&format!("{owner}; hit"))
                        && cs.contains(", a; fwd=miss;")
                        && cs.ends_with("detail=peer"),
                    "{cs} (size {size}; at a: {})\n{}",
                    c.peer_counters(0),
                    c.logs()
                );
            }
        }
    }
    // No owner was taken for hung (a wait's bound fired early once: `deadline`).
    assert_eq!(
        (
            c.nodes[0].counter("peer_errors"),
            c.nodes[0].counter("peer_timeouts")
        ),
        (0, 0),
        "{}",
        c.peer_counters(0)
    );
}
