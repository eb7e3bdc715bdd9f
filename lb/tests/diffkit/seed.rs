//! The differential test's seed: fresh per run, printed, and reproducible.
//!
//! Contract: [`seed`] returns `STRAIT_DIFF_SEED` when set (decimal or `0x` hex, non-zero:
//! xorshift's one fixed point), else a random non-zero seed, and prints it with the variable
//! that replays it. [`AtFrame`] follows the frame being checked; dropped while its thread
//! panics (an assertion failed), it prints the test, the seed and the frame index, so every
//! failure names how to replay it.

use std::cell::Cell;

/// The variable that replays a run.
pub const SEED_ENV: &str = "STRAIT_DIFF_SEED";

/// The run's seed (see the module doc).
pub fn seed(test: &str) -> u64 {
    let s = match std::env::var(SEED_ENV) {
        Ok(v) => parse(&v).unwrap_or_else(|| panic!("{SEED_ENV}={v}: not a non-zero u64")),
        Err(_) => loop {
            let s: u64 = rand::random();
            if s != 0 {
                break s;
            }
        },
    };
    println!("{test}: seed {s} ({SEED_ENV}={s} replays this run)");
    s
}

/// A seed as written in the variable; `None` for zero or anything else.
pub fn parse(v: &str) -> Option<u64> {
    let v = v.trim();
    let n = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => v.parse().ok()?,
    };
    (n != 0).then_some(n)
}

/// The frame under check (see the module doc).
pub struct AtFrame {
    test: &'static str,
    seed: u64,
    frame: Cell<usize>,
}

impl AtFrame {
    pub fn new(test: &'static str, seed: u64) -> AtFrame {
        AtFrame {
            test,
            seed,
            frame: Cell::new(0),
        }
    }

    /// Frame `n` is being checked.
    pub fn set(&self, n: usize) {
        self.frame.set(n);
    }
}

impl Drop for AtFrame {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{} failed at frame {} of seed {}: {SEED_ENV}={} replays it",
                self.test,
                self.frame.get(),
                self.seed,
                self.seed
            );
        }
    }
}
