//! `strait sim`: simulation helpers.
//!
//! `strait sim run demo` lives in `story` (a topology with two directors, the default) and
//! `demo` (one director; what it reads first in `setup`); their namespace I/O is in `probe`,
//! the teardown guard in `guard`; `strait sim run failover` in `failover`; `strait sim run
//! soak` in `soak`; the story and the
//! failover watch the backends' frames with `sniff`; `up` and `down` build and remove a
//! topology.
//!
//! `strait sim origin --listen ADDR` binds ADDR (port 0 picks a free port), prints exactly one
//! line `strait-origin listening on <actual address>` on stdout (flushed, so a parent process
//! can read the port), then serves the test origin (`strait_topology::origin`) until SIGTERM
//! or ctrl-c, and exits 0.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use strait_topology::{netns, spec::Topology, supervisor};

/// `println!` that ignores a closed stdout (`strait sim run demo | head`): the scenario goes on
/// and still tears down.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod demo;
mod failover;
mod guard;
mod probe;
mod process;
mod setup;
mod sniff;
mod soak;
mod story;

pub use demo::run as run_demo;
pub use failover::{run as run_failover, FailoverArgs, Kill, Vrrp};
pub use setup::DemoArgs;
pub use soak::{run as run_soak, SoakArgs};

fn load(path: &Path) -> anyhow::Result<Topology> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Topology::from_toml(&text).with_context(|| format!("{}: invalid topology", path.display()))
}

/// `strait sim up`: build the topology (removing leftovers of an earlier run first) and start
/// its hosts' commands; returns once everything is started.
pub fn up(path: &Path, logs: Option<PathBuf>) -> anyhow::Result<i32> {
    let topo = load(path)?;
    let logs = logs.unwrap_or_else(|| PathBuf::from("/tmp/strait-sim").join(&topo.name));
    netns::up(&topo).context("cannot build the topology (needs root and `ip`)")?;
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let started = match supervisor::start(&topo, &logs, &exe) {
        Ok(s) => s,
        Err(e) => {
            let _ = netns::down(&topo.prefix());
            return Err(e).context("cannot start the topology's commands (torn down)");
        }
    };
    println!("topology {} up: {} hosts", topo.name, topo.hosts.len());
    for h in &topo.hosts {
        println!("  host {:<12} netns {}", h.name, topo.host_netns(h));
    }
    for s in &started {
        println!(
            "  started [{}] {} (pid {}, log {})",
            s.host,
            s.argv.join(" "),
            s.pid,
            s.log.display()
        );
    }
    println!(
        "stop it with: strait sim down --topology {}",
        path.display()
    );
    Ok(0)
}

/// `strait sim down`: SIGTERM the topology's processes (bounded wait), then remove every
/// namespace with its prefix, killing what is left. Nothing to remove is not an error.
pub fn down(path: &Path) -> anyhow::Result<i32> {
    let topo = load(path)?;
    let prefix = topo.prefix();
    let left = supervisor::stop(&prefix)?;
    if left > 0 {
        println!("{left} process(es) ignored SIGTERM; killing them");
    }
    let removed = netns::down(&prefix)?;
    println!(
        "topology {}: removed {} namespace(s)",
        topo.name,
        removed.len()
    );
    Ok(0)
}

/// Runs the test origin on `listen` until SIGTERM or ctrl-c.
pub fn origin(listen: SocketAddr) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let local = listener.local_addr().context("listener address")?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "strait-origin listening on {local}")?;
            out.flush()?;
        }
        tracing::info!(addr = %local, "origin serving");
        tokio::select! {
            served = strait_topology::origin::serve(listener) => {
                served.context("origin stopped accepting connections")?;
            }
            signal = shutdown_signal() => {
                signal?;
                tracing::info!("origin stopping");
            }
        }
        Ok(0)
    })
}

/// Resolves on the first SIGTERM or ctrl-c (SIGINT).
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        tokio::select! {
            _ = term.recv() => Ok(()),
            interrupted = tokio::signal::ctrl_c() => interrupted.context("cannot watch ctrl-c"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("cannot watch ctrl-c")
    }
}
