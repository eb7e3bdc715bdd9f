//! Which node of the cluster owns a cache key: weighted rendezvous hashing (highest random
//! weight), the same scheme as the origin scheduler's `source`/`uri` (`schedule/hrw.rs`)
//! over the same pinned hash (`hash.rs`).
//!
//! For a key, every node with a weight above 0 scores `-weight / ln(u)`, where
//! `u = unit_open(mix(hash(id) ^ hash(key)))` is the key's uniform draw for that node; nodes
//! rank by score, highest first, and an exact tie goes to the smaller id (byte order).
//!
//! Contract:
//! * the ranking depends only on the key and the set of `(id, weight)` pairs, never on the
//!   order of the slice, on the process or on the release (no random seed; the tests pin
//!   known answers), so every node of the cluster computes the same owner;
//! * a node of weight 0 (draining) is not ranked at all and never owns a key;
//! * a node's share of keys is its weight over the total weight;
//! * when a node joins, only keys that it now owns move (to it); when it leaves, exactly those
//!   keys move back, each to the owner it had before (its runner-up in the ranking).
//!
//! Node ids are expected to be unique; two entries with the same id and weight would rank
//! side by side, the earlier one in the slice first.

use std::cmp::Ordering;

use super::hash::{hash_bytes, mix, unit_open};

/// A cluster member as rendezvous sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node<'a> {
    /// The node's stable identity (its configured name), the same on every node.
    pub id: &'a str,
    /// Relative capacity; 0 takes the node out of the ranking.
    pub weight: u32,
}

/// The node's score for a key whose hash is `key`.
fn score(node: &Node, key: u64) -> f64 {
    score_hashed(node.weight, id_hash(node.id), key)
}

/// The hash of a node's id that its score starts from: a caller that ranks the same nodes
/// for many keys computes it once per node ([`owner_in`]).
pub fn id_hash(id: &str) -> u64 {
    hash_bytes(id.as_bytes())
}

/// [`score`] from the node's [`id_hash`].
fn score_hashed(weight: u32, id: u64, key: u64) -> f64 {
    let u = unit_open(mix(id ^ key));
    // u is strictly inside (0, 1), so ln(u) is finite and negative and the score positive.
    -f64::from(weight) / u.ln()
}

/// Ranking order: higher score first, then the smaller id.
fn rank_order(a: (f64, &str), b: (f64, &str)) -> Ordering {
    b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1))
}

/// Indices into `nodes` of every node of weight above 0, best first: the owner of `key`,
/// then the node to ask when the owner is unreachable, and so on. Empty when no node has a
/// weight.
pub fn ranked(key: &str, nodes: &[Node]) -> Vec<usize> {
    let k = hash_bytes(key.as_bytes());
    let mut scored: Vec<(f64, usize)> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.weight > 0)
        .map(|(i, n)| (score(n, k), i))
        .collect();
    // A stable sort keeps slice order only between entries equal in both score and id.
    scored.sort_by(|a, b| rank_order((a.0, nodes[a.1].id), (b.0, nodes[b.1].id)));
    scored.into_iter().map(|(_, i)| i).collect()
}

/// Index of the node that owns `key` (the first of [`ranked`], computed without allocating);
/// None when no node has a weight above 0.
pub fn owner(key: &str, nodes: &[Node]) -> Option<usize> {
    owner_where(key, nodes, |_| true)
}

/// Index (into `nodes`) of the owner `key` had before the node `joined` joined: the owner
/// among `nodes` without every node whose id is `joined`. After a join the new owner asks
/// that node first on a miss, so the join does not cold-start the keys it takes over. None
/// when no other node has a weight above 0.
pub fn previous_owner(key: &str, nodes: &[Node], joined: &str) -> Option<usize> {
    owner_where(key, nodes, |n| n.id != joined)
}

/// The best-ranked node among those of weight above 0 that pass `keep`.
fn owner_where(key: &str, nodes: &[Node], keep: impl Fn(&Node) -> bool) -> Option<usize> {
    let k = hash_bytes(key.as_bytes());
    let mut best: Option<(f64, usize)> = None;
    for (i, n) in nodes.iter().enumerate() {
        if n.weight == 0 || !keep(n) {
            continue;
        }
        let s = score(n, k);
        let better =
            best.is_none_or(|(bs, bi)| rank_order((s, n.id), (bs, nodes[bi].id)) == Ordering::Less);
        if better {
            best = Some((s, i));
        }
    }
    best.map(|(_, i)| i)
}

/// The owner of `key` among `nodes` given one by one, each with its [`id_hash`] (no slice to
/// build, no id hashed again): its position in the iteration, as [`owner`] would index the
/// same nodes in a slice.
pub fn owner_in<'a>(key: &str, nodes: impl IntoIterator<Item = (Node<'a>, u64)>) -> Option<usize> {
    let k = hash_bytes(key.as_bytes());
    let mut best: Option<(f64, &str, usize)> = None;
    for (i, (n, id)) in nodes.into_iter().enumerate() {
        if n.weight == 0 {
            continue;
        }
        let s = score_hashed(n.weight, id, k);
        if best.is_none_or(|(bs, bid, _)| rank_order((s, n.id), (bs, bid)) == Ordering::Less) {
            best = Some((s, n.id, i));
        }
    }
    best.map(|(_, _, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_in_agrees_with_owner() {
        let ns = nodes(&[("a", 100), ("b", 100), ("c", 0), ("d", 250), ("e", 100)]);
        for k in 0..2000 {
            let key = format!("http://example.com/{k}");
            assert_eq!(
                owner_in(&key, ns.iter().map(|&n| (n, id_hash(n.id)))),
                owner(&key, &ns),
                "{key}"
            );
        }
        assert_eq!(
            owner_in("k", [(Node { id: "a", weight: 0 }, id_hash("a"))]),
            None
        );
    }

    fn nodes<'a>(spec: &[(&'a str, u32)]) -> Vec<Node<'a>> {
        spec.iter()
            .map(|&(id, weight)| Node { id, weight })
            .collect()
    }

    fn key(i: u32) -> String {
        format!("http://example.com/objects/{i}.jpg")
    }

    const KEYS: u32 = 30_000;

    /// Owner id of every test key.
    fn owners<'a>(set: &[Node<'a>]) -> Vec<&'a str> {
        (0..KEYS)
            .map(|i| set[owner(&key(i), set).expect("an owner")].id)
            .collect()
    }

    fn shares(set: &[Node]) -> Vec<f64> {
        let mut counts = vec![0u32; set.len()];
        for i in 0..KEYS {
            counts[owner(&key(i), set).expect("an owner")] += 1;
        }
        counts
            .iter()
            .map(|&c| f64::from(c) / f64::from(KEYS))
            .collect()
    }

    #[test]
    fn known_keys_have_pinned_owners() {
        // These answers must never change between releases: every node of a cluster running
        // mixed versions has to agree on the owner of every key.
        let set = nodes(&[("node-a", 1), ("node-b", 1), ("node-c", 1)]);
        let got: Vec<&str> = ["/", "/index.html", "http://example.com/a", "k"]
            .iter()
            .map(|k| set[owner(k, &set).expect("an owner")].id)
            .collect();
        assert_eq!(got, PINNED_OWNERS);
        let ranking: Vec<&str> = ranked("http://example.com/a", &set)
            .into_iter()
            .map(|i| set[i].id)
            .collect();
        assert_eq!(ranking, PINNED_RANKING);
    }

    const PINNED_OWNERS: [&str; 4] = ["node-a", "node-c", "node-b", "node-a"];
    const PINNED_RANKING: [&str; 3] = ["node-b", "node-c", "node-a"];

    #[test]
    fn equal_nodes_share_keys_evenly() {
        let got = shares(&nodes(&[("node-a", 1), ("node-b", 1), ("node-c", 1)]));
        for s in &got {
            assert!((0.3133..=0.3533).contains(s), "{got:?}");
        }
    }

    #[test]
    fn shares_follow_weights() {
        let got = shares(&nodes(&[("node-a", 1), ("node-b", 2), ("node-c", 1)]));
        assert!((0.23..=0.27).contains(&got[0]), "{got:?}");
        assert!((0.48..=0.52).contains(&got[1]), "{got:?}");
        assert!((0.23..=0.27).contains(&got[2]), "{got:?}");
    }

    #[test]
    fn a_join_moves_only_keys_to_the_new_node_and_a_leave_moves_them_back() {
        let three = nodes(&[("node-a", 1), ("node-b", 1), ("node-c", 1)]);
        let four = nodes(&[("node-a", 1), ("node-b", 1), ("node-c", 1), ("node-d", 1)]);
        let before = owners(&three);
        let after = owners(&four);
        let mut moved = 0;
        for (b, a) in before.iter().zip(&after) {
            if a != b {
                assert_eq!(*a, "node-d", "a key moved between old nodes");
                moved += 1;
            }
        }
        let share = f64::from(moved) / f64::from(KEYS);
        assert!((0.23..=0.27).contains(&share), "{moved} keys moved");
        // The new node leaves again: exactly the keys it took go back where they were.
        assert_eq!(owners(&three), before);
    }

    #[test]
    fn the_previous_owner_is_the_owner_before_the_join() {
        let three = nodes(&[("node-a", 1), ("node-b", 2), ("node-c", 1)]);
        let four = nodes(&[("node-d", 1), ("node-a", 1), ("node-b", 2), ("node-c", 1)]);
        for i in 0..2_000 {
            let k = key(i);
            let old = three[owner(&k, &three).expect("an owner")].id;
            let prev = four[previous_owner(&k, &four, "node-d").expect("an owner")].id;
            assert_eq!(prev, old, "key {k}");
        }
        // Without other nodes there is no previous owner.
        assert_eq!(
            previous_owner("k", &nodes(&[("node-d", 1)]), "node-d"),
            None
        );
    }

    #[test]
    fn slice_order_does_not_matter() {
        let set = nodes(&[("a", 3), ("b", 1), ("c", 2), ("d", 1), ("e", 5)]);
        let mut reversed = set.clone();
        reversed.reverse();
        let mut rotated = set.clone();
        rotated.rotate_left(2);
        for i in 0..2_000 {
            let k = key(i);
            let ids = |s: &[Node<'static>]| -> Vec<&'static str> {
                ranked(&k, s).into_iter().map(|j| s[j].id).collect()
            };
            let want = ids(&set);
            assert_eq!(want.len(), 5);
            assert_eq!(ids(&reversed), want);
            assert_eq!(ids(&rotated), want);
            assert_eq!(set[owner(&k, &set).expect("an owner")].id, want[0]);
            assert_eq!(rotated[owner(&k, &rotated).expect("an owner")].id, want[0]);
        }
    }

    #[test]
    fn owner_is_the_head_of_the_ranking() {
        let set = nodes(&[("a", 1), ("b", 4), ("c", 2)]);
        for i in 0..2_000 {
            let k = key(i);
            assert_eq!(owner(&k, &set), ranked(&k, &set).first().copied());
        }
    }

    #[test]
    fn an_empty_set_has_no_owner() {
        assert_eq!(owner("k", &[]), None);
        assert!(ranked("k", &[]).is_empty());
        assert_eq!(previous_owner("k", &[], "x"), None);
    }

    #[test]
    fn a_zero_weight_node_never_owns_and_is_not_ranked() {
        let set = nodes(&[("a", 0), ("b", 1), ("c", 0)]);
        for i in 0..2_000 {
            let k = key(i);
            assert_eq!(owner(&k, &set), Some(1));
            assert_eq!(ranked(&k, &set), vec![1]);
        }
        assert_eq!(owner("k", &nodes(&[("a", 0)])), None);
        assert!(ranked("k", &nodes(&[("a", 0)])).is_empty());
    }

    #[test]
    fn an_exact_tie_goes_to_the_smaller_id() {
        assert_eq!(rank_order((1.5, "a"), (1.5, "b")), Ordering::Less);
        assert_eq!(rank_order((1.5, "b"), (1.5, "a")), Ordering::Greater);
        assert_eq!(rank_order((2.0, "z"), (1.5, "a")), Ordering::Less);
    }
}
