//! The per-peer replay window: which (epoch, sequence number) stamps are new.
//!
//! Contract (the anti-replay window of RFC 4303 §3.4.3, kept as a ring of 64-bit words as in
//! RFC 6479 so that moving it never shifts the bitmap):
//! * Before the first accepted stamp, any stamp is new.
//! * A higher epoch than the one seen is new and resets the window (the peer restarted); a
//!   lower one is [`Replay::Stale`].
//! * Within the epoch, a number above the highest seen is new and moves the window up; one
//!   at least [`WINDOW`] below the highest is [`Replay::TooOld`]; one inside the window is new
//!   unless already accepted ([`Replay::Duplicate`]). Out of order but new is accepted.
//! * [`Window::check`] only answers; [`Window::accept`] answers and, when new, records.
//!   The caller accepts only authenticated, well-formed messages, so forged or broken
//!   datagrams never move the window.
//! * No arithmetic overflows: numbers near `u64::MAX` and epochs near `u64::MAX` behave like
//!   any others.

use super::wire::Stamp;

/// Sequence numbers below the highest one seen that are still told apart (1024).
pub const WINDOW: u64 = 1024;
/// Words of the ring: the highest number's block and the 16 blocks of 64 behind it, so every
/// number the window covers has its own bit.
const WORDS: usize = (WINDOW / 64) as usize + 1;

/// Why a stamp is not new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Replay {
    /// An epoch lower than the peer's current one: sent before the peer's last restart.
    #[error("stale epoch")]
    Stale,
    /// A number already accepted in this epoch.
    #[error("duplicate sequence number")]
    Duplicate,
    /// A number too far below the highest seen to be told apart from a replay.
    #[error("sequence number older than the window")]
    TooOld,
}

/// What has been accepted from one peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    seen: Option<Seen>,
}

/// The window once a stamp has been accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    epoch: u64,
    /// The highest number accepted in `epoch`.
    top: u64,
    /// Bit `n % 64` of word `(n / 64) % WORDS` is set when number `n` was accepted.
    bits: [u64; WORDS],
}

/// The word and bit of sequence number `seq`.
fn slot(seq: u64) -> (usize, u64) {
    // Lossless: the remainder is below WORDS.
    (((seq / 64) % WORDS as u64) as usize, 1 << (seq % 64))
}

impl Window {
    /// A window that has seen nothing.
    pub fn new() -> Window {
        Window::default()
    }

    /// The peer's current epoch, once a stamp has been accepted.
    pub fn epoch(&self) -> Option<u64> {
        self.seen.as_ref().map(|s| s.epoch)
    }

    /// Whether `stamp` is new, without recording it.
    pub fn check(&self, stamp: Stamp) -> Result<(), Replay> {
        let Some(seen) = &self.seen else {
            return Ok(());
        };
        if stamp.epoch != seen.epoch {
            return if stamp.epoch > seen.epoch {
                Ok(())
            } else {
                Err(Replay::Stale)
            };
        }
        if stamp.seq > seen.top {
            return Ok(());
        }
        if seen.top - stamp.seq >= WINDOW {
            return Err(Replay::TooOld);
        }
        let (word, bit) = slot(stamp.seq);
        if seen.bits[word] & bit != 0 {
            Err(Replay::Duplicate)
        } else {
            Ok(())
        }
    }

    /// Whether `stamp` is new; if so, records it (moving or resetting the window).
    pub fn accept(&mut self, stamp: Stamp) -> Result<(), Replay> {
        self.check(stamp)?;
        let seen = match &mut self.seen {
            Some(seen) if seen.epoch == stamp.epoch => seen,
            // Nothing seen yet, or a new epoch (check refused a lower one): start afresh.
            other => other.insert(Seen {
                epoch: stamp.epoch,
                top: stamp.seq,
                bits: [0; WORDS],
            }),
        };
        if stamp.seq > seen.top {
            let (from, to) = (seen.top / 64, stamp.seq / 64);
            if to - from >= WORDS as u64 {
                seen.bits = [0; WORDS];
            } else {
                // The blocks the window enters reuse the words of blocks it leaves.
                for block in from + 1..=to {
                    seen.bits[slot(block * 64).0] = 0;
                }
            }
            seen.top = stamp.seq;
        }
        let (word, bit) = slot(stamp.seq);
        seen.bits[word] |= bit;
        Ok(())
    }
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;
