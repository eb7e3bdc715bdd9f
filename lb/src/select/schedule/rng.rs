//! The random source of `random2`: `rand`'s `SmallRng` (fast, not cryptographic: it only
//! spreads load), seeded from the thread's OS-seeded generator, behind a lock so that all of
//! a pool's requests draw from one generator. Tests seed it to make their picks reproducible.

use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng};

/// One pool's generator, shared by its requests.
#[derive(Debug)]
pub(super) struct Rng {
    inner: Mutex<SmallRng>,
}

impl Rng {
    /// A generator started from `seed` (deterministic, for tests).
    #[cfg(test)]
    pub(super) fn with_seed(seed: u64) -> Rng {
        Rng {
            inner: Mutex::new(SmallRng::seed_from_u64(seed)),
        }
    }

    /// A generator seeded from `rand::rng()` (the thread's generator, seeded by the OS).
    pub(super) fn from_entropy() -> Rng {
        Rng {
            inner: Mutex::new(SmallRng::from_rng(&mut rand::rng())),
        }
    }

    /// A number in `0..n`, every value equally likely (0 when `n` is 0).
    pub(super) fn below(&self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        self.inner.lock().random_range(0..n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_zero_seed_is_usable() {
        let a = Rng::with_seed(42);
        let b = Rng::with_seed(42);
        let xs: Vec<u64> = (0..5).map(|_| a.below(u64::MAX)).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.below(u64::MAX)).collect();
        assert_eq!(xs, ys);
        let z = Rng::with_seed(0);
        assert_ne!(z.below(u64::MAX), z.below(u64::MAX));
    }

    #[test]
    fn generators_from_entropy_differ() {
        // Two pools must not draw the same sequence (a fixed seed would herd them together).
        let a = Rng::from_entropy();
        let b = Rng::from_entropy();
        let xs: Vec<u64> = (0..4).map(|_| a.below(u64::MAX)).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.below(u64::MAX)).collect();
        assert_ne!(xs, ys);
    }

    #[test]
    fn below_covers_the_range_evenly() {
        let r = Rng::with_seed(7);
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            let v = r.below(4) as usize;
            counts[v] += 1;
        }
        for c in counts {
            assert!((9_400..=10_600).contains(&c), "{counts:?}");
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below(1), 0);
    }
}
