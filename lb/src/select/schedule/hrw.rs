//! Weighted rendezvous hashing (highest random weight, Thaler and Ravishankar; weighted form
//! by Schindelhauer and Schomaker): for a key, every eligible server scores
//! `-weight / ln(u)` where `u = unit_open(mix(id ^ key))` is the key's uniform draw for that
//! server, and the highest score wins.
//!
//! Contract: the answer depends only on the key and the set of eligible server identities
//! with their weights, never on pool order, so
//! * one key always gets the same server while that server stays eligible;
//! * when a server leaves, only the keys it held move (each to its own runner-up), and when
//!   it comes back exactly those keys return;
//! * a server's share of keys is its weight over the total weight.

use super::super::hash::{mix, unit_open};
use super::Candidate;

/// Score of the server with identity hash `id` and weight `weight` for `key`.
fn score(id: u64, weight: u32, key: u64) -> f64 {
    -f64::from(weight) / unit_open(mix(id ^ key)).ln()
}

/// The eligible server with the highest score for `key` (the lowest index on an exact tie);
/// None when none is eligible. `ids[i]` is server `i`'s identity hash.
pub(super) fn rendezvous(
    ids: &[u64],
    servers: &[Candidate],
    key: u64,
    eligible: impl Fn(usize) -> bool,
) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, (&id, s)) in ids.iter().zip(servers).enumerate() {
        if !eligible(i) {
            continue;
        }
        let sc = score(id, s.weight, key);
        if best.is_none_or(|(_, b)| sc > b) {
            best = Some((i, sc));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::super::{Algorithm, Candidate, PickInput, Scheduler};
    use std::net::{IpAddr, Ipv4Addr};

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn up(weights: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .map(|&weight| Candidate {
                weight,
                available: true,
                active: 0,
            })
            .collect()
    }

    fn client(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
    }

    fn pick_source(s: &Scheduler, servers: &[Candidate], i: u32) -> usize {
        let input = PickInput {
            client: Some(client(i)),
            path: "/same/for/everyone",
        };
        s.pick(&input, servers, None).unwrap_or(usize::MAX)
    }

    fn pick_uri(s: &Scheduler, servers: &[Candidate], i: u32) -> usize {
        let path = format!("/objects/{i}.jpg");
        let input = PickInput {
            client: Some(client(i)),
            path: &path,
        };
        s.pick(&input, servers, None).unwrap_or(usize::MAX)
    }

    const FOUR: [&str; 4] = ["10.1.0.1:80", "10.1.0.2:80", "10.1.0.3:80", "10.1.0.4:80"];

    #[test]
    fn the_same_key_gets_the_same_server_every_time() {
        for (alg, pick) in [
            (
                Algorithm::Source,
                pick_source as fn(&Scheduler, &[Candidate], u32) -> usize,
            ),
            (Algorithm::Uri, pick_uri),
        ] {
            let s = Scheduler::new(alg, &ids(&FOUR));
            let servers = up(&[1, 1, 1, 1]);
            let first: Vec<usize> = (0..1000).map(|i| pick(&s, &servers, i)).collect();
            let second: Vec<usize> = (0..1000).map(|i| pick(&s, &servers, i)).collect();
            assert_eq!(first, second, "{}", alg.as_str());
            assert!(first.iter().all(|&i| i < 4));
            // A fresh scheduler (a restart) agrees too: nothing depends on pick history.
            let again = Scheduler::new(alg, &ids(&FOUR));
            let third: Vec<usize> = (0..1000).map(|i| pick(&again, &servers, i)).collect();
            assert_eq!(first, third, "{}", alg.as_str());
        }
    }

    #[test]
    fn an_unavailable_server_moves_only_its_own_keys() {
        for (alg, pick) in [
            (
                Algorithm::Source,
                pick_source as fn(&Scheduler, &[Candidate], u32) -> usize,
            ),
            (Algorithm::Uri, pick_uri),
        ] {
            let s = Scheduler::new(alg, &ids(&FOUR));
            let mut servers = up(&[1, 1, 1, 1]);
            let before: Vec<usize> = (0..1000).map(|i| pick(&s, &servers, i)).collect();
            servers[2].available = false;
            let after: Vec<usize> = (0..1000).map(|i| pick(&s, &servers, i)).collect();
            let mut moved = 0;
            for (b, a) in before.iter().zip(&after) {
                if *b == 2 {
                    assert_ne!(*a, 2);
                    moved += 1;
                } else {
                    assert_eq!(a, b, "{}: a key not on server 2 moved", alg.as_str());
                }
            }
            assert_eq!(moved, before.iter().filter(|&&b| b == 2).count());
            assert!(moved > 150, "{moved} keys were on server 2");
            servers[2].available = true;
            let back: Vec<usize> = (0..1000).map(|i| pick(&s, &servers, i)).collect();
            assert_eq!(back, before, "{}", alg.as_str());
        }
    }

    #[test]
    fn removing_and_reordering_servers_keeps_each_server_its_keys() {
        let old = Scheduler::new(Algorithm::Source, &ids(&FOUR));
        let old_servers = up(&[1, 1, 1, 1]);
        // Server 3 ("10.1.0.3:80") removed from the config, the rest listed in another order.
        let new_ids = ids(&[FOUR[3], FOUR[1], FOUR[0]]);
        let new = Scheduler::new(Algorithm::Source, &new_ids);
        let new_servers = up(&[1, 1, 1]);
        for i in 0..1000 {
            let b = FOUR[pick_source(&old, &old_servers, i)];
            let a = new_ids[pick_source(&new, &new_servers, i)].as_str();
            if b == FOUR[2] {
                assert_ne!(a, FOUR[2]);
            } else {
                assert_eq!(a, b, "key {i} moved");
            }
        }
    }

    fn shares(alg: Algorithm, weights: &[u32], n: u32) -> Vec<f64> {
        let names: Vec<String> = (0..weights.len())
            .map(|i| format!("192.168.7.{}:8080", i + 10))
            .collect();
        let s = Scheduler::new(alg, &names);
        let servers = up(weights);
        let mut counts = vec![0u32; weights.len()];
        for i in 0..n {
            let pick = if alg == Algorithm::Uri {
                pick_uri
            } else {
                pick_source
            };
            counts[pick(&s, &servers, i)] += 1;
        }
        counts
            .iter()
            .map(|&c| f64::from(c) / f64::from(n))
            .collect()
    }

    #[test]
    fn equal_servers_share_keys_evenly() {
        for alg in [Algorithm::Source, Algorithm::Uri] {
            let got = shares(alg, &[1, 1, 1], 10_000);
            for share in &got {
                assert!(
                    (0.3033..=0.3633).contains(share),
                    "{}: {got:?}",
                    alg.as_str()
                );
            }
        }
    }

    #[test]
    fn weights_shift_shares_proportionally() {
        for alg in [Algorithm::Source, Algorithm::Uri] {
            let got = shares(alg, &[3, 1], 10_000);
            assert!((0.72..=0.78).contains(&got[0]), "{}: {got:?}", alg.as_str());
            assert!((0.22..=0.28).contains(&got[1]), "{}: {got:?}", alg.as_str());
        }
    }

    #[test]
    fn uri_ignores_the_query_and_source_ignores_the_path() {
        let s = Scheduler::new(Algorithm::Uri, &ids(&FOUR));
        let servers = up(&[1, 1, 1, 1]);
        for i in 0..200 {
            let plain = format!("/img/{i}.png");
            let query = format!("/img/{i}.png?v={}", i * 7);
            let a = PickInput {
                client: Some(client(i)),
                path: &plain,
            };
            let b = PickInput {
                client: Some(client(i + 1)),
                path: &query,
            };
            assert_eq!(s.pick(&a, &servers, None), s.pick(&b, &servers, None));
        }
        let src = Scheduler::new(Algorithm::Source, &ids(&FOUR));
        let c = Some(client(5));
        let first = src.pick(
            &PickInput {
                client: c,
                path: "/x",
            },
            &servers,
            None,
        );
        for p in ["/y", "/z?q", "/"] {
            assert_eq!(
                src.pick(&PickInput { client: c, path: p }, &servers, None),
                first
            );
        }
    }
}
