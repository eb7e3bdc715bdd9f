//! The story's actions and the bounded waits that measure them: bring the topology up (the
//! joiner held back), start the joiner, kill the master director, kill a node, restart the
//! director. Every wait polls an admin endpoint from inside its host's namespace.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use strait_topology::demo_report::{tail, up_count};
use strait_topology::netns;
use strait_topology::story_report::{Join, NodeLoss, Up};
use strait_topology::supervisor::{self, Started};

use super::setup::{held_back, only, Director, Node, Setup};
use crate::cmd::sim::guard;
use crate::cmd::sim::probe::{self, wait_json, Waited};
use crate::cmd::sim::process::{exited, kill_node, signal_host};

/// Bound on bringing the topology up, and on a restarted director becoming master.
pub(super) const UP_WAIT: Duration = Duration::from_secs(30);
/// Bound on the joiner being in the cluster and up at both directors.
const JOIN_WAIT: Duration = Duration::from_secs(15);
/// Bound on the backup taking over.
const TAKEOVER_WAIT: Duration = Duration::from_secs(5);
/// Bound on a killed node being down at the director and dead in the cluster.
const LOSS_WAIT: Duration = Duration::from_secs(10);
/// Lines of a log shown when a wait fails.
const LOG_TAIL_LINES: usize = 15;

/// `ha.state` of a director's stats.
pub(super) fn ha_state(v: &Value) -> Option<&str> {
    v["ha"]["state"].as_str()
}

/// The first service's backend at `ip`, if listed.
fn backend<'a>(v: &'a Value, ip: &str) -> Option<&'a Value> {
    v["services"][0]["backends"].as_array()?.iter().find(|b| {
        b["addr"]
            .as_str()
            .is_some_and(|a| a.split(':').next() == Some(ip))
    })
}

/// Members with a weight (nodes, not observers) in `state` in a node's `/cluster.json`.
fn members(v: &Value, state: &str) -> Vec<String> {
    v["members"].as_array().map_or_else(Vec::new, |m| {
        m.iter()
            .filter(|m| m["weight"].as_u64().unwrap_or(0) > 0 && m["state"] == state)
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect()
    })
}

/// `took`, or an error naming what was awaited and the log to read.
fn took(waited: Waited, what: &str, log: &Path) -> anyhow::Result<Duration> {
    waited.took.ok_or_else(|| {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let last = waited
            .last_error
            .map_or_else(String::new, |e| format!(" (last error: {e})"));
        anyhow!(
            "{what}{last}; last lines of {}:\n{}",
            log.display(),
            tail(&text, LOG_TAIL_LINES)
        )
    })
}

fn log_of(s: &Setup, host: &str, command: usize) -> std::path::PathBuf {
    s.logs.join(format!("{host}-{command}.log"))
}

/// Waits on a director's stats (no giving up).
fn director_wait(
    s: &Setup,
    d: &Director,
    since: Instant,
    bound: Duration,
    done: impl Fn(&Value) -> bool + Send + 'static,
) -> anyhow::Result<Waited> {
    probe::wait_for(&s.ns(&d.host), d.admin, since, bound, done, || false)
}

/// Waits on the first node's `/cluster.json`.
fn cluster_wait(
    s: &Setup,
    since: Instant,
    bound: Duration,
    done: impl Fn(&Value) -> bool + Send + 'static,
) -> anyhow::Result<Waited> {
    let n = &s.nodes[0];
    wait_json(
        &s.ns(&n.host),
        n.admin,
        "/cluster.json",
        since,
        bound,
        done,
        || false,
    )
}

/// Step 1: build, start all but the joiner, wait until the nodes answer, both directors have
/// every node up, the expected master is master and the other backup, and the cluster lists
/// every node alive.
pub(super) fn bring_up(s: &Setup) -> anyhow::Result<(Vec<Started>, Up)> {
    let topo = &s.topology;
    netns::down(&topo.prefix()).context("cannot remove leftovers")?;
    netns::up(topo).context("cannot build the topology")?;
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let started = supervisor::start(&held_back(topo, &s.joiner.host), &s.logs, &exe)
        .context("cannot start the topology's commands")?;
    say!(
        "[1/7] topology up: {} hosts, {} processes started ({} held back: it joins in step 3)",
        topo.hosts.len(),
        started.len(),
        s.joiner.host
    );
    let start = Instant::now();
    let direct: Vec<SocketAddr> = s
        .nodes
        .iter()
        .map(|n| SocketAddr::from((n.ip, s.vip().port())))
        .collect();
    if let Err(why) = probe::wait_answering(&s.ns(&s.roles.client), direct, start, UP_WAIT)? {
        bail!(
            "not every node answered within {}s: {why}",
            UP_WAIT.as_secs()
        );
    }
    let n = s.nodes.len();
    for (i, d) in s.directors.iter().enumerate() {
        let want = if i == 0 { "master" } else { "backup" };
        let waited = director_wait(s, d, start, UP_WAIT, move |v| {
            up_count(v) == (n, n) && ha_state(v) == Some(want)
        })?;
        let what = format!(
            "{} did not report {n}/{n} backends up as {want} within {}s",
            d.config.id,
            UP_WAIT.as_secs()
        );
        took(waited, &what, &log_of(s, &d.host, d.command))?;
    }
    let waited = cluster_wait(s, start, UP_WAIT, move |v| members(v, "alive").len() == n)?;
    let what = format!("the cluster did not list {n} nodes alive");
    took(
        waited,
        &what,
        &log_of(s, &s.nodes[0].host, s.nodes[0].command),
    )?;
    let up = Up {
        took: start.elapsed(),
        nodes: s.nodes.iter().map(|n| n.id.clone()).collect(),
        master: s.directors[0].config.id.clone(),
        backup: s.directors[1].config.id.clone(),
        members: n,
    };
    say!(
        "[1/7] after {:.2} s: {} answer; {} master, {} backup, {n}/{n} backends up at both; the \
         cluster has {n} nodes",
        up.took.as_secs_f64(),
        up.nodes.join(", "),
        up.master,
        up.backup
    );
    Ok((started, up))
}

/// Step 3: the joiner's commands started; waits until the cluster lists it alive and both
/// directors have it up.
pub(super) fn join(s: &Setup, t0: Instant) -> anyhow::Result<Join> {
    let exe = std::env::current_exe().context("cannot find this binary")?;
    guard::check()?;
    supervisor::start(&only(&s.topology, &s.joiner.host), &s.logs, &exe)
        .context("cannot start the joiner's commands")?;
    let (at, since) = (t0.elapsed(), Instant::now());
    let id = s.joiner.id.clone();
    let in_cluster = cluster_wait(s, since, JOIN_WAIT, move |v| {
        members(v, "alive").contains(&id)
    })?;
    let log = log_of(s, &s.joiner.host, s.joiner.command);
    let in_cluster_after = took(in_cluster, "the joiner did not appear in the cluster", &log)?;
    let mut up_after = Duration::ZERO;
    for d in &s.directors {
        let ip = s.joiner.ip.to_string();
        let waited = director_wait(s, d, since, JOIN_WAIT, move |v| {
            backend(v, &ip).is_some_and(|b| {
                b["up"] == true && !b["last_check"].is_null() && b["weight"].as_u64() > Some(0)
            })
        })?;
        let what = format!("{} did not have the joiner up", d.config.id);
        up_after = up_after.max(took(waited, &what, &log_of(s, &d.host, d.command))?);
    }
    Ok(Join {
        node: s.joiner.id.clone(),
        at,
        in_cluster_after,
        up_after,
        flows: 0,
    })
}

/// Flows the director has sent the backend at `ip` (its stats, now).
pub(super) fn flows(s: &Setup, d: &Director, ip: &str) -> u64 {
    probe::stats(&s.ns(&d.host), d.admin)
        .ok()
        .and_then(|v| backend(&v, ip).and_then(|b| b["flows"].as_u64()))
        .unwrap_or(0)
}

/// Step 4: SIGKILL to every process on the master's host; returns (when, how long until the
/// backup said it is master).
pub(super) fn kill_master(s: &Setup, t0: Instant) -> anyhow::Result<(Duration, Duration)> {
    guard::check()?;
    // The fault begins with the signal: a request started after this instant is the step's.
    let (at, since) = (t0.elapsed(), Instant::now());
    signal_host(&s.ns(&s.directors[0].host), libc::SIGKILL)?;
    let b = &s.directors[1];
    let waited = director_wait(s, b, since, TAKEOVER_WAIT, |v| {
        ha_state(v) == Some("master")
    })?;
    let what = format!("{} did not become master", b.config.id);
    Ok((at, took(waited, &what, &log_of(s, &b.host, b.command))?))
}

/// Step 5: SIGKILL to the last started node's `strait node`; waits until the new master has it
/// down (or drained) and the cluster lists it dead.
pub(super) fn kill_one_node(
    s: &Setup,
    started: &[Started],
    t0: Instant,
) -> anyhow::Result<NodeLoss> {
    let victim: &Node = s.nodes.last().ok_or_else(|| anyhow!("no node"))?;
    let log = log_of(s, &victim.host, victim.command);
    let pid = started
        .iter()
        .find(|p| p.log == log)
        .map(|p| p.pid)
        .ok_or_else(|| anyhow!("the node of host {} was not started", victim.host))?;
    let held = probe::stats(&s.ns(&victim.host), victim.admin)
        .ok()
        .and_then(|v| v["stored_objects"].as_u64())
        .unwrap_or(0);
    guard::check()?;
    let (at, since) = (t0.elapsed(), Instant::now());
    kill_node(pid)?;
    let ip = victim.ip.to_string();
    let d = &s.directors[1];
    let waited = director_wait(s, d, since, LOSS_WAIT, move |v| {
        backend(v, &ip).is_none_or(|b| b["up"] == false || b["weight"].as_u64() == Some(0))
    })?;
    let what = format!("{} did not mark {} down", d.config.id, victim.id);
    let down_after = took(waited, &what, &log_of(s, &d.host, d.command))?;
    let id = victim.id.clone();
    let dead = cluster_wait(s, since, LOSS_WAIT, move |v| {
        members(v, "dead").contains(&id)
    })?;
    let health = &s.service.health;
    Ok(NodeLoss {
        node: victim.id.clone(),
        at,
        down_after,
        down_bound: health.interval * health.fall + health.timeout,
        dead_after: dead.took,
        held,
    })
}

/// Step 6: the killed director's commands started again (logs under `restart/`); returns
/// (when, how long until it said it is master, its stats then).
pub(super) fn restart_master(
    s: &Setup,
    t0: Instant,
) -> anyhow::Result<(Duration, Duration, Value)> {
    let a = &s.directors[0];
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let logs = s.logs.join("restart");
    guard::check()?;
    let started = supervisor::start(&only(&s.topology, &a.host), &logs, &exe)
        .context("cannot restart the director")?;
    let (at, since) = (t0.elapsed(), Instant::now());
    let pid = started.first().map(|p| p.pid).unwrap_or(0);
    let waited = probe::wait_for(
        &s.ns(&a.host),
        a.admin,
        since,
        UP_WAIT,
        |v| ha_state(v) == Some("master"),
        move || exited(pid),
    )?;
    let last = waited.last.clone().unwrap_or(Value::Null);
    let what = format!("{} did not become master again", a.config.id);
    let after = took(
        waited,
        &what,
        &logs.join(format!("{}-{}.log", a.host, a.command)),
    )?;
    Ok((at, after, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_members_are_nodes_in_a_state() {
        let v = serde_json::json!({"members": [
            {"id": "b1", "state": "alive", "weight": 100},
            {"id": "b3", "state": "dead", "weight": 100},
            {"id": "dir-a", "state": "alive", "weight": 0}]});
        assert_eq!(members(&v, "alive"), ["b1"]);
        assert_eq!(members(&v, "dead"), ["b3"]);
        let s =
            serde_json::json!({"services": [{"backends": [{"addr": "10.0.0.1:80", "flows": 3}]}]});
        assert_eq!(
            backend(&s, "10.0.0.1").and_then(|b| b["flows"].as_u64()),
            Some(3)
        );
        assert!(backend(&s, "10.0.0.2").is_none());
    }
}
