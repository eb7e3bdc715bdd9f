//! The soak's tally of requests and its closing report.
//!
//! Contract: the run passed when no request was a failure ([`Outcome::is_failure`]), no
//! process's RSS went past the bound, no log holds a panic and no process exited unless the
//! soak killed it. [`Report::render`] gives the lines `strait sim run soak` ends with.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::verdict::{Outcome, OUTCOMES};
use super::workload::{Kind, Pick};

/// Most requests listed by name in the report (failures first, then unexplained).
pub const MAX_LISTED: usize = 20;

/// Requests by outcome and kind, and the first few that went wrong.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    by_outcome: BTreeMap<Outcome, u64>,
    by_kind: BTreeMap<Kind, u64>,
    /// Body bytes checked.
    pub bytes: u64,
    failed: Vec<String>,
    unexplained: Vec<String>,
}

impl Tally {
    /// Counts one request that started `at` after the start of the run.
    pub fn record(
        &mut self,
        at: Duration,
        pick: &Pick,
        outcome: Outcome,
        detail: Option<&str>,
        body_bytes: u64,
    ) {
        *self.by_outcome.entry(outcome).or_default() += 1;
        *self.by_kind.entry(pick.kind).or_default() += 1;
        self.bytes += body_bytes;
        let list = if outcome.is_failure() {
            &mut self.failed
        } else if outcome == Outcome::Unexplained {
            &mut self.unexplained
        } else {
            return;
        };
        if list.len() < MAX_LISTED {
            let range = pick
                .range
                .map_or(String::new(), |(a, b)| format!(" (Range: bytes={a}-{b})"));
            list.push(format!(
                "{:.2} s GET {}{range}: {}: {}",
                at.as_secs_f64(),
                pick.target,
                outcome.as_str(),
                detail.unwrap_or("")
            ));
        }
    }

    /// Requests with `outcome`.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.by_outcome.get(&outcome).copied().unwrap_or(0)
    }

    /// All requests.
    pub fn total(&self) -> u64 {
        self.by_outcome.values().sum()
    }

    /// Requests that fail the run.
    pub fn failures(&self) -> u64 {
        OUTCOMES
            .iter()
            .filter(|o| o.is_failure())
            .map(|o| self.count(*o))
            .sum()
    }

    /// One line: the total and each outcome seen.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = OUTCOMES
            .iter()
            .filter(|o| self.count(**o) > 0 || o.is_failure())
            .map(|o| format!("{} {}", o.as_str(), self.count(*o)))
            .collect();
        format!("{} requests: {}", self.total(), parts.join(", "))
    }
}

/// Kills and restarts of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Faults {
    pub host: String,
    /// `node` or `origin`.
    pub role: &'static str,
    pub kills: u32,
    pub restarts: u32,
}

/// Everything the run ends with.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    /// The run's length as asked.
    pub duration: Duration,
    pub tally: Tally,
    pub faults: Vec<Faults>,
    /// Largest RSS seen per process (host, and what runs there), in bytes.
    pub max_rss: Vec<(String, u64)>,
    pub rss_bound: u64,
    /// Log files read for panics.
    pub logs: usize,
    /// `file: line` of every panic found.
    pub panics: Vec<String>,
    /// Processes that exited without being killed.
    pub exits: Vec<String>,
}

impl Report {
    /// Processes whose RSS went past the bound.
    pub fn over_bound(&self) -> Vec<&(String, u64)> {
        self.max_rss
            .iter()
            .filter(|(_, rss)| *rss > self.rss_bound)
            .collect()
    }

    /// How many things failed the run.
    pub fn failures(&self) -> u64 {
        self.tally.failures()
            + self.over_bound().len() as u64
            + self.panics.len() as u64
            + self.exits.len() as u64
    }

    /// Whether the run held.
    pub fn passed(&self) -> bool {
        self.failures() == 0
    }

    /// The report's lines.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let t = &self.tally;
        let _ = writeln!(
            out,
            "soak report: seed {}, {} s (again: --seed {} --duration {}s)",
            self.seed,
            self.duration.as_secs(),
            self.seed,
            self.duration.as_secs()
        );
        let _ = writeln!(out, "  requests  {}", t.summary());
        let kinds: Vec<String> = t
            .by_kind
            .iter()
            .map(|(k, n)| format!("{} {n}", k.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "            by kind: {}; {:.1} MB of bodies checked",
            kinds.join(", "),
            t.bytes as f64 / 1e6
        );
        let kills: u32 = self.faults.iter().map(|f| f.kills).sum();
        let restarts: u32 = self.faults.iter().map(|f| f.restarts).sum();
        let each: Vec<String> = self
            .faults
            .iter()
            .map(|f| format!("{} ({}) {}/{}", f.host, f.role, f.kills, f.restarts))
            .collect();
        let _ = writeln!(
            out,
            "  faults    {kills} kills, {restarts} restarts (SIGKILL; kills/restarts per host: {})",
            each.join(", ")
        );
        let rss: Vec<String> = self
            .max_rss
            .iter()
            .map(|(p, b)| format!("{p} {:.1}", *b as f64 / (1024.0 * 1024.0)))
            .collect();
        let _ = writeln!(
            out,
            "  max rss   MiB: {} (bound {:.0} MiB{})",
            rss.join(", "),
            self.rss_bound as f64 / (1024.0 * 1024.0),
            match self.over_bound().len() {
                0 => String::new(),
                n => format!("; {n} over it"),
            }
        );
        let _ = writeln!(
            out,
            "  logs      {} files read: {} panics; {} processes exited on their own",
            self.logs,
            self.panics.len(),
            self.exits.len()
        );
        for line in self.panics.iter().chain(&self.exits).chain(&t.failed) {
            let _ = writeln!(out, "  failure   {line}");
        }
        for line in &t.unexplained {
            let _ = writeln!(out, "  unexplained {line}");
        }
        let _ = match self.failures() {
            0 => writeln!(out, "  result    held: no failure"),
            n => writeln!(out, "  result    FAILED: {n} failures"),
        };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::workload::Expect;

    fn pick() -> Pick {
        Pick {
            kind: Kind::Hot,
            target: "/obj/soak-hot-1?size=2048&sum=1".into(),
            expect: Expect::Object {
                name: "soak-hot-1".into(),
                size: 2048,
            },
            range: None,
        }
    }

    #[test]
    fn a_clean_run_renders_and_holds() {
        let mut r = Report {
            seed: 7,
            duration: Duration::from_secs(60),
            rss_bound: 512 << 20,
            logs: 6,
            ..Report::default()
        };
        let s = Duration::from_secs(1);
        r.tally.record(s, &pick(), Outcome::Full, None, 2048);
        r.tally
            .record(s, &pick(), Outcome::Expected, Some("reset"), 0);
        r.faults.push(Faults {
            host: "b1".into(),
            role: "node",
            kills: 2,
            restarts: 2,
        });
        r.max_rss.push(("b1 node".into(), 40 << 20));
        assert!(r.passed());
        let text = r.render();
        assert_eq!(
            text,
            "soak report: seed 7, 60 s (again: --seed 7 --duration 60s)\n\
             \x20 requests  2 requests: full 1, no answer while down 1, wrong body 0, truncated 0, bad status 0\n\
             \x20           by kind: hot 2; 0.0 MB of bodies checked\n\
             \x20 faults    2 kills, 2 restarts (SIGKILL; kills/restarts per host: b1 (node) 2/2)\n\
             \x20 max rss   MiB: b1 node 40.0 (bound 512 MiB)\n\
             \x20 logs      6 files read: 0 panics; 0 processes exited on their own\n\
             \x20 result    held: no failure\n"
        );
    }

    #[test]
    fn failures_of_any_kind_fail_the_run_and_are_listed() {
        let mut r = Report {
            rss_bound: 100,
            ..Report::default()
        };
        r.tally.record(
            Duration::from_millis(2500),
            &pick(),
            Outcome::WrongBody,
            Some("x"),
            0,
        );
        r.tally.record(
            Duration::ZERO,
            &pick(),
            Outcome::Unexplained,
            Some("timeout"),
            0,
        );
        r.max_rss.push(("b2 node".into(), 101));
        r.panics
            .push("b2-0.log: thread 'x' panicked at src/a.rs:1:1".into());
        assert_eq!(r.failures(), 3);
        let text = r.render();
        assert!(
            text.contains(
                "  failure   2.50 s GET /obj/soak-hot-1?size=2048&sum=1: wrong body: x\n"
            ),
            "{text}"
        );
        assert!(text.contains("  unexplained 0.00 s GET"), "{text}");
        assert!(text.contains("1 over it"), "{text}");
        assert!(text.ends_with("  result    FAILED: 3 failures\n"), "{text}");
        for _ in 0..(MAX_LISTED + 3) {
            r.tally
                .record(Duration::ZERO, &pick(), Outcome::Truncated, None, 0);
        }
        assert_eq!(r.tally.failed.len(), MAX_LISTED);
        assert_eq!(r.tally.failures(), MAX_LISTED as u64 + 4);
    }
}
