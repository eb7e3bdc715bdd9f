//! `strait sim run demo` on a topology with two directors: the story of the whole product
//! (root, network namespaces). The default topology `topology/examples/topologies/story.toml`
//! has a client, directors A and B sharing the VIP (`[ha]`, each following the cache cluster),
//! three cache nodes as one cluster, a fourth that joins later, and a static and a dynamic
//! origin.
//!
//! Contract (each step prints short lines as it happens; processes log under `--logs`):
//! 1. **up**: the topology is built and its commands started but the joiner's (the last node
//!    host); within [`steps::UP_WAIT`] the nodes answer, both directors have every node up,
//!    the higher priority is master and the other backup, and the cluster lists every node;
//! 2. **traffic** from the client until the end (`traffic`): long connections streaming, and
//!    short requests for cacheable objects and dynamic answers in turn; each node host records
//!    which director forwarded each frame for the VIP (`sniff`);
//! 3. **join**: after [`WARMUP`] the joiner's commands start; the cluster and both directors
//!    take it in; traffic goes on for [`OBSERVE`];
//! 4. **failover**: every process on the master's host gets SIGKILL; the backup takes over;
//!    [`OBSERVE`] more;
//! 5. **node loss**: the last started node's `strait node` gets SIGKILL; the new master marks it
//!    down and the cluster dead; [`OBSERVE`] more;
//! 6. **return**: the killed director is started again; it catches up (with connection sync)
//!    and preempts; [`OBSERVE`] more, then the traffic stops;
//! 7. the report (`strait_topology::story_report`: what each step proved, its figures, its
//!    bar), then the teardown on every path (error, Ctrl-C, panic).
//!
//! Exit 0 when every step held, 1 otherwise or on an error, 130 when interrupted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use strait_topology::failover::{analyse, Frame, Probe, Recorded as Wire, Takeover};
use strait_topology::spec::Topology;
use strait_topology::story::{fetches, refetched, Short};
use strait_topology::story_report::{self, MasterChange, Origins, Story};

use super::guard;
use super::probe::{self, in_netns};
use super::sniff::{self, mac};

mod setup;
mod steps;
mod traffic;

use setup::{prepare, Setup};
use traffic::{traffic, Recorded, OBJECT_PREFIX};

/// Traffic before the join.
pub const WARMUP: Duration = Duration::from_secs(2);
/// Traffic after each event has settled, before the next.
pub const OBSERVE: Duration = Duration::from_millis(1500);
/// Short requests this long before a master change count for its longest gap.
const GAP_LEAD: Duration = Duration::from_millis(500);

/// Runs the story on `topology` (read from `path`); returns the exit code.
pub fn run(path: PathBuf, topology: Topology, logs: Option<PathBuf>) -> anyhow::Result<i32> {
    let s = prepare(path, topology, logs)?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("`strait sim run demo` needs root (it creates network namespaces)");
    }
    guard::guarded(&s.topology, &s.path, || scenario(&s))
}

/// `sync: received R records, installed I (kept K, aside A), catch-up STATE (N records)` from
/// a director's stats' `sync` block, `sync: off` without one; whether it is on.
fn sync_line(stats: &Value) -> (String, bool) {
    let Some(sync) = stats.get("sync").filter(|v| v.is_object()) else {
        return ("sync: off".to_owned(), false);
    };
    let sum = |key: &str| crate::cmd::ctl::director_view::reasons_total(sync, key);
    let n = |key: &str| sync.get(key).and_then(Value::as_u64).unwrap_or(0);
    let catchup = &sync["catchup"];
    (
        format!(
            "sync: received {} records, installed {} (kept {}, aside {}), catch-up {} ({} records)",
            n("records_received"),
            n("installed"),
            n("kept"),
            sum("aside"),
            catchup["state"].as_str().unwrap_or("-"),
            catchup["records"].as_u64().unwrap_or(0),
        ),
        true,
    )
}

/// The static origin's counts and the dynamic origin's total, asked from the client's host.
fn origin_counts(s: &Setup) -> anyhow::Result<(BTreeMap<String, u64>, u64)> {
    let (st, dy) = (s.static_origin, s.dynamic_origin);
    in_netns(&s.ns(&s.roles.client), move || async move {
        let counts = |addr| async move {
            let a = probe::get(addr, "/_origin/stats", None).await?;
            serde_json::from_slice::<BTreeMap<String, u64>>(&a.body)
                .context("origin stats are not a JSON object of counts")
        };
        let dynamic = counts(dy).await?;
        Ok((
            counts(st).await?,
            dynamic
                .iter()
                .filter(|(p, _)| p.starts_with("/dyn/"))
                .map(|(_, n)| n)
                .sum(),
        ))
    })
}

/// Frames and short requests around a master change, for `failover::analyse`: `old` and
/// `new` are the MACs of the director that was master and the one taking over.
fn wire(
    frames: &[(Duration, [u8; 6])],
    shorts: &[Short],
    window: (Duration, Duration),
    kill: Duration,
    old: [u8; 6],
    new: [u8; 6],
) -> Takeover {
    let within = |at: Duration| at >= window.0 && at < window.1;
    let recorded = Wire {
        kill_at: kill,
        probes: shorts
            .iter()
            .filter(|p| within(p.at))
            .map(|p| Probe {
                at: p.at,
                ok: p.answer.is_ok(),
            })
            .collect(),
        frames: frames
            .iter()
            .filter(|(at, _)| within(*at))
            .map(|&(at, src)| Frame {
                at,
                via: [old, new].iter().position(|m| *m == src),
            })
            .collect(),
        long_total: 0,
        long_survived: 0,
    };
    analyse(&recorded)
}

fn scenario(s: &Setup) -> anyhow::Result<bool> {
    let [a, b] = &s.directors;
    say!(
        "strait story: topology {} ({}): client {}; directors {} (priority {}) and {} ({}) \
         sharing {}; cache nodes {} ({} joins later); origins static {}, dynamic {}; logs in {}",
        s.topology.name,
        s.path.display(),
        s.roles.client,
        a.config.id,
        a.ha.priority,
        b.config.id,
        b.ha.priority,
        s.vip(),
        s.nodes
            .iter()
            .map(|n| n.id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        s.joiner.id,
        s.static_origin,
        s.dynamic_origin,
        s.logs.display()
    );
    let (started, up) = steps::bring_up(s)?;
    let macs = [
        mac(&s.ns(&a.host), &a.config.interface)?,
        mac(&s.ns(&b.host), &b.config.interface)?,
    ];

    // 2. Traffic and the watchers at every node host.
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let watchers: Vec<_> = s
        .nodes
        .iter()
        .chain([&s.joiner])
        .map(|n| sniff::start(s.ns(&n.host), "eth0".into(), s.vip(), t0, Arc::clone(&stop)))
        .collect();
    let client = {
        let (ns, vip, stop) = (s.ns(&s.roles.client), s.vip(), Arc::clone(&stop));
        std::thread::spawn(move || in_netns(&ns, move || traffic(vip, t0, stop)))
    };
    say!(
        "[2/7] traffic: {} long connections streaming; a short request every {} ms, {} static \
         objects (/obj/, cached) and dynamic answers (/dyn/) in turn",
        traffic::LONG,
        traffic::SHORT_EVERY.as_millis(),
        traffic::OBJECTS
    );
    // Whatever happens next, the traffic and the watchers stop.
    struct Stop(Arc<AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let stopper = Stop(Arc::clone(&stop));
    guard::pause(WARMUP)?;

    let mut join = steps::join(s, t0)?;
    say!(
        "[3/7] {:.2} s: {} started: in the cluster after {:.2} s, up at both directors after {:.2} s",
        join.at.as_secs_f64(),
        join.node,
        join.in_cluster_after.as_secs_f64(),
        join.up_after.as_secs_f64()
    );
    guard::pause(OBSERVE)?;
    join.flows = steps::flows(s, a, &s.joiner.ip.to_string());

    let (kill_at, master_after) = steps::kill_master(s, t0)?;
    say!(
        "[4/7] {:.2} s: {} killed (SIGKILL to every process on it); {} master after {:.2} s",
        kill_at.as_secs_f64(),
        a.config.id,
        b.config.id,
        master_after.as_secs_f64()
    );
    let (sync, sync_on) = sync_line(&probe::stats(&s.ns(&b.host), b.admin).unwrap_or_default());
    guard::pause(OBSERVE)?;

    let (before, _) = origin_counts(s)?;
    let loss = steps::kill_one_node(s, &started, t0)?;
    say!(
        "[5/7] {:.2} s: {}'s node killed (SIGKILL): down at {} after {:.2} s, dead in the cluster \
         after {}",
        loss.at.as_secs_f64(),
        loss.node,
        b.config.id,
        loss.down_after.as_secs_f64(),
        loss.dead_after.map_or_else(
            || "(not within the wait)".to_owned(),
            |d| format!("{:.2} s", d.as_secs_f64())
        )
    );
    guard::pause(OBSERVE)?;

    let (back_at, back_after, a_stats) = steps::restart_master(s, t0)?;
    let (back_sync, back_sync_on) = sync_line(&a_stats);
    say!(
        "[6/7] {:.2} s: {} restarted; master again after {:.2} s; {back_sync}",
        back_at.as_secs_f64(),
        a.config.id,
        back_after.as_secs_f64()
    );
    guard::pause(OBSERVE)?;

    let end = t0.elapsed();
    let loss_at = loss.at;
    drop(stopper);
    let Recorded { shorts, longs } = client
        .join()
        .map_err(|_| anyhow!("the traffic thread panicked"))??;
    let mut frames = Vec::new();
    for w in watchers {
        frames.extend(w.join().map_err(|_| anyhow!("a watcher panicked"))??.frames);
    }
    let (after, dynamic) = origin_counts(s)?;

    let story = Story {
        up,
        join,
        failover: MasterChange {
            director: a.config.id.clone(),
            other: b.config.id.clone(),
            at: kill_at,
            master_after,
            wire: wire(
                &frames,
                &shorts,
                (kill_at - GAP_LEAD, loss_at),
                kill_at,
                macs[0],
                macs[1],
            ),
            sync,
            sync_on,
            preempt_delay: Duration::ZERO,
        },
        loss,
        back: MasterChange {
            director: a.config.id.clone(),
            other: b.config.id.clone(),
            at: back_at,
            master_after: back_after,
            wire: wire(
                &frames,
                &shorts,
                (back_at - GAP_LEAD, end),
                back_at,
                macs[1],
                macs[0],
            ),
            sync: back_sync,
            sync_on: back_sync_on,
            preempt_delay: a.ha.preempt_delay,
        },
        origins: Origins {
            before: fetches(&before, OBJECT_PREFIX),
            after: fetches(&after, OBJECT_PREFIX),
            dynamic,
            refetched: refetched(&before, &after, OBJECT_PREFIX),
        },
        shorts,
        longs,
        end,
    };
    let steps = story_report::steps(&story);
    say!("[7/7] report");
    for line in story_report::render(&steps).lines() {
        say!("      {line}");
    }
    Ok(steps.iter().all(|st| st.held))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sync_line_degrades_without_a_sync_block() {
        assert_eq!(
            sync_line(&serde_json::json!({"ha": {}})),
            ("sync: off".into(), false)
        );
        let (line, on) = sync_line(&serde_json::json!({"sync": {"records_received": 30,
            "installed": 29, "kept": 1, "aside": {"dead_backend": 2},
            "catchup": {"state": "done", "records": 12}}}));
        assert!(on);
        assert_eq!(
            line,
            "sync: received 30 records, installed 29 (kept 1, aside 2), catch-up done (12 records)"
        );
    }
}
