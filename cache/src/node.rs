//! A running cache node: load the config, bind listeners, serve, reload on SIGHUP, drain on
//! SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::cluster::{Cluster, Membership};
use crate::config::{self, NodeConfig};
use crate::http::ctx::{Ctx, Runtime};
use crate::http::server;
use crate::stats::Counters;
use crate::store::fill::Fills;
use crate::store::ram::RamStore;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A client, admin or peer listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address, as the config gives it (`listen`, `admin` or `peer_listen`).
        addr: SocketAddr,
        /// Why the bind failed.
        #[source]
        source: std::io::Error,
    },
    /// Cluster membership could not start its gossip socket.
    #[error("cannot bind cluster gossip on {addr}: {source}")]
    Gossip {
        /// `[cluster] gossip_listen`.
        addr: SocketAddr,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The SIGTERM, SIGINT or SIGHUP handler could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// The pools, routes or knobs could not be built from the config (one that passed
    /// `config::load`'s checks does not fail here).
    #[error(transparent)]
    Runtime(#[from] crate::http::ctx::RuntimeError),
}

/// Worker threads a config asks for (its `workers`, else the CPUs this process may use).
pub fn worker_threads(cfg: &NodeConfig) -> usize {
    cfg.node
        .workers
        .as_ref()
        .map(|w| *w.get_ref())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Time a node waits for a TCP connection to a peer (a peer that does not answer is
/// declared dead by gossip within its suspect timeout anyway).
pub const PEER_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Run a node until SIGTERM/SIGINT; inside a tokio runtime.
///
/// Prints one line per bound listener on stderr, `strait-node listening http ADDR` and
/// `strait-node listening admin ADDR` (tests and scripts read the actual ports from them).
pub async fn run(path: &Path, cfg: NodeConfig) -> Result<(), NodeError> {
    // Before the listening lines: a script may signal the node as soon as it reads them (a
    // SIGHUP before the handler exists would end the process).
    let mut term = signal(SignalKind::terminate()).map_err(NodeError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(NodeError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(NodeError::Signals)?;
    let rt = Runtime::from_config(&cfg, None)?;
    // The peer listener is bound before gossip announces this node, so no peer finds it
    // closed; it serves once the context exists.
    let peer_listener = match &cfg.cluster {
        Some(c) => {
            let addr = *c.peer_listen.get_ref();
            let l = server::bind(addr).map_err(|source| NodeError::Bind { addr, source })?;
            eprintln!(
                "strait-node listening peer {}",
                l.local_addr().unwrap_or(addr)
            );
            Some(l)
        }
        None => None,
    };
    let cluster = match &cfg.cluster {
        Some(c) => {
            let members = Membership::start(c, cfg.node.id.get_ref(), c.secret.key())
                .await
                .map_err(|source| NodeError::Gossip {
                    addr: *c.gossip_listen.get_ref(),
                    source,
                })?;
            Some(Cluster::new(
                cfg.node.id.get_ref(),
                members,
                c.secret.key(),
                PEER_CONNECT_TIMEOUT,
                c.peer_timeout,
            ))
        }
        None => None,
    };
    let fills = Fills::new();
    fills.configure(rt.limits.inflight, rt.limits.stream_lag);
    let ctx = Arc::new(Ctx {
        node_id: cfg.node.id.get_ref().clone(),
        store: RamStore::new(cfg.storage.ram.get_ref().as_u64()),
        fills,
        counters: Counters::default(),
        started: Instant::now(),
        rt: ArcSwap::from_pointee(rt),
        config_path: path.to_path_buf(),
        cluster,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let max_head = cfg.cache.max_request_header.get_ref().as_u64() as usize;
    let mut tasks = Vec::new();
    for addr in cfg.node.listen.get_ref() {
        let l = server::bind(*addr).map_err(|source| NodeError::Bind {
            addr: *addr,
            source,
        })?;
        let local = l.local_addr().unwrap_or(*addr);
        eprintln!("strait-node listening http {local}");
        tasks.push(tokio::spawn(server::serve(
            l,
            Arc::clone(&ctx),
            max_head,
            stop_rx.clone(),
            cfg.node.drain_timeout,
        )));
    }
    let admin = server::bind(cfg.node.admin).map_err(|source| NodeError::Bind {
        addr: cfg.node.admin,
        source,
    })?;
    eprintln!(
        "strait-node listening admin {}",
        admin.local_addr().unwrap_or(cfg.node.admin)
    );
    tokio::spawn(crate::admin::server::serve(
        admin,
        Arc::clone(&ctx),
        stop_rx.clone(),
    ));
    if let Some(l) = peer_listener {
        tokio::spawn(crate::http::owner::serve(
            l,
            Arc::clone(&ctx),
            stop_rx.clone(),
        ));
    }
    tracing::info!(node = %ctx.node_id, "node started");

    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let _ = reload(&ctx);
            }
        }
    }
    if let Some(cluster) = &ctx.cluster {
        // Before the drain: the other nodes stop choosing this one while it finishes.
        cluster.members.leave().await;
    }
    tracing::info!("draining");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Re-read the config file and swap pools, routes and knobs; the store, in-flight requests
/// (they finish on the pools they started with) and the health of unchanged servers are kept.
/// An invalid file is refused with its reasons and the running config stays. `[cluster]` is
/// start-only: a change to it is logged as refused while the rest of the reload applies.
pub(crate) fn reload(ctx: &Ctx) -> Result<(), String> {
    let path = &ctx.config_path;
    let cfg = config::load(path).map_err(|e| {
        let msg = e.to_string();
        tracing::error!("reload refused, keeping the running config:\n{msg}");
        msg
    })?;
    let current = ctx.rt.load();
    let rt = Runtime::from_config(&cfg, Some(&current)).map_err(|e| {
        let msg = format!("{}: {e}", path.display());
        tracing::error!("reload refused, keeping the running config: {msg}");
        msg
    })?;
    ctx.fills
        .configure(rt.limits.inflight, rt.limits.stream_lag);
    ctx.rt.store(Arc::new(rt));
    let running = ctx.cluster.as_ref().map(|c| c.members.settings());
    if let Some(why) = config::restart_only_changes(running, cfg.cluster.as_ref()) {
        tracing::error!("reload: {why}; the running cluster membership stays");
    }
    tracing::info!(path = %path.display(), "config reloaded");
    Ok(())
}
