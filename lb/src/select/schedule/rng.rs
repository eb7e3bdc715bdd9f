//! A tiny lock-free PRNG for `random2`: xorshift64* (Marsaglia's xorshift with a multiplying
//! output step) whose state lives in an `AtomicU64`, so concurrent picks never block each
//! other. Not cryptographic: it only spreads load. Written here rather than pulled from a
//! crate because it is ten lines.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// Any non-zero state works; zero is a fixed point of xorshift and is replaced by this.
const NONZERO_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Shared xorshift64* generator.
#[derive(Debug)]
pub struct Rng {
    state: AtomicU64,
}

fn step(mut x: u64) -> u64 {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    x
}

impl Rng {
    /// A generator started from `seed` (deterministic, for tests).
    pub fn with_seed(seed: u64) -> Rng {
        let seed = if seed == 0 { NONZERO_SEED } else { seed };
        Rng {
            state: AtomicU64::new(seed),
        }
    }

    /// A generator seeded from the process's random hasher keys.
    pub fn from_entropy() -> Rng {
        Rng::with_seed(std::collections::hash_map::RandomState::new().hash_one(0u8))
    }

    /// Next 64 random bits.
    pub fn next_u64(&self) -> u64 {
        let prev = match self
            .state
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| Some(step(s)))
        {
            Ok(s) | Err(s) => s,
        };
        step(prev).wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0), by multiply-high rather than modulo so that
    /// every value is about equally likely.
    pub fn below(&self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_zero_seed_is_usable() {
        let a = Rng::with_seed(42);
        let b = Rng::with_seed(42);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        let z = Rng::with_seed(0);
        assert_ne!(z.next_u64(), z.next_u64());
    }

    #[test]
    fn first_output_is_pinned() {
        // step(1) = 1 ^ (1 << 25) ^ ((1 ^ 1 << 25) >> 27) = 0x2000001, times the multiplier.
        let r = Rng::with_seed(1);
        assert_eq!(
            r.next_u64(),
            0x0200_0001u64.wrapping_mul(0x2545_f491_4f6c_dd1d)
        );
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
