//! The bytes a partial object holds of one representation (RFC 9111 §3.3): runs of bytes at
//! their offsets in a representation of known complete length.
//!
//! Contract:
//! * Runs are sorted, disjoint and never adjacent: an insert that touches or overlaps runs
//!   joins them into one run (one contiguous copy), so a range inside the held bytes is always
//!   a zero-copy slice of one run.
//! * Bytes beyond the complete length are dropped on insert; where an insert overlaps bytes
//!   already held, the held bytes are kept (both came from the same representation: the
//!   caller combines only parts whose strong validators match, §3.4).
//! * Nothing here knows HTTP; offsets are `first..=last` like `Content-Range`.

use bytes::{Bytes, BytesMut};

/// Held runs of a representation of `len` bytes (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct Pieces {
    len: u64,
    runs: Vec<(u64, Bytes)>,
}

impl Pieces {
    /// Nothing held yet of a representation of `len` bytes.
    pub fn new(len: u64) -> Pieces {
        Pieces {
            len,
            runs: Vec::new(),
        }
    }

    /// The representation's complete length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Bytes held.
    pub fn held(&self) -> u64 {
        self.runs.iter().map(|(_, b)| b.len() as u64).sum()
    }

    /// Every byte of the representation is held.
    pub fn is_complete(&self) -> bool {
        self.held() == self.len
    }

    /// The whole representation, when every byte is held.
    pub fn body(&self) -> Option<Bytes> {
        match self.runs.as_slice() {
            [] if self.len == 0 => Some(Bytes::new()),
            [(0, b)] if b.len() as u64 == self.len => Some(b.clone()),
            _ => None,
        }
    }

    /// Bytes `first..=last`, when all of them are held (zero-copy).
    pub fn slice(&self, first: u64, last: u64) -> Option<Bytes> {
        if first > last {
            return None;
        }
        self.runs.iter().find_map(|(start, b)| {
            let end = start + b.len() as u64;
            (first >= *start && last < end)
                .then(|| b.slice((first - start) as usize..(last + 1 - start) as usize))
        })
    }

    /// The gaps (`first..=last` each, in order) of `first..=last` not held, clipped to the
    /// complete length.
    pub fn missing(&self, first: u64, last: u64) -> Vec<(u64, u64)> {
        let last = last.min(self.len.saturating_sub(1));
        let mut gaps = Vec::new();
        if self.len == 0 || first > last {
            return gaps;
        }
        let mut at = first;
        for (start, b) in &self.runs {
            let end = start + b.len() as u64; // exclusive
            if end <= at {
                continue;
            }
            if *start > last {
                break;
            }
            if *start > at {
                gaps.push((at, start - 1));
            }
            at = end;
            if at > last {
                return gaps;
            }
        }
        gaps.push((at, last));
        gaps
    }

    /// Adds every run `other` holds (same representation and length; see `insert`).
    pub fn merge(&mut self, other: &Pieces) {
        for (first, data) in &other.runs {
            self.insert(*first, data.clone());
        }
    }

    /// Adds bytes starting at offset `first` (see the module doc for overlaps and clipping).
    pub fn insert(&mut self, first: u64, data: Bytes) {
        if first >= self.len || data.is_empty() {
            return;
        }
        let keep = (self.len - first).min(data.len() as u64) as usize;
        let data = data.slice(..keep);
        let end = first + keep as u64;
        // Runs that overlap or touch [first, end) are joined with the new bytes.
        let touching: Vec<usize> = (0..self.runs.len())
            .filter(|&i| {
                let (s, b) = &self.runs[i];
                *s <= end && s + b.len() as u64 >= first
            })
            .collect();
        let (Some(&lo), Some(&hi)) = (touching.first(), touching.last()) else {
            let at = self.runs.partition_point(|(s, _)| *s < first);
            self.runs.insert(at, (first, data));
            return;
        };
        let start = first.min(self.runs[lo].0);
        let (hs, hb) = &self.runs[hi];
        let stop = end.max(hs + hb.len() as u64);
        let mut joined = BytesMut::zeroed((stop - start) as usize);
        let at = (first - start) as usize;
        joined[at..at + data.len()].copy_from_slice(&data);
        for (s, b) in &self.runs[lo..=hi] {
            let at = (s - start) as usize;
            joined[at..at + b.len()].copy_from_slice(b);
        }
        self.runs
            .splice(lo..=hi, std::iter::once((start, joined.freeze())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(from: u64, n: usize) -> Bytes {
        (0..n).map(|i| ((from as usize + i) % 251) as u8).collect()
    }

    fn held(p: &Pieces) -> Vec<(u64, u64)> {
        p.runs
            .iter()
            .map(|(s, b)| (*s, s + b.len() as u64 - 1))
            .collect()
    }

    #[test]
    fn disjoint_inserts_stay_sorted_and_report_their_gaps() {
        let mut p = Pieces::new(100);
        p.insert(50, bytes(50, 10));
        p.insert(10, bytes(10, 10));
        assert_eq!(held(&p), [(10, 19), (50, 59)]);
        assert_eq!(p.held(), 20);
        assert_eq!(p.missing(0, 99), [(0, 9), (20, 49), (60, 99)]);
        assert_eq!(p.missing(12, 55), [(20, 49)]);
        assert_eq!(p.missing(12, 18), Vec::<(u64, u64)>::new());
        assert_eq!(p.missing(90, 500), [(90, 99)]);
    }

    #[test]
    fn a_range_inside_a_run_is_a_slice_and_one_across_a_gap_is_none() {
        let mut p = Pieces::new(100);
        p.insert(10, bytes(10, 10));
        p.insert(30, bytes(30, 10));
        assert_eq!(p.slice(12, 15), Some(bytes(12, 4)));
        assert_eq!(p.slice(10, 19), Some(bytes(10, 10)));
        assert_eq!(p.slice(15, 32), None);
        assert_eq!(p.slice(20, 20), None);
        assert_eq!(p.slice(5, 4), None);
    }

    #[test]
    fn adjacent_and_overlapping_inserts_join_into_one_run() {
        let mut p = Pieces::new(100);
        p.insert(0, bytes(0, 10));
        p.insert(20, bytes(20, 10));
        p.insert(10, bytes(10, 10)); // fills the gap exactly: all three join
        assert_eq!(held(&p), [(0, 29)]);
        assert_eq!(p.slice(5, 25), Some(bytes(5, 21)));
        p.insert(25, bytes(25, 20)); // overlaps the end
        assert_eq!(held(&p), [(0, 44)]);
        assert_eq!(p.slice(0, 44), Some(bytes(0, 45)));
    }

    #[test]
    fn held_bytes_win_over_overlapping_new_ones() {
        let mut p = Pieces::new(10);
        p.insert(0, Bytes::from_static(b"aaaa"));
        p.insert(2, Bytes::from_static(b"bbbb"));
        assert_eq!(p.slice(0, 5), Some(Bytes::from_static(b"aaaabb")));
    }

    #[test]
    fn bytes_past_the_complete_length_are_dropped_and_completion_is_exact() {
        let mut p = Pieces::new(25);
        p.insert(20, bytes(20, 10));
        assert_eq!(held(&p), [(20, 24)]);
        assert!(!p.is_complete());
        assert_eq!(p.body(), None);
        p.insert(30, bytes(0, 5));
        assert_eq!(p.held(), 5);
        p.insert(0, bytes(0, 20));
        assert!(p.is_complete());
        assert_eq!(p.body(), Some(bytes(0, 25)));
        assert!(p.missing(0, 24).is_empty());
    }

    #[test]
    fn an_empty_representation_is_complete() {
        let p = Pieces::new(0);
        assert!(p.is_complete());
        assert_eq!(p.body(), Some(Bytes::new()));
        assert!(p.missing(0, 10).is_empty());
    }
}
