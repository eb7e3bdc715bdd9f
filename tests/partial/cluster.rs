//! The parts of a key a peer owns, in a cluster of three real nodes (127.0.50.1–3, fixed peer
//! and gossip ports 29101–29123): a range asked at a node that does not own the key is
//! answered by the owner from its partial object (one copy in the cluster, at the owner; the
//! origin asked for each window once), and a full GET anywhere is completed at the owner from
//! its parts.

use std::net::SocketAddr;
use std::time::Duration;

use super::assert_part;
use super::origin::{content, RangeOrigin};
use super::support::{admin_request, get, wait_until, Node, Resp};

const IDS: [&str; 3] = ["a", "b", "c"];
const SIZE: usize = 4000;

fn ip(i: usize) -> String {
    format!("127.0.50.{}", i + 1)
}

/// Peer and gossip ports of node `i`.
fn ports(i: usize) -> (u16, u16) {
    (29_101 + i as u16, 29_121 + i as u16)
}

fn config(i: usize, origin: SocketAddr) -> String {
    let (peer, gossip) = ports(i);
    let seeds: Vec<String> = (0..3)
        .filter(|&j| j != i)
        .map(|j| format!("\"{}:{}\"", ip(j), ports(j).1))
        .collect();
    format!(
        "[node]\nid = \"{id}\"\nlisten = [\"{ip}:0\"]\nadmin = \"{ip}:0\"\n\n\
         [cache]\npartial = \"on\"\npartial_slice = \"1KiB\"\n\n\
         [cluster]\npeer_listen = \"{ip}:{peer}\"\ngossip_listen = \"{ip}:{gossip}\"\n\
         seeds = [{seeds}]\nprobe_interval = \"200ms\"\nsuspect_timeout = \"1s\"\n\n\
         [[pool]]\nname = \"origin\"\nservers = [{{ addr = \"{origin}\" }}]\n\n\
         [[route]]\npool = \"origin\"\n",
        id = IDS[i],
        ip = ip(i),
        seeds = seeds.join(", "),
    )
}

fn alive(node: &Node) -> usize {
    let r = admin_request(node.admin, "GET", "/cluster.json", &[]);
    let j: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    j["members"]
        .as_array()
        .map_or(0, |m| m.iter().filter(|m| m["state"] == "alive").count())
}

fn ranged(node: &Node, path: &str, a: usize, b: usize) -> Resp {
    get(node.addr, path, &[("Range", &format!("bytes={a}-{b}"))])
}

/// Each node's counter `name`.
fn counters(nodes: &[Node], name: &str) -> Vec<u64> {
    nodes.iter().map(|n| n.counter(name)).collect()
}

#[test]
fn a_peers_range_is_kept_and_answered_at_the_owner_only() {
    let origin = RangeOrigin::start("127.0.50.1", SIZE, "\"v1\"");
    let nodes: Vec<Node> = (0..3)
        .map(|i| Node::start_config(&config(i, origin.addr)))
        .collect();
    assert!(
        wait_until(Duration::from_secs(15), || nodes
            .iter()
            .all(|n| alive(n) == 3)),
        "members never all alive"
    );
    // A key node a does not own: the first one whose first range at a names another owner.
    let mut found = None;
    for k in 0..40 {
        let path = format!("/p{k}.bin");
        let before = counters(&nodes, "stored_objects");
        let r = ranged(&nodes[0], &path, 100, 199);
        assert_part(&r, 1, SIZE, 100, 199);
        let owner = r.cache_status().split(';').next().unwrap_or("").to_string();
        if owner != "a" {
            found = Some((path, owner, before, r));
            break;
        }
    }
    let (path, owner, before, r) = found.expect("a key a peer owns");
    let o = IDS.iter().position(|id| *id == owner).expect("owner id");
    let other = 3 - o; // the node that is neither a nor the owner
    assert_eq!(
        r.cache_status(),
        format!("{owner}; fwd=miss; stored, a; fwd=miss; detail=peer")
    );
    let seen = origin.seen_of(&path);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].range.as_deref(), Some("bytes=0-1023"), "one slice");
    // Kept at the owner only.
    let stored = |before: &[u64]| -> Vec<u64> {
        counters(&nodes, "stored_objects")
            .iter()
            .zip(before)
            .map(|(now, was)| now - was)
            .collect()
    };
    let mut one_at_owner = vec![0, 0, 0];
    one_at_owner[o] = 1;
    assert_eq!(
        stored(&before),
        one_at_owner,
        "objects stored since, per node"
    );
    // The same range again, at every node: a hit from the owner's part, no origin request.
    let remote_hits = counters(&nodes, "remote_hit");
    for (i, n) in nodes.iter().enumerate() {
        let r = ranged(n, &path, 100, 199);
        assert_part(&r, 1, SIZE, 100, 199);
        let cs = r.cache_status();
        assert!(
            cs.starts_with(&format!("{owner}; hit; ttl=")),
            "via {}: {cs}",
            IDS[i]
        );
        if i != o {
            assert!(
                cs.ends_with(&format!(", {}; fwd=miss; detail=peer", IDS[i])),
                "{cs}"
            );
        }
    }
    let hits_now = counters(&nodes, "remote_hit");
    for i in 0..3 {
        let want = remote_hits[i] + u64::from(i != o);
        assert_eq!(hits_now[i], want, "remote hits at {}", IDS[i]);
    }
    assert_eq!(origin.seen_of(&path).len(), 1);
    // A range across the held slice's end, at the third node: the owner asks for the gap.
    let r = ranged(&nodes[other], &path, 1000, 1100);
    assert_part(&r, 1, SIZE, 1000, 1100);
    let seen = origin.seen_of(&path);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].range.as_deref(), Some("bytes=1024-2047"));
    assert_eq!(seen[1].if_range.as_deref(), Some("\"v1\""));
    assert_eq!(stored(&before), one_at_owner);
    // A full GET at a: the owner completes its parts (the rest only) and keeps the whole.
    let full = get(nodes[0].addr, &path, &[]);
    assert_eq!(full.status, 200, "{}", full.cache_status());
    assert!(full.body == content(1, SIZE), "whole body");
    assert_eq!(
        full.cache_status(),
        format!("{owner}; fwd=partial; stored, a; fwd=miss; detail=peer")
    );
    let seen = origin.seen_of(&path);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[2].range.as_deref(), Some("bytes=2048-3999"));
    assert_eq!(stored(&before), one_at_owner, "the part became the object");
    for n in &nodes {
        let r = get(n.addr, &path, &[]);
        assert_eq!(r.status, 200);
        assert!(r.body == content(1, SIZE));
        assert!(
            r.cache_status().starts_with(&format!("{owner}; hit")),
            "{}",
            r.cache_status()
        );
    }
    assert_eq!(origin.seen_of(&path).len(), 3);
}
