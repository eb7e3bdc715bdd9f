//! Smooth weighted round robin (the nginx-style algorithm): each pick adds every eligible
//! server's weight to its running score, takes the highest score (the lowest index on a tie)
//! and subtracts the total eligible weight from it. The sequence is spread evenly: weights
//! 5,1,1 give `0 0 1 0 2 0 0`, not `0 0 0 0 0 1 2`. Servers that are not eligible or weigh 0
//! keep their score untouched until they come back.

/// Running state of one smooth weighted round robin.
#[derive(Debug, Clone)]
pub(crate) struct SmoothWrr {
    current: Vec<i64>,
}

impl SmoothWrr {
    /// A scheduler for `n` servers.
    pub(super) fn new(n: usize) -> Self {
        SmoothWrr {
            current: vec![0; n],
        }
    }

    /// Next server among those for which `eligible(i)` holds, with `weight(i)`; None when no
    /// eligible server has a positive weight.
    pub(super) fn pick(
        &mut self,
        weight: impl Fn(usize) -> u32,
        eligible: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let mut total: i64 = 0;
        let mut best: Option<usize> = None;
        for i in 0..self.current.len() {
            let w = i64::from(weight(i));
            if w == 0 || !eligible(i) {
                continue;
            }
            self.current[i] += w;
            total += w;
            if best.is_none_or(|b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        if let Some(b) = best {
            self.current[b] -= total;
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_give_an_even_exact_sequence() {
        let w = [5u32, 1, 1];
        let mut s = SmoothWrr::new(3);
        let seq: Vec<usize> = (0..7)
            .map(|_| s.pick(|i| w[i], |_| true).unwrap_or(99))
            .collect();
        assert_eq!(seq, vec![0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn ineligible_and_zero_weight_servers_are_skipped() {
        let w = [1u32, 0, 1];
        let mut s = SmoothWrr::new(3);
        let seq: Vec<usize> = (0..4)
            .map(|_| s.pick(|i| w[i], |i| i != 2).unwrap_or(99))
            .collect();
        assert_eq!(seq, vec![0, 0, 0, 0]);
        assert_eq!(s.pick(|_| 0, |_| true), None);
    }

    #[test]
    fn a_returning_server_rejoins_the_rotation() {
        let mut s = SmoothWrr::new(2);
        let first: Vec<usize> = (0..2)
            .map(|_| s.pick(|_| 1, |i| i == 0).unwrap_or(99))
            .collect();
        assert_eq!(first, vec![0, 0]);
        let then: Vec<usize> = (0..4)
            .map(|_| s.pick(|_| 1, |_| true).unwrap_or(99))
            .collect();
        assert_eq!(then, vec![0, 1, 0, 1]);
    }
}
