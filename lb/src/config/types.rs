//! The director config as written (serde, spans kept) and as used (validated, plain data).
//!
//! `director.toml -> RawConfig (serde, unknown keys rejected) -> validate -> DirectorConfig`.
//! Raw values that need checking beyond their type keep their span (`Spanned`) so that a
//! problem is reported at the offending value; strings with a closed set of values the
//! validator explains itself (modes, schedulers, durations) stay strings here.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_spanned::Spanned;

use crate::datapath::XdpMode;
use crate::packet::service::Mode;
use crate::sched::Scheduler;

/// Default admin listener of a director.
pub(crate) const DEFAULT_ADMIN: &str = "127.0.0.1:9190";
/// Default bound of the connection table.
pub(crate) const DEFAULT_MAX_CONNS: u32 = 1 << 20;
/// Default `icmp_rate`: ICMP errors per second per CPU (the kernel's `icmp_msgs_per_sec`).
pub(crate) const DEFAULT_ICMP_RATE: u32 = 1000;
/// Default `icmp_burst` (the kernel's `icmp_msgs_burst`).
pub(crate) const DEFAULT_ICMP_BURST: u32 = 50;
/// Largest accepted `icmp_rate` and `icmp_burst`.
pub(crate) const MAX_ICMP: u32 = 1_000_000;
/// Default `new_flow_rate`: 0, no new-flow guard (every new flow recorded). What a CPU can
/// record per second depends on the host and the table; the eviction rule already keeps a
/// SYN flood from evicting established flows (`packet::conntable`), and a guard set too low
/// would drop new NAT connections (`packet::decide`): an operator chooses it.
pub(crate) const DEFAULT_NEW_FLOW_RATE: u32 = 0;
/// Default `new_flow_burst`.
pub(crate) const DEFAULT_NEW_FLOW_BURST: u32 = 1000;
/// Largest accepted `new_flow_rate` and `new_flow_burst`.
pub(crate) const MAX_NEW_FLOW: u32 = 100_000_000;
/// Default `tcp_timeout`: how long a TCP connection's entry may stay unused (LVS's 900 s).
pub(crate) const DEFAULT_TCP_TIMEOUT: Duration = Duration::from_secs(900);
/// Default `tcp_fin_timeout`: the same once the flow sent a FIN or RST (LVS's 120 s).
pub(crate) const DEFAULT_TCP_FIN_TIMEOUT: Duration = Duration::from_secs(120);
/// Default `udp_timeout` (LVS's 300 s).
pub(crate) const DEFAULT_UDP_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest accepted `tcp_timeout` / `udp_timeout` (a week: within the table's 32-bit ticks).
pub(crate) const MAX_CONN_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
/// Largest accepted `max_conns`.
pub(crate) const MAX_MAX_CONNS: u32 = 1 << 24;
/// Default (and largest) table size.
pub(crate) const DEFAULT_TABLE_SIZE: u32 = crate::maglev::DEFAULT_TABLE_SIZE;
/// Default backend weight.
pub(crate) const DEFAULT_WEIGHT: u32 = 100;
/// Most services per director.
pub(crate) const MAX_SERVICES: usize = 32;
/// Most backends over all services.
pub(crate) const MAX_BACKENDS: usize = 4096;
/// Default health-check interval.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// Default health-check timeout.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default consecutive successes to come back up.
pub(crate) const DEFAULT_RISE: u32 = 2;
/// Default consecutive failures to go down.
pub(crate) const DEFAULT_FALL: u32 = 3;
/// Default HTTP status a check expects.
pub(crate) const DEFAULT_EXPECT: u16 = 200;

/// A whole director file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub director: Spanned<RawDirector>,
    #[serde(rename = "service", default)]
    pub services: Vec<Spanned<RawService>>,
    /// `[ha]`: director failover (VRRPv3).
    #[serde(default)]
    pub ha: Option<Spanned<RawHa>>,
    /// `[cluster]`: the cache cluster's gossip, joined as an observer.
    #[serde(default)]
    pub cluster: Option<Spanned<RawCluster>>,
    /// `[log]`: the access log (backend state changes and reloads).
    #[serde(default)]
    pub log: crate::accesslog::LogSection,
}

/// `[cluster]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    pub gossip_listen: Spanned<String>,
    #[serde(default)]
    pub seeds: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub secret_file: Option<Spanned<String>>,
    #[serde(default)]
    pub insecure: Option<Spanned<bool>>,
    #[serde(default)]
    pub probe_interval: Option<Spanned<String>>,
    #[serde(default)]
    pub suspect_timeout: Option<Spanned<String>>,
}

/// `[ha]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHa {
    pub vrid: Spanned<i64>,
    #[serde(default)]
    pub priority: Option<Spanned<i64>>,
    #[serde(default)]
    pub advert_interval: Option<Spanned<String>>,
    #[serde(default)]
    pub preempt: Option<Spanned<bool>>,
    #[serde(default)]
    pub preempt_delay: Option<Spanned<String>>,
    #[serde(default)]
    pub interface: Option<Spanned<String>>,
    #[serde(default)]
    pub peers: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub garp_repeat: Option<Spanned<i64>>,
    #[serde(default)]
    pub garp_interval: Option<Spanned<String>>,
    #[serde(default)]
    pub notify: Option<Spanned<String>>,
    #[serde(default)]
    pub sync: Option<Spanned<bool>>,
    #[serde(default)]
    pub secret_file: Option<Spanned<String>>,
    #[serde(default)]
    pub sync_insecure: Option<Spanned<bool>>,
    #[serde(default)]
    pub sync_port: Option<Spanned<i64>>,
    #[serde(default)]
    pub sync_delay: Option<Spanned<String>>,
    #[serde(default)]
    pub sync_refresh: Option<Spanned<String>>,
    #[serde(default)]
    pub sync_rate: Option<Spanned<i64>>,
    #[serde(default)]
    pub sync_catchup_timeout: Option<Spanned<String>>,
}

/// `[director]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDirector {
    pub id: Spanned<String>,
    pub interface: Spanned<String>,
    #[serde(default)]
    pub inner_interface: Option<Spanned<String>>,
    #[serde(default)]
    pub datapath: Option<Spanned<String>>,
    #[serde(default)]
    pub xdp_mode: Option<Spanned<String>>,
    #[serde(default)]
    pub admin: Option<Spanned<String>>,
    #[serde(default)]
    pub max_conns: Option<Spanned<i64>>,
    #[serde(default)]
    pub table_size: Option<Spanned<i64>>,
    #[serde(default)]
    pub threaded_napi: Option<Spanned<bool>>,
    #[serde(default)]
    pub icmp_rate: Option<Spanned<i64>>,
    #[serde(default)]
    pub icmp_burst: Option<Spanned<i64>>,
    #[serde(default)]
    pub new_flow_rate: Option<Spanned<i64>>,
    #[serde(default)]
    pub new_flow_burst: Option<Spanned<i64>>,
    #[serde(default)]
    pub tcp_timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub udp_timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub tcp_fin_timeout: Option<Spanned<String>>,
}

/// `[[service]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub vip: Spanned<String>,
    #[serde(default)]
    pub proto: Option<Spanned<String>>,
    pub mode: Spanned<String>,
    #[serde(default)]
    pub scheduler: Option<Spanned<String>>,
    pub backends: Spanned<RawBackends>,
    #[serde(default)]
    pub health: Option<Spanned<RawHealth>>,
}

/// `backends = [...]`, or `backends = "cluster"`.
#[derive(Debug)]
pub(crate) enum RawBackends {
    /// A list of backends.
    List(Vec<Spanned<RawBackend>>),
    /// A word (only `"cluster"` means anything: the cache cluster's nodes).
    Word(String),
}

impl<'de> Deserialize<'de> for RawBackends {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawBackends;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of backends such as [{ addr = \"10.0.0.11\" }]")
            }
            fn visit_str<E>(self, s: &str) -> Result<RawBackends, E> {
                Ok(RawBackends::Word(s.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawBackends, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(RawBackends::List(items))
            }
        }
        d.deserialize_any(V)
    }
}

/// One backend as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBackend {
    pub addr: Spanned<String>,
    #[serde(default)]
    pub weight: Option<Spanned<i64>>,
}

/// `health = { ... }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealth {
    #[serde(default)]
    pub kind: Option<Spanned<String>>,
    #[serde(default)]
    pub path: Option<Spanned<String>>,
    #[serde(default)]
    pub port: Option<Spanned<i64>>,
    #[serde(default)]
    pub interval: Option<Spanned<String>>,
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub rise: Option<Spanned<i64>>,
    #[serde(default)]
    pub fall: Option<Spanned<i64>>,
    #[serde(default)]
    pub expect: Option<Spanned<i64>>,
}

/// Which datapath forwards packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DatapathKind {
    /// The XDP program (the default).
    #[default]
    Xdp,
    /// Rust over AF_PACKET.
    Userspace,
}

impl DatapathKind {
    /// Name in config and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DatapathKind::Xdp => "xdp",
            DatapathKind::Userspace => "userspace",
        }
    }
}

/// A validated director config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectorConfig {
    /// `id`: this director's name in logs, the admin endpoints and the cluster's gossip
    /// (1..=32 of `[A-Za-z0-9_-]`; with `backends = "cluster"`, no node may have it).
    pub id: String,
    /// `interface`: where client packets for the VIPs arrive and the datapath attaches
    /// (1..=15 bytes, no `/`, `:` or spaces).
    pub interface: String,
    /// NAT: the interface towards the backends (`None`: one-armed).
    pub inner_interface: Option<String>,
    /// `datapath`: which datapath forwards the packets (default XDP).
    pub datapath: DatapathKind,
    /// `xdp_mode`: how the XDP program attaches (default `auto`: native, else generic with a
    /// warning).
    pub xdp_mode: XdpMode,
    /// `admin`: where the admin endpoints listen (default `127.0.0.1:9190`; loopback clients
    /// only).
    pub admin: SocketAddr,
    /// `max_conns`: bound of the connection table in entries (1..=2^24, default 2^20; NAT
    /// takes 2 per connection, one each way).
    pub max_conns: u32,
    /// Slots of every service's table (prime).
    pub table_size: u32,
    /// `threaded_napi`: `Some(on)` sets the interfaces' NAPI mode while running
    /// (`crate::napi`), `None` leaves it as it is.
    pub threaded_napi: Option<bool>,
    /// `icmp_rate` / `icmp_burst`: the budget of ICMP errors each CPU (XDP) or worker
    /// (userspace) sends.
    pub icmp: crate::packet::ratelimit::IcmpLimit,
    /// `new_flow_rate` / `new_flow_burst`: the new-flow guard of each CPU (XDP) or worker
    /// (userspace): how many new flows are recorded (`IcmpLimit::NONE`: no guard).
    pub new_flow: crate::packet::ratelimit::IcmpLimit,
    /// `tcp_timeout` / `udp_timeout`: how long a flow's entry may stay unused.
    pub conn_timeouts: crate::datapath::ConnTimeouts,
    /// Services, in file order.
    pub services: Vec<ServiceConfig>,
    /// `[cluster]`: present when the director observes a cache cluster.
    pub cluster: Option<super::cluster::ClusterConfig>,
    /// `[ha]`: present when the director shares its VIPs with a peer (VRRPv3).
    pub ha: Option<super::ha::HaConfig>,
    /// `[log]`: the access log (one line per backend state change and per reload).
    pub log: crate::accesslog::LogSection,
}

impl DirectorConfig {
    /// The distinct VIPs of the services, in file order: the virtual router's addresses.
    pub fn vips(&self) -> Vec<Ipv4Addr> {
        let mut out: Vec<Ipv4Addr> = Vec::new();
        for s in &self.services {
            if !out.contains(s.vip.ip()) {
                out.push(*s.vip.ip());
            }
        }
        out
    }

    /// The interface VRRP adverts use: `[ha] interface`, else `[director] interface`.
    pub fn ha_interface(&self) -> Option<&str> {
        let ha = self.ha.as_ref()?;
        Some(ha.interface.as_deref().unwrap_or(&self.interface))
    }
}

/// IP protocol of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Proto {
    /// TCP (the default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// Name in config and stats.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// IP protocol number.
    pub(crate) fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

/// A validated `[[service]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// `vip`: the virtual address and port clients connect to (port not 0; with `proto`,
    /// unique among the services).
    pub vip: SocketAddrV4,
    /// `proto`: the IP protocol balanced (default TCP).
    pub proto: Proto,
    /// `mode`: how packets reach a backend: DR (MAC rewrite), TUN (IP-in-IP) or NAT
    /// (address and port rewritten both ways).
    pub mode: Mode,
    /// `scheduler`: how a new flow's backend is picked (default Maglev; wrr; sh by source
    /// address).
    pub scheduler: Scheduler,
    /// Backends, in file order (`backends = "cluster"`: empty in the file's config, filled
    /// from the cluster's members while running).
    pub backends: Vec<BackendConfig>,
    /// `backends = "cluster"`: the backends are the cache cluster's nodes.
    pub cluster: bool,
    /// `health`: how each backend is checked (default: a TCP connect every 2 s).
    pub health: HealthCheck,
}

/// A validated backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BackendConfig {
    /// The backend's IPv4 address (unique within its service).
    pub ip: Ipv4Addr,
    /// Port packets go to (NAT: as configured or the VIP port; DR/TUN: the VIP port).
    pub port: u16,
    /// Its share of the service's new flows, relative to the other backends (0..=65535,
    /// default 100; 0 drains it: no new flows, established ones stay).
    pub weight: u32,
}

/// What a health check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// TCP connect (the default).
    Tcp,
    /// HTTP `GET path`, passing on status `expect`.
    Http {
        /// Request path.
        path: String,
        /// Passing status.
        expect: u16,
    },
    /// No check: backends are always up.
    None,
}

/// A validated `health = { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// What a probe does: TCP connect (default), HTTP `GET`, or nothing (always up).
    pub kind: CheckKind,
    /// Port probed (`None`: the backend's port).
    pub port: Option<u16>,
    /// Time between two probes of one backend (above 0, default 2 s).
    pub interval: Duration,
    /// Bound of one probe (above 0 and shorter than `interval`, default 1 s); a probe that
    /// takes longer fails.
    pub timeout: Duration,
    /// Consecutive passed probes that bring a down backend back up (1..=100, default 2).
    pub rise: u32,
    /// Consecutive failed probes that take a backend down (1..=100, default 3): it leaves
    /// the table within `fall × interval + timeout`.
    pub fall: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            kind: CheckKind::Tcp,
            port: None,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            rise: DEFAULT_RISE,
            fall: DEFAULT_FALL,
        }
    }
}
