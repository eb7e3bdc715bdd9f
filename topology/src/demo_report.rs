//! Counting and telling what `strait sim run demo` saw (pure: no I/O, no clock).
//!
//! Contract:
//! * a [`Tally`] counts one traffic phase: a request is *answered* when it got a 200 whose
//!   `Via` names a node ([`via_node`]), otherwise it *failed* (the first
//!   [`MAX_KEPT_ERRORS`] reasons are kept for the report);
//! * [`Tally::spread`] is one line `b1 201 (33.5%)  b2 …`, nodes in name order;
//! * [`Outcome::passed`] holds when both phases had requests and every one was answered;
//!   [`Outcome::report`] is the closing paragraph, wrapped at [`REPORT_WIDTH`] columns;
//! * [`up_count`] and [`backend_up`] read a director's `/stats.json` (first service): a
//!   backend counts as up only once it has been checked;
//! * [`tail`] gives the last lines of a log for error messages.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

/// Failure reasons kept per phase.
pub const MAX_KEPT_ERRORS: usize = 3;
/// Width the report paragraph is wrapped at.
pub const REPORT_WIDTH: usize = 86;

/// The node id in a `Via` field value: the received-by of its last entry, `1.1 b1 (strait)`
/// → `b1`. Each hop appends its entry (RFC 9110 §7.6.3), so on a response the last one is the
/// node that answered the client.
pub fn via_node(via: &str) -> Option<&str> {
    let last = via.rsplit(',').next()?;
    let mut parts = last.split_whitespace();
    parts.next()?;
    parts.next().filter(|id| !id.starts_with('('))
}

/// What one traffic phase got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    per_node: BTreeMap<String, usize>,
    failed: usize,
    errors: Vec<String>,
}

impl Tally {
    /// Records a request answered by `node`.
    pub fn answered(&mut self, node: &str) {
        *self.per_node.entry(node.to_owned()).or_default() += 1;
    }

    /// Records a failed request and why.
    pub fn failed(&mut self, why: impl Into<String>) {
        self.failed += 1;
        if self.errors.len() < MAX_KEPT_ERRORS {
            self.errors.push(why.into());
        }
    }

    /// Requests answered.
    pub fn answered_total(&self) -> usize {
        self.per_node.values().sum()
    }

    /// Requests that failed.
    pub fn failed_total(&self) -> usize {
        self.failed
    }

    /// Answers per node id, in name order.
    pub fn per_node(&self) -> &BTreeMap<String, usize> {
        &self.per_node
    }

    /// The first failure reasons (at most [`MAX_KEPT_ERRORS`]).
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// `b1 201 (33.5%)  b2 199 (33.2%)`; `no answers` when there were none.
    pub fn spread(&self) -> String {
        let total = self.answered_total();
        if total == 0 {
            return "no answers".to_owned();
        }
        let cells: Vec<String> = self
            .per_node
            .iter()
            .map(|(node, n)| format!("{node} {n} ({:.1}%)", *n as f64 * 100.0 / total as f64))
            .collect();
        cells.join("  ")
    }

    fn summary(&self) -> String {
        let total = self.answered_total() + self.failed;
        let mut s = format!(
            "{} of {total} requests were answered",
            self.answered_total()
        );
        if !self.per_node.is_empty() {
            let nodes: Vec<String> = self
                .per_node
                .iter()
                .map(|(node, n)| format!("{node} {n}"))
                .collect();
            let _ = write!(s, " ({})", nodes.join(", "));
        }
        if self.failed > 0 {
            let _ = write!(
                s,
                ", {} failed (first: {})",
                self.failed,
                self.errors.join("; ")
            );
        }
        s
    }
}

/// Everything the closing report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Traffic before the kill.
    pub before: Tally,
    /// Node id of the killed backend.
    pub killed_node: String,
    /// The killed backend as the director names it (`ip:port`).
    pub killed_backend: String,
    /// From the SIGKILL until the director's stats showed the backend down.
    pub marked_down_after: Duration,
    /// What the health settings promise: `fall × interval + timeout`.
    pub down_bound: Duration,
    /// Traffic after the kill.
    pub after: Tally,
}

impl Outcome {
    /// Both phases sent requests and every one was answered.
    pub fn passed(&self) -> bool {
        [&self.before, &self.after]
            .iter()
            .all(|t| t.failed_total() == 0 && t.answered_total() > 0)
    }

    /// The closing paragraph.
    pub fn report(&self) -> String {
        let verdict = if self.passed() {
            "every request of both phases was answered"
        } else {
            "some requests were not answered"
        };
        let text = format!(
            "Report: before the kill, {}. Backend {} ({}) was killed with SIGKILL and the \
             director marked it down {} later (its health checks promise at most {}). After \
             the kill, {}. Result: {verdict}.",
            self.before.summary(),
            self.killed_node,
            self.killed_backend,
            seconds(self.marked_down_after),
            seconds(self.down_bound),
            self.after.summary(),
        );
        wrap(&text, REPORT_WIDTH)
    }
}

/// `(up, total)` backends of the first service in a director's stats; a backend counts as up
/// when it is `up` and has been checked (`last_check` set).
pub fn up_count(stats: &Value) -> (usize, usize) {
    let backends = stats["services"][0]["backends"].as_array();
    let all = backends.map_or(0, Vec::len);
    let up = backends.map_or(0, |b| {
        b.iter()
            .filter(|b| b["up"].as_bool() == Some(true) && !b["last_check"].is_null())
            .count()
    });
    (up, all)
}

/// Whether the first service's backend at `ip` (any port) is up; `None`: not listed.
pub fn backend_up(stats: &Value, ip: &str) -> Option<bool> {
    stats["services"][0]["backends"]
        .as_array()?
        .iter()
        .find(|b| {
            b["addr"]
                .as_str()
                .is_some_and(|a| a.split(':').next() == Some(ip))
        })
        .and_then(|b| b["up"].as_bool())
}

/// `1.23s`.
pub fn seconds(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// `text`'s words in lines of at most `width` characters (a longer word gets its own line);
/// the result ends with a newline.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0usize;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if line > 0 && line + 1 + len > width {
            out.push('\n');
            line = 0;
        }
        if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += len;
    }
    out.push('\n');
    out
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(answers: &[(&str, usize)], failures: &[&str]) -> Tally {
        let mut t = Tally::default();
        for (node, n) in answers {
            for _ in 0..*n {
                t.answered(node);
            }
        }
        for f in failures {
            t.failed(*f);
        }
        t
    }

    fn sample() -> Value {
        serde_json::json!({"services": [{"backends": [
            {"addr": "10.0.0.11:80", "up": true, "last_check": "HTTP 200"},
            {"addr": "10.0.0.12:80", "up": false, "last_check": "connect: refused"},
            {"addr": "10.0.0.13:80"},
            {"addr": "10.0.0.14:80", "up": true, "last_check": null}]}]})
    }

    #[test]
    fn counts_up_backends_of_the_first_service() {
        assert_eq!(up_count(&sample()), (1, 4));
        assert_eq!(up_count(&serde_json::json!({})), (0, 0));
    }

    #[test]
    fn finds_a_backend_by_address() {
        assert_eq!(backend_up(&sample(), "10.0.0.11"), Some(true));
        assert_eq!(backend_up(&sample(), "10.0.0.12"), Some(false));
        assert_eq!(backend_up(&sample(), "10.0.0.13"), None);
        assert_eq!(backend_up(&sample(), "10.0.0.1"), None);
    }

    #[test]
    fn via_names_the_hop_nearest_the_client() {
        assert_eq!(via_node("1.1 b1 (strait)"), Some("b1"));
        assert_eq!(via_node("1.1 b2 (strait), 1.1 b1 (strait)"), Some("b1"));
        assert_eq!(via_node("HTTP/1.1 n-3"), Some("n-3"));
        assert_eq!(via_node("1.1"), None);
        assert_eq!(via_node("1.1 (strait)"), None);
        assert_eq!(via_node(""), None);
    }

    #[test]
    fn spread_counts_and_shares_per_node() {
        let t = tally(&[("b2", 1), ("b1", 3)], &[]);
        assert_eq!(t.answered_total(), 4);
        assert_eq!(t.spread(), "b1 3 (75.0%)  b2 1 (25.0%)");
        assert_eq!(Tally::default().spread(), "no answers");
    }

    #[test]
    fn failures_are_counted_but_only_the_first_reasons_kept() {
        let t = tally(&[], &["a", "b", "c", "d"]);
        assert_eq!(t.failed_total(), 4);
        assert_eq!(t.errors(), ["a", "b", "c"]);
        assert_eq!(t.answered_total(), 0);
    }

    fn outcome(before: Tally, after: Tally) -> Outcome {
        Outcome {
            before,
            killed_node: "b3".into(),
            killed_backend: "10.71.0.13:80".into(),
            marked_down_after: Duration::from_millis(1130),
            down_bound: Duration::from_millis(1300),
            after,
        }
    }

    #[test]
    fn passes_only_when_both_phases_answered_everything() {
        let good = tally(&[("b1", 2), ("b2", 1)], &[]);
        assert!(outcome(good.clone(), good.clone()).passed());
        assert!(!outcome(good.clone(), tally(&[("b1", 2)], &["timeout"])).passed());
        assert!(!outcome(Tally::default(), good.clone()).passed());
        assert!(!outcome(good, Tally::default()).passed());
    }

    #[test]
    fn report_tells_both_phases_and_the_time_to_mark_down() {
        let o = outcome(
            tally(&[("b1", 2), ("b2", 1), ("b3", 1)], &[]),
            tally(&[("b1", 2)], &["connect timed out"]),
        );
        let r = o.report();
        assert!(r.lines().all(|l| l.chars().count() <= REPORT_WIDTH), "{r}");
        let flat = r.replace('\n', " ");
        assert_eq!(
            flat,
            "Report: before the kill, 4 of 4 requests were answered (b1 2, b2 1, b3 1). Backend \
             b3 (10.71.0.13:80) was killed with SIGKILL and the director marked it down 1.13s \
             later (its health checks promise at most 1.30s). After the kill, 2 of 3 requests \
             were answered (b1 2), 1 failed (first: connect timed out). Result: some requests \
             were not answered. "
        );
    }

    #[test]
    fn wrap_and_tail() {
        assert_eq!(wrap("aa bb cc", 5), "aa bb\ncc\n");
        assert_eq!(wrap("toolongword x", 4), "toolongword\nx\n");
        assert_eq!(wrap("", 10), "\n");
        assert_eq!(tail("1\n2\n3\n", 2), "2\n3");
        assert_eq!(tail("1", 5), "1");
    }
}
