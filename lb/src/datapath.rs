//! The seam between the director's control plane and its datapaths (XDP, userspace).
//!
//! Contract:
//! * The control plane owns the truth: it builds every [`Service`] (backends with resolved
//!   MACs, weights, Maglev-style table) and hands the whole set to [`Datapath::apply`] whenever
//!   health or config changes. A datapath installs each service so that a packet sees either
//!   the old or the new version of it, never a mix; services absent from the set are removed.
//! * Backend indices are stable identities (see `packet::service`): the control plane keeps a
//!   removed-from-config backend at weight 0 only as long as it wants its flows to drain, and
//!   a datapath never renumbers them.
//! * Statistics are cumulative since the datapath was opened; `flows` counts new flows
//!   assigned to a backend (not the live entries in the connection table).
//! * ARP for the VIPs (director HA): [`Datapath::set_owned`] names the VIPs this director
//!   answers ARP requests for on its client-facing `interface`, from the moment it returns
//!   until the next call, which replaces the set whole. The datapath itself answers
//!   (`packet::arp`: a request for an owned VIP, not gratuitous, arriving on `interface`
//!   becomes its reply from `interface`'s MAC); every other ARP frame (replies, gratuitous
//!   ARP, requests for any other address, anything arriving on `inner_interface`) reaches the
//!   kernel unchanged. After open the set is empty, so a standalone director behaves as
//!   before: the kernel answers for the VIPs it holds as addresses. Ownership touches neither
//!   the services nor forwarding: VIP traffic that reaches a director is balanced whether it
//!   owns the VIP or not (a VRRP backup keeps its tables; it only stays silent on ARP).
//!   Why the datapath and not a kernel address: its answers end with the process (the XDP
//!   link and the packet sockets are the process's), so a director killed by SIGKILL stops
//!   drawing the VIPs' traffic at once, where a kernel address would outlive it. At most
//!   `packet::arp::MAX_OWNED` distinct VIPs: more is refused and the previous set stays. A
//!   request arriving during a change sees the old set, the new one, or (XDP, whose map is
//!   updated key by key: additions first, then removals) their union.
//! * [`Datapath::shutdown`] detaches everything the datapath attached (XDP programs, packet
//!   sockets, nftables rules); it is idempotent and also runs on drop.

mod stream;

use std::net::Ipv4Addr;

use crate::packet::conntable::{Placed, Was};
use crate::packet::service::{Mode, Service, ServiceKey};

pub(crate) use stream::NewFlowStream;
pub use stream::{NEW_FLOW_QUEUE, SYNC_EVENTS_LOST};

/// How the XDP program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpMode {
    /// Native (driver) mode, falling back to generic (skb) mode with a warning.
    #[default]
    Auto,
    /// Native mode only; failing to attach is an error.
    Native,
    /// Generic (skb) mode.
    Generic,
}

impl XdpMode {
    /// Name in config, logs and stats.
    pub fn as_str(self) -> &'static str {
        match self {
            XdpMode::Auto => "auto",
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        }
    }
}

/// Where a datapath runs: interfaces resolved by [`crate::iface::Interface::by_name`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatapathOptions {
    /// The client-facing interface (where the VIPs are reached); DR and TUN forwards leave
    /// through it too.
    pub interface: crate::iface::Interface,
    /// NAT: the interface towards the backends (NAT forwards leave here, NAT replies arrive
    /// here). `None`: the same as `interface` (one-armed NAT).
    pub inner_interface: Option<crate::iface::Interface>,
    /// XDP attach mode (ignored by the userspace datapath).
    pub xdp_mode: XdpMode,
    /// Bound of the connection table (entries).
    pub max_conns: u32,
    /// Budget of the ICMP errors sent instead of forwarding, per CPU (XDP) or worker
    /// (userspace) (`packet::ratelimit`).
    pub icmp: crate::packet::ratelimit::IcmpLimit,
    /// How long a flow's forward entry may stay unused before it expires.
    pub conn_timeouts: ConnTimeouts,
    /// The new-flow guard: how many new flows are recorded in the connection table, per CPU
    /// (XDP) or worker (userspace) (`packet::ratelimit`, `packet::decide`); `NONE`: all.
    pub new_flow: crate::packet::ratelimit::IcmpLimit,
}

/// Idle timeouts of the connection table's forward entries, by protocol (zero: never). An
/// expired entry reads as absent: the flow's next packet is scheduled anew (as a new flow)
/// and recorded over it. NAT reply entries follow their forward entry (no timeout of their
/// own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnTimeouts {
    /// TCP flows.
    pub tcp: std::time::Duration,
    /// TCP flows that sent a FIN or RST.
    pub tcp_fin: std::time::Duration,
    /// UDP flows.
    pub udp: std::time::Duration,
}

impl ConnTimeouts {
    /// In ticks of `hz` per second ([`ticks_of`]).
    pub(crate) fn ticks(self, hz: u32) -> crate::packet::service::IdleTimeouts {
        crate::packet::service::IdleTimeouts {
            tcp: ticks_of(self.tcp, hz),
            tcp_fin: ticks_of(self.tcp_fin, hz),
            udp: ticks_of(self.udp, hz),
        }
    }
}

/// `d` in ticks of `hz` per second, rounded up, at most `i32::MAX` (the tables' signed 32-bit
/// idle arithmetic).
pub(crate) fn ticks_of(d: std::time::Duration, hz: u32) -> u32 {
    let n = (d.as_nanos() * u128::from(hz)).div_ceil(1_000_000_000);
    u32::try_from(n.min(i32::MAX as u128)).unwrap_or(i32::MAX as u32)
}

/// Counters of one backend of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackendStats {
    /// Packets forwarded to it.
    pub packets: u64,
    /// Bytes forwarded to it (frame bytes as sent).
    pub bytes: u64,
    /// New flows assigned to it.
    pub flows: u64,
}

/// One forward entry of the connection table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnEntry {
    /// Client address and port.
    pub client: (Ipv4Addr, u16),
    /// VIP and port the client connected to.
    pub vip: (Ipv4Addr, u16),
    /// IP protocol (6 TCP, 17 UDP).
    pub proto: u8,
    /// Backend index inside the service of `vip`.
    pub backend: u32,
    /// Time since the flow's last packet (`None`: the datapath cannot tell).
    pub idle: Option<std::time::Duration>,
    /// The flow sent a TCP FIN or RST (its entry expires after `tcp_fin_timeout`).
    pub closing: bool,
    /// Half-open: no packet without SYN has used the entry since it was recorded
    /// (`packet::conntable`; evicted first).
    pub half_open: bool,
    /// Installed by the HA sync ([`Datapath::install_synced`]) and not recorded again here
    /// since (a packet of the flow that records it anew clears the mark).
    pub synced: bool,
}

/// A new flow a datapath recorded in its connection table, for the HA sync: the flow
/// (client → VIP), its service and the backend index it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewFlow {
    /// Client → VIP 5-tuple.
    pub tuple: crate::packet::parse::FiveTuple,
    /// The service (VIP, port, protocol).
    pub service: ServiceKey,
    /// The backend index inside the service.
    pub backend: u32,
}

/// A flow received from the peer director, to install in this datapath's connection table
/// ([`Datapath::install_synced`]), its backend already resolved to this director's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncedFlow {
    /// Client → VIP 5-tuple.
    pub tuple: crate::packet::parse::FiveTuple,
    /// The service (VIP, port, protocol).
    pub service: ServiceKey,
    /// The backend index inside the service, on this director.
    pub backend: u32,
    /// Half-open, open or closing, as on the peer.
    pub state: crate::sync::FlowState,
    /// Time since the flow's last packet on the peer.
    pub idle: std::time::Duration,
}

/// What [`Datapath::install_synced`] did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Installed {
    /// Entries written (a NAT flow's reply entry counts with its forward entry, once).
    pub installed: u64,
    /// Of those, flows whose key already had an entry here, older than the record.
    pub replaced: u64,
    /// Flows left alone because their entry here was used more recently than the peer last
    /// saw the flow (a later real packet wins over a synced record).
    pub kept: u64,
    /// Entries that took the way of another flow (a full set's victim, as a record's
    /// eviction; reported here only: the counter `conn_evicted` counts the packets' records).
    pub evicted: u64,
    /// Flows refused: no such service installed, backend index outside its list, a set held
    /// by the program past the claim's attempts, or a flow already idle past its timeout
    /// here (it would only evict a live entry for one that reads as expired).
    pub refused: u64,
}

impl Installed {
    /// Counts one flow: where its forward entry went and, when written, its NAT reply entry.
    pub(crate) fn count(&mut self, forward: Placed, reply: Option<Placed>) {
        match forward {
            Placed::Kept(_) => return self.kept += 1,
            Placed::Written { was, .. } => {
                self.installed += 1;
                self.replaced += u64::from(was == Was::Held);
            }
        }
        for placed in std::iter::once(forward).chain(reply) {
            if let Placed::Written {
                was: Was::Evicted { .. },
                ..
            } = placed
            {
                self.evicted += 1;
            }
        }
    }
}

/// Datapath-wide counters, by stable name (`"pass_not_ipv4"`, `"tx_new"`, …), as the
/// `abi::Counter` names for XDP; the userspace datapath uses the same names.
pub type Counters = Vec<(&'static str, u64)>;

/// An error of a datapath operation, with what was attempted.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {detail}")]
pub struct DatapathError {
    /// What was attempted, e.g. `"attach XDP to eth0"`.
    pub what: String,
    /// The cause, rendered with its sources.
    pub detail: String,
}

impl DatapathError {
    /// An error from any `std::error::Error`, rendering its whole source chain.
    pub fn new(what: impl Into<String>, err: &(dyn std::error::Error + 'static)) -> Self {
        let mut detail = err.to_string();
        let mut source = err.source();
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        DatapathError {
            what: what.into(),
            detail,
        }
    }

    /// An error from a message.
    pub fn msg(what: impl Into<String>, detail: impl Into<String>) -> Self {
        DatapathError {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

/// A datapath (see the module doc).
pub trait Datapath: Send {
    /// Short name: `"xdp/native"`, `"xdp/generic"`, `"userspace"`.
    fn name(&self) -> String;
    /// Installs exactly this set of services (see the module doc).
    fn apply(&mut self, services: &[(ServiceKey, Service)]) -> Result<(), DatapathError>;
    /// From now on answers ARP requests on `interface` for exactly `vips` (duplicates count
    /// once), replacing the previous set; empty: for none, as after open (see the module doc).
    /// Answers are counted `arp_reply`.
    fn set_owned(&mut self, vips: &[Ipv4Addr]) -> Result<(), DatapathError>;
    /// Counters of each backend of the service, by backend index (length = its backends).
    fn backend_stats(&self, key: &ServiceKey) -> Result<Vec<BackendStats>, DatapathError>;
    /// Up to `limit` forward entries of the connection table.
    fn conns(&self, limit: usize) -> Result<Vec<ConnEntry>, DatapathError>;
    /// Number of forward entries in the connection table (XDP: the program's gauge, without
    /// reading the table).
    fn conn_count(&self) -> Result<u64, DatapathError>;
    /// Datapath-wide counters.
    fn counters(&self) -> Result<Counters, DatapathError>;
    /// The new flows this datapath records from now on, in order, through a bounded
    /// channel of [`NEW_FLOW_QUEUE`] flows (when the receiver lags, flows are dropped and
    /// counted [`SYNC_EVENTS_LOST`], never the packets; a flow over the new-flow guard, not
    /// recorded, is not in it); `None` when already taken (XDP: also outside a tokio
    /// runtime, where its event ring cannot be read). Without a taker nothing is queued.
    fn take_new_flows(&mut self) -> Option<tokio::sync::mpsc::Receiver<NewFlow>>;
    /// Installs flows synced from the peer director into the connection table, by the
    /// table's rules (the set claim; the way of the key, else an empty way, else the set's
    /// victim; half-open or established as `state` says, closing marked, last seen `idle`
    /// ago), each forward entry tied to no service version (the first packet of the flow
    /// here refreshes it under the installed one) and marked synced; a NAT flow's reply
    /// entry too. An entry here used more recently than `now − idle` is kept (see
    /// [`Installed`]).
    fn install_synced(&mut self, flows: &[SyncedFlow]) -> Result<Installed, DatapathError>;
    /// Detaches everything (see the module doc).
    fn shutdown(&mut self) -> Result<(), DatapathError>;
}

/// Opens the XDP datapath ([`crate::xdp::XdpDatapath`]) and starts reading its new-flow
/// events (`drain_flow_events`), or explains that this build has none (clang was missing when
/// `lb` was built: `cfg(strait_no_bpf)`).
pub fn open_xdp(opts: &DatapathOptions) -> Result<Box<dyn Datapath>, DatapathError> {
    #[cfg(not(strait_no_bpf))]
    {
        let mut dp = crate::xdp::XdpDatapath::open(opts)?;
        dp.drain_flow_events();
        Ok(Box::new(dp) as Box<dyn Datapath>)
    }
    #[cfg(strait_no_bpf)]
    {
        Err(DatapathError::msg(
            format!("open the xdp datapath on {}", opts.interface.name),
            "this build has no XDP program (clang was missing when strait was built): \
             install clang and rebuild, or set datapath = \"userspace\"",
        ))
    }
}

/// The forwarding modes a datapath can serve, for config validation messages.
pub const MODES: [Mode; 3] = [Mode::Dr, Mode::Tun, Mode::Nat];
