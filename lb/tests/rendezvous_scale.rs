//! Cache-key ownership at scale (issue #16 item 5), as pure functions: 1 000 000 keys over
//! 10 and 11 nodes. Equal weights: the most loaded node holds at most 1.05× the mean; an 11th
//! node takes 1/11 ± 0.5 % of the keys, every one of them from another node and none moving
//! between the others; unequal weights: each node's share within 2 % (relative) of its
//! weight's share. The hash is pinned (no seed), so these figures are the same on every run
//! and every machine; the test prints them.

use strait_lb::select::rendezvous::{owner, Node};

const KEYS: usize = 1_000_000;

fn key(i: usize) -> String {
    format!("http://example.com/objects/{i}?v=1")
}

fn names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("cache-{i:02}.dc1.example"))
        .collect()
}

fn owners(nodes: &[Node]) -> Vec<usize> {
    (0..KEYS)
        .map(|i| owner(&key(i), nodes).expect("a node has weight"))
        .collect()
}

fn counts(owners: &[usize], n: usize) -> Vec<usize> {
    let mut c = vec![0; n];
    for &o in owners {
        c[o] += 1;
    }
    c
}

#[test]
fn a_million_keys_spread_evenly_and_an_eleventh_node_takes_only_its_share() {
    let ids = names(11);
    let ten: Vec<Node> = ids[..10].iter().map(|id| Node { id, weight: 1 }).collect();
    let eleven: Vec<Node> = ids.iter().map(|id| Node { id, weight: 1 }).collect();
    let before = owners(&ten);
    let c = counts(&before, 10);
    let mean = KEYS as f64 / 10.0;
    let max_over_mean = *c.iter().max().unwrap() as f64 / mean;
    println!("10 nodes, {KEYS} keys: per node {c:?}, max/mean {max_over_mean:.4}");
    assert!(max_over_mean <= 1.05, "max/mean {max_over_mean}");

    let after = owners(&eleven);
    let moved: Vec<usize> = (0..KEYS).filter(|&i| before[i] != after[i]).collect();
    let share = moved.len() as f64 / KEYS as f64;
    println!(
        "an 11th node: {} keys moved ({:.3} %; 1/11 = {:.3} %)",
        moved.len(),
        share * 100.0,
        100.0 / 11.0
    );
    assert!((share - 1.0 / 11.0).abs() <= 0.005, "share {share}");
    assert!(
        moved.iter().all(|&i| after[i] == 10),
        "a key moved between two old nodes"
    );
}

#[test]
fn a_million_keys_follow_unequal_weights_within_two_percent() {
    let ids = names(5);
    let weights = [1u32, 2, 3, 4, 10];
    let nodes: Vec<Node> = ids
        .iter()
        .zip(weights)
        .map(|(id, weight)| Node { id, weight })
        .collect();
    let c = counts(&owners(&nodes), nodes.len());
    let total: u32 = weights.iter().sum();
    for (i, (&got, w)) in c.iter().zip(weights).enumerate() {
        let want = KEYS as f64 * f64::from(w) / f64::from(total);
        let off = (got as f64 - want).abs() / want;
        println!(
            "weight {w}: {got} keys, expected {want:.0}, off {:.3} %",
            off * 100.0
        );
        assert!(
            off <= 0.02,
            "node {i} weight {w}: {got} keys, {want} expected"
        );
    }
}
