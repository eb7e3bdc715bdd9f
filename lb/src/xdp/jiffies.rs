//! The kernel's jiffies, the clock of the XDP connection table's idle timeouts (the program
//! reads `bpf_jiffies64()`, inlined by the verifier; a nanosecond clock helper costs 15-20 ns
//! a packet on the reference host).
//!
//! Contract:
//! * [`now`] reads the current jiffies from `/proc/timer_list` (its `jiffies: N` line; the
//!   file is the kernel's and root-readable on every kernel with `/proc`).
//! * [`kernel_hz`] measures the tick rate: two reads [`SAMPLE`] apart, the rate nearest to
//!   the ticks seen among the kernel's choices ([`HZ_CHOICES`]: `CONFIG_HZ` is 100, 250, 300
//!   or 1000; 100 ms tell them apart with a tick of jitter either side). Userspace cannot ask
//!   for `CONFIG_HZ` itself (`sysconf(_SC_CLK_TCK)` is `USER_HZ`, always 100).
//! * [`Anchor::now`] is [`now`] read at most every [`REREAD`] and extrapolated at the tick
//!   rate in between (the file is several KB, more on hosts with many CPUs: the sync installs
//!   a datagram's flows at a time and must not read it for each).
//! * [`nearest_hz`] and [`parse`] are the pure halves.

use std::time::{Duration, Instant};

/// The tick rates a Linux kernel is built with.
pub(super) const HZ_CHOICES: [u32; 4] = [100, 250, 300, 1000];
/// How long [`kernel_hz`] watches the ticks.
pub(super) const SAMPLE: Duration = Duration::from_millis(100);

/// The `jiffies: N` value of a `/proc/timer_list` text.
pub(super) fn parse(timer_list: &str) -> Option<u64> {
    timer_list
        .lines()
        .find_map(|l| l.strip_prefix("jiffies: "))
        .and_then(|v| v.trim().parse().ok())
}

/// The rate of [`HZ_CHOICES`] nearest to `ticks` seen in `elapsed`.
pub(super) fn nearest_hz(ticks: u64, elapsed: Duration) -> u32 {
    let rate = ticks as f64 / elapsed.as_secs_f64().max(1e-9);
    HZ_CHOICES
        .into_iter()
        .min_by(|a, b| {
            let da = (f64::from(*a) - rate).abs();
            let db = (f64::from(*b) - rate).abs();
            da.total_cmp(&db)
        })
        .unwrap_or(250)
}

/// How long an [`Anchor`] extrapolates before reading the jiffies again.
pub(super) const REREAD: Duration = Duration::from_millis(250);

/// The jiffies last read and when (see the module doc).
#[derive(Debug, Default)]
pub(super) struct Anchor(Option<(u64, Instant)>);

impl Anchor {
    /// The jiffies now, at `hz` ticks a second since the last read, rounded up: never behind
    /// the kernel's (ticks since the read are at most the ceiling of the time's), at most one
    /// tick ahead. Never behind matters to the sync: a flow's local use must not look older
    /// than a record of the same instant.
    pub(super) fn now(&mut self, hz: u32) -> std::io::Result<u64> {
        if let Some((j, at)) = self.0 {
            let elapsed = at.elapsed();
            if elapsed < REREAD {
                let ticks = (elapsed.as_nanos() * u128::from(hz)).div_ceil(1_000_000_000);
                return Ok(j + ticks as u64);
            }
        }
        let j = now()?;
        self.0 = Some((j, Instant::now()));
        Ok(j)
    }
}

/// The kernel's jiffies now.
pub(super) fn now() -> std::io::Result<u64> {
    let text = std::fs::read_to_string("/proc/timer_list")?;
    parse(&text).ok_or_else(|| std::io::Error::other("no jiffies line in /proc/timer_list"))
}

/// The kernel's tick rate (see the module doc); blocks for [`SAMPLE`].
pub(super) fn kernel_hz() -> std::io::Result<u32> {
    let (j0, t0) = (now()?, Instant::now());
    std::thread::sleep(SAMPLE);
    let (j1, t1) = (now()?, Instant::now());
    Ok(nearest_hz(j1.saturating_sub(j0), t1 - t0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jiffies_line_is_found() {
        let text = "Timer List Version: v0.9\nnow at 1 nsecs\n  .last_jiffies   : 7\n\
                    jiffies: 4298832047\nnext_expiry: 1\n";
        assert_eq!(parse(text), Some(4_298_832_047));
        assert_eq!(parse("  .last_jiffies   : 7\n"), None);
        assert_eq!(parse("jiffies: x\n"), None);
    }

    #[test]
    fn a_tick_of_jitter_still_names_the_rate() {
        let ms = |n| Duration::from_millis(n);
        for hz in HZ_CHOICES {
            let ticks = u64::from(hz) / 10;
            for seen in [ticks - 1, ticks, ticks + 1] {
                assert_eq!(nearest_hz(seen, ms(100)), hz, "{seen} ticks in 100 ms");
            }
        }
        // A late wake-up: 130 ms measured.
        assert_eq!(nearest_hz(33, ms(130)), 250);
        assert_eq!(nearest_hz(0, Duration::ZERO), 100);
    }

    #[test]
    fn this_kernel_has_a_tick_rate() {
        // /proc/timer_list is root-only on some kernels: then there is nothing to check.
        let Ok(hz) = kernel_hz() else { return };
        assert!(HZ_CHOICES.contains(&hz), "{hz}");
        assert!(now().unwrap() > 0);
    }
}
