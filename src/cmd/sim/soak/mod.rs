//! `strait sim run soak`: load through the director's VIP into the cache cluster for
//! `--duration`, while cache nodes and origins are killed (SIGKILL) and started again at
//! random (seeded: `--seed` replays the same faults and the same requests); every answer is
//! checked against what the origin sent (`strait_topology::soak`).
//!
//! Contract (short lines on stdout as it happens; the processes log under `--logs`, default
//! `/tmp/strait-sim/<topology name>`):
//! 1. leftovers removed, the topology built and its commands started; within [`UP_WAIT`]
//!    every node and origin answers a GET from the director's host and the director reports
//!    every backend up;
//! 2. `--clients` loops GET the request mix through the VIP until the duration is over
//!    (`load`); meanwhile the fault plan (`soak::schedule::plan`) kills one node or origin
//!    host at a time and starts it again; every process's RSS is read every [`SAMPLE`];
//! 3. the logs are searched for panics, and the report printed (`soak::report`);
//! 4. the teardown — always (success, error, Ctrl-C, panic).
//!
//! Exit 0 only when the report has no failure: no wrong or truncated body, no unexpected
//! status, no panic, no process exited unless killed, no RSS past `--max-rss`.

mod hosts;
mod load;
mod roles;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use strait_topology::demo_report::up_count;
use strait_topology::netns;
use strait_topology::soak::report::{Faults, Report};
use strait_topology::soak::rng::Rng;
use strait_topology::soak::schedule::{self, Downtime, DEFAULT_PACING};
use strait_topology::spec::Topology;
use strait_topology::supervisor;

use super::{guard, probe};
use hosts::Hosts;
use load::{locked, Shared};
use roles::{roles, Roles};

/// The topology `sim run soak` uses without `--topology` (from the repository root).
pub const DEFAULT_TOPOLOGY: &str = "topology/examples/topologies/soak.toml";
/// Bound on bringing the topology up.
pub const UP_WAIT: Duration = Duration::from_secs(30);
/// How often the processes' RSS is read.
const SAMPLE: Duration = Duration::from_secs(1);
/// How often a progress line is printed.
const PROGRESS: Duration = Duration::from_secs(30);

/// What `sim run soak` was asked for.
pub struct SoakArgs {
    pub topology: Option<PathBuf>,
    pub logs: Option<PathBuf>,
    pub duration: Duration,
    /// `None`: one is drawn (and printed).
    pub seed: Option<u64>,
    pub clients: u16,
    /// Largest RSS allowed per process, bytes.
    pub max_rss: u64,
}

/// Runs the soak; returns the exit code.
pub fn run(args: SoakArgs) -> anyhow::Result<i32> {
    let path = args
        .topology
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_TOPOLOGY));
    if !path.is_file() {
        bail!(
            "{} not found: run from the repository root or pass --topology FILE",
            path.display()
        );
    }
    let topology = super::load(&path)?;
    let roles = roles(&topology).with_context(|| format!("{}: cannot soak", path.display()))?;
    let director = strait_lb::config::load(&roles.director_config)
        .map_err(|e| anyhow!("director config {}: {e}", roles.director_config.display()))?;
    let service = director
        .services
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("the director config has no [[service]]"))?;
    let mut admin = director.admin;
    if admin.ip().is_unspecified() {
        admin.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("`strait sim run soak` needs root (it creates network namespaces)");
    }
    let seed = args.seed.unwrap_or_else(drawn_seed);
    let logs = args
        .logs
        .clone()
        .unwrap_or_else(|| PathBuf::from("/tmp/strait-sim").join(&topology.name));
    let backends: Vec<SocketAddr> = service
        .backends
        .iter()
        .map(|b| SocketAddr::from((b.ip, b.port)))
        .collect();
    say!(
        "strait soak: topology {} ({}), seed {seed}, {} s, {} clients to {}; kills and restarts \
         {}; logs in {}",
        topology.name,
        path.display(),
        args.duration.as_secs(),
        args.clients,
        service.vip,
        roles
            .targets
            .iter()
            .map(|(h, w)| format!("{h} ({w})"))
            .collect::<Vec<_>>()
            .join(", "),
        logs.display()
    );
    let soak = Soak {
        topology: &topology,
        roles: &roles,
        vip: SocketAddr::V4(service.vip),
        backends,
        admin,
        logs,
        seed,
        args: &args,
    };
    guard::guarded(&topology, &path, || soak.scenario())
}

/// A seed from the clock and the pid, when none is given.
fn drawn_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    Rng::new(nanos ^ (u64::from(std::process::id()) << 32)).next_u64() >> 16
}

struct Soak<'a> {
    topology: &'a Topology,
    roles: &'a Roles,
    vip: SocketAddr,
    backends: Vec<SocketAddr>,
    admin: SocketAddr,
    logs: PathBuf,
    seed: u64,
    args: &'a SoakArgs,
}

impl Soak<'_> {
    fn ns(&self, host: &str) -> String {
        self.topology.prefix() + host
    }

    fn scenario(&self) -> anyhow::Result<bool> {
        let mut hosts = self.bring_up()?;
        let duration = self.args.duration;
        let plan = schedule::plan(
            self.seed,
            duration,
            self.roles.targets.len(),
            &DEFAULT_PACING,
        );
        say!(
            "[2/4] load: {} clients through {} for {} s; {} faults planned (one host down at a \
             time, {}-{} s each)",
            self.args.clients,
            self.vip,
            duration.as_secs(),
            plan.len(),
            DEFAULT_PACING.down.0.as_secs(),
            DEFAULT_PACING.down.1.as_secs()
        );
        let shared = Arc::new(Shared {
            t0: Instant::now(),
            downtime: std::sync::Mutex::new(Downtime::default()),
            tally: std::sync::Mutex::new(Default::default()),
        });
        let until = shared.t0 + duration;
        let client_ns = self.ns(&self.roles.client);
        let (vip, clients, seed, s) = (self.vip, self.args.clients, self.seed, shared.clone());
        let loader = std::thread::Builder::new()
            .name("soak-load".into())
            .spawn(move || load::run(&client_ns, vip, clients, seed, until, s))
            .context("cannot start the load")?;

        let mut faults: BTreeMap<String, Faults> = self
            .roles
            .targets
            .iter()
            .map(|(h, w)| {
                let f = Faults {
                    host: h.clone(),
                    role: w,
                    kills: 0,
                    restarts: 0,
                };
                (h.clone(), f)
            })
            .collect();
        let mut clock = Clock::new(&shared);
        for fault in &plan {
            let (name, role) = &self.roles.targets[fault.target];
            let host = self
                .topology
                .host(name)
                .ok_or_else(|| anyhow!("host {name} vanished"))?;
            if !clock.wait(shared.t0 + fault.at, &mut hosts, &loader)? {
                break;
            }
            locked(&shared.downtime).down(shared.t0.elapsed());
            hosts.kill(self.topology, host)?;
            let entry = faults
                .get_mut(name)
                .ok_or_else(|| anyhow!("no tally for {name}"))?;
            entry.kills += 1;
            say!(
                "      {:>7.2} s: killed {name} ({role}); back in {:.1} s",
                shared.t0.elapsed().as_secs_f64(),
                fault.down_for.as_secs_f64()
            );
            let on_time = clock.wait(shared.t0 + fault.back_at(), &mut hosts, &loader)?;
            hosts.restart(self.topology, host)?;
            locked(&shared.downtime).up(shared.t0.elapsed());
            entry.restarts += 1;
            if !on_time {
                break;
            }
        }
        clock.wait(until, &mut hosts, &loader)?;
        loader
            .join()
            .map_err(|_| anyhow!("the load thread panicked"))?
            .context("the load stopped")?;
        hosts.sample();

        say!("[3/4] {} s done; reading the logs", duration.as_secs());
        let (logs, panics) = hosts::panics(&self.logs);
        let report = Report {
            seed: self.seed,
            duration,
            tally: locked(&shared.tally).clone(),
            faults: faults.into_values().collect(),
            max_rss: hosts.max_rss.clone().into_iter().collect(),
            rss_bound: self.args.max_rss,
            logs,
            panics,
            exits: hosts.exits.clone(),
        };
        say!(
            "[4/4] {}",
            report.render().trim_end().replace("\n  ", "\n      ")
        );
        Ok(report.passed())
    }

    /// Step 1.
    fn bring_up(&self) -> anyhow::Result<Hosts> {
        let topo = self.topology;
        let stale = netns::down(&topo.prefix()).context("cannot remove leftovers")?;
        if !stale.is_empty() {
            say!(
                "[1/4] removed {} namespaces left by an earlier run",
                stale.len()
            );
        }
        netns::up(topo).context("cannot build the topology")?;
        let exe = std::env::current_exe().context("cannot find this binary")?;
        let started = supervisor::start(topo, &self.logs, &exe)
            .context("cannot start the topology's commands")?;
        let hosts = Hosts::new(&started, exe, self.logs.clone());
        say!(
            "[1/4] topology up: {} hosts, {} processes started",
            topo.hosts.len(),
            started.len()
        );
        let start = Instant::now();
        let director_ns = self.ns(&self.roles.director);
        let mut direct = self.backends.clone();
        direct.extend(&self.roles.origins);
        if let Err(why) = probe::wait_answering(&director_ns, direct, start, UP_WAIT)? {
            bail!(
                "not every node and origin answered within {} s (last: {why})",
                UP_WAIT.as_secs()
            );
        }
        let total = self.backends.len();
        let waited = probe::wait_for(
            &director_ns,
            self.admin,
            start,
            UP_WAIT,
            move |v| up_count(v) == (total, total),
            || false,
        )?;
        let took = waited.took.ok_or_else(|| {
            anyhow!(
                "the director did not report its {total} backends up within {} s",
                UP_WAIT.as_secs()
            )
        })?;
        say!(
            "[1/4] after {:.2} s: nodes and origins answer, the director has {total}/{total} \
             backends up",
            took.as_secs_f64()
        );
        Ok(hosts)
    }
}

/// Waits with the RSS samples and progress lines going.
struct Clock<'a> {
    shared: &'a Shared,
    sampled: Instant,
    told: Instant,
}

impl<'a> Clock<'a> {
    fn new(shared: &'a Shared) -> Clock<'a> {
        Clock {
            shared,
            sampled: shared.t0,
            told: shared.t0,
        }
    }

    /// Until `deadline`; `false` when the load stopped first.
    fn wait(
        &mut self,
        deadline: Instant,
        hosts: &mut Hosts,
        loader: &std::thread::JoinHandle<anyhow::Result<()>>,
    ) -> anyhow::Result<bool> {
        loop {
            guard::check()?;
            let now = Instant::now();
            if now.duration_since(self.sampled) >= SAMPLE {
                hosts.sample();
                self.sampled = now;
            }
            if now.duration_since(self.told) >= PROGRESS {
                say!(
                    "      {:>7.2} s: {}",
                    self.shared.t0.elapsed().as_secs_f64(),
                    locked(&self.shared.tally).summary()
                );
                self.told = now;
            }
            if loader.is_finished() {
                return Ok(false);
            }
            if now >= deadline {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
