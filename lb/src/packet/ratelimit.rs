//! The director's token buckets, one per CPU (XDP) or per worker thread (userspace):
//! * the budget of ICMP errors it sends ("fragmentation needed", "time exceeded"), so that a
//!   flood of oversized or TTL-expiring frames does not turn the director into an ICMP source
//!   at line rate. The kernel limits its own ICMP errors the same way
//!   (`net.ipv4.icmp_msgs_per_sec`, default 1000, burst 50);
//! * the new-flow guard (`new_flow_rate`/`new_flow_burst`, [`IcmpLimit::guard`]): how many
//!   new flows are recorded in the connection table; over it a new flow is scheduled
//!   statelessly (`packet::decide`), so a SYN flood cannot churn the table faster than this.
//!
//! Contract (the C twin is `ebpf/lib/ratelimit.h`; same integers, same answers):
//! * [`IcmpLimit::new`]`(rate, burst)`: `rate` errors per second, `burst` at once after a
//!   quiet period. In nanoseconds of credit: one error costs `cost = 1e9 / rate` (integer
//!   division, at least 1), the bucket holds at most `cap = cost * burst` (saturating).
//!   `rate == 0`: no error is ever sent (`cost = u64::MAX`, `cap = 0`). [`IcmpLimit::NONE`]
//!   (`cost == 0`) is no limit at all: every error is sent (an unset limit).
//! * `Bucket::allow``(limit, now)`: `now` in nanoseconds of a monotonic clock (never 0).
//!   The credit grows by the time since the previous call, up to `cap`; a bucket never used
//!   (`last == 0`) starts full. An error is allowed when the credit covers `cost`, which is
//!   then taken; otherwise nothing changes but the time. A clock that goes back adds nothing.
//! * ICMP: over the budget the frame is dropped and counted `icmp_limited` (the flow stays
//!   recorded: the check follows scheduling, as the ICMP it replaces).
//! * New flows: [`IcmpLimit::guard`]`(rate, burst)` is `new(rate, burst)` but for `rate == 0`,
//!   which is [`IcmpLimit::NONE`] (no guard: every new flow recorded); over the budget see
//!   `packet::decide`.

/// Nanoseconds per second.
const NS_PER_SEC: u64 = 1_000_000_000;

/// An ICMP error budget in nanoseconds of credit (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IcmpLimit {
    /// Credit one error costs; 0: unlimited.
    pub cost_ns: u64,
    /// Most credit the bucket holds.
    pub cap_ns: u64,
}

impl IcmpLimit {
    /// No limit: every ICMP error is sent.
    pub const NONE: IcmpLimit = IcmpLimit {
        cost_ns: 0,
        cap_ns: 0,
    };

    /// The new-flow guard: `rate` new flows recorded per second, `burst` at once; `rate == 0`
    /// is no guard (see the module doc).
    pub fn guard(rate: u32, burst: u32) -> IcmpLimit {
        if rate == 0 {
            IcmpLimit::NONE
        } else {
            IcmpLimit::new(rate, burst)
        }
    }

    /// `rate` errors per second, `burst` at once (see the module doc).
    pub fn new(rate: u32, burst: u32) -> IcmpLimit {
        if rate == 0 {
            return IcmpLimit {
                cost_ns: u64::MAX,
                cap_ns: 0,
            };
        }
        let cost_ns = (NS_PER_SEC / u64::from(rate)).max(1);
        IcmpLimit {
            cost_ns,
            cap_ns: cost_ns.saturating_mul(u64::from(burst)),
        }
    }
}

/// One CPU's (or worker's) bucket (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Bucket {
    /// Credit held, nanoseconds.
    pub(crate) credit: u64,
    /// `now` of the previous call; 0: never used.
    pub last: u64,
}

impl Bucket {
    /// Whether one more ICMP error may be sent at `now` (see the module doc).
    pub(crate) fn allow(&mut self, limit: IcmpLimit, now: u64) -> bool {
        if limit.cost_ns == 0 {
            return true;
        }
        let earned = if self.last == 0 {
            u64::MAX
        } else {
            now.saturating_sub(self.last)
        };
        self.credit = self.credit.saturating_add(earned).min(limit.cap_ns);
        if now > self.last {
            self.last = now;
        }
        if self.credit >= limit.cost_ns {
            self.credit -= limit.cost_ns;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(b: &mut Bucket, limit: IcmpLimit, now: u64, tries: u32) -> u32 {
        (0..tries).filter(|_| b.allow(limit, now)).count() as u32
    }

    #[test]
    fn limit_from_rate_and_burst() {
        assert_eq!(
            IcmpLimit::new(1000, 50),
            IcmpLimit {
                cost_ns: 1_000_000,
                cap_ns: 50_000_000
            }
        );
        assert_eq!(IcmpLimit::new(3, 2).cost_ns, 333_333_333);
        // Faster than one per nanosecond: still one nanosecond each.
        assert_eq!(IcmpLimit::new(u32::MAX, 1).cost_ns, 1);
        assert_eq!(
            IcmpLimit::new(1, u32::MAX).cap_ns,
            NS_PER_SEC * u64::from(u32::MAX)
        );
        assert_eq!(IcmpLimit::new(0, 50).cap_ns, 0);
    }

    #[test]
    fn a_fresh_bucket_sends_its_burst_then_the_rate() {
        let limit = IcmpLimit::new(10, 5); // 100 ms each, 5 at once
        let mut b = Bucket::default();
        let t0 = 7 * NS_PER_SEC;
        assert_eq!(sent(&mut b, limit, t0, 100), 5);
        // 250 ms later: two more (200 ms of credit used, 50 ms kept).
        assert_eq!(sent(&mut b, limit, t0 + 250_000_000, 100), 2);
        // 50 ms later: the kept 50 ms and these make one.
        assert_eq!(sent(&mut b, limit, t0 + 300_000_000, 100), 1);
        // A long pause refills to the burst, not beyond.
        assert_eq!(sent(&mut b, limit, t0 + 3600 * NS_PER_SEC, 100), 5);
    }

    #[test]
    fn steady_flood_gets_the_rate() {
        let limit = IcmpLimit::new(1000, 50);
        let mut b = Bucket::default();
        let t0 = NS_PER_SEC;
        // One frame every 10 µs for 2 s: 200 000 frames, 50 + 2000 errors.
        let n = (0..200_000u64)
            .filter(|i| b.allow(limit, t0 + i * 10_000))
            .count();
        assert_eq!(
            n,
            50 + 2000 - 1,
            "the last 1 ms is not yet earned at the last frame"
        );
    }

    #[test]
    fn zero_rate_sends_nothing_and_none_sends_everything() {
        let mut b = Bucket::default();
        assert_eq!(sent(&mut b, IcmpLimit::new(0, 50), 5, 10), 0);
        assert_eq!(sent(&mut b, IcmpLimit::new(0, 50), u64::MAX, 10), 0);
        let mut b = Bucket::default();
        assert_eq!(sent(&mut b, IcmpLimit::NONE, 5, 10), 10);
        assert_eq!(b, Bucket::default(), "an unlimited bucket is not touched");
    }

    #[test]
    fn a_guard_of_rate_0_is_no_guard() {
        assert_eq!(IcmpLimit::guard(0, 50), IcmpLimit::NONE);
        assert_eq!(IcmpLimit::guard(1000, 50), IcmpLimit::new(1000, 50));
        let mut b = Bucket::default();
        assert_eq!(sent(&mut b, IcmpLimit::guard(0, 1), 5, 10), 10);
        assert_eq!(sent(&mut b, IcmpLimit::guard(1, 3), 5, 10), 3);
    }

    #[test]
    fn a_clock_going_back_earns_nothing() {
        let limit = IcmpLimit::new(10, 1);
        let mut b = Bucket::default();
        assert!(b.allow(limit, 10 * NS_PER_SEC));
        assert!(!b.allow(limit, 5 * NS_PER_SEC));
        assert_eq!(b.last, 10 * NS_PER_SEC);
        assert!(!b.allow(limit, 10 * NS_PER_SEC + 99_999_999));
        assert!(b.allow(limit, 10 * NS_PER_SEC + 100_000_000));
    }
}
