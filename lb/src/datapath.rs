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

use std::net::Ipv4Addr;

use crate::packet::service::{Mode, Service, ServiceKey};

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
    /// In ticks of `hz` per second, rounded up, at most `i32::MAX` (the tables' signed 32-bit
    /// idle arithmetic).
    pub(crate) fn ticks(self, hz: u32) -> crate::packet::service::IdleTimeouts {
        let t = |d: std::time::Duration| {
            let n = (d.as_nanos() * u128::from(hz)).div_ceil(1_000_000_000);
            u32::try_from(n.min(i32::MAX as u128)).unwrap_or(i32::MAX as u32)
        };
        crate::packet::service::IdleTimeouts {
            tcp: t(self.tcp),
            tcp_fin: t(self.tcp_fin),
            udp: t(self.udp),
        }
    }
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
