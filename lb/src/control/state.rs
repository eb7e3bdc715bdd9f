//! The control plane's truth, as plain data: per service, its backends with stable indices,
//! config weight, health and resolved MAC; and the services built from them for a datapath.
//!
//! Contract:
//! * A backend's index never changes while the process runs. [`State::reconcile`] (a reload)
//!   keeps every known backend where it is: one still in the config takes the new weight,
//!   one removed from it stays at effective weight 0 (draining: its established flows keep it
//!   through the connection table), one re-added gets its old index back, and new ones are
//!   appended. Services are matched by (VIP, protocol); a service gone from the config is
//!   dropped (the datapath removes it).
//! * Effective weight = config weight (or the runtime override's, `strait ctl backend`), or 0
//!   when the backend is removed from the config, down by its health checks, has no resolved
//!   MAC ("no ARP reply"), or is set to `drain` or `maint` at runtime.
//! * Alive (may keep established flows) = not down by its health checks, a resolved MAC and
//!   not in `maint`; a backend drained on purpose (weight 0, removed from the config, `drain`)
//!   stays alive, so its flows stay; a dead one's flows are rescheduled by the datapath on
//!   their next packet. A cluster node that joined is down but alive until its checks decide
//!   (`Health::joining`): it takes no new flows before `rise` checks pass, but the flows a
//!   peer director's sync says are on it are installed, not set aside.
//! * A backend's runtime override (`crate::health::admin`, set by `backend_ctl`) survives a
//!   reload that keeps its weight and is cleared by one that changes it.
//! * [`State::build`] is a pure function of the state: every service with its table laid
//!   out by its scheduler over the effective weights, and each backend's liveness.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::SystemTime;

use crate::config::{BackendConfig, CheckKind, DirectorConfig, Proto, ServiceConfig};
use crate::health::admin::Override;
use crate::health::{CheckOutcome, Health, ServerState};
use crate::maglev::{self, MaglevError};
use crate::packet::service::{Backend, Mode, Service, ServiceKey};

/// Identity of a service: VIP and protocol.
pub(super) type ServiceId = (SocketAddrV4, Proto);

/// One backend as the control plane knows it.
#[derive(Debug, Clone)]
pub(super) struct BackendState {
    /// Address.
    pub ip: Ipv4Addr,
    /// Port packets go to.
    pub port: u16,
    /// Weight from the config.
    pub weight: u32,
    /// Still listed in the config (false: draining until restart).
    pub(crate) in_config: bool,
    /// Active-check state.
    pub health: Health,
    /// Resolved MAC; `None` while unresolved.
    pub mac: Option<[u8; 6]>,
    /// Runtime control: drain, maint, a weight override (`backend_ctl`).
    pub admin: Override,
}

impl BackendState {
    /// `ip:port`.
    pub(super) fn addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.ip, self.port)
    }

    /// The weight the tables use (see the module doc).
    pub(super) fn effective_weight(&self) -> u32 {
        if self.in_config && self.mac.is_some() && self.health.state() == ServerState::Up {
            self.admin.scheduled_weight(self.weight)
        } else {
            0
        }
    }

    /// Whether its established flows may stay on it (see the module doc).
    pub(super) fn is_alive(&self) -> bool {
        self.mac.is_some()
            && (self.health.state() != ServerState::Down || self.health.joining())
            && self.admin.keeps_existing()
    }

    /// Name and detail of the backend's state for stats: `maint` (runtime), `up`, `down`
    /// (health or no ARP reply) or `draining` (weight 0, removed from the config, or `drain`
    /// at runtime).
    pub(super) fn status(&self) -> (&'static str, String) {
        let last = || self.health.last_check().map(|c| c.detail.clone());
        if !self.admin.keeps_existing() {
            ("maint", "maint set by strait ctl backend".into())
        } else if !self.in_config {
            ("draining", "removed from config".into())
        } else if self.mac.is_none() {
            ("down", "no ARP reply".into())
        } else if self.health.state() == ServerState::Down {
            (
                "down",
                last().unwrap_or_else(|| "joined: not checked yet".into()),
            )
        } else if !self.admin.takes_new() {
            ("draining", "drain set by strait ctl backend".into())
        } else if self.admin.weight(self.weight) == 0 {
            ("draining", "weight 0".into())
        } else {
            ("up", last().unwrap_or_else(|| "not checked yet".into()))
        }
    }
}

/// One service: its config and its backends by stable index.
#[derive(Debug, Clone)]
pub(super) struct ServiceState {
    /// The service's current config (its backend list is the config's, not the index list).
    pub config: ServiceConfig,
    /// Backends by stable index.
    pub backends: Vec<BackendState>,
}

impl ServiceState {
    /// Identity.
    pub(super) fn id(&self) -> ServiceId {
        (self.config.vip, self.config.proto)
    }

    /// The datapath's key.
    pub(super) fn key(&self) -> ServiceKey {
        key_of(&self.config)
    }
}

/// The datapath's key of a service config.
pub(super) fn key_of(c: &ServiceConfig) -> ServiceKey {
    ServiceKey {
        vip: c.vip.ip().octets(),
        port: c.vip.port(),
        proto: c.proto.number(),
    }
}

/// Every service's state.
#[derive(Debug, Clone)]
pub(super) struct State {
    /// Table size of every service.
    pub table_size: u32,
    /// Services in config order.
    pub services: Vec<ServiceState>,
}

impl State {
    /// The state of a freshly loaded config. `initial_mac(mode)` is the MAC a backend starts
    /// with: `Some([0; 6])` when its interface needs no resolution (loopback), else `None`.
    pub(super) fn new(
        cfg: &DirectorConfig,
        now: SystemTime,
        initial_mac: impl Fn(Mode) -> Option<[u8; 6]>,
    ) -> State {
        let mut s = State {
            table_size: cfg.table_size,
            services: Vec::new(),
        };
        s.reconcile(cfg, now, initial_mac);
        s
    }

    /// Applies a reloaded config (see the module doc).
    pub(super) fn reconcile(
        &mut self,
        cfg: &DirectorConfig,
        now: SystemTime,
        initial_mac: impl Fn(Mode) -> Option<[u8; 6]>,
    ) {
        self.reconcile_with(cfg, now, initial_mac, false);
    }

    /// [`State::reconcile`] after the director started: a backend new to a
    /// `backends = "cluster"` service (a node that joined) starts Down and takes flows only
    /// once it passed `rise` checks (Up at once under `kind = "none"`: nothing checks it);
    /// the config's own backends start Up, as at start.
    pub(super) fn reconcile_joining(
        &mut self,
        cfg: &DirectorConfig,
        now: SystemTime,
        initial_mac: impl Fn(Mode) -> Option<[u8; 6]>,
    ) {
        self.reconcile_with(cfg, now, initial_mac, true);
    }

    fn reconcile_with(
        &mut self,
        cfg: &DirectorConfig,
        now: SystemTime,
        initial_mac: impl Fn(Mode) -> Option<[u8; 6]>,
        joining: bool,
    ) {
        let mut old = std::mem::take(&mut self.services);
        self.table_size = cfg.table_size;
        for sc in &cfg.services {
            let found = old.iter().position(|s| s.id() == (sc.vip, sc.proto));
            let mut service = match found {
                Some(i) => old.swap_remove(i),
                None => ServiceState {
                    config: sc.clone(),
                    backends: Vec::new(),
                },
            };
            if service.config.mode != sc.mode {
                // Another interface may carry the backends now: resolve again.
                for b in &mut service.backends {
                    b.mac = initial_mac(sc.mode);
                }
            }
            service.config = sc.clone();
            for b in &mut service.backends {
                b.in_config = false;
            }
            // With no check there is no `rise` to wait for: a joining node is up at once.
            let down = joining && sc.cluster && sc.health.kind != CheckKind::None;
            for bc in &sc.backends {
                upsert(&mut service.backends, bc, now, initial_mac(sc.mode), down);
            }
            self.services.push(service);
        }
    }

    /// The service with this identity.
    pub(super) fn service_mut(&mut self, id: ServiceId) -> Option<&mut ServiceState> {
        self.services.iter_mut().find(|s| s.id() == id)
    }

    /// The backend at `index` of service `id`.
    pub(super) fn backend_mut(&mut self, id: ServiceId, index: usize) -> Option<&mut BackendState> {
        self.service_mut(id)?.backends.get_mut(index)
    }

    /// Records a check result; returns the new state when it changed.
    pub(super) fn on_check(
        &mut self,
        id: ServiceId,
        index: usize,
        outcome: CheckOutcome,
        now: SystemTime,
    ) -> Option<ServerState> {
        let (rise, fall) = {
            let h = &self.service_mut(id)?.config.health;
            (h.rise, h.fall)
        };
        self.backend_mut(id, index)?
            .health
            .on_check(outcome, rise, fall, now)
    }

    /// Records a MAC (or its absence); returns whether it changed.
    pub(super) fn set_mac(&mut self, id: ServiceId, index: usize, mac: Option<[u8; 6]>) -> bool {
        match self.backend_mut(id, index) {
            Some(b) if b.mac != mac => {
                b.mac = mac;
                true
            }
            _ => false,
        }
    }

    /// Every service for [`crate::datapath::Datapath::apply`] (see the module doc).
    pub(super) fn build(&self) -> Result<Vec<(ServiceKey, Service)>, MaglevError> {
        self.services
            .iter()
            .map(|s| {
                let backends: Vec<Backend> = s
                    .backends
                    .iter()
                    .map(|b| Backend {
                        ip: b.ip.octets(),
                        mac: b.mac.unwrap_or([0; 6]),
                        port: b.port,
                        weight: b.effective_weight(),
                        alive: b.is_alive(),
                    })
                    .collect();
                let weighted: Vec<maglev::Backend> = backends
                    .iter()
                    .map(|b| maglev::Backend {
                        id: b.id(),
                        weight: b.weight,
                    })
                    .collect();
                let scheduler = s.config.scheduler;
                let table = scheduler.table(&weighted, self.table_size)?;
                Ok((
                    s.key(),
                    Service {
                        mode: s.config.mode,
                        table,
                        backends,
                        hash: scheduler.flow_hash(),
                    },
                ))
            })
            .collect()
    }
}

/// Updates the backend `bc` in `list` or appends it.
/// A backend it adds starts Down (until `rise` checks pass) when `down`, else Up.
fn upsert(
    list: &mut Vec<BackendState>,
    bc: &BackendConfig,
    now: SystemTime,
    mac: Option<[u8; 6]>,
    down: bool,
) {
    match list.iter_mut().find(|b| b.ip == bc.ip && b.port == bc.port) {
        Some(b) => {
            let kept = b.admin;
            if b.admin.on_reload(b.weight, bc.weight) {
                tracing::info!(backend = %b.addr(), cleared = %kept.describe(b.weight),
                    old_weight = b.weight, new_weight = bc.weight,
                    "reload changed the backend's weight: its runtime override is cleared");
            }
            b.weight = bc.weight;
            b.in_config = true;
        }
        None => list.push(BackendState {
            ip: bc.ip,
            port: bc.port,
            weight: bc.weight,
            in_config: true,
            health: if down {
                Health::new_down(now)
            } else {
                Health::new(now)
            },
            mac,
            admin: Override::default(),
        }),
    }
}

#[cfg(test)]
mod tests;
