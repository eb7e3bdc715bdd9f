//! What the sync runner needs from the director it runs in ([`SyncHost`]): backend addresses
//! for the flows it sends, backend indices for the records it receives, the datapath's
//! table, and the VRRP state. The running director implements it (`control::sync`); the
//! runner's tests implement it with plain maps.

use std::net::SocketAddrV4;

use super::record::Record;
use crate::datapath::{Installed, NewFlow, SyncedFlow};
use crate::packet::service::Mode;

/// Why a received record is not installed now: kept aside, retried, counted by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aside {
    /// No installed service has the record's (VIP, port, protocol).
    UnknownService,
    /// The service has no backend at the record's address.
    UnknownBackend,
    /// The backend is there but down: installing would send the flow to a dead backend.
    DeadBackend,
}

impl Aside {
    /// Every reason, in counter order.
    pub const ALL: [Aside; 3] = [
        Aside::UnknownService,
        Aside::UnknownBackend,
        Aside::DeadBackend,
    ];

    /// Stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Aside::UnknownService => "unknown_service",
            Aside::UnknownBackend => "unknown_backend",
            Aside::DeadBackend => "dead_backend",
        }
    }
}

/// The director, as the sync runner sees it.
pub trait SyncHost: Send + Sync + 'static {
    /// The mode of `flow`'s service and the address of its backend now; `None` when the
    /// service or the backend is gone since the flow was recorded (not sent).
    fn describe(&self, flow: &NewFlow) -> Option<(Mode, SocketAddrV4)>;
    /// `record`'s flow with this director's backend index, or why it cannot be installed.
    fn resolve(&self, record: &Record) -> Result<SyncedFlow, Aside>;
    /// Installs resolved flows (`Datapath::install_synced`); an error is logged by the host
    /// and reported as every flow refused.
    fn install(&self, flows: &[SyncedFlow]) -> Installed;
    /// Up to `limit` live flows of the connection table as records (their backends by
    /// address), for the periodic refresh and the bulk dump.
    fn live(&self, limit: usize) -> Vec<Record>;
    /// Whether this director is the VRRP master now (only the master refreshes).
    fn is_master(&self) -> bool;
}
