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
//!    chunk every 100 ms) for the whole run, and a new short connection every `traffic::PROBE_EVERY`
//!    (connect bound `traffic::PROBE_CONNECT`, exchange bound `traffic::PROBE_BOUND`); each backend records
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

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use strait_lb::vrrp::machine::{master_down_interval, skew_time};
use strait_topology::failover::{self, analyse, Frame, Recorded};
use strait_topology::{netns, supervisor};

use super::guard;
use super::probe::{self, in_netns};
use super::process::{pids, signal_host};
use super::sniff::{self, mac};
use crate::cmd::ctl::director_view::reasons_total;

mod setup;
mod traffic;

use setup::{full_path, prepare, start_keepalived, Setup};
pub use setup::{FailoverArgs, Kill, Vrrp};
use traffic::{traffic, PROBE_EVERY};

/// Bound on bringing the pair up.
pub const UP_WAIT: Duration = Duration::from_secs(30);
/// How long the pair must keep the same master before the traffic starts (at least; four
/// advert intervals when longer).
pub const SETTLE: Duration = Duration::from_secs(1);
/// Traffic before the kill.
pub const WARMUP: Duration = Duration::from_secs(1);
/// Runs the scenario; returns the exit code.
pub fn run(args: FailoverArgs) -> anyhow::Result<i32> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("`strait sim run failover` needs root (it creates network namespaces)");
    }
    let s = prepare(&args)?;
    guard::guarded(&s.topology, &s.path, || scenario(&s, &args))
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
    if let Some(loss) = args.sync_loss {
        let port =
            sync_port(s, new).ok_or_else(|| anyhow!("--sync-loss: {new_host} has no sync"))?;
        sync_loss(&ns(new_host), port, loss)?;
        say!("      {loss}% of the sync datagrams into {new_host} (UDP {port}) dropped (nftables numgen)");
    }

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
    let restarted = match args.restart_after {
        Some(after) => {
            std::thread::sleep(after);
            guard::check()?;
            let at = t0.elapsed();
            restart(s, old)?;
            say!(
                "      {:.2} s: {old_host}'s director restarted (it catches up from {new_host}, then preempts)",
                at.as_secs_f64()
            );
            Some(at)
        }
        None => None,
    };
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
    // The takeover is the kill's: frames after the restart (the old master back) are not it.
    if let Some(at) = restarted {
        frames.retain(|f| f.at < at);
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
                crate::cmd::ctl::director_view::ha_drops(ha)
            );
        }
    }
    if args.vrrp == Vrrp::Strait {
        for line in sync_report(s, new, old, restarted.is_some()) {
            say!("      {line}");
        }
    }
    if args.sync_loss.is_some() {
        say!(
            "      the sync-loss rule on {new_host} dropped {} datagrams",
            loss_dropped(&ns(new_host)).map_or_else(|| "?".to_owned(), |n| n.to_string())
        );
    }
    let tail_ok = recorded
        .probes
        .iter()
        .filter(|p| p.at + Duration::from_secs(1) >= run_for)
        .all(|p| p.ok);
    // Without sync, adding a backend is expected to cost established connections: that run
    // reports them and does not fail on them.
    let synced = args.sync && s.ha[new].sync.is_some();
    let long_ok = (args.add_backend && !synced) || long_survived == recorded.long_total;
    Ok(t.first_via_new.is_some() && long_ok && tail_ok)
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

/// Director `i`'s sync port, when it syncs.
fn sync_port(s: &Setup, i: usize) -> Option<u16> {
    s.ha[i].sync.as_ref().map(|c| c.port)
}

/// Drops `percent` of the UDP datagrams to `port` arriving in namespace `netns`.
fn sync_loss(netns: &str, port: u16, percent: u8) -> anyhow::Result<()> {
    let rules = format!(
        "table inet strait_sync_loss {{\n chain input {{\n  type filter hook input priority 0;\n  \
         udp dport {port} numgen random mod 100 < {percent} counter drop\n }}\n}}\n"
    );
    let mut child = netns::exec(netns, "nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .context("nft")?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write as _;
        stdin.write_all(rules.as_bytes()).context("nft rules")?;
    }
    let status = child.wait().context("nft")?;
    if !status.success() {
        bail!("nft refused the sync-loss rule in {netns}");
    }
    Ok(())
}

/// Datagrams the sync-loss rule in `netns` dropped (its counter).
fn loss_dropped(netns: &str) -> Option<u64> {
    let out = netns::exec(netns, "nft")
        .args(["list", "table", "inet", "strait_sync_loss"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let after = text.split("counter packets ").nth(1)?;
    after.split_whitespace().next()?.parse().ok()
}

/// Starts director `i` again, as the topology ran it, logging beside it.
fn restart(s: &Setup, i: usize) -> anyhow::Result<()> {
    let role = &s.roles.directors[i];
    let host = s
        .topology
        .hosts
        .iter()
        .find(|h| h.name == role.host)
        .ok_or_else(|| anyhow!("host {} vanished", role.host))?;
    let Some(strait_topology::spec::RunCommand::Argv(argv)) = host.run.get(role.command) else {
        bail!("host {}: no director command to restart", role.host);
    };
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let log = std::fs::File::create(s.logs.join(format!("{}-restarted.log", role.host)))
        .context("restart log")?;
    netns::exec(&(s.topology.prefix() + &role.host), &exe.to_string_lossy())
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().context("restart log")?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot restart the director")?;
    Ok(())
}

/// What the sync did: the new master's records from the old one, and a restarted old
/// master's catch-up and state.
fn sync_report(s: &Setup, new: usize, old: usize, restarted: bool) -> Vec<String> {
    let ns = |i: usize| s.topology.prefix() + &s.roles.directors[i].host;
    let mut out = Vec::new();
    let line = |who: &str, v: &Value| {
        let sync = &v["sync"];
        format!(
            "{who}: sync received {} records, installed {} (replaced {}, kept {}, refused {}), \
             aside {}, dropped {} datagrams; catch-up {} ({} records)",
            sync["records_received"],
            sync["installed"],
            sync["replaced"],
            sync["kept"],
            sync["refused"],
            reasons_total(sync, "aside"),
            reasons_total(sync, "drops"),
            sync["catchup"]["state"].as_str().unwrap_or("-"),
            sync["catchup"]["records"],
        )
    };
    match probe::stats(&ns(new), s.configs[new].admin) {
        Ok(v) if v.get("sync").is_some() => {
            out.push(line(&s.roles.directors[new].host, &v));
        }
        _ => out.push(format!(
            "{}: no connection sync",
            s.roles.directors[new].host
        )),
    }
    if restarted {
        match probe::stats(&ns(old), s.configs[old].admin) {
            Ok(v) => {
                out.push(line(&s.roles.directors[old].host, &v));
                out.push(format!(
                    "{} after its restart: {} ({})",
                    s.roles.directors[old].host,
                    v["ha"]["state"].as_str().unwrap_or("-"),
                    v["ha"]["reason"].as_str().unwrap_or("-"),
                ));
            }
            Err(e) => out.push(format!(
                "{} after its restart: no stats ({e:#})",
                s.roles.directors[old].host
            )),
        }
    }
    out
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
    signal_host(&ns, signal)
}
