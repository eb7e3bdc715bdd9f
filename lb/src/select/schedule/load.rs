//! Load-aware choices: `leastconn` and `random2`. Load is active requests per unit of weight,
//! compared exactly in integers (`active_a * weight_b` against `active_b * weight_a`, in
//! `u128` so nothing overflows), so an idle server (0 active) is lighter than any busy one
//! and two idle servers are equal whatever their weights.
//!
//! * `leastconn`: the lightest eligible server; servers tied for lightest share picks by
//!   smooth weighted round robin, so equal servers alternate instead of the first one taking
//!   every request that arrives before the counters move.
//! * `random2` (power of two choices, Mitzenmacher): draw two distinct eligible servers, each
//!   with probability proportional to weight, and take the lighter (the first drawn on a tie).
//!   Needs no shared order between pickers and avoids herding onto one "least" server.
//!
//! Every function here only considers servers for which `eligible(i)` holds; the caller
//! guarantees eligible servers have a positive weight.

use std::cmp::Ordering;

use super::rng::Rng;
use super::wrr::SmoothWrr;
use super::Candidate;

/// Compares the load (active per unit of weight) of `a` with that of `b`.
pub(super) fn compare_load(a: &Candidate, b: &Candidate) -> Ordering {
    let lhs = u128::from(a.active) * u128::from(b.weight);
    let rhs = u128::from(b.active) * u128::from(a.weight);
    lhs.cmp(&rhs)
}

/// The least loaded eligible server, ties shared through `wrr`; None when none is eligible.
pub(super) fn least_loaded(
    servers: &[Candidate],
    eligible: impl Fn(usize) -> bool,
    wrr: &mut SmoothWrr,
) -> Option<usize> {
    let mut lightest: Option<usize> = None;
    for (i, s) in servers.iter().enumerate() {
        if eligible(i) && lightest.is_none_or(|l| compare_load(s, &servers[l]).is_lt()) {
            lightest = Some(i);
        }
    }
    let l = servers.get(lightest?)?;
    wrr.pick(
        |i| servers.get(i).map_or(0, |s| s.weight),
        |i| eligible(i) && servers.get(i).is_some_and(|s| compare_load(s, l).is_eq()),
    )
}

/// One eligible server other than `skip`, drawn with probability proportional to weight;
/// `total` is the sum of the weights it draws among.
fn weighted_draw(
    servers: &[Candidate],
    eligible: &impl Fn(usize) -> bool,
    skip: Option<usize>,
    total: u64,
    rng: &Rng,
) -> Option<usize> {
    let mut r = rng.below(total);
    let mut last = None;
    for (i, s) in servers.iter().enumerate() {
        if !eligible(i) || Some(i) == skip {
            continue;
        }
        let w = u64::from(s.weight);
        if r < w {
            return Some(i);
        }
        r -= w;
        last = Some(i);
    }
    // Unreachable when `total` is the eligible sum; a safe answer anyway.
    last
}

/// The lighter of two distinct weighted random eligible servers; the only one when there is
/// one; None when none is eligible.
pub(super) fn two_choices(
    servers: &[Candidate],
    eligible: impl Fn(usize) -> bool,
    rng: &Rng,
) -> Option<usize> {
    let (count, total) = servers
        .iter()
        .enumerate()
        .filter(|&(i, _)| eligible(i))
        .fold((0usize, 0u64), |(n, t), (_, s)| {
            (n + 1, t + u64::from(s.weight))
        });
    if count == 0 || total == 0 {
        return None;
    }
    let first = weighted_draw(servers, &eligible, None, total, rng)?;
    if count == 1 {
        return Some(first);
    }
    let rest = total - u64::from(servers[first].weight);
    let Some(second) = weighted_draw(servers, &eligible, Some(first), rest, rng) else {
        return Some(first);
    };
    if compare_load(&servers[second], &servers[first]).is_lt() {
        Some(second)
    } else {
        Some(first)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Algorithm, Candidate, PickInput, Scheduler};
    use super::*;

    fn cand(weight: u32, active: u64) -> Candidate {
        Candidate {
            weight,
            available: true,
            active,
        }
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.2.0.{}:80", i + 1)).collect()
    }

    const INPUT: PickInput<'static> = PickInput {
        client: None,
        path: "/",
    };

    #[test]
    fn load_compares_active_per_weight_exactly() {
        assert_eq!(compare_load(&cand(2, 3), &cand(1, 2)), Ordering::Less);
        assert_eq!(compare_load(&cand(1, 2), &cand(2, 4)), Ordering::Equal);
        assert_eq!(compare_load(&cand(1, 0), &cand(100, 1)), Ordering::Less);
        assert_eq!(compare_load(&cand(1, 0), &cand(9, 0)), Ordering::Equal);
        let huge = cand(u32::MAX, u64::MAX);
        assert_eq!(
            compare_load(&huge, &cand(u32::MAX, u64::MAX - 1)),
            Ordering::Greater
        );
    }

    #[test]
    fn leastconn_picks_the_idle_server() {
        let s = Scheduler::new(Algorithm::Leastconn, &names(3));
        let servers = [cand(1, 4), cand(1, 0), cand(1, 2)];
        for _ in 0..5 {
            assert_eq!(s.pick(&INPUT, &servers, None), Some(1));
        }
    }

    #[test]
    fn leastconn_weighs_load_by_weight() {
        // 3/2 < 2/1: the heavier server is less loaded although it has more requests.
        let s = Scheduler::new(Algorithm::Leastconn, &names(2));
        let servers = [cand(2, 3), cand(1, 2)];
        assert_eq!(s.pick(&INPUT, &servers, None), Some(0));
        let servers = [cand(2, 5), cand(1, 2)];
        assert_eq!(s.pick(&INPUT, &servers, None), Some(1));
    }

    #[test]
    fn leastconn_alternates_between_equally_loaded_servers() {
        let s = Scheduler::new(Algorithm::Leastconn, &names(3));
        let servers = [cand(1, 1), cand(1, 3), cand(1, 1)];
        let seq: Vec<Option<usize>> = (0..4).map(|_| s.pick(&INPUT, &servers, None)).collect();
        assert_eq!(seq, vec![Some(0), Some(2), Some(0), Some(2)]);
    }

    #[test]
    fn leastconn_skips_the_excluded_and_unavailable() {
        let s = Scheduler::new(Algorithm::Leastconn, &names(3));
        let mut servers = [cand(1, 0), cand(1, 5), cand(1, 9)];
        assert_eq!(s.pick(&INPUT, &servers, Some(0)), Some(1));
        servers[1].available = false;
        assert_eq!(s.pick(&INPUT, &servers, Some(0)), Some(2));
    }

    #[test]
    fn random2_favours_the_idle_server() {
        let s = Scheduler::with_seed(Algorithm::Random2, &names(2), 11);
        let servers = [cand(1, 0), cand(1, 50)];
        let idle = (0..1000)
            .filter(|_| s.pick(&INPUT, &servers, None) == Some(0))
            .count();
        // With two servers both are always drawn: the idle one must win every time.
        assert_eq!(idle, 1000);
        let s = Scheduler::with_seed(Algorithm::Random2, &names(4), 12);
        let servers = [cand(1, 0), cand(1, 50), cand(1, 50), cand(1, 50)];
        let idle = (0..1000)
            .filter(|_| s.pick(&INPUT, &servers, None) == Some(0))
            .count();
        // Drawn in one of two tries: 1 - (3/4 * 2/3) = 1/2, against 1/4 for a plain draw.
        assert!((430..=570).contains(&idle), "{idle}");
    }

    #[test]
    fn random2_spreads_over_equal_idle_servers() {
        let s = Scheduler::with_seed(Algorithm::Random2, &names(4), 5);
        let servers = [cand(1, 0); 4];
        let mut counts = [0u32; 4];
        for _ in 0..4000 {
            let i = s.pick(&INPUT, &servers, None).unwrap_or(usize::MAX);
            counts[i] += 1;
        }
        for c in counts {
            assert!((880..=1120).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn random2_draws_in_proportion_to_weight() {
        let s = Scheduler::with_seed(Algorithm::Random2, &names(3), 9);
        // Equal load per weight everywhere, so the first draw decides: shares 6:3:1.
        let servers = [cand(6, 0), cand(3, 0), cand(1, 0)];
        let mut counts = [0u32; 3];
        for _ in 0..10_000 {
            counts[s.pick(&INPUT, &servers, None).unwrap_or(usize::MAX)] += 1;
        }
        assert!((5_700..=6_300).contains(&counts[0]), "{counts:?}");
        assert!((2_700..=3_300).contains(&counts[1]), "{counts:?}");
        assert!((800..=1_200).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn random2_with_one_eligible_server_returns_it() {
        let s = Scheduler::with_seed(Algorithm::Random2, &names(3), 3);
        let mut servers = [cand(1, 9), cand(1, 0), cand(1, 0)];
        servers[1].available = false;
        for _ in 0..20 {
            assert_eq!(s.pick(&INPUT, &servers, Some(2)), Some(0));
        }
    }
}
