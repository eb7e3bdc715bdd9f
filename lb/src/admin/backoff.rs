//! Backing off an accept loop whose `accept` fails (`EMFILE`/`ENFILE` when the process or the
//! system is out of file descriptors, `ENOBUFS`/`ENOMEM`): the connection that caused the
//! failure stays in the listen queue, so retrying at once fails again at once — a busy loop
//! that burns a core and floods the log while it lasts.
//!
//! Contract: after `n` consecutive failures the loop sleeps [`FIRST`] · 2ⁿ⁻¹, at most
//! [`MAX`]; the first success resets it. Only the first failure of a run is logged at warn
//! and the recovery at info, with the number of failures in between; [`AcceptBackoff::failures`]
//! counts every failure for the node's counters. Used by every listener of both roles (client,
//! admin, peer).

use std::time::Duration;

/// Sleep after the first failure of a run.
pub const FIRST: Duration = Duration::from_millis(5);
/// Longest sleep between two attempts (a listener is back within this once descriptors free).
pub const MAX: Duration = Duration::from_secs(1);

/// The state of one accept loop's backoff.
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    /// Consecutive failures (0: accepting normally).
    run: u32,
    /// Every failure since the loop started.
    failures: u64,
}

impl AcceptBackoff {
    /// `accept` failed with `e` on the listener `what`: how long to sleep before trying again.
    pub fn failed(&mut self, what: &str, e: &std::io::Error) -> Duration {
        if self.run == 0 {
            tracing::warn!(listener = what, error = %e, "accept failed: backing off");
        }
        self.run = self.run.saturating_add(1);
        self.failures += 1;
        delay(self.run)
    }

    /// `accept` succeeded on `what`: ends a run of failures (logged once).
    #[inline]
    pub fn accepted(&mut self, what: &str) {
        if self.run != 0 {
            tracing::info!(listener = what, failures = self.run, "accepting again");
            self.run = 0;
        }
    }

    /// Every failure since the loop started.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// The failure and the sleep: `failed`, then sleep that long.
    pub async fn wait(&mut self, what: &str, e: &std::io::Error) {
        tokio::time::sleep(self.failed(what, e)).await;
    }
}

/// The sleep after the `run`th consecutive failure (1-based).
pub fn delay(run: u32) -> Duration {
    let shift = run.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << shift).min(MAX)
}

/// The soft limit on this process's open file descriptors (`RLIMIT_NOFILE`), if known.
pub fn open_files_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    (rc == 0 && r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sleep_doubles_from_first_up_to_max() {
        assert_eq!(delay(1), FIRST);
        assert_eq!(delay(2), FIRST * 2);
        assert_eq!(delay(3), FIRST * 4);
        assert_eq!(delay(8), FIRST * 128);
        assert_eq!(delay(9), MAX);
        assert_eq!(delay(u32::MAX), MAX);
    }

    #[test]
    fn a_success_ends_the_run_and_failures_keep_counting() {
        let mut b = AcceptBackoff::default();
        let e = std::io::Error::from_raw_os_error(libc::EMFILE);
        assert_eq!(b.failed("t", &e), FIRST);
        assert_eq!(b.failed("t", &e), FIRST * 2);
        b.accepted("t");
        assert_eq!(b.failed("t", &e), FIRST);
        assert_eq!(b.failures(), 3);
    }

    // The paused clock: the sleeps are measured on virtual time, exactly.
    #[tokio::test(start_paused = true)]
    async fn wait_sleeps_the_delay_of_the_run() {
        let mut b = AcceptBackoff::default();
        let e = std::io::Error::from_raw_os_error(libc::EMFILE);
        let start = tokio::time::Instant::now();
        b.wait("t", &e).await;
        assert_eq!(start.elapsed(), FIRST);
        b.wait("t", &e).await;
        assert_eq!(start.elapsed(), FIRST * 3);
        b.accepted("t");
        b.wait("t", &e).await;
        assert_eq!(start.elapsed(), FIRST * 4);
    }

    #[test]
    fn the_open_files_limit_is_read() {
        assert!(open_files_limit().is_none_or(|n| n > 0));
    }
}
