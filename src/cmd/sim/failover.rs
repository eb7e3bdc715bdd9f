//! `strait sim run failover`: two directors sharing the VIP, the master killed under traffic,
//! and what survived (root, network namespaces).
//!
//! Contract (each step prints short lines; processes log under `--logs`):
//! 1. the topology (default `topology/examples/topologies/ha.toml`) must have exactly two
//!    director hosts whose configs both have `[ha]` with the same `vrid`, backends and a client
//!    (`strait_topology::failover::pair_roles`). With `--vrrp keepalived` each director runs
//!    without `[ha]` (a copy of its config in the log directory) beside keepalived configured
//!    from that `[ha]` (vrid, priority, advert interval, preemption, peers, the VIPs), so the
//!    two VRRP implementations are measured in the same topology with the same settings;
//! 2. it is built and started; within [`UP_WAIT`] every backend answers, both directors report
//!    every backend up, and one director is master (strait: its `ha.state`; keepalived: it
//!    holds the VIP) and the other backup, unchanged for [`SETTLE`];
//! 3. traffic from the client: `--long` connections each streaming a slow response (a 4 KiB
//!    chunk every 100 ms) for the whole run, and a new short connection every [`PROBE_EVERY`]
//!    (connect bound [`PROBE_CONNECT`], exchange bound [`PROBE_BOUND`]); each backend records
//!    which director forwarded each frame for the VIP (`sniff`);
//! 4. after [`WARMUP`] the master is killed the `--kill` way: `sigkill` or `sigterm` to every
//!    process in its namespace, or `link` (its client interface set down; its processes run
//!    on); traffic goes on for `--after`;
//! 5. the report: the takeover on the wire (last frame through the old master → first through
//!    the new one), its floor (RFC 5798: `Master_Down_Interval`, or `Skew_Time` after a
//!    resignation), probes failed and the client's longest gap, the long connections that
//!    delivered their whole response, the new master's adverts and drops; then the teardown
//!    (on every path, as the demo's).
//!
//! Exit 0 when the new master forwarded, every long connection survived and the probes of
//! the last second all succeeded; 1 otherwise.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use strait_lb::config::{DirectorConfig, HaConfig};
use strait_lb::vrrp::machine::{master_down_interval, skew_time};
use strait_topology::failover::{self, analyse, Frame, PairRoles, Probe, Recorded};
use strait_topology::spec::{RunCommand, Topology};
use strait_topology::{netns, plan, supervisor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::guard::{self, Teardown};
use super::probe::{self, in_netns};
use super::sniff;

/// `println!` that ignores a closed stdout.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Bound on bringing the pair up.
pub const UP_WAIT: Duration = Duration::from_secs(30);
/// How long the pair must keep the same master before the traffic starts (at least; four
/// advert intervals when longer).
pub const SETTLE: Duration = Duration::from_secs(1);
/// Traffic before the kill.
pub const WARMUP: Duration = Duration::from_secs(1);
/// Time between two short probes.
pub const PROBE_EVERY: Duration = Duration::from_millis(5);
/// A probe whose connection is not up within this failed (no waiting for SYN retries).
pub const PROBE_CONNECT: Duration = Duration::from_millis(100);
/// Bound on one probe's whole exchange.
pub const PROBE_BOUND: Duration = Duration::from_secs(1);
/// A long connection's response: one 4 KiB chunk per this.
const CHUNK_EVERY: Duration = Duration::from_millis(100);

/// How the master dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// SIGKILL to every process of its host.
    Sigkill,
    /// SIGTERM to every process of its host (a graceful stop).
    Sigterm,
    /// Its client interface goes down; its processes run on.
    Link,
}

/// Which VRRP moves the VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vrrp {
    /// strait's own `[ha]`.
    Strait,
    /// keepalived, with strait directors without `[ha]`.
    Keepalived,
}

/// What `sim run failover` was asked for.
pub struct FailoverArgs {
    pub topology: Option<PathBuf>,
    pub logs: Option<PathBuf>,
    pub kill: Kill,
    pub vrrp: Vrrp,
    /// Long-lived connections.
    pub long: u16,
    /// Traffic after the kill.
    pub after: Duration,
    /// Overrides both directors' `[ha] advert_interval`.
    pub advert_interval: Option<Duration>,
    /// Start without the first service's last backend and add it (both directors reload)
    /// halfway through the warm-up, after the long connections opened.
    pub add_backend: bool,
}

/// Everything read before anything is built.
struct Setup {
    path: PathBuf,
    topology: Topology,
    roles: PairRoles,
    configs: [DirectorConfig; 2],
    ha: [HaConfig; 2],
    vip: SocketAddrV4,
    logs: PathBuf,
    /// `--vrrp keepalived`: each director host's keepalived command, started once both
    /// directors run (attaching XDP to a veth bounces its link, which keepalived would take
    /// for a failure).
    keepalived: Option<[Vec<String>; 2]>,
}

/// Runs the scenario; returns the exit code.
pub fn run(args: FailoverArgs) -> anyhow::Result<i32> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("`strait sim run failover` needs root (it creates network namespaces)");
    }
    let s = prepare(&args)?;
    let missing = netns::missing_tools(&plan::up(&s.topology));
    if !missing.is_empty() {
        bail!("missing programs: {}", missing.join(", "));
    }
    let prefix = s.topology.prefix();
    guard::watch_signals(prefix.clone())?;
    let teardown = Teardown::new(prefix);
    let result = scenario(&s, &args);
    match teardown.finish() {
        Ok(n) => say!(
            "topology {} torn down ({n} namespaces removed)",
            s.topology.name
        ),
        Err(e) => eprintln!(
            "cannot tear the topology down: {e:#}; run `strait sim down --topology {}`",
            s.path.display()
        ),
    }
    match result {
        Ok(true) => Ok(0),
        Ok(false) => Ok(1),
        Err(e) if guard::is_interrupted(&e) || guard::check().is_err() => {
            Ok(guard::INTERRUPTED_EXIT)
        }
        Err(e) => Err(e),
    }
}

fn prepare(args: &FailoverArgs) -> anyhow::Result<Setup> {
    let path = args
        .topology
        .clone()
        .unwrap_or_else(|| PathBuf::from(failover::DEFAULT_TOPOLOGY));
    if !path.is_file() {
        bail!(
            "{} not found: run from the repository root or pass --topology FILE",
            path.display()
        );
    }
    let mut topology = super::load(&path)?;
    let roles = failover::pair_roles(&topology)
        .with_context(|| format!("{}: cannot run the failover scenario", path.display()))?;
    let logs = args
        .logs
        .clone()
        .unwrap_or_else(|| PathBuf::from("/tmp/strait-sim").join(&topology.name));
    std::fs::create_dir_all(&logs).context("log directory")?;
    let mut configs = Vec::new();
    let mut has = Vec::new();
    let mut keepalived = Vec::new();
    for role in &roles.directors {
        let (config, ha, argv) = director_copy(&mut topology, role, args, &logs)?;
        configs.push(config);
        has.push(ha);
        keepalived.push(argv);
    }
    let configs: [DirectorConfig; 2] = configs.try_into().map_err(|_| anyhow!("two directors"))?;
    let ha: [HaConfig; 2] = has.try_into().map_err(|_| anyhow!("two directors"))?;
    if ha[0].vrid != ha[1].vrid {
        bail!(
            "the two directors' [ha] vrid differ ({} and {})",
            ha[0].vrid,
            ha[1].vrid
        );
    }
    let vip = configs[0]
        .services
        .first()
        .map(|s| s.vip)
        .ok_or_else(|| anyhow!("the first director has no service"))?;
    let keepalived = match args.vrrp {
        Vrrp::Strait => None,
        Vrrp::Keepalived => Some(
            keepalived
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .try_into()
                .map_err(|_| anyhow!("two keepalived commands"))?,
        ),
    };
    Ok(Setup {
        path,
        topology,
        roles,
        configs,
        ha,
        vip,
        logs,
        keepalived,
    })
}

/// The config a director host runs in the scenario, written to the log directory: its own
/// with `--advert-interval` applied, or for `--vrrp keepalived` the same without `[ha]`
/// (with keepalived's configuration beside it and its command returned). Its host's run line
/// is pointed at the copy.
fn director_copy(
    topology: &mut Topology,
    role: &strait_topology::demo::Role,
    args: &FailoverArgs,
    logs: &Path,
) -> anyhow::Result<(DirectorConfig, HaConfig, Option<Vec<String>>)> {
    let named = || {
        format!(
            "director config {} (host {})",
            role.config.display(),
            role.host
        )
    };
    let text = std::fs::read_to_string(&role.config)
        .with_context(|| format!("cannot read {}", named()))?;
    let mut doc: toml::Table = text.parse().with_context(named)?;
    if let Some(interval) = args.advert_interval {
        let ha = doc
            .get_mut("ha")
            .and_then(toml::Value::as_table_mut)
            .ok_or_else(|| anyhow!("{}: no [ha]", named()))?;
        ha.insert(
            "advert_interval".into(),
            toml::Value::String(format!("{}ms", interval.as_millis())),
        );
    }
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let copy = logs.join(format!("{}.toml", role.host));
    std::fs::write(&copy, toml::to_string(&doc)?).context("director config copy")?;
    let config = strait_lb::config::load(&copy).map_err(|e| anyhow!("{}: {e}", named()))?;
    if args.add_backend && config.services.first().map_or(0, |s| s.backends.len()) < 2 {
        bail!(
            "{}: --add-backend needs two backends or more in the first service",
            named()
        );
    }
    let ha = config
        .ha
        .clone()
        .ok_or_else(|| anyhow!("{}: no [ha]", named()))?;
    let (run, keepalived) = match args.vrrp {
        Vrrp::Strait => (copy, None),
        Vrrp::Keepalived => {
            doc.remove("ha");
            let bare = logs.join(format!("{}-no-ha.toml", role.host));
            std::fs::write(&bare, toml::to_string(&doc)?).context("director config copy")?;
            let conf = logs.join(format!("{}-keepalived.conf", role.host));
            std::fs::write(&conf, keepalived_conf(&config, &ha)).context("keepalived.conf")?;
            let argv = ["keepalived", "-n", "-l", "-D", "-P", "-f"]
                .iter()
                .map(|s| (*s).to_owned())
                .chain([
                    path(&conf),
                    "-p".into(),
                    path(&logs.join(format!("{}-keepalived.pid", role.host))),
                    "-r".into(),
                    path(&logs.join(format!("{}-vrrp.pid", role.host))),
                ])
                .collect();
            (bare, Some(argv))
        }
    };
    if args.add_backend {
        // The run file starts without the last backend; `<run>.full` has it.
        let full = std::fs::read_to_string(&run).context("director config copy")?;
        std::fs::write(full_path(&run), &full).context("director config copy")?;
        let mut first: toml::Table = full.parse().context("director config copy")?;
        let backends = first
            .get_mut("service")
            .and_then(toml::Value::as_array_mut)
            .and_then(|s| s.first_mut())
            .and_then(|s| s.get_mut("backends"))
            .and_then(toml::Value::as_array_mut)
            .ok_or_else(|| anyhow!("{}: the first service lists no backends", named()))?;
        backends.pop();
        std::fs::write(&run, toml::to_string(&first)?).context("director config copy")?;
    }
    let host = topology
        .hosts
        .iter_mut()
        .find(|h| h.name == role.host)
        .ok_or_else(|| anyhow!("host {} vanished", role.host))?;
    let command = host
        .run
        .get_mut(role.command)
        .ok_or_else(|| anyhow!("host {}: no command {}", role.host, role.command))?;
    *command = RunCommand::Argv(vec![
        "strait".into(),
        "director".into(),
        "--config".into(),
        path(&run),
    ]);
    Ok((config, ha, keepalived))
}

/// Where `--add-backend` keeps a director's full config.
fn full_path(run: &Path) -> PathBuf {
    let mut p = run.as_os_str().to_owned();
    p.push(".full");
    PathBuf::from(p)
}

/// `--add-backend`: puts each director's full config in place and reloads it (SIGHUP).
fn add_backend(s: &Setup) -> anyhow::Result<()> {
    for role in &s.roles.directors {
        let ns = s.topology.prefix() + &role.host;
        for pid in pids(&ns)? {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<String> = cmdline
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args.get(1).map(String::as_str) != Some("director") {
                continue;
            }
            let run = args
                .iter()
                .skip_while(|a| *a != "--config")
                .nth(1)
                .ok_or_else(|| anyhow!("the director on {} has no --config", role.host))?;
            let run = PathBuf::from(run);
            std::fs::copy(full_path(&run), &run).context("full director config")?;
            // SAFETY: kill has no memory preconditions; the pid is a director this scenario
            // started in its own namespace.
            unsafe { libc::kill(pid, libc::SIGHUP) };
        }
    }
    Ok(())
}

/// The processes in namespace `netns`, newest first.
fn pids(netns: &str) -> anyhow::Result<Vec<libc::pid_t>> {
    let out = std::process::Command::new("ip")
        .args(["netns", "pids", netns])
        .output()
        .context("ip netns pids")?;
    let mut pids: Vec<libc::pid_t> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    pids.sort_unstable_by(|a, b| b.cmp(a));
    Ok(pids)
}

/// Starts keepalived on both director hosts (`--vrrp keepalived`), logging beside the
/// topology's processes.
fn start_keepalived(s: &Setup, argvs: &[Vec<String>; 2]) -> anyhow::Result<()> {
    for (role, argv) in s.roles.directors.iter().zip(argvs) {
        let (program, args) = argv.split_first().ok_or_else(|| anyhow!("empty command"))?;
        let log = std::fs::File::create(s.logs.join(format!("{}-keepalived.log", role.host)))
            .context("keepalived log")?;
        netns::exec(&(s.topology.prefix() + &role.host), program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().context("keepalived log")?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("cannot start keepalived")?;
    }
    Ok(())
}

/// keepalived's configuration for the same virtual router as `[ha]`.
pub fn keepalived_conf(config: &DirectorConfig, ha: &HaConfig) -> String {
    let interface = config.ha_interface().unwrap_or(&config.interface);
    let vips: String = config
        .vips()
        .iter()
        .map(|v| format!("    {v}/32\n"))
        .collect();
    let peers = if ha.peers.is_empty() {
        String::new()
    } else {
        let list: String = ha.peers.iter().map(|p| format!("    {p}\n")).collect();
        format!("  unicast_peer {{\n{list}  }}\n")
    };
    let preempt = if ha.preempt {
        format!("  preempt_delay {}\n", ha.preempt_delay.as_secs())
    } else {
        "  nopreempt\n".to_owned()
    };
    format!(
        "global_defs {{\n  router_id strait_sim\n  vrrp_version 3\n  enable_script_security\n}}\n\
         vrrp_instance strait {{\n  state BACKUP\n  interface {interface}\n  virtual_router_id {vrid}\n\
         \x20 priority {priority}\n  advert_int {interval}\n{preempt}{peers}  virtual_ipaddress {{\n{vips}  }}\n}}\n",
        vrid = ha.vrid,
        priority = ha.priority,
        interval = ha.advert_interval.as_secs_f64(),
    )
}

fn scenario(s: &Setup, args: &FailoverArgs) -> anyhow::Result<bool> {
    let topo = &s.topology;
    let ns = |host: &str| topo.prefix() + host;
    let [a, b] = &s.roles.directors;
    say!(
        "strait failover: topology {} ({}), directors {} (priority {}) and {} (priority {}), \
         VRRP by {}, kill: {}; logs in {}",
        topo.name,
        s.path.display(),
        a.host,
        s.ha[0].priority,
        b.host,
        s.ha[1].priority,
        match args.vrrp {
            Vrrp::Strait => "strait",
            Vrrp::Keepalived => "keepalived",
        },
        match args.kill {
            Kill::Sigkill => "SIGKILL",
            Kill::Sigterm => "SIGTERM",
            Kill::Link => "link cut",
        },
        s.logs.display()
    );
    netns::down(&topo.prefix()).context("cannot remove leftovers")?;
    netns::up(topo).context("cannot build the topology")?;
    let exe = std::env::current_exe().context("cannot find this binary")?;
    supervisor::start(topo, &s.logs, &exe).context("cannot start the topology's commands")?;
    let start = Instant::now();
    let backends: Vec<SocketAddr> = s.configs[0].services[0]
        .backends
        .iter()
        .map(|b| SocketAddr::from((b.ip, b.port)))
        .collect();
    if let Err(why) = probe::wait_answering(&ns(&s.roles.client), backends, start, UP_WAIT)? {
        bail!(
            "not every backend answered: {why}; logs in {}",
            s.logs.display()
        );
    }
    if let Some(argvs) = &s.keepalived {
        wait_directors(s, start)?;
        start_keepalived(s, argvs)?;
    }
    let master = wait_pair(s, args.vrrp, start)?;
    let (old, new) = (master, 1 - master);
    let (old_host, new_host) = (&s.roles.directors[old].host, &s.roles.directors[new].host);
    say!(
        "[1/3] up after {:.1} s: {old_host} is master, {new_host} backup",
        start.elapsed().as_secs_f64()
    );
    let macs = [
        mac(&ns(&a.host), &s.configs[0].interface)?,
        mac(&ns(&b.host), &s.configs[1].interface)?,
    ];

    // Traffic and watchers.
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let watchers: Vec<_> = s
        .roles
        .backends
        .iter()
        .map(|r| sniff::start(ns(&r.host), "eth0".into(), s.vip, t0, Arc::clone(&stop)))
        .collect();
    let run_for = WARMUP + args.after;
    let traffic = {
        let (client, vip, long) = (ns(&s.roles.client), s.vip, args.long);
        std::thread::spawn(move || in_netns(&client, move || traffic(vip, long, t0, run_for)))
    };
    if args.add_backend {
        std::thread::sleep(WARMUP / 2);
        add_backend(s)?;
        say!(
            "      {:.2} s: the last backend added to both directors (SIGHUP)",
            t0.elapsed().as_secs_f64()
        );
        std::thread::sleep(WARMUP / 2);
    } else {
        std::thread::sleep(WARMUP);
    }
    guard::check()?;
    let kill_at = t0.elapsed();
    kill(s, old, args.kill)?;
    say!(
        "[2/3] {} killed ({}) {:.2} s into the traffic; {} long connections, a probe every {} ms",
        old_host,
        match args.kill {
            Kill::Sigkill => "SIGKILL to every process on it",
            Kill::Sigterm => "SIGTERM to every process on it",
            Kill::Link => "its link set down",
        },
        kill_at.as_secs_f64(),
        args.long,
        PROBE_EVERY.as_millis()
    );
    let (probes, long_survived) = traffic
        .join()
        .map_err(|_| anyhow!("the traffic thread panicked"))??;
    stop.store(true, Ordering::Relaxed);
    let mut frames = Vec::new();
    for w in watchers {
        let seen = w.join().map_err(|_| anyhow!("a watcher panicked"))??;
        frames.extend(seen.frames.into_iter().map(|(at, src)| Frame {
            at,
            via: if src == macs[old] {
                Some(0)
            } else if src == macs[new] {
                Some(1)
            } else {
                None
            },
        }));
    }
    let recorded = Recorded {
        kill_at,
        probes,
        frames,
        long_total: usize::from(args.long),
        long_survived,
    };
    let t = analyse(&recorded);
    let timer = match args.kill {
        Kill::Sigterm => format!(
            "Skew_Time {} from the old master's resignation",
            failover::ms(skew_time(s.ha[new].priority, s.ha[old].advert_interval))
        ),
        Kill::Sigkill | Kill::Link => format!(
            "Master_Down_Interval {} from the old master's last advert (sent up to {} before \
             the kill)",
            failover::ms(master_down_interval(
                s.ha[new].priority,
                s.ha[old].advert_interval
            )),
            failover::ms(s.ha[old].advert_interval)
        ),
    };
    say!("[3/3] report");
    for line in failover::report(&t, &recorded, &timer).lines() {
        say!("      {line}");
    }
    // What the dead master's host and the client's neighbour table hold now.
    let neigh = netns::exec(&ns(&s.roles.client), "ip")
        .args(["neigh", "show", &s.vip.ip().to_string()])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let points_at = |mac: &[u8; 6]| neigh.contains(&strait_lb::iface::format_mac(*mac));
    say!(
        "      the client's neighbour entry for the VIP: {} ({}); {old_host} {} the VIP as an \
         interface address",
        if neigh.is_empty() { "none" } else { &neigh },
        if points_at(&macs[new]) {
            format!("{new_host}'s MAC")
        } else if points_at(&macs[old]) {
            format!("{old_host}'s MAC")
        } else {
            "neither director".to_owned()
        },
        if holds_vip(&ns(old_host), s.vip.ip()).unwrap_or(false) {
            "still holds"
        } else {
            "does not hold"
        }
    );
    if args.vrrp == Vrrp::Strait {
        if let Ok(v) = probe::stats(&ns(new_host), s.configs[new].admin) {
            let ha = &v["ha"];
            say!(
                "      {new_host}: {} since {} ({}); adverts sent {}, received {}, dropped {}",
                ha["state"].as_str().unwrap_or("?"),
                ha["since"].as_str().unwrap_or("?"),
                ha["reason"].as_str().unwrap_or("?"),
                ha["adverts_sent"],
                ha["adverts_received"],
                drops(ha)
            );
        }
    }
    let tail_ok = recorded
        .probes
        .iter()
        .filter(|p| p.at + Duration::from_secs(1) >= run_for)
        .all(|p| p.ok);
    // Without sync, adding a backend is expected to cost established connections: that run
    // reports them and does not fail on them.
    let long_ok = args.add_backend || long_survived == recorded.long_total;
    Ok(t.first_via_new.is_some() && long_ok && tail_ok)
}

fn drops(ha: &Value) -> u64 {
    ha["drops"]
        .as_object()
        .map_or(0, |d| d.values().filter_map(Value::as_u64).sum())
}

/// Waits until one director is master and the other backup, the same way for [`SETTLE`]
/// (both start as backup; the better one takes over after its down interval); returns the
/// master's index.
fn wait_pair(s: &Setup, vrrp: Vrrp, start: Instant) -> anyhow::Result<usize> {
    let ns = |i: usize| s.topology.prefix() + &s.roles.directors[i].host;
    let settle = SETTLE.max(s.ha[0].advert_interval.max(s.ha[1].advert_interval) * 4);
    let mut same: Option<(usize, Instant)> = None;
    loop {
        guard::check()?;
        let up = |i: usize| {
            probe::stats(&ns(i), s.configs[i].admin).ok().filter(|v| {
                let (up, n) = strait_topology::demo_report::up_count(v);
                n > 0 && up == n
            })
        };
        let (va, vb) = (up(0), up(1));
        if let (Some(va), Some(vb)) = (&va, &vb) {
            let state = |v: &Value| v["ha"]["state"].as_str().map(str::to_owned);
            let master = match vrrp {
                Vrrp::Strait => match (state(va).as_deref(), state(vb).as_deref()) {
                    (Some("master"), Some("backup")) => Some(0),
                    (Some("backup"), Some("master")) => Some(1),
                    _ => None,
                },
                Vrrp::Keepalived => {
                    let holds = |i: usize| holds_vip(&ns(i), s.vip.ip()).unwrap_or(false);
                    match (holds(0), holds(1)) {
                        (true, false) => Some(0),
                        (false, true) => Some(1),
                        _ => None,
                    }
                }
            };
            match (master, same) {
                (Some(m), Some((was, since))) if m == was => {
                    if since.elapsed() >= settle {
                        return Ok(m);
                    }
                }
                (Some(m), _) => same = Some((m, Instant::now())),
                (None, _) => same = None,
            }
        } else {
            same = None;
        }
        if start.elapsed() > UP_WAIT {
            bail!(
                "the pair did not settle (one master, one backup, every backend up) within {} s; \
                 logs in {}",
                UP_WAIT.as_secs(),
                s.logs.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until both directors report every backend up.
fn wait_directors(s: &Setup, start: Instant) -> anyhow::Result<()> {
    for (i, role) in s.roles.directors.iter().enumerate() {
        let waited = probe::wait_for(
            &(s.topology.prefix() + &role.host),
            s.configs[i].admin,
            start,
            UP_WAIT,
            |v| {
                let (up, n) = strait_topology::demo_report::up_count(v);
                n > 0 && up == n
            },
            || false,
        )?;
        if waited.took.is_none() {
            bail!(
                "the director on {} did not report every backend up",
                role.host
            );
        }
    }
    Ok(())
}

/// Whether `vip` is an address in namespace `netns` (keepalived's master holds it).
fn holds_vip(netns: &str, vip: &Ipv4Addr) -> anyhow::Result<bool> {
    let out = netns::exec(netns, "ip")
        .args(["-4", "-o", "address", "show"])
        .output()
        .context("ip address show")?;
    Ok(String::from_utf8_lossy(&out.stdout).contains(&format!("inet {vip}/")))
}

/// The MAC of `interface` in namespace `netns`.
fn mac(netns: &str, interface: &str) -> anyhow::Result<[u8; 6]> {
    let out = netns::exec(netns, "cat")
        .arg(format!("/sys/class/net/{interface}/address"))
        .output()
        .context("reading a MAC")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut mac = [0u8; 6];
    let parts: Vec<&str> = text.trim().split(':').collect();
    if parts.len() != 6 {
        bail!("no MAC for {interface} in {netns}: {text:?}");
    }
    for (byte, part) in mac.iter_mut().zip(parts) {
        *byte = u8::from_str_radix(part, 16).with_context(|| format!("MAC {text:?}"))?;
    }
    Ok(mac)
}

/// Kills director `i`'s host the chosen way (see the module doc).
fn kill(s: &Setup, i: usize, how: Kill) -> anyhow::Result<()> {
    let ns = s.topology.prefix() + &s.roles.directors[i].host;
    if how == Kill::Link {
        let out = netns::exec(&ns, "ip")
            .args(["link", "set", &s.configs[i].interface, "down"])
            .output()
            .context("ip link set down")?;
        if !out.status.success() {
            bail!("ip link set down: {}", String::from_utf8_lossy(&out.stderr));
        }
        return Ok(());
    }
    let signal = if how == Kill::Sigkill {
        libc::SIGKILL
    } else {
        libc::SIGTERM
    };
    // Newest first: a child (keepalived's VRRP process) dies before the parent it watches,
    // so nothing gets to resign or clean up, as when the host dies.
    for pid in pids(&ns)? {
        // SAFETY: kill has no memory preconditions; the pids are those of the director
        // host's namespace, which this scenario created.
        unsafe { libc::kill(pid, signal) };
    }
    Ok(())
}

/// The client's side: long connections and probes until `run_for` from `t0`; returns the
/// probes and how many long connections delivered their whole response.
async fn traffic(
    vip: SocketAddrV4,
    long: u16,
    t0: Instant,
    run_for: Duration,
) -> anyhow::Result<(Vec<Probe>, usize)> {
    let chunks = (run_for + Duration::from_secs(1)).as_millis() / CHUNK_EVERY.as_millis();
    let size = 4096 * chunks as usize;
    let longs: Vec<_> = (0..long)
        .map(|i| {
            let target = format!(
                "/obj/long-{i}?size={size}&chunked=1&chunk_delay={}&cc=no-store",
                CHUNK_EVERY.as_millis()
            );
            tokio::spawn(async move { stream(vip, &target).await.is_ok() })
        })
        .collect();
    let mut probes = Vec::new();
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while t0.elapsed() < run_for {
        tick.tick().await;
        let at = t0.elapsed();
        probes.push((at, tokio::spawn(short(vip))));
    }
    let mut out = Vec::with_capacity(probes.len());
    for (at, task) in probes {
        out.push(Probe {
            at,
            ok: task.await.unwrap_or(false),
        });
    }
    let mut survived = 0;
    for task in longs {
        if task.await.unwrap_or(false) {
            survived += 1;
        }
    }
    Ok((out, survived))
}

/// One short GET on a new connection: true on a 200 within the bounds.
async fn short(vip: SocketAddrV4) -> bool {
    let exchange = async {
        let mut c = tokio::time::timeout(PROBE_CONNECT, tokio::net::TcpStream::connect(vip))
            .await
            .ok()?
            .ok()?;
        let req =
            format!("GET /obj/probe?size=64 HTTP/1.1\r\nHost: {vip}\r\nConnection: close\r\n\r\n");
        c.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        c.read_to_end(&mut buf).await.ok()?;
        Some(buf.starts_with(b"HTTP/1.1 200"))
    };
    matches!(
        tokio::time::timeout(PROBE_BOUND, exchange).await,
        Ok(Some(true))
    )
}

/// One long GET read to its end; Ok when the whole chunked response arrived.
async fn stream(vip: SocketAddrV4, target: &str) -> anyhow::Result<()> {
    let mut c = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(vip))
        .await
        .context("connect timed out")??;
    let req = format!("GET {target} HTTP/1.1\r\nHost: {vip}\r\nConnection: close\r\n\r\n");
    c.write_all(req.as_bytes()).await?;
    let mut buf = vec![0u8; 65536];
    let mut head = Vec::new();
    let mut tail = Vec::new();
    loop {
        let n = tokio::time::timeout(Duration::from_secs(3), c.read(&mut buf))
            .await
            .context("stalled")??;
        if n == 0 {
            break;
        }
        if head.len() < 16 {
            head.extend_from_slice(&buf[..n.min(16)]);
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 16 {
            tail.drain(..tail.len() - 16);
        }
    }
    if !head.starts_with(b"HTTP/1.1 200") {
        bail!("not a 200");
    }
    if !tail.ends_with(b"0\r\n\r\n") {
        bail!("cut before its end");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_gets_the_same_virtual_router() {
        let c = strait_lb::config::parse(
            "[director]\nid = \"a\"\ninterface = \"eth0\"\n[[service]]\nvip = \"10.80.0.100:80\"\n\
             mode = \"dr\"\nbackends = [{ addr = \"10.80.0.11\" }]\n\
             [ha]\nvrid = 80\npriority = 150\nadvert_interval = \"100ms\"\npeers = [\"10.80.0.4\"]\n",
        )
        .expect("config");
        let conf = keepalived_conf(&c, c.ha.as_ref().unwrap());
        for want in [
            "vrrp_version 3",
            "interface eth0",
            "virtual_router_id 80",
            "priority 150",
            "advert_int 0.1",
            "preempt_delay 0",
            "unicast_peer {\n    10.80.0.4\n  }",
            "virtual_ipaddress {\n    10.80.0.100/32\n  }",
        ] {
            assert!(conf.contains(want), "{want:?} in\n{conf}");
        }
    }
}
