//! `strait sim run demo`: the operator's first look at strait, in network namespaces (root).
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
//!    connection; the answers are counted per node (`Via`);
//! 3. the director's table, rendered as `strait ctl stats` renders it;
//! 4. the last backend host's `strait node` gets SIGKILL; the time until the director marks it
//!    down is measured (bounded by [`down_wait`]); the same traffic again;
//! 5. a report paragraph, then the teardown.
//!
//! The topology is torn down on every path (success, error, Ctrl-C, panic). Exit 0 when every
//! request of both phases was answered, 1 otherwise or on an error, 130 when interrupted.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use strait_lb::config::{CheckKind, DirectorConfig, Proto, ServiceConfig};
use strait_topology::demo::{self, Roles, DEFAULT_TOPOLOGY};
use strait_topology::demo_report::{seconds, tail, Outcome, Tally};
use strait_topology::spec::Topology;
use strait_topology::{netns, plan, supervisor};

use super::guard::{self, Teardown};
use super::probe;
use crate::cmd::ctl::director_view;

/// Bound on the wait for the director to report every backend up.
pub const UP_WAIT: Duration = Duration::from_secs(20);
/// Lines of the director's log shown when it never gets there.
const LOG_TAIL_LINES: usize = 20;

/// What `sim run demo` was asked for.
pub struct DemoArgs {
    /// The topology file (`None`: [`DEFAULT_TOPOLOGY`] under the current directory).
    pub topology: Option<PathBuf>,
    /// Log directory (`None`: `/tmp/strait-sim/<name>`).
    pub logs: Option<PathBuf>,
    /// GETs per traffic phase.
    pub requests: u32,
}

/// Everything read before anything is built.
struct Setup {
    path: PathBuf,
    topology: Topology,
    roles: Roles,
    director: DirectorConfig,
    service: ServiceConfig,
    admin: SocketAddr,
    node_ids: Vec<String>,
    logs: PathBuf,
    requests: u32,
}

/// Runs the demo; returns the exit code.
pub fn run(args: DemoArgs) -> anyhow::Result<i32> {
    let setup = prepare(args)?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("`strait sim run demo` needs root (it creates network namespaces)");
    }
    let missing = netns::missing_tools(&plan::up(&setup.topology));
    if !missing.is_empty() {
        bail!(
            "missing programs: {} (iproute2, ethtool)",
            missing.join(", ")
        );
    }
    let prefix = setup.topology.prefix();
    guard::watch_signals(prefix.clone())?;
    let teardown = Teardown::new(prefix);
    let result = scenario(&setup);
    let removed = teardown.finish();
    match &removed {
        Ok(n) => println!(
            "topology {} torn down ({n} namespaces removed)",
            setup.topology.name
        ),
        Err(e) => eprintln!(
            "cannot tear the topology down: {e:#}; run `strait sim down --topology {}`",
            setup.path.display()
        ),
    }
    match result {
        Ok(outcome) if outcome.passed() => Ok(0),
        Ok(_) => Ok(1),
        // An interrupt also kills short-lived helpers (`ip`) in our process group: whatever
        // failed then, the cause was the interrupt.
        Err(e) if guard::is_interrupted(&e) || guard::check().is_err() => {
            Ok(guard::INTERRUPTED_EXIT)
        }
        Err(e) => Err(e),
    }
}

/// Reads the topology, finds the roles, reads the director's and the nodes' configs.
fn prepare(args: DemoArgs) -> anyhow::Result<Setup> {
    let path = match args.topology {
        Some(p) => p,
        None => {
            let p = PathBuf::from(DEFAULT_TOPOLOGY);
            if !p.is_file() {
                bail!(
                    "{DEFAULT_TOPOLOGY} not found in {}: run from the repository root or pass \
                     --topology FILE",
                    std::env::current_dir().map_or("?".into(), |d| d.display().to_string())
                );
            }
            p
        }
    };
    let topology = super::load(&path)?;
    let roles = demo::roles(&topology)
        .with_context(|| format!("{}: cannot run the demo", path.display()))?;
    let named_in = |host: &str| {
        format!("named in host {host}'s run line; paths are relative to the current directory")
    };
    let director = strait_lb::config::load(&roles.director.config).map_err(|e| {
        anyhow!(
            "director config {} ({}): {e}",
            roles.director.config.display(),
            named_in(&roles.director.host)
        )
    })?;
    let service = director
        .services
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("director config has no [[service]]"))?;
    if service.proto != Proto::Tcp {
        bail!("the demo drives HTTP: the director's first service must be tcp");
    }
    if service.health.kind == CheckKind::None {
        bail!("the director's first service has no health check: a killed backend would never be marked down");
    }
    let mut admin = director.admin;
    if admin.ip().is_unspecified() {
        admin.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let mut node_ids = Vec::with_capacity(roles.backends.len());
    for b in &roles.backends {
        let node = strait_cache::config::load(&b.config).map_err(|e| {
            anyhow!(
                "node config {} ({}): {e}",
                b.config.display(),
                named_in(&b.host)
            )
        })?;
        node_ids.push(node.node.id.get_ref().clone());
    }
    let logs = args
        .logs
        .unwrap_or_else(|| PathBuf::from("/tmp/strait-sim").join(&topology.name));
    Ok(Setup {
        path,
        topology,
        roles,
        director,
        service,
        admin,
        node_ids,
        logs,
        requests: args.requests,
    })
}

/// Steps 1 to 5 (without the teardown).
fn scenario(s: &Setup) -> anyhow::Result<Outcome> {
    let topo = &s.topology;
    let director_ns = topo.prefix() + &s.roles.director.host;
    let client_ns = topo.prefix() + &s.roles.client;
    let vip = SocketAddr::V4(s.service.vip);
    println!(
        "strait demo: topology {} ({}): client {}, director {} ({}), backends {}; logs in {}",
        topo.name,
        s.path.display(),
        s.roles.client,
        s.roles.director.host,
        s.director.datapath.as_str(),
        s.node_ids.join(", "),
        s.logs.display()
    );

    // 1. Build and start; wait for every backend up.
    let stale = netns::down(&topo.prefix()).context("cannot remove leftovers")?;
    if !stale.is_empty() {
        println!(
            "[1/5] removed {} namespaces left by an earlier run",
            stale.len()
        );
    }
    netns::up(topo).context("cannot build the topology")?;
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let started =
        supervisor::start(topo, &s.logs, &exe).context("cannot start the topology's commands")?;
    println!(
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
    if let Err(why) = probe::wait_answering(&director_ns, direct, start, UP_WAIT)? {
        bail!(
            "not every backend answered within {}s (last: {why}); logs in {}",
            UP_WAIT.as_secs(),
            s.logs.display()
        );
    }
    let total = s.service.backends.len();
    let waited = probe::wait_for(&director_ns, s.admin, start, UP_WAIT, move |v| {
        up_count(v) == (total, total)
    })?;
    let Some(took) = waited.took else {
        let log = started
            .iter()
            .find(|p| p.host == s.roles.director.host)
            .map(|p| {
                (
                    p.log.clone(),
                    std::fs::read_to_string(&p.log).unwrap_or_default(),
                )
            });
        let seen = match (&waited.last, &waited.last_error) {
            (Some(v), _) => {
                let (up, n) = up_count(v);
                format!("{up} of {n} backends up")
            }
            (None, Some(e)) => format!("admin at {}: {e}", s.admin),
            (None, None) => "no answer".to_owned(),
        };
        let (file, text) = log.unwrap_or_default();
        bail!(
            "the director did not report all {total} backends up within {}s ({seen}); last lines of {}:\n{}",
            UP_WAIT.as_secs(),
            file.display(),
            tail(&text, LOG_TAIL_LINES)
        );
    };
    println!(
        "[1/5] the nodes answer, and director {} reports {total}/{total} backends up, after {}",
        s.director.id,
        seconds(took)
    );

    // 2. Traffic.
    let before = phase(s, "[2/5]", &client_ns, vip)?;

    // 3. The director's table.
    let table = probe::stats(&director_ns, s.admin).context("cannot read the director's stats")?;
    println!(
        "[3/5] the director's table (strait ctl --admin {} stats):",
        s.admin
    );
    for line in director_view::render_stats(&table).lines() {
        println!("{}", indent(line));
    }

    // 4. Kill the last backend's node; time until it is down; traffic again.
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
        &director_ns,
        s.admin,
        killed_at,
        down_wait(bound),
        move |v| backend_up(v, &backend_ip) == Some(false),
    )?;
    let marked_down_after = waited.took.ok_or_else(|| {
        anyhow!(
            "the director did not mark {killed_backend} down within {}",
            seconds(down_wait(bound))
        )
    })?;
    println!(
        "[4/5] killed `strait node` on {} (pid {}, SIGKILL): the director marked {killed_backend} \
         down after {} (health promises at most {})",
        victim.host,
        process.pid,
        seconds(marked_down_after),
        seconds(bound)
    );
    let after = phase(s, "[4/5]", &client_ns, vip)?;

    // 5. Report.
    let outcome = Outcome {
        before,
        killed_node,
        killed_backend,
        marked_down_after,
        down_bound: bound,
        after,
    };
    println!(
        "[5/5] {}",
        outcome.report().trim_end().replace('\n', "\n      ")
    );
    Ok(outcome)
}

/// One traffic phase, printed.
fn phase(s: &Setup, step: &str, client_ns: &str, vip: SocketAddr) -> anyhow::Result<Tally> {
    let (tally, took) = probe::drive(client_ns, vip, s.requests)?;
    println!(
        "{step} {} GETs from {} to {vip} in {}: {} answered, {} failed",
        s.requests,
        s.roles.client,
        seconds(took),
        tally.answered_total(),
        tally.failed_total()
    );
    println!("      per backend: {}", tally.spread());
    for e in tally.errors() {
        println!("      failed: {e}");
    }
    Ok(tally)
}

/// `line` indented under a step's first line (an empty line stays empty).
fn indent(line: &str) -> String {
    if line.is_empty() {
        String::new()
    } else {
        format!("      {line}")
    }
}

/// `(up, total)` backends of the first service in a director's stats; a backend counts as up
/// when it is `up` and has been checked (`last_check` set).
fn up_count(stats: &Value) -> (usize, usize) {
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
fn backend_up(stats: &Value, ip: &str) -> Option<bool> {
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

/// `fall × interval + timeout`: when the health checks must have seen a dead backend.
fn down_bound(service: &ServiceConfig) -> Duration {
    service.health.interval * service.health.fall + service.health.timeout
}

/// How long the demo waits for the mark-down: thrice the promise, at least 5 s.
fn down_wait(bound: Duration) -> Duration {
    (bound * 3).max(Duration::from_secs(5))
}

/// SIGKILL to `pid`, after checking it is a `strait node` (a pid the supervisor started).
fn kill_node(pid: u32) -> anyhow::Result<()> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .with_context(|| format!("process {pid} is gone"))?;
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let is_strait = args
        .first()
        .is_some_and(|a| Path::new(&*String::from_utf8_lossy(a)).ends_with("strait"));
    if !is_strait || args.get(1) != Some(&&b"node"[..]) {
        bail!("process {pid} is not a `strait node`");
    }
    let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
    // SAFETY: kill has no memory preconditions; the pid is our own child, checked above.
    if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot kill the node");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn mark_down_bound_and_wait_follow_the_health_settings() {
        let mut service = ServiceConfig {
            vip: "10.0.0.100:80".parse().expect("vip"),
            proto: Proto::Tcp,
            mode: strait_lb::packet::service::Mode::Dr,
            scheduler: strait_lb::sched::Scheduler::Maglev,
            backends: Vec::new(),
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
