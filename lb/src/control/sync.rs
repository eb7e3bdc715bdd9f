//! The director's connection sync (`[ha]` with peers, `crate::sync`): the runner wired to
//! the control state (backend addresses ↔ indices), the datapath (new flows, installs, the
//! live table) and the virtual router (only the master refreshes; the router starts once the
//! catch-up ended).
//!
//! Contract:
//! * [`open`] binds the sync socket on the `[ha]` interface's IPv4 address (the first one):
//!   no address there, or the port taken, fails the start with the reason.
//! * A new flow is described by its service's mode and its backend's `ip:port` as the
//!   control state has it now; a received record is resolved by its service key (the mode
//!   must match ours) and its backend's `ip:port` to our stable index; a backend we do not
//!   have, or one that is down (health or ARP), sets the record aside (`sync::runner`).
//! * Lock order as everywhere in the control plane: the datapath, then the state; never both
//!   held by this host but for the live walk, which reads the datapath first, then the state.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Weak};

use super::{lock, Inner, StartError};
use crate::config::DirectorConfig;
use crate::datapath::{Installed, NewFlow, SyncedFlow};
use crate::packet::parse::FiveTuple;
use crate::packet::service::{Mode, ServiceKey};
use crate::sync::host::{Aside, SyncHost};
use crate::sync::runner::{Opened, Settings, SyncRunner};
use crate::sync::{FlowState, Record};

/// The `[ha]` interface's first IPv4 address, where the sync socket binds.
fn local_address(config: &DirectorConfig) -> Result<Ipv4Addr, StartError> {
    let name = config.ha_interface().unwrap_or(&config.interface);
    let all = crate::iface::ipv4_addresses()
        .map_err(|e| StartError::Ha(format!("cannot list the interfaces' addresses: {e}")))?;
    all.into_iter()
        .find(|(dev, _)| dev == name)
        .map(|(_, ip)| ip)
        .ok_or_else(|| {
            StartError::Ha(format!(
                "connection sync binds to {name}'s IPv4 address, and {name} has none \
                 (give it one on the directors' LAN, or set [ha] sync = false)"
            ))
        })
}

/// Binds the sync socket (`[ha]` with sync on); `None` without sync.
pub(super) async fn open(config: &DirectorConfig) -> Result<Option<Opened>, StartError> {
    let Some(ha) = &config.ha else {
        return Ok(None);
    };
    let Some(sync) = &ha.sync else {
        return Ok(None);
    };
    let local = local_address(config)?;
    let settings = Settings {
        config: sync.clone(),
        local,
        peers: ha.peers.clone(),
    };
    SyncRunner::open(settings).await.map(Some).map_err(|e| {
        StartError::Ha(format!(
            "cannot bind the connection sync socket {local}:{}: {e}",
            sync.port
        ))
    })
}

/// The director as the sync runner sees it.
pub(super) struct Host {
    pub(super) inner: Weak<Inner>,
}

impl Host {
    fn inner(&self) -> Option<Arc<Inner>> {
        self.inner.upgrade()
    }
}

impl SyncHost for Host {
    fn describe(&self, flow: &NewFlow) -> Option<(Mode, SocketAddrV4)> {
        let inner = self.inner()?;
        let state = lock(&inner.state);
        let s = state.services.iter().find(|s| s.key() == flow.service)?;
        let b = s.backends.get(flow.backend as usize)?;
        Some((s.config.mode, b.addr()))
    }

    fn resolve(&self, r: &Record) -> Result<SyncedFlow, Aside> {
        let inner = self.inner().ok_or(Aside::UnknownService)?;
        let state = lock(&inner.state);
        let s = state
            .services
            .iter()
            .find(|s| s.key() == r.service && s.config.mode == r.mode)
            .ok_or(Aside::UnknownService)?;
        let (index, b) = s
            .backends
            .iter()
            .enumerate()
            .find(|(_, b)| b.addr() == r.backend)
            .ok_or(Aside::UnknownBackend)?;
        if !b.is_alive() {
            return Err(Aside::DeadBackend);
        }
        Ok(SyncedFlow {
            tuple: r.tuple,
            service: r.service,
            backend: index as u32,
            state: r.state,
            idle: r.age,
        })
    }

    fn install(&self, flows: &[SyncedFlow]) -> Installed {
        let refused = Installed {
            refused: flows.len() as u64,
            ..Installed::default()
        };
        let Some(inner) = self.inner() else {
            return refused;
        };
        let mut datapath = lock(&inner.datapath);
        datapath.install_synced(flows).unwrap_or_else(|e| {
            tracing::error!(error = %e, flows = flows.len(), "installing synced flows failed");
            refused
        })
    }

    fn live(&self, limit: usize) -> Vec<Record> {
        let Some(inner) = self.inner() else {
            return Vec::new();
        };
        let entries = match lock(&inner.datapath).conns(limit) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "reading the connection table for sync failed");
                return Vec::new();
            }
        };
        let state = lock(&inner.state);
        entries
            .iter()
            .filter_map(|e| {
                let service = ServiceKey {
                    vip: e.vip.0.octets(),
                    port: e.vip.1,
                    proto: e.proto,
                };
                let s = state.services.iter().find(|s| s.key() == service)?;
                let b = s.backends.get(e.backend as usize)?;
                let flow_state = if e.closing {
                    FlowState::Closing
                } else if e.half_open {
                    FlowState::HalfOpen
                } else {
                    FlowState::Open
                };
                Some(Record {
                    tuple: FiveTuple {
                        src: e.client.0.octets(),
                        dst: e.vip.0.octets(),
                        sport: e.client.1,
                        dport: e.vip.1,
                        proto: e.proto,
                    },
                    service,
                    backend: b.addr(),
                    mode: s.config.mode,
                    state: flow_state,
                    age: e.idle.unwrap_or_default(),
                })
            })
            .collect()
    }

    fn is_master(&self) -> bool {
        self.inner().is_some_and(|inner| {
            lock(&inner.ha)
                .as_ref()
                .is_some_and(|r| r.status().role() == "master")
        })
    }
}
