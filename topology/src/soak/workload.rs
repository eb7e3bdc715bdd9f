//! What the soak's clients ask for: a fixed catalogue of objects from the test origins, every
//! one with `sum=1` (the origin states size and SHA-256), drawn with set weights. It mixes
//! cacheable and uncacheable answers, small and large bodies (a slow large fill, so concurrent
//! clients coalesce on it; one larger than the nodes' `max_object_size`, streamed through),
//! chunked bodies, a short lifetime (revalidation), a few hot keys, and ranges.

use super::rng::Rng;

/// Kinds of request, with their weight (percent) and catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Eight small cacheable objects, asked for most.
    Hot,
    /// 150 cacheable objects, 700 B to 900 KB.
    Warm,
    /// A 1-second lifetime: the caches revalidate (304 from the origin).
    ShortTtl,
    /// Cacheable, sent by the origin chunked.
    Chunked,
    /// 3 MB, sent slowly by the origin: concurrent misses wait on one fill.
    Big,
    /// 5 MB, above the nodes' `max_object_size`: streamed, never stored.
    Huge,
    /// `/obj/` with `Cache-Control: no-store`.
    NoStore,
    /// `/dyn/`: the dynamic origin, never cached.
    Dynamic,
}

/// Every kind with its weight in percent (the weights add up to 100).
pub const MIX: [(Kind, u64); 8] = [
    (Kind::Hot, 30),
    (Kind::Warm, 22),
    (Kind::ShortTtl, 8),
    (Kind::Chunked, 6),
    (Kind::Big, 4),
    (Kind::Huge, 2),
    (Kind::NoStore, 10),
    (Kind::Dynamic, 18),
];

/// Percent of `Hot`, `Warm` and `Big` requests that ask for a range.
pub const RANGE_PERCENT: u64 = 15;

/// Sizes of the `Warm` objects, by name index modulo 5.
const WARM_SIZES: [usize; 5] = [700, 5_000, 40_000, 200_000, 900_000];

impl Kind {
    /// The kind's name in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Hot => "hot",
            Kind::Warm => "warm",
            Kind::ShortTtl => "short-ttl",
            Kind::Chunked => "chunked",
            Kind::Big => "big",
            Kind::Huge => "huge",
            Kind::NoStore => "no-store",
            Kind::Dynamic => "dynamic",
        }
    }
}

/// What the answer must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// `object_bytes(name, size)` (from `/obj/`).
    Object { name: String, size: usize },
    /// `dyn <name> <n>\n` (from `/dyn/`).
    Dynamic { name: String },
}

/// One request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub kind: Kind,
    /// Path and query.
    pub target: String,
    pub expect: Expect,
    /// `Range: bytes=first-last` (inclusive), when asked.
    pub range: Option<(u64, u64)>,
}

/// The next request.
pub fn pick(rng: &mut Rng) -> Pick {
    let mut roll = rng.below(100);
    let mut kind = Kind::Hot;
    for (k, weight) in MIX {
        if roll < weight {
            kind = k;
            break;
        }
        roll -= weight;
    }
    let (name, size, query) = match kind {
        Kind::Hot => (format!("soak-hot-{}", rng.below(8)), 2048, String::new()),
        Kind::Warm => {
            let i = rng.index(150);
            (format!("soak-warm-{i}"), WARM_SIZES[i % 5], String::new())
        }
        Kind::ShortTtl => (
            format!("soak-ttl-{}", rng.below(10)),
            16_384,
            "&ttl=1".into(),
        ),
        Kind::Chunked => (
            format!("soak-chunked-{}", rng.below(6)),
            120_000,
            "&chunked=1".into(),
        ),
        Kind::Big => (
            format!("soak-big-{}", rng.below(3)),
            3_000_000,
            "&chunk_delay=1".into(),
        ),
        Kind::Huge => (
            format!("soak-huge-{}", rng.below(2)),
            5_000_000,
            String::new(),
        ),
        Kind::NoStore => (
            format!("soak-nostore-{}", rng.below(20)),
            30_000,
            "&cc=no-store".into(),
        ),
        Kind::Dynamic => {
            let name = format!("soak-{}", rng.below(20));
            return Pick {
                kind,
                target: format!("/dyn/{name}?sum=1"),
                expect: Expect::Dynamic { name },
                range: None,
            };
        }
    };
    let range = if matches!(kind, Kind::Hot | Kind::Warm | Kind::Big) && rng.chance(RANGE_PERCENT) {
        let first = rng.below(size as u64);
        let last = first + rng.below(size as u64 - first);
        Some((first, last))
    } else {
        None
    };
    Pick {
        kind,
        target: format!("/obj/{name}?size={size}&sum=1{query}"),
        expect: Expect::Object { name, size },
        range,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_add_up_and_every_kind_comes_up() {
        assert_eq!(MIX.iter().map(|(_, w)| w).sum::<u64>(), 100);
        let mut rng = Rng::new(9);
        let picks: Vec<Pick> = (0..5000).map(|_| pick(&mut rng)).collect();
        for (kind, weight) in MIX {
            let n = picks.iter().filter(|p| p.kind == kind).count() as u64;
            assert!(
                n * 100 / 5000 + 2 >= weight && n * 100 / 5000 <= weight + 2,
                "{kind:?} {n}"
            );
        }
        assert!(picks.iter().any(|p| p.range.is_some()));
    }

    #[test]
    fn targets_carry_sum_and_ranges_stay_inside_the_object() {
        let mut rng = Rng::new(3);
        for _ in 0..5000 {
            let p = pick(&mut rng);
            assert!(p.target.contains("sum=1"), "{}", p.target);
            match (&p.expect, p.range) {
                (Expect::Object { size, name }, range) => {
                    assert!(p.target.starts_with(&format!("/obj/{name}?size={size}&")));
                    if let Some((first, last)) = range {
                        assert!(first <= last && last < *size as u64);
                    }
                }
                (Expect::Dynamic { name }, range) => {
                    assert_eq!(p.target, format!("/dyn/{name}?sum=1"));
                    assert!(range.is_none());
                }
            }
        }
    }
}
