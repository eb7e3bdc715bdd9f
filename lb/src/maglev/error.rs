//! Errors of Maglev table construction.
//!
//! Contract: each variant carries the values needed to explain the rejection; `Display` gives
//! a one-line, lower-case message suitable for `strait check` and logs.

use std::fmt;

/// Why a table cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaglevError {
    /// The table size must be prime so every permutation covers every slot.
    SizeNotPrime(u32),
    /// The table size must be at least twice the number of backends with weight > 0.
    SizeTooSmall {
        /// Requested table size.
        size: u32,
        /// Number of backends with weight > 0.
        backends: usize,
    },
    /// No backend has weight > 0.
    NoBackends,
    /// A given table has more entries than the datapath holds (`abi::MAGLEV_MAX`).
    SizeTooLarge(usize),
    /// A given table entry names no backend of the list.
    EntryOutOfRange {
        /// The entry.
        entry: u32,
        /// Length of the backend list.
        backends: usize,
    },
}

impl fmt::Display for MaglevError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SizeNotPrime(size) => write!(f, "maglev table size {size} is not prime"),
            Self::SizeTooSmall { size, backends } => write!(
                f,
                "maglev table size {size} is too small for {backends} backends \
                 (need at least {})",
                2 * backends
            ),
            Self::NoBackends => write!(f, "maglev table has no backend with weight > 0"),
            Self::SizeTooLarge(n) => write!(
                f,
                "table of {n} entries is larger than {}",
                crate::abi::MAGLEV_MAX
            ),
            Self::EntryOutOfRange { entry, backends } => write!(
                f,
                "table entry {entry} is outside the list of {backends} backends"
            ),
        }
    }
}

impl std::error::Error for MaglevError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(
            MaglevError::SizeTooSmall {
                size: 5,
                backends: 3
            }
            .to_string(),
            "maglev table size 5 is too small for 3 backends (need at least 6)"
        );
        assert_eq!(
            MaglevError::SizeNotPrime(65_536).to_string(),
            "maglev table size 65536 is not prime"
        );
        assert_eq!(
            MaglevError::NoBackends.to_string(),
            "maglev table has no backend with weight > 0"
        );
    }
}
