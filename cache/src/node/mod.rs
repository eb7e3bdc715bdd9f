//! A running cache node: load the config, bind listeners, serve, reload on SIGHUP, drain on
//! SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

mod shared_config;

use crate::cluster::confdist::{self, ConfigDist};
use crate::cluster::{Cluster, Membership};
use crate::config::{self, NodeConfig};
use crate::http::ctx::{Ctx, Runtime};
use crate::http::server;
use crate::reload::{Outcome, Reloads, Source};
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
    /// The config file could not be read again at start (for its shared part).
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The SIGTERM, SIGINT or SIGHUP handler could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// The pools, routes or knobs could not be built from the config (one that passed
    /// `config::load`'s checks does not fail here).
    #[error(transparent)]
    Runtime(#[from] crate::http::ctx::RuntimeError),
    /// The access log's file could not be opened.
    #[error(transparent)]
    AccessLog(#[from] strait_lb::accesslog::OpenError),
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
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(NodeError::Signals)?;
    let rt = Runtime::from_config(&cfg, None)?;
    // The file as read now: its shared part is version 0 of the config distribution.
    let file_text = std::fs::read_to_string(path).map_err(|source| config::ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let reloads = Reloads::new(path, &file_text, &cfg);
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
            let shared = config::shared::shared_part(&file_text).map_err(|message| {
                config::ConfigError::Invalid {
                    path: path.to_path_buf(),
                    diagnostics: vec![config::Diagnostic {
                        line: 1,
                        col: 1,
                        message,
                    }],
                }
            })?;
            let dist = ConfigDist::new(file_text.clone(), shared);
            let cluster = Cluster::new(
                cfg.node.id.get_ref(),
                members,
                c.secret.key(),
                PEER_CONNECT_TIMEOUT,
                dist,
                c.peer_timeout,
            );
            confdist::announce(&cluster, &cluster.config.lock());
            Some(cluster)
        }
        None => None,
    };
    let fills = Fills::new();
    fills.configure(rt.limits.inflight, rt.limits.stream_lag);
    let access = crate::access::AccessLog::start(&cfg.log, cfg.node.id.get_ref().clone())?;
    let ctx = Arc::new(Ctx {
        node_id: cfg.node.id.get_ref().clone(),
        store: RamStore::new(cfg.storage.ram.get_ref().as_u64()),
        fills,
        uncacheable: Default::default(),
        counters: Arc::new(Counters::default()),
        started: Instant::now(),
        rt: ArcSwap::from_pointee(rt),
        applied_text: crate::admin::control::AppliedText::new(&file_text),
        config_path: path.to_path_buf(),
        cluster,
        sampler: Default::default(),
        access,
        reloads,
        lean: Default::default(),
        verdicts: Default::default(),
        hot: crate::http::remote::hot::Hot::new(crate::http::remote::hot::capacity_for(
            cfg.storage.ram.get_ref().as_u64(),
        )),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let max_head = cfg.cache.max_request_header.get_ref().as_u64() as usize;
    let mut tasks = Vec::new();
    let max_conns = *cfg.limits.max_connections.get_ref();
    let limit = server::conn_limit(max_conns);
    if let Some(files) = strait_lb::admin::backoff::open_files_limit() {
        if u64::from(max_conns) >= files {
            tracing::warn!(
                max_connections = max_conns,
                open_files = files,
                "limits.max_connections is not below the open-files limit (ulimit -n): \
                 accepts will fail with EMFILE before the node stops accepting"
            );
        }
    }
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
            Arc::clone(&limit),
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
    // The admin listener outlives the drain (its connections-left figure is how a drain is
    // watched): it stops when the client listeners are done, just before the process exits.
    let (admin_stop_tx, admin_stop_rx) = watch::channel(false);
    let admin_task = tokio::spawn(crate::admin::server::serve(
        admin,
        Arc::clone(&ctx),
        admin_stop_rx,
    ));
    if let Some(l) = peer_listener {
        tokio::spawn(crate::http::owner::serve(
            l,
            Arc::clone(&ctx),
            stop_rx.clone(),
        ));
        tokio::spawn(shared_config::run(Arc::clone(&ctx), stop_rx.clone()));
    }
    tracing::info!(node = %ctx.node_id, "node started");

    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let _ = reload(&ctx);
            }
            _ = usr1.recv() => {
                tracing::info!(log = %ctx.access.settings().access.describe(), "SIGUSR1: reopening the access log");
                ctx.access.reopen();
            }
        }
    }
    if let Some(cluster) = &ctx.cluster {
        // Before the drain: the other nodes stop choosing this one while it finishes.
        cluster.members.leave().await;
    }
    tracing::info!(
        connections = ctx
            .counters
            .traffic
            .connections_open
            .load(Ordering::Relaxed),
        "draining"
    );
    ctx.counters.traffic.draining.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    let _ = admin_stop_tx.send(true);
    let _ = admin_task.await;
    tracing::info!("stopped");
    Ok(())
}

/// Re-read the config file and swap pools, routes and knobs; the store, in-flight requests
/// (they finish on the pools they started with) and the health of unchanged servers are kept.
/// An invalid file is refused with its reasons and the running config stays. `[cluster]` is
/// start-only: a change to it is logged as refused while the rest of the reload applies.
///
/// In a cluster (`cluster::confdist`): when the file's pools and routes changed since it was
/// last read, they become a new shared version, announced to the cluster; otherwise the
/// running shared version (maybe one another member distributed) stays and the file's
/// node-local keys are applied under it.
pub(crate) fn reload(ctx: &Ctx) -> Result<Outcome, String> {
    let path = &ctx.config_path;
    let refuse = |msg: String| {
        tracing::error!("reload refused, keeping the running config:\n{msg}");
        ctx.reloads.refused(Source::File, vec![msg.clone()]);
        msg
    };
    let text = std::fs::read_to_string(path).map_err(|source| {
        refuse(
            config::ConfigError::Read {
                path: path.clone(),
                source,
            }
            .to_string(),
        )
    })?;
    let file_cfg = config::parse(&text).map_err(|diagnostics| {
        refuse(
            config::ConfigError::Invalid {
                path: path.clone(),
                diagnostics,
            }
            .to_string(),
        )
    })?;
    if ctx.cluster.is_none() {
        ctx.applied_text.offer(&text);
    }
    let Some(cluster) = &ctx.cluster else {
        let outcome = install(ctx, &file_cfg, Source::File).map_err(refuse)?;
        ctx.reloads.file_read(&text);
        tracing::info!(path = %path.display(), "config reloaded");
        return Ok(outcome);
    };
    let shared = config::shared::shared_part(&text).map_err(refuse)?;
    let mut st = cluster.config.lock();
    let outcome = if shared.hash != st.file_hash && shared.hash != st.applied.hash {
        let outcome = install(ctx, &file_cfg, Source::File).map_err(refuse)?;
        let members = cluster.members.members();
        let notes = cluster.members.notes();
        let others: Vec<_> = confdist::offers(cluster.members.self_id(), &members, &notes)
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        let number = confdist::max_seen(&st.note(), &others) + 1;
        st.applied = config::shared::Version {
            number,
            hash: shared.hash,
        };
        st.applied_text = Arc::from(shared.text);
        st.refused = None;
        tracing::info!(version = %st.applied, "pools and routes changed: a new shared config version, announced to the cluster");
        outcome
    } else {
        let cfg = if shared.hash == st.applied.hash {
            file_cfg
        } else {
            let merged = config::shared::merge(&text, &st.applied_text).map_err(refuse)?;
            config::parse(&merged).map_err(|d| {
                refuse(format!(
                    "{}: its node-local keys under the cluster's shared config {}: {}",
                    path.display(),
                    st.applied,
                    confdist::reasons(&d)
                ))
            })?
        };
        install(ctx, &cfg, Source::File).map_err(refuse)?
    };
    ctx.reloads.file_read(&text);
    st.file_text = text;
    st.file_hash = shared.hash;
    confdist::announce(cluster, &st);
    tracing::info!(path = %path.display(), version = %st.applied, "config reloaded");
    Ok(outcome)
}

/// Swap in the pools, routes and knobs of `cfg` (validated), as a reload does; `[cluster]`
/// changes are logged as refused (start-only). The outcome (what changed, what could not be
/// applied) is logged and kept (`crate::reload`).
pub(crate) fn install(ctx: &Ctx, cfg: &NodeConfig, source: Source) -> Result<Outcome, String> {
    let current = ctx.rt.load();
    let rt = Runtime::from_config(cfg, Some(&current))
        .map_err(|e| format!("{}: {e}", ctx.config_path.display()))?;
    ctx.applied_text.commit();
    ctx.fills
        .configure(rt.limits.inflight, rt.limits.stream_lag);
    ctx.rt.store(Arc::new(rt));
    let running = ctx.cluster.as_ref().map(|c| c.members.settings());
    if let Some(why) = config::restart_only_changes(running, cfg.cluster.as_ref()) {
        tracing::error!("reload: {why}; the running cluster membership stays");
    }
    Ok(ctx.reloads.applied(source, cfg))
}
