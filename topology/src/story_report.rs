//! What the story proved, step by step, with its figures (pure: the caller measured; times are
//! from the traffic's start).
//!
//! Contract of [`steps`]: one [`Step`] per step of the story, each with the bar it must pass:
//! * **traffic**: every request had an answer or a counted failure; every static object was
//!   fetched from the origin at most once before the node kill; no dynamic answer came from a
//!   cache (the dynamic origin saw at least as many requests as were answered);
//! * **join**: no short request failed while the node joined, and it answered some once both
//!   directors had it up;
//! * **failover**: the backup became master, and no short request started [`SETTLE`] after that
//!   failed; with connection sync on, no long connection was lost (without it the count is
//!   reported, not required);
//! * **node loss**: the directors marked the node down, no short request started [`SETTLE`]
//!   after that failed, and the origin was asked again at most once per object the node held;
//! * **return**: the restarted director became master again, and the same bars as failover.
//!
//! A short request counts in the window it started in, except one that failed while a kill
//! happened (the master's, the node's) having started at most `story::IN_FLIGHT` (250 ms)
//! before it: that one counts at the kill, in that step's time before it settled. Each step names its failed requests (when, why) and how its long connections
//! were lost.
//!
//! The **up** step holds when it was reached (its waits are bounded and fail the run). Long
//! connections on the killed node are lost by nature: the report says how many.

use std::fmt::Write as _;
use std::time::Duration;

use crate::failover::{ms, Takeover};
use crate::story::{
    longs_lost, longs_lost_how, longs_per_node, per_node_line, tally, Long, Short, ShortTally,
};

/// After an event settled (a new master, a backend marked down) plus this, every short
/// request must be answered.
pub const SETTLE: Duration = Duration::from_millis(500);

/// Step 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Up {
    pub took: Duration,
    pub nodes: Vec<String>,
    pub master: String,
    pub backup: String,
    /// Cluster members with a weight (nodes, not observers).
    pub members: usize,
}

/// Step 3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    pub node: String,
    /// When its commands started.
    pub at: Duration,
    /// From `at` until the cluster listed it alive.
    pub in_cluster_after: Duration,
    /// From `at` until both directors had it up.
    pub up_after: Duration,
    /// Flows the master had sent it when the next step began.
    pub flows: u64,
}

/// Step 4 and step 6: a director killed, or restarted.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterChange {
    /// The director killed (step 4) or restarted (step 6).
    pub director: String,
    /// The one that was master before.
    pub other: String,
    pub at: Duration,
    /// From `at` until the new master said so.
    pub master_after: Duration,
    /// Frames and probes around it.
    pub wire: Takeover,
    /// The new master's `sync` line (`sync: off` without a sync block).
    pub sync: String,
    pub sync_on: bool,
    /// `preempt_delay` of the restarted director (step 6).
    pub preempt_delay: Duration,
}

/// Step 5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLoss {
    pub node: String,
    pub at: Duration,
    /// From `at` until the master director had it down (or drained).
    pub down_after: Duration,
    /// What its health settings promise.
    pub down_bound: Duration,
    /// From `at` until the cluster listed it dead (`None`: not within the wait).
    pub dead_after: Option<Duration>,
    /// Objects it stored when it was killed.
    pub held: u64,
}

/// The origins' counts: static `(objects, fetches, most fetches of one)` before the node kill
/// and at the end, and the dynamic origin's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origins {
    pub before: (usize, u64, u64),
    pub after: (usize, u64, u64),
    pub dynamic: u64,
    /// The static objects fetched again after the node kill, and how many more times.
    pub refetched: Vec<(String, u64)>,
}

/// Everything measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Story {
    pub up: Up,
    pub join: Join,
    pub failover: MasterChange,
    pub loss: NodeLoss,
    pub back: MasterChange,
    pub origins: Origins,
    pub shorts: Vec<Short>,
    pub longs: Vec<Long>,
    /// When the traffic stopped.
    pub end: Duration,
}

/// One step of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: &'static str,
    pub held: bool,
    pub lines: Vec<String>,
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The short requests that count in `[from, to)`, a request in flight at a kill counting at
/// the kill (`Short::counted_at`).
fn shorts_in(s: &Story, from: Duration, to: Duration) -> ShortTally {
    tally(&s.shorts, &[s.failover.at, s.loss.at], from, to)
}

/// Entries a "why" line names at most.
const WHY_SHOWN: usize = 4;

/// `what: 5.23 s no connection within 300 ms; …` for the failed short requests of `t`
/// (none: no line).
fn failures_line(what: &str, t: &ShortTally) -> Option<String> {
    let cells = t
        .failures
        .iter()
        .map(|(at, why)| format!("{} {why}", secs(*at)));
    why_line(what, cells, t.failures.len())
}

/// `long connections lost: b2 at 12.17 s (read: reset by peer); …` in `[from, to)` (none:
/// no line).
fn losses_line(longs: &[Long], from: Duration, to: Duration) -> Option<String> {
    let lost = longs_lost_how(longs, from, to);
    let cells = lost
        .iter()
        .map(|(node, at, why)| format!("{node} at {} ({why})", secs(*at)));
    why_line("how they were lost", cells, lost.len())
}

/// `what: ` and the first [`WHY_SHOWN`] of `cells` of `total`.
fn why_line(what: &str, cells: impl Iterator<Item = String>, total: usize) -> Option<String> {
    if total == 0 {
        return None;
    }
    let shown: Vec<String> = cells.take(WHY_SHOWN).collect();
    let more = total - shown.len();
    let tail = if more > 0 {
        format!("; {more} more")
    } else {
        String::new()
    };
    Some(format!("{what}: {}{tail}", shown.join("; ")))
}

/// The steps and their verdicts (see the module contract).
pub fn steps(s: &Story) -> Vec<Step> {
    vec![up(s), traffic(s), join(s), failover(s), loss(s), back(s)]
}

/// The report: one block per step, then the result line.
pub fn render(steps: &[Step]) -> String {
    let mut out = String::new();
    for st in steps {
        let mark = if st.held { "held" } else { "FAILED" };
        for (i, line) in st.lines.iter().enumerate() {
            if i == 0 {
                let _ = writeln!(out, "{:<10} {mark:<6} {line}", st.name);
            } else {
                let _ = writeln!(out, "{:<17} {line}", "");
            }
        }
    }
    let failed: Vec<&str> = steps.iter().filter(|s| !s.held).map(|s| s.name).collect();
    if failed.is_empty() {
        out.push_str("result: every step held\n");
    } else {
        let _ = writeln!(out, "result: not held: {}", failed.join(", "));
    }
    out
}

fn up(s: &Story) -> Step {
    let u = &s.up;
    Step {
        name: "up",
        held: true,
        lines: vec![format!(
            "after {}: {} answer; {} master, {} backup, every backend up at both; the cluster \
             has {} nodes",
            secs(u.took),
            u.nodes.join(", "),
            u.master,
            u.backup,
            u.members
        )],
    }
}

fn traffic(s: &Story) -> Step {
    let all = shorts_in(s, Duration::ZERO, s.end);
    let o = &s.origins;
    let once = o.before.2 <= 1;
    let uncached = o.dynamic >= all.dynamic_answered as u64;
    let kept = s.longs.iter().filter(|l| l.lost_at.is_none()).count();
    let early: usize = longs_lost(&s.longs, Duration::ZERO, s.failover.at)
        .values()
        .sum();
    let mut lines = vec![
        format!(
            "{} short requests: {} answered ({}), {} failed",
            all.answered + all.failed(),
            all.answered,
            all.nodes_line(),
            all.failed()
        ),
        format!(
            "static: {} answered, {} from a cache ({})",
            all.static_answered,
            all.static_hits(),
            all.paths_line()
        ),
        format!(
            "static objects: {}, fetched from the origin {} times before the node kill \
                 (most for one object: {}{})",
            o.before.0,
            o.before.1,
            o.before.2,
            if once { ": once each" } else { "" }
        ),
        format!(
            "dynamic: {} answered, {} requests reached its origin{}",
            all.dynamic_answered,
            o.dynamic,
            if uncached { " (none cached)" } else { "" }
        ),
        format!(
            "long connections: {} opened ({}), {kept} streaming to the end, {early} lost \
                 before the failover",
            s.longs.len(),
            per_node_line(&longs_per_node(&s.longs))
        ),
    ];
    lines.extend(losses_line(&s.longs, Duration::ZERO, s.failover.at));
    Step {
        name: "traffic",
        held: all.answered > 0 && once && uncached,
        lines,
    }
}

fn join(s: &Story) -> Step {
    let j = &s.join;
    let during = shorts_in(s, j.at, s.failover.at);
    let since_up = shorts_in(s, j.at + j.up_after, s.failover.at);
    let by_it = since_up.per_node.get(&j.node).copied().unwrap_or(0);
    let mut lines = vec![format!(
        "{} started at {}: in the cluster after {}, up at both directors after {}; then it \
             answered {by_it} of {} short requests ({} flows from {}); {} failed meanwhile",
        j.node,
        secs(j.at),
        secs(j.in_cluster_after),
        secs(j.up_after),
        since_up.answered,
        j.flows,
        s.up.master,
        during.failed()
    )];
    lines.extend(failures_line("failed meanwhile", &during));
    Step {
        name: "join",
        held: during.failed() == 0 && by_it > 0,
        lines,
    }
}

/// Lines and verdict shared by the failover and the return.
fn takeover_step(
    s: &Story,
    name: &'static str,
    t: &MasterChange,
    next: Duration,
    first: String,
) -> Step {
    let settled = t.at + t.master_after + SETTLE;
    let before = shorts_in(s, t.at, settled);
    let after = shorts_in(s, settled, next);
    let lost_on = longs_lost(&s.longs, t.at, next);
    let lost: usize = lost_on.values().sum();
    let longs_ok = !t.sync_on || lost == 0;
    let wire = t.wire.wire_gap.map_or_else(|| "not seen".to_owned(), ms);
    let mut lines = vec![
        first,
        format!(
            "on the wire: {wire}; longest gap between answered requests {}; {} failed before \
                 it settled, {} of {} after",
            ms(t.wire.client_gap),
            before.failed(),
            after.failed(),
            after.answered + after.failed()
        ),
        format!(
            "long connections lost: {lost} of {} ({}); {}{}",
            s.longs.len(),
            per_node_line(&lost_on),
            t.sync,
            if t.sync_on {
                ""
            } else {
                " (without sync a lost flow is reported, not required)"
            }
        ),
    ];
    lines.extend(failures_line("failed after it settled", &after));
    lines.extend(losses_line(&s.longs, t.at, next));
    Step {
        name,
        held: after.failed() == 0 && longs_ok,
        lines,
    }
}

fn failover(s: &Story) -> Step {
    let f = &s.failover;
    let first = format!(
        "{} (master) killed at {}: {} master after {}",
        f.director,
        secs(f.at),
        f.other,
        secs(f.master_after)
    );
    takeover_step(s, "failover", f, s.loss.at, first)
}

fn loss(s: &Story) -> Step {
    let l = &s.loss;
    let settled = l.at + l.down_after + SETTLE;
    let before = shorts_in(s, l.at, settled);
    let after = shorts_in(s, settled, s.back.at);
    let lost_on = longs_lost(&s.longs, l.at, s.back.at);
    let lost: usize = lost_on.values().sum();
    let on_it = lost_on.get(&l.node).copied().unwrap_or(0);
    let refetched = s.origins.after.1.saturating_sub(s.origins.before.1);
    let fetch_ok = refetched <= l.held && s.origins.after.2 <= 2;
    let mut lines = vec![
        format!(
            "{} killed at {}: down at {} after {} (health promises {}), dead in the cluster \
                 after {}",
            l.node,
            secs(l.at),
            s.failover.other,
            secs(l.down_after),
            secs(l.down_bound),
            l.dead_after
                .map_or_else(|| "no time measured".to_owned(), secs)
        ),
        format!(
            "{} short requests failed before it settled, {} of {} after",
            before.failed(),
            after.failed(),
            after.answered + after.failed()
        ),
        format!(
            "it held {} objects: {refetched} fetched again from the origin by their new \
                 owners (at most once each{})",
            l.held,
            if fetch_ok { ": held" } else { ": NOT held" }
        ),
        format!(
            "long connections lost: {lost} ({}), {on_it} of them on {}",
            per_node_line(&lost_on),
            l.node
        ),
    ];
    if !fetch_ok {
        let cells: Vec<String> = (s.origins.refetched.iter())
            .map(|(o, n)| format!("{o} ×{n}"))
            .collect();
        lines.push(format!("fetched again: {}", cells.join(", ")));
    }
    lines.extend(failures_line("failed after it settled", &after));
    Step {
        name: "node loss",
        held: after.failed() == 0 && fetch_ok,
        lines,
    }
}

fn back(s: &Story) -> Step {
    let b = &s.back;
    let first = format!(
        "{} restarted at {}: {}, master again after {} (preempt_delay {})",
        b.director,
        secs(b.at),
        if b.sync_on {
            "caught up from its peer"
        } else {
            "started with an empty table (no sync)"
        },
        secs(b.master_after),
        secs(b.preempt_delay)
    );
    takeover_step(s, "return", b, Duration::MAX, first)
}

#[cfg(test)]
mod tests;
