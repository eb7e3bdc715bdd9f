//! `strait sim run demo` with one director, in network namespaces (root); a topology with two
//! directors (the default) runs the story instead (`story`).
//!
//! Contract (each step prints short lines on stdout as it happens; the strait processes log to
//! files under `--logs`, default `/tmp/strait-sim/<topology name>`):
//! 1. leftovers of the topology are removed, it is built and its `run` commands started (as
//!    `sim up` does); then, within [`UP_WAIT`], every backend must answer a GET sent from the
//!    director's host and the director's admin (`admin` of the director config named in its
//!    run line) must report every backend of its first service up and checked at least once
//!    (a director counts a backend up until its first checks say otherwise); if not, the
//!    error shows the director's log tail;
//! 2. `--requests` GETs from the client host to the VIP of that service, each on its own
//!    connection from its own client port (the two phases use disjoint ports, so no request
//!    meets a connection-table entry of the first phase); answers are counted per node (`Via`);
//! 3. the director's table, rendered as `strait ctl stats` renders it;
//! 4. the last backend host's `strait node` gets SIGKILL; the time until the director marks it
//!    down is measured (bounded by [`down_wait`]); the same traffic again;
//! 5. a report paragraph, then the teardown.
//!
//! The topology is torn down on every path (success, error, Ctrl-C, panic). Exit 0 when every
//! request of both phases was answered, 1 otherwise or on an error, 130 when interrupted.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use strait_lb::config::ServiceConfig;
use strait_topology::demo_report::{backend_up, seconds, tail, up_count, Outcome, Tally};
use strait_topology::netns;
use strait_topology::supervisor::{self, Started};

use super::guard;
use super::probe;
use super::process::{exited, kill_node};
use super::setup::{prepare, topology_path, DemoArgs, Setup};
use crate::cmd::ctl::director_view;

/// Bound on the wait for the director to report every backend up.
pub const UP_WAIT: Duration = Duration::from_secs(20);
/// First client port of the traffic phases (below the kernel's ephemeral range, 32768 on).
const FIRST_CLIENT_PORT: u16 = 10_000;
/// Most requests per phase: two phases of client ports must fit under the ephemeral range.
pub const MAX_REQUESTS: u16 = 10_000;
/// Lines of the director's log shown when it never gets there.
const LOG_TAIL_LINES: usize = 20;

/// Runs the demo; returns the exit code.
pub fn run(args: DemoArgs) -> anyhow::Result<i32> {
    let path = topology_path(args.topology.clone())?;
    let topology = super::load(&path)?;
    if strait_topology::demo::directors(&topology).len() == 2 {
        return super::story::run(path, topology, args.logs);
    }
    let setup = prepare(args, path, topology)?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("`strait sim run demo` needs root (it creates network namespaces)");
    }
    guard::guarded(&setup.topology, &setup.path, || {
        scenario(&setup).map(|outcome| outcome.passed())
    })
}

/// Steps 1 to 5 (without the teardown).
fn scenario(s: &Setup) -> anyhow::Result<Outcome> {
    let topo = &s.topology;
    let director_ns = topo.prefix() + &s.roles.director.host;
    let client_ns = topo.prefix() + &s.roles.client;
    let vip = SocketAddr::V4(s.service.vip);
    say!(
        "strait demo: topology {} ({}): client {}, director {} ({}), backends {}; logs in {}",
        topo.name,
        s.path.display(),
        s.roles.client,
        s.roles.director.host,
        s.director.datapath.as_str(),
        s.node_ids.join(", "),
        s.logs.display()
    );

    let started = bring_up(s, &director_ns)?;
    let before = phase(s, "[2/5]", &client_ns, vip, 0)?;

    // 3. The director's table.
    let table = probe::stats(&director_ns, s.admin).context("cannot read the director's stats")?;
    say!(
        "[3/5] the director's table (strait ctl --admin {} stats):",
        s.admin
    );
    for line in director_view::render_stats(&table).lines() {
        say!("{}", indent(line));
    }

    let killed = kill_last_backend(s, &started, &director_ns)?;
    let after = phase(s, "[4/5]", &client_ns, vip, 1)?;

    // 5. Report.
    let outcome = Outcome {
        before,
        killed_node: killed.node,
        killed_backend: killed.backend,
        marked_down_after: killed.marked_down_after,
        down_bound: killed.bound,
        after,
    };
    say!(
        "[5/5] {}",
        outcome.report().trim_end().replace('\n', "\n      ")
    );
    Ok(outcome)
}

/// Step 1: build, start, wait until the nodes answer and the director has them all up.
fn bring_up(s: &Setup, director_ns: &str) -> anyhow::Result<Vec<Started>> {
    let topo = &s.topology;
    let stale = netns::down(&topo.prefix()).context("cannot remove leftovers")?;
    if !stale.is_empty() {
        say!(
            "[1/5] removed {} namespaces left by an earlier run",
            stale.len()
        );
    }
    netns::up(topo).context("cannot build the topology")?;
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let started =
        supervisor::start(topo, &s.logs, &exe).context("cannot start the topology's commands")?;
    say!(
        "[1/5] topology up: {} hosts, {} processes started",
        topo.hosts.len(),
        started.len()
    );
    guard::check()?;
    let start = Instant::now();
    let direct: Vec<SocketAddr> = s
        .service
        .backends
        .iter()
        .map(|b| SocketAddr::from((b.ip, b.port)))
        .collect();
    if let Err(why) = probe::wait_answering(director_ns, direct, start, UP_WAIT)? {
        bail!(
            "not every backend answered within {}s (last: {why}); logs in {}",
            UP_WAIT.as_secs(),
            s.logs.display()
        );
    }
    let total = s.service.backends.len();
    let director = started
        .iter()
        .find(|p| p.host == s.roles.director.host)
        .ok_or_else(|| anyhow!("the director was not started"))?;
    let director_pid = director.pid;
    let waited = probe::wait_for(
        director_ns,
        s.admin,
        start,
        UP_WAIT,
        move |v| up_count(v) == (total, total),
        move || exited(director_pid),
    )?;
    let Some(took) = waited.took else {
        let log = std::fs::read_to_string(&director.log).unwrap_or_default();
        let why = if waited.gave_up {
            "the director exited".to_owned()
        } else {
            let seen = match (&waited.last, &waited.last_error) {
                (Some(v), _) => {
                    let (up, n) = up_count(v);
                    format!("{up} of {n} backends up")
                }
                (None, Some(e)) => format!("admin at {}: {e}", s.admin),
                (None, None) => "no answer".to_owned(),
            };
            format!(
                "the director did not report all {total} backends up within {}s ({seen})",
                UP_WAIT.as_secs()
            )
        };
        bail!(
            "{why}; last lines of {}:\n{}",
            director.log.display(),
            tail(&log, LOG_TAIL_LINES)
        );
    };
    say!(
        "[1/5] the nodes answer, and director {} reports {total}/{total} backends up, after {}",
        s.director.id,
        seconds(took)
    );
    Ok(started)
}

/// What step 4 did.
struct Killed {
    /// Node id of the killed backend.
    node: String,
    /// The backend as the director names it (`ip:port`).
    backend: String,
    marked_down_after: Duration,
    /// `fall × interval + timeout`.
    bound: Duration,
}

/// Step 4: SIGKILL the last backend's node and time how long the director takes to see it.
fn kill_last_backend(s: &Setup, started: &[Started], director_ns: &str) -> anyhow::Result<Killed> {
    let victim = s
        .roles
        .backends
        .last()
        .ok_or_else(|| anyhow!("no backend"))?;
    let killed_node = s.node_ids.last().cloned().unwrap_or_default();
    let log_name = format!("{}-{}.log", victim.host, victim.command);
    let process = started
        .iter()
        .find(|p| p.host == victim.host && p.log.ends_with(&log_name))
        .ok_or_else(|| anyhow!("the node of host {} was not started", victim.host))?;
    let backend = s
        .service
        .backends
        .iter()
        .find(|b| victim.addrs.contains(&b.ip))
        .ok_or_else(|| {
            anyhow!(
                "host {} has none of the director's backend addresses",
                victim.host
            )
        })?;
    let backend_ip = backend.ip.to_string();
    let killed_backend = format!("{}:{}", backend.ip, backend.port);
    guard::check()?;
    kill_node(process.pid)?;
    let killed_at = Instant::now();
    let bound = down_bound(&s.service);
    let waited = probe::wait_for(
        director_ns,
        s.admin,
        killed_at,
        down_wait(bound),
        move |v| backend_up(v, &backend_ip) == Some(false),
        || false,
    )?;
    let marked_down_after = waited.took.ok_or_else(|| {
        anyhow!(
            "the director did not mark {killed_backend} down within {}",
            seconds(down_wait(bound))
        )
    })?;
    say!(
        "[4/5] killed `strait node` on {} (pid {}, SIGKILL): the director marked {killed_backend} \
         down after {} (health promises at most {})",
        victim.host,
        process.pid,
        seconds(marked_down_after),
        seconds(bound)
    );
    Ok(Killed {
        node: killed_node,
        backend: killed_backend,
        marked_down_after,
        bound,
    })
}

/// Traffic phase `index` (0, 1), printed. Each phase has its own client ports.
fn phase(
    s: &Setup,
    step: &str,
    client_ns: &str,
    vip: SocketAddr,
    index: u16,
) -> anyhow::Result<Tally> {
    let (tally, took) = probe::drive(client_ns, vip, client_ports(index, s.requests))?;
    say!(
        "{step} {} GETs from {} to {vip} in {}: {} answered, {} failed",
        s.requests,
        s.roles.client,
        seconds(took),
        tally.answered_total(),
        tally.failed_total()
    );
    say!("      per backend: {}", tally.spread());
    for e in tally.errors() {
        say!("      failed: {e}");
    }
    Ok(tally)
}

/// Client ports of traffic phase `index`: [`FIRST_CLIENT_PORT`] on, `requests` per phase.
fn client_ports(index: u16, requests: u16) -> std::ops::Range<u16> {
    let start = FIRST_CLIENT_PORT + index * requests;
    start..start + requests
}

/// `line` indented under a step's first line (an empty line stays empty).
fn indent(line: &str) -> String {
    if line.is_empty() {
        String::new()
    } else {
        format!("      {line}")
    }
}

/// `fall × interval + timeout`: when the health checks must have seen a dead backend.
fn down_bound(service: &ServiceConfig) -> Duration {
    service.health.interval * service.health.fall + service.health.timeout
}

/// How long the demo waits for the mark-down: thrice the promise, at least 5 s.
fn down_wait(bound: Duration) -> Duration {
    (bound * 3).max(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_use_disjoint_client_ports_below_the_ephemeral_range() {
        assert_eq!(client_ports(0, 600), 10_000..10_600);
        assert_eq!(client_ports(1, 600), 10_600..11_200);
        assert!(client_ports(1, MAX_REQUESTS).end <= 32_768);
    }

    #[test]
    fn mark_down_bound_and_wait_follow_the_health_settings() {
        let mut service = ServiceConfig {
            vip: "10.0.0.100:80".parse().expect("vip"),
            proto: strait_lb::config::Proto::Tcp,
            mode: strait_lb::packet::service::Mode::Dr,
            scheduler: strait_lb::sched::Scheduler::Maglev,
            backends: Vec::new(),
            cluster: false,
            health: Default::default(),
        };
        service.health.interval = Duration::from_millis(500);
        service.health.timeout = Duration::from_millis(300);
        service.health.fall = 2;
        assert_eq!(down_bound(&service), Duration::from_millis(1300));
        assert_eq!(
            down_wait(Duration::from_millis(1300)),
            Duration::from_secs(5)
        );
        assert_eq!(down_wait(Duration::from_secs(3)), Duration::from_secs(9));
    }
}
