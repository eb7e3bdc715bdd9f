//! Primality test for Maglev table sizes.
//!
//! Contract: [`is_prime`] is exact for every `u32` (Maglev needs a prime table size so that each
//! backend's permutation `(offset + j * skip) % M` visits every slot exactly once).

/// Trial division; sizes are at most `u32::MAX`, so at most ~32k odd divisors.
pub(crate) fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let n = u64::from(n);
    let mut d = 3u64;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primality() {
        let primes: Vec<u32> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(primes, vec![2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(is_prime(65_537));
        assert!(!is_prime(65_539 * 3));
        assert!(is_prime(4_294_967_291)); // largest u32 prime
        assert!(!is_prime(u32::MAX));
        assert!(!is_prime(65_521 * 65_521)); // square of the largest 16-bit prime
    }
}
