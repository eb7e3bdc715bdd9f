//! Choosing a pool's server for one request: [`Scheduler::pick`] with the pool's
//! [`Algorithm`]. Pure logic: the caller passes what the scheduler may look at (weights,
//! availability, active requests, the client address and path), so every rule is tested
//! without sockets.
//!
//! Contract, for every algorithm: a server is eligible when it is available, weighs more than
//! 0 and is not the `exclude`d one (the server a retry is moving away from); only eligible
//! servers are picked, and `None` means none is eligible. Weights are honoured by all.
//! * `roundrobin`: smooth weighted round robin (`schedule/wrr.rs`): weights 5,1,1 give
//!   `0 0 1 0 2 0 0`.
//! * `leastconn`: lowest active requests per unit of weight, ties shared round robin
//!   (`schedule/load.rs`).
//! * `source`: weighted rendezvous hash of the client address (`schedule/hrw.rs`): a client
//!   keeps its server while it is eligible; without a client address, round robin.
//! * `uri`: the same hash on the path without its query: one URL, one server.
//! * `random2`: the lighter of two distinct weighted random servers (`schedule/load.rs`).
//!
//! Hashing uses the servers' stable identities ("ip:port"), not their positions, so a server
//! keeps its clients and URLs across restarts, reloads and reorderings. The hash
//! (`select/hash.rs`, FNV-1a with a finalizer) is written here: ten lines need no crate, and
//! it must never change between releases. `random2` draws from `rand`'s `SmallRng`
//! (`schedule/rng.rs`).

mod hrw;
mod load;
mod rng;
mod wrr;

use std::net::IpAddr;

use parking_lot::Mutex;
use serde::Deserialize;

use super::hash;

use wrr::SmoothWrr;

/// Scheduling algorithm of a pool (`algorithm = "..."` of a cache node's `[[pool]]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// Smooth weighted round robin.
    #[default]
    Roundrobin,
    /// Fewest active requests per unit of weight.
    Leastconn,
    /// Weighted rendezvous hash of the client address.
    Source,
    /// Weighted rendezvous hash of the request path: one URL, one server.
    Uri,
    /// Power of two random choices on active requests.
    Random2,
}

impl Algorithm {
    /// Name as written in configs and shown in stats.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Roundrobin => "roundrobin",
            Algorithm::Leastconn => "leastconn",
            Algorithm::Source => "source",
            Algorithm::Uri => "uri",
            Algorithm::Random2 => "random2",
        }
    }
}

/// A server as the scheduler sees it at pick time.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// Configured weight; 0 takes the server out of rotation.
    pub weight: u32,
    /// Up by health checks and not ejected.
    pub available: bool,
    /// Requests in flight on it now.
    pub active: u64,
}

/// What a pick may hash on.
#[derive(Debug, Clone, Copy)]
pub struct PickInput<'a> {
    /// The client's address (`source`); None when unknown.
    pub client: Option<IpAddr>,
    /// The request path, query allowed (`uri` drops it).
    pub path: &'a str,
}

/// One pool's scheduler; `Send + Sync`, shared by all of the pool's requests.
#[derive(Debug)]
pub struct Scheduler {
    algorithm: Algorithm,
    /// Hash of each server's identity, in pool order.
    ids: Vec<u64>,
    /// Round robin state (`roundrobin`, `source` without a client, `leastconn` ties).
    wrr: Mutex<SmoothWrr>,
    rng: rng::Rng,
}

impl Scheduler {
    /// `ids` are stable server identities (their "ip:port" strings) in pool order; hashing
    /// algorithms hash on them so a server keeps its share across restarts and reorderings.
    pub fn new(algorithm: Algorithm, ids: &[String]) -> Scheduler {
        Scheduler::build(algorithm, ids, rng::Rng::from_entropy())
    }

    /// Like [`Scheduler::new`] with a fixed PRNG seed, so `random2` tests are reproducible.
    #[cfg(test)]
    pub(crate) fn with_seed(algorithm: Algorithm, ids: &[String], seed: u64) -> Scheduler {
        Scheduler::build(algorithm, ids, rng::Rng::with_seed(seed))
    }

    fn build(algorithm: Algorithm, ids: &[String], rng: rng::Rng) -> Scheduler {
        Scheduler {
            algorithm,
            ids: ids
                .iter()
                .map(|id| hash::hash_bytes(id.as_bytes()))
                .collect(),
            wrr: Mutex::new(SmoothWrr::new(ids.len())),
            rng,
        }
    }

    /// The algorithm this scheduler runs.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Index of the chosen server; skips servers that are unavailable, have weight 0, or are
    /// `exclude`d (a retry). None when no server qualifies.
    ///
    /// `servers` is in pool order, one entry per identity given to [`Scheduler::new`]; extra
    /// entries on either side are never picked.
    pub fn pick(
        &self,
        input: &PickInput,
        servers: &[Candidate],
        exclude: Option<usize>,
    ) -> Option<usize> {
        let servers = &servers[..servers.len().min(self.ids.len())];
        let eligible = |i: usize| {
            Some(i) != exclude && servers.get(i).is_some_and(|s| s.available && s.weight > 0)
        };
        match (self.algorithm, input.client) {
            (Algorithm::Roundrobin, _) | (Algorithm::Source, None) => {
                self.round_robin(servers, eligible)
            }
            (Algorithm::Source, Some(ip)) => {
                hrw::rendezvous(&self.ids, servers, hash::hash_ip(ip), eligible)
            }
            (Algorithm::Uri, _) => {
                hrw::rendezvous(&self.ids, servers, hash::hash_path(input.path), eligible)
            }
            (Algorithm::Leastconn, _) => {
                load::least_loaded(servers, eligible, &mut self.wrr.lock())
            }
            (Algorithm::Random2, _) => load::two_choices(servers, eligible, &self.rng),
        }
    }

    fn round_robin(
        &self,
        servers: &[Candidate],
        eligible: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        self.wrr
            .lock()
            .pick(|i| servers.get(i).map_or(0, |s| s.weight), eligible)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const ALL: [Algorithm; 5] = [
        Algorithm::Roundrobin,
        Algorithm::Leastconn,
        Algorithm::Source,
        Algorithm::Uri,
        Algorithm::Random2,
    ];

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.3.0.{}:80", i + 1)).collect()
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

    fn input(i: u32) -> (Option<IpAddr>, String) {
        (
            Some(IpAddr::V4(Ipv4Addr::from(0xc000_0200 + i))),
            format!("/p/{i}"),
        )
    }

    fn sequence(
        s: &Scheduler,
        servers: &[Candidate],
        exclude: Option<usize>,
        n: usize,
    ) -> Vec<usize> {
        let none = PickInput {
            client: None,
            path: "/",
        };
        (0..n)
            .map(|_| s.pick(&none, servers, exclude).unwrap_or(usize::MAX))
            .collect()
    }

    #[test]
    fn scheduler_is_send_and_sync_and_reports_its_algorithm() {
        fn shared<T: Send + Sync>() {}
        shared::<Scheduler>();
        for alg in ALL {
            assert_eq!(Scheduler::new(alg, &names(2)).algorithm(), alg);
        }
    }

    #[test]
    fn roundrobin_follows_the_exact_weighted_sequence() {
        let s = Scheduler::new(Algorithm::Roundrobin, &names(3));
        let servers = up(&[5, 1, 1]);
        assert_eq!(
            sequence(&s, &servers, None, 14),
            [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]
        );
    }

    #[test]
    fn roundrobin_skips_unavailable_and_excluded_servers() {
        let s = Scheduler::new(Algorithm::Roundrobin, &names(4));
        let mut servers = up(&[2, 1, 1, 1]);
        servers[3].available = false;
        assert_eq!(sequence(&s, &servers, None, 8), [0, 1, 2, 0, 0, 1, 2, 0]);
        let s = Scheduler::new(Algorithm::Roundrobin, &names(4));
        assert_eq!(sequence(&s, &servers, Some(0), 4), [1, 2, 1, 2]);
    }

    #[test]
    fn source_without_a_client_address_falls_back_to_round_robin() {
        let s = Scheduler::new(Algorithm::Source, &names(3));
        assert_eq!(sequence(&s, &up(&[2, 1, 1]), None, 4), [0, 1, 2, 0]);
    }

    #[test]
    fn weight_zero_is_never_picked_by_any_algorithm() {
        for alg in ALL {
            let s = Scheduler::new(alg, &names(3));
            // Server 1 is idle and would win on load; it weighs 0.
            let mut servers = up(&[1, 0, 1]);
            servers[0].active = 5;
            servers[2].active = 5;
            for i in 0..500 {
                let (client, path) = input(i);
                let pick = s.pick(
                    &PickInput {
                        client,
                        path: &path,
                    },
                    &servers,
                    None,
                );
                assert!(
                    matches!(pick, Some(0) | Some(2)),
                    "{}: {pick:?}",
                    alg.as_str()
                );
            }
        }
    }

    #[test]
    fn exclude_is_honoured_and_nothing_eligible_gives_none() {
        for alg in ALL {
            let s = Scheduler::new(alg, &names(3));
            let mut servers = up(&[1, 1, 1]);
            servers[1].available = false;
            for i in 0..200 {
                let (client, path) = input(i);
                let pi = PickInput {
                    client,
                    path: &path,
                };
                assert_eq!(s.pick(&pi, &servers, Some(0)), Some(2), "{}", alg.as_str());
                assert_eq!(s.pick(&pi, &servers, Some(2)), Some(0), "{}", alg.as_str());
            }
            let (client, path) = input(1);
            let pi = PickInput {
                client,
                path: &path,
            };
            servers[2].available = false;
            assert_eq!(s.pick(&pi, &servers, Some(0)), None, "{}", alg.as_str());
            servers[0].available = false;
            assert_eq!(s.pick(&pi, &servers, None), None, "{}", alg.as_str());
            assert_eq!(s.pick(&pi, &[], None), None, "{}", alg.as_str());
        }
    }

    #[test]
    fn entries_beyond_the_known_servers_are_never_picked() {
        for alg in ALL {
            let s = Scheduler::new(alg, &names(1));
            let servers = up(&[1, 100]);
            for i in 0..50 {
                let (client, path) = input(i);
                let pi = PickInput {
                    client,
                    path: &path,
                };
                assert_eq!(s.pick(&pi, &servers, None), Some(0), "{}", alg.as_str());
            }
        }
    }
}
