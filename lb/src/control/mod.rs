//! The running director: config, datapath, health checks, admin, reload and shutdown.
//!
//! Contract:
//! * [`Director::start`] loads the config, describes the interfaces, opens the datapath with
//!   the caller's factory, resolves the backends' MACs, applies every service once, then
//!   starts one health task per backend and the admin listener. Any failure before that is a
//!   [`StartError`] and leaves nothing running (the datapath is shut down if it was opened).
//! * Every health or MAC change and every reload rebuilds all services from the state and
//!   hands them to [`Datapath::apply`], in order (one rebuild at a time, under the datapath's
//!   lock, so a later state is never overwritten by an earlier one). The state changes under
//!   that lock too, so the admin view never shows a state the datapath does not hold yet.
//! * [`Director::reload`] re-reads the file: an invalid config is refused with its
//!   diagnostics and the running one stays. Services change in place (see `state`); the
//!   `[director]` settings other than `table_size`, `[cluster]`, `[ha]` and `[log]` need a
//!   restart: the outcome names them (`not_applied`), with a one-line summary of the services
//!   and backends changed (`events`), in the log, the access log and the admin views.
//! * With `[log] access`, one access line per backend state change and per reload
//!   (`events`); SIGUSR1 reopens its file.
//! * With `[cluster]`, [`Director::start`] joins the cache cluster's gossip as an observer
//!   (weight 0) before building the services; `backends = "cluster"` services start with the
//!   members known then (possibly none: such a service answers nothing until a node joins)
//!   and follow the membership (`observer`, `cluster`). A reload fills them from the current
//!   members; `[cluster]` itself changes on restart only.
//! * With `[ha]` (`ha`), [`Director::start`] first refuses a VIP that is a local address,
//!   opens the VRRP sockets before the datapath (a failure leaves nothing to undo), and
//!   starts the virtual router once the services are applied: it starts as backup, owning no
//!   VIP, and hands the VIPs to the datapath's ARP responder while master. A reload gives it
//!   the new VIPs; `[ha]` itself changes on restart only. With connection sync (`[ha]` with
//!   peers, `sync`), the sync socket is bound before the datapath opens too, the runner
//!   starts with the datapath's new-flow stream, and the virtual router starts only once
//!   the runner's catch-up ended (the peer's dump in, or `sync_catchup_timeout`).
//! * [`Director::stop`] (with `[ha]`: after a master's graceful resign) stops the tasks,
//!   leaves the cluster and shuts the datapath down; [`run`] does it on SIGTERM/SIGINT and
//!   reloads on SIGHUP.

mod admin;
mod backend_ctl;
mod cluster;
mod config_view;
mod counter_help;
pub mod events;
mod ha;
mod health;
mod observer;
mod reload;
mod state;
mod sync;
mod view;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{ConfigError, DirectorConfig};
use crate::datapath::{Datapath, DatapathError, DatapathOptions};
use crate::iface::{IfaceError, Interface};
use crate::maglev::MaglevError;
use crate::membership::Membership;
use crate::packet::service::Mode;
use state::State;

pub use config_view::ConfigView;
pub use view::{BackendView, ServiceView, Snapshot};

/// Opens a datapath for a config (chosen by `config.datapath`).
pub(crate) type Opener = dyn Fn(&DirectorConfig, DatapathOptions) -> Result<Box<dyn Datapath>, DatapathError>
    + Send
    + Sync;

/// Why the director could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config file is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An interface is missing or unusable.
    #[error(transparent)]
    Interface(#[from] IfaceError),
    /// The datapath could not be opened or programmed.
    #[error("datapath: {0}")]
    Datapath(DatapathError),
    /// A table could not be built.
    #[error("table: {0}")]
    Table(MaglevError),
    /// The cluster's gossip could not start.
    #[error("cluster gossip on {addr}")]
    Cluster {
        /// `cluster.gossip_listen`.
        addr: SocketAddr,
        /// The bind error.
        #[source]
        source: std::io::Error,
    },
    /// The signal handlers could not be installed.
    #[error("signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// `[ha]` cannot run here (a VIP is a local address, the VRRP sockets cannot open).
    #[error("ha: {0}")]
    Ha(String),
    /// The access log's file could not be opened.
    #[error(transparent)]
    AccessLog(#[from] crate::accesslog::OpenError),
    /// The admin listener could not be bound.
    #[error("admin listener {addr}")]
    Admin {
        /// The configured address.
        addr: SocketAddr,
        /// The bind error.
        #[source]
        source: std::io::Error,
    },
}

// Not `#[from]`: that would also make them the error's source, and `{:#}` would print the
// message twice.
impl From<DatapathError> for StartError {
    fn from(e: DatapathError) -> Self {
        StartError::Datapath(e)
    }
}

impl From<MaglevError> for StartError {
    fn from(e: MaglevError) -> Self {
        StartError::Table(e)
    }
}

/// Which interface carries a mode's backends, and whether its MACs need resolving.
#[derive(Debug, Clone)]
struct Links {
    outer: Interface,
    inner: Option<Interface>,
}

impl Links {
    /// The interface backends of `mode` are reached on.
    fn device(&self, mode: Mode) -> &Interface {
        match (mode, &self.inner) {
            (Mode::Nat, Some(inner)) => inner,
            _ => &self.outer,
        }
    }

    /// The MAC a backend starts with: 0 on an interface without MACs (loopback), else unknown.
    fn initial_mac(&self, mode: Mode) -> Option<[u8; 6]> {
        (self.device(mode).mac == [0; 6]).then_some([0; 6])
    }

    /// The interfaces the datapath receives on, as `(name, ifindex)`, each once.
    fn napi_targets(&self) -> Vec<(&str, u32)> {
        let mut v = vec![(self.outer.name.as_str(), self.outer.ifindex)];
        if let Some(i) = self.inner.as_ref().filter(|i| i.name != self.outer.name) {
            v.push((i.name.as_str(), i.ifindex));
        }
        v
    }
}

/// Shared by the tasks of a running director.
struct Inner {
    config_path: PathBuf,
    /// The running config, cluster services filled from the members (`cluster::fill`).
    config: Mutex<DirectorConfig>,
    /// The file's text as of the start or the last applied reload (`GET /config`).
    applied_text: Mutex<String>,
    /// The cluster's gossip, joined as an observer (`[cluster]`).
    membership: Option<Membership>,
    state: Mutex<State>,
    datapath: Mutex<Box<dyn Datapath>>,
    datapath_name: String,
    links: Links,
    /// Stops the current generation of health tasks (replaced on reload).
    health_stop: Mutex<watch::Sender<bool>>,
    /// The interfaces' NAPI mode before `threaded_napi` changed it (restored on stop).
    napi: Mutex<crate::napi::NapiGuard>,
    /// `[ha]`: the virtual router (taken out by `Director::stop`).
    ha: Mutex<Option<crate::vrrp::runner::Router>>,
    /// `[ha]` with sync: the task that starts the router once the catch-up ended.
    ha_gate: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// `[ha]` with sync: the connection sync (taken out by `Director::stop`).
    sync: Mutex<Option<crate::sync::runner::SyncRunner>>,
    /// `[log]`: backend state changes and reloads (`events`).
    access: crate::accesslog::AccessLog<events::Event>,
    /// The config file's hash and the reloads so far.
    reloads: Mutex<config_view::ConfigView>,
}

/// Locks a mutex, taking over a poisoned one (a panicked task left plain data behind).
fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Inner {
    /// Changes the state with `f` and, when `f` says so, builds every service from it and
    /// applies them (see the module doc), all under the datapath's lock: whoever sees the new state (the admin view reads the state, then the
    /// datapath) sees it only once the datapath holds it too. Returns `f`'s value.
    fn change<R>(&self, why: &str, f: impl FnOnce(&mut State) -> (R, bool)) -> R {
        let mut datapath = lock(&self.datapath);
        let (value, built) = {
            let mut state = lock(&self.state);
            let (value, apply) = f(&mut state);
            if !apply {
                return value;
            }
            (value, state.build())
        };
        let result = match built {
            Ok(services) => datapath.apply(&services).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, why, "applying the services failed; the datapath keeps the previous ones");
        }
        drop(datapath);
        if let Some(sync) = lock(&self.sync).as_ref() {
            // Records a peer sent for a backend we did not have, or had down, may resolve now.
            sync.backends_changed();
        }
        value
    }
}

/// A running director (see the module doc).
pub struct Director {
    inner: Arc<Inner>,
    admin_addr: SocketAddr,
    admin_stop: watch::Sender<bool>,
    admin_task: JoinHandle<()>,
    /// Follows the cluster's members (`observer::watch`), with `[cluster]`.
    observer_task: Option<JoinHandle<()>>,
}

impl Director {
    /// Starts a director from its config file (see the module doc). Must run inside a tokio
    /// runtime.
    pub async fn start(config_path: &Path, open: &Opener) -> Result<Director, StartError> {
        let (mut config, applied_text) = backend_ctl::load_text(config_path)?;
        ha::check_vips_not_local(&config)?;
        let access = crate::accesslog::AccessLog::start(&config.log, config.id.clone())?;
        let reloads = config_view::ConfigView {
            path: config_path.display().to_string(),
            hash: std::fs::read_to_string(config_path)
                .map(|t| config_view::hash_text(&t))
                .unwrap_or_default(),
            ..Default::default()
        };
        let membership = match &config.cluster {
            Some(c) => {
                let secret = c.secret.as_ref().map(|k| Arc::clone(&k.0));
                let m = Membership::start(&cluster::section(c), &config.id, secret)
                    .await
                    .map_err(|source| StartError::Cluster {
                        addr: c.gossip_listen,
                        source,
                    })?;
                config = cluster::fill(&config, &m.members());
                Some(m)
            }
            None => None,
        };
        let links = Links {
            outer: Interface::by_name(&config.interface)?,
            inner: match &config.inner_interface {
                Some(name) => Some(Interface::by_name(name)?),
                None => None,
            },
        };
        let ha_opened = match &config.ha {
            Some(_) => Some(ha::open(&config, &links.outer)?),
            None => None,
        };
        let sync_opened = sync::open(&config).await?;
        let options = DatapathOptions {
            interface: links.outer.clone(),
            inner_interface: links.inner.clone(),
            xdp_mode: config.xdp_mode,
            max_conns: config.max_conns,
            icmp: config.icmp,
            conn_timeouts: config.conn_timeouts,
            new_flow: config.new_flow,
        };
        let mut datapath = open(&config, options)?;
        let new_flows = match sync_opened {
            Some(_) => datapath.take_new_flows(),
            None => None,
        };
        // After the attach: a veth has a NAPI context only once native XDP runs on it.
        let napi = match config.threaded_napi {
            Some(on) => crate::napi::apply(&links.napi_targets(), on),
            None => crate::napi::NapiGuard::default(),
        };
        let datapath_name = datapath.name();
        let mut state = State::new(&config, SystemTime::now(), |m| links.initial_mac(m));
        health::resolve_all(&mut state, &links).await;
        let first = state
            .build()
            .map_err(StartError::from)
            .and_then(|services| datapath.apply(&services).map_err(StartError::from));
        let listener = match first {
            Ok(()) => tokio::net::TcpListener::bind(config.admin)
                .await
                .map_err(|source| StartError::Admin {
                    addr: config.admin,
                    source,
                }),
            Err(e) => Err(e),
        };
        let listener = match listener {
            Ok(l) => l,
            Err(e) => {
                let mut napi = napi;
                napi.restore();
                if let Err(stop) = datapath.shutdown() {
                    tracing::error!(error = %stop, "datapath shutdown failed");
                }
                return Err(e);
            }
        };
        let admin_addr = listener.local_addr().map_err(|source| StartError::Admin {
            addr: config.admin,
            source,
        })?;
        tracing::info!(
            id = %config.id,
            datapath = %datapath_name,
            services = config.services.len(),
            admin = %admin_addr,
            "director started"
        );
        let inner = Arc::new(Inner {
            config_path: config_path.to_path_buf(),
            config: Mutex::new(config),
            applied_text: Mutex::new(applied_text),
            membership: membership.clone(),
            state: Mutex::new(state),
            datapath: Mutex::new(datapath),
            datapath_name,
            links,
            health_stop: Mutex::new(watch::channel(false).0),
            napi: Mutex::new(napi),
            ha: Mutex::new(None),
            ha_gate: Mutex::new(None),
            sync: Mutex::new(None),
            access,
            reloads: Mutex::new(reloads),
        });
        health::restart(&inner);
        let caught_up = sync_opened.map(|opened| {
            let host = Arc::new(sync::Host {
                inner: Arc::downgrade(&inner),
            });
            let runner = crate::sync::runner::SyncRunner::start(opened, host, new_flows);
            let signal = runner.caught_up_signal();
            *lock(&inner.sync) = Some(runner);
            signal
        });
        match (ha_opened, caught_up) {
            (Some(opened), Some(mut caught_up)) => {
                // VRRP only once the peer's table is in (or the catch-up timed out): a
                // restarted director neither becomes master nor preempts with an empty table.
                let gate = Arc::clone(&inner);
                *lock(&inner.ha_gate) = Some(tokio::spawn(async move {
                    let _ = caught_up.wait_for(|done| *done).await;
                    let router = ha::start(&gate, opened);
                    *lock(&gate.ha) = Some(router);
                }));
            }
            (Some(opened), None) => *lock(&inner.ha) = Some(ha::start(&inner, opened)),
            (None, _) => {}
        }
        let (admin_stop, stop_rx) = watch::channel(false);
        let observer_task = membership
            .map(|m| tokio::spawn(observer::watch(Arc::clone(&inner), m, stop_rx.clone())));
        let admin_task = tokio::spawn(admin::serve(listener, Arc::clone(&inner), stop_rx));
        Ok(Director {
            inner,
            admin_addr,
            admin_stop,
            admin_task,
            observer_task,
        })
    }

    /// Where the admin listener is bound (the real port when the config said 0).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Re-reads the config file; an invalid one is refused with its diagnostics. The outcome
    /// names what changed and the start-only keys it could not apply.
    pub fn reload(&self) -> Result<events::Outcome, String> {
        self.inner.reload()
    }

    /// The current stats, as `/stats.json` shows them.
    pub fn snapshot(&self) -> Result<Snapshot, DatapathError> {
        Snapshot::take(&self.inner)
    }

    /// With `[ha]`, first resigns as master and waits for the peer to take over while still
    /// forwarding (`vrrp::runner`); then stops health checks, the admin listener and the
    /// cluster observer, leaves the cluster, and shuts the datapath down.
    pub async fn stop(self) -> Result<(), DatapathError> {
        let gate = lock(&self.inner.ha_gate).take();
        if let Some(gate) = gate {
            gate.abort();
            let _ = gate.await;
        }
        let router = lock(&self.inner.ha).take();
        if let Some(router) = router {
            router.stop().await;
        }
        let sync = lock(&self.inner.sync).take();
        if let Some(sync) = sync {
            sync.stop().await;
        }
        let _ = lock(&self.inner.health_stop).send(true);
        let _ = self.admin_stop.send(true);
        let _ = self.admin_task.await;
        if let Some(task) = self.observer_task {
            let _ = task.await;
        }
        if let Some(m) = &self.inner.membership {
            m.leave().await;
        }
        // Before the detach: a veth loses its NAPI context with its XDP program, and with it
        // the `threaded` file's write.
        lock(&self.inner.napi).restore();
        let result = lock(&self.inner.datapath).shutdown();
        tracing::info!("director stopped");
        result
    }
}

/// Runs a director until SIGTERM or SIGINT (exit) and reloads on SIGHUP.
pub async fn run(config_path: &Path, open: &Opener) -> Result<(), StartError> {
    use tokio::signal::unix::{signal, SignalKind};
    // Installed first, so a signal that arrives while starting is not fatal and not lost.
    let mut term = signal(SignalKind::terminate()).map_err(StartError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(StartError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(StartError::Signals)?;
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(StartError::Signals)?;
    let director = Director::start(config_path, open).await?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = usr1.recv() => {
                tracing::info!("SIGUSR1: reopening the access log");
                director.inner.access.reopen();
            }
            _ = hup.recv() => {
                if let Err(why) = director.reload() {
                    tracing::error!("reload refused, the running config stays:\n{why}");
                }
            }
        }
    }
    director.stop().await.map_err(StartError::from)
}
