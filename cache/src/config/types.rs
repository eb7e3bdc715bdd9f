//! The node config as plain data: what `config.toml` deserializes into.
//!
//! `node.toml -> NodeConfig (serde, unknown keys rejected) -> validate() -> Arc<NodeConfig>`.
//! Defaults are named `DEFAULT_*` consts; durations are humantime strings ("500ms", "2s"),
//! sizes are [`Size`]s ("64MiB", "64m"; `strait_lb::config::units`).

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;
use strait_lb::config::units::Size;

/// The `[[pool]]` and `[[route]]` sections: the origin's own (`crate::origin::section`).
pub use crate::origin::section::{
    CacheKeyConfig, CheckKind, HeaderMatch, HealthConfig, MatchConfig, OneOrMany, PassiveConfig,
    PersistenceConfig, PoolConfig, RouteConfig, ServerConfig, DEFAULT_CHECK_INTERVAL,
    DEFAULT_CHECK_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_FALL, DEFAULT_FIRST_BYTE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_IDLE_PER_SERVER, DEFAULT_PASSIVE_BACKOFF,
    DEFAULT_PASSIVE_FAILURES, DEFAULT_RISE,
};
/// Scheduling algorithm of a pool: the scheduler's own, from `strait_lb::select`.
pub use strait_lb::select::schedule::Algorithm;

/// Default admin listener.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:9090";
/// Default RAM tier bound.
pub const DEFAULT_RAM: Size = Size::mib(256);
/// Default largest object kept in the RAM tier (larger ones are streamed, not stored), when
/// `storage.ram / RAM_SHARD_DIVISOR` is not smaller.
pub const DEFAULT_MAX_OBJECT_SIZE: Size = Size::mib(16);
/// The RAM tier has this many shards and one object must fit in one: `max_object_size` is at
/// most `ram / RAM_SHARD_DIVISOR`.
pub const RAM_SHARD_DIVISOR: u64 = 8;
/// How long a request waits on another request's fill of the same key before going to the
/// origin itself.
pub const DEFAULT_COALESCE_TIMEOUT: Duration = Duration::from_secs(5);
/// Heuristic freshness: share of (Date - Last-Modified) (RFC 9111 §4.2.2).
pub const DEFAULT_HEURISTIC_PERCENT: u32 = 10;
/// Heuristic freshness cap.
pub const DEFAULT_HEURISTIC_MAX: Duration = Duration::from_secs(24 * 3600);
/// Largest request head (request line + headers) accepted; larger gets 431.
pub const DEFAULT_MAX_REQUEST_HEADER: Size = Size::kib(64);
/// Time a draining node gives in-flight requests on SIGTERM.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request body a client may send (413 beyond).
pub const DEFAULT_MAX_REQUEST_BODY: Size = Size::mib(64);
/// A client request body that sends nothing for this long is cut (408).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// A client that takes none of its response for this long is disconnected.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// A reader of a shared stream that stays a whole window behind for this long is detached.
pub const DEFAULT_STREAM_LAG: Duration = Duration::from_secs(2);
/// Default `limits.header_read_timeout` (hyper's own default, and nginx's
/// `client_header_timeout` rounded to its order).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `limits.max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10_000;
/// Largest `limits.max_connections` accepted.
pub const MAX_MAX_CONNECTIONS: u32 = 1_000_000;
/// `limits.inflight` when absent: this many times `storage.max_object_size`.
pub const DEFAULT_INFLIGHT_OBJECTS: u64 = 4;

/// A whole node config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// `[node]`, required: the node's id and listeners.
    pub node: NodeSection,
    /// `[storage]`: the RAM tier's bounds.
    #[serde(default)]
    pub storage: StorageSection,
    /// `[cache]`: RFC 9111 knobs.
    #[serde(default)]
    pub cache: CacheSection,
    /// `[limits]`: what one client may cost.
    #[serde(default)]
    pub limits: LimitsSection,
    /// The `[[pool]]`s of origin servers, in file order.
    #[serde(rename = "pool", default)]
    pub pools: Vec<Spanned<PoolConfig>>,
    /// The `[[route]]`s, in the order they are tried (the last has no `match`: the default
    /// route).
    #[serde(rename = "route", default)]
    pub routes: Vec<Spanned<RouteConfig>>,
    /// What this node does for the L4 director (`super::l4`); absent: nothing.
    #[serde(default)]
    pub l4: Option<super::l4::L4Section>,
    /// This node's cluster membership (`super::cluster`); absent: a single node.
    #[serde(default)]
    pub cluster: Option<super::cluster::ClusterSection>,
    /// `[log]`: the access log (`strait_lb::accesslog`); absent: off.
    #[serde(default)]
    pub log: strait_lb::accesslog::LogSection,
}

/// `[node]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Unique in the cluster; shown in `Cache-Status` and `Via`.
    pub id: Spanned<String>,
    /// Client-facing HTTP/1.1 + h2c listeners. Port 0 picks a free port (printed at start).
    pub listen: Spanned<Vec<SocketAddr>>,
    /// Admin listener (loopback clients only).
    #[serde(default = "default_admin")]
    pub admin: SocketAddr,
    /// Worker threads; absent: one per CPU the process may run on.
    #[serde(default)]
    pub workers: Option<Spanned<usize>>,
    /// Time in-flight requests get to finish on SIGTERM.
    #[serde(
        default = "default_drain_timeout",
        with = "strait_lb::config::units::duration"
    )]
    pub drain_timeout: Duration,
    /// `Host` given to HTTP/1.0 requests that send none (`host[:port]`); absent: they are 400.
    #[serde(default)]
    pub default_host: Option<Spanned<String>>,
}

/// `[storage]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// RAM tier bound: bodies plus metadata.
    #[serde(default = "default_ram")]
    pub ram: Spanned<Size>,
    /// Objects larger than this are streamed to clients but not stored; absent:
    /// min(`DEFAULT_MAX_OBJECT_SIZE`, `ram / RAM_SHARD_DIVISOR`). Read it through
    /// [`StorageSection::max_object_size_bytes`].
    #[serde(default)]
    pub max_object_size: Option<Spanned<Size>>,
}

impl StorageSection {
    /// The largest object stored, in bytes: `max_object_size` as written, or its default,
    /// which follows `ram` (16 MiB, less when `ram / 8` is smaller).
    pub fn max_object_size_bytes(&self) -> u64 {
        match &self.max_object_size {
            Some(size) => size.get_ref().as_u64(),
            None => DEFAULT_MAX_OBJECT_SIZE
                .as_u64()
                .min(self.ram.get_ref().as_u64() / RAM_SHARD_DIVISOR),
        }
    }
}

/// `[cache]`: RFC 9111 knobs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    /// An operator-named targeted cache-control header (RFC 9213), honoured before
    /// `CDN-Cache-Control` and `Cache-Control`, e.g. "Strait-Cache-Control".
    #[serde(default)]
    pub target_header: Option<Spanned<String>>,
    /// Bounded wait of a request coalesced onto another request's fill.
    #[serde(
        default = "default_coalesce_timeout",
        with = "strait_lb::config::units::duration"
    )]
    pub coalesce_timeout: Duration,
    /// How long a key whose answer could not be stored skips coalescing (its requests go to
    /// the origin each on its own at once); 0 disables.
    #[serde(
        default = "default_hit_for_miss",
        with = "strait_lb::config::units::duration"
    )]
    pub hit_for_miss: Duration,
    /// How long a small object a peer owns, once asked from it, is kept at this node and
    /// answered from here (a hot copy, never longer than it is fresh); 0 (the default) keeps
    /// none. Bounded by `storage.ram / 16`; purges and bans drop copies on every member.
    #[serde(default, with = "strait_lb::config::units::duration")]
    pub hot_ttl: Duration,
    /// Heuristic freshness: percent of (Date - Last-Modified).
    #[serde(default = "default_heuristic_percent")]
    pub heuristic_percent: Spanned<u32>,
    /// Heuristic freshness cap.
    #[serde(
        default = "default_heuristic_max",
        with = "strait_lb::config::units::duration"
    )]
    pub heuristic_max: Duration,
    /// Largest request head accepted (431 beyond).
    #[serde(default = "default_max_request_header")]
    pub max_request_header: Spanned<Size>,
    /// Partial content (RFC 9111 §3.3-3.4): `on` sends a range miss to the origin as a
    /// `partial_slice`-aligned range request and stores the 206 as a partial object.
    #[serde(default)]
    pub partial: PartialMode,
    /// The alignment (and smallest fetch) of a range miss under `partial = "on"`.
    #[serde(default = "default_partial_slice")]
    pub partial_slice: Spanned<Size>,
}

/// `cache.partial`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartialMode {
    /// A range miss fetches (and stores) the whole object.
    #[default]
    Off,
    /// A range miss fetches its aligned slices; 206 answers are stored as partial objects.
    On,
}

/// `[limits]`: what one client may cost the node (bytes held, time taken).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Largest request body accepted (413 beyond, before anything is sent upstream when
    /// `Content-Length` says so, else when the body crosses it).
    #[serde(default = "default_max_request_body")]
    pub max_request_body: Spanned<Size>,
    /// A request body that sends nothing for this long is cut: 408, never blamed on the origin.
    #[serde(
        default = "default_body_timeout",
        with = "strait_lb::config::units::duration"
    )]
    pub body_timeout: Duration,
    /// A client that accepts none of its response bytes for this long is disconnected.
    #[serde(
        default = "default_send_timeout",
        with = "strait_lb::config::units::duration"
    )]
    pub send_timeout: Duration,
    /// A reader of a response shared with others (a coalesced stream) that stays a whole
    /// window behind the fastest for this long is detached, so it cannot hold the others back.
    #[serde(
        default = "default_stream_lag",
        with = "strait_lb::config::units::duration"
    )]
    pub stream_lag: Duration,
    /// Bytes the node may hold for responses in flight (fills being written, stream windows)
    /// outside the `storage.ram` bound; absent: 4 x the effective `storage.max_object_size`.
    #[serde(default)]
    pub inflight: Option<Spanned<Size>>,
    /// A client must send a whole request head within this from when the node starts waiting
    /// for it (the connection's start, or the end of the previous response); else it is closed.
    #[serde(
        default = "default_header_read_timeout",
        with = "strait_lb::config::units::duration"
    )]
    pub header_read_timeout: Duration,
    /// Client connections open at once on this node (all `listen` addresses together); at the
    /// limit the node stops accepting until one closes. Read at start.
    #[serde(default = "default_max_connections")]
    pub max_connections: Spanned<u32>,
}

impl LimitsSection {
    /// The section without its start-only keys (`max_connections`): what a reload applies.
    pub fn reloadable(&self) -> LimitsSection {
        LimitsSection {
            max_connections: default_max_connections(),
            ..self.clone()
        }
    }

    /// `inflight`, or its default for `max_object_size`.
    pub fn inflight_bytes(&self, max_object_size: u64) -> u64 {
        match &self.inflight {
            Some(b) => b.get_ref().as_u64(),
            None => max_object_size.saturating_mul(DEFAULT_INFLIGHT_OBJECTS),
        }
    }
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            ram: default_ram(),
            max_object_size: None,
        }
    }
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            target_header: None,
            coalesce_timeout: DEFAULT_COALESCE_TIMEOUT,
            hit_for_miss: DEFAULT_HIT_FOR_MISS,
            hot_ttl: Duration::ZERO,
            heuristic_percent: default_heuristic_percent(),
            heuristic_max: DEFAULT_HEURISTIC_MAX,
            max_request_header: default_max_request_header(),
            partial: PartialMode::Off,
            partial_slice: default_partial_slice(),
        }
    }
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_request_body: default_max_request_body(),
            body_timeout: DEFAULT_BODY_TIMEOUT,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            stream_lag: DEFAULT_STREAM_LAG,
            inflight: None,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: default_max_connections(),
        }
    }
}

fn default_max_request_body() -> Spanned<Size> {
    Spanned::new(0..0, DEFAULT_MAX_REQUEST_BODY)
}
fn default_body_timeout() -> Duration {
    DEFAULT_BODY_TIMEOUT
}
fn default_send_timeout() -> Duration {
    DEFAULT_SEND_TIMEOUT
}
fn default_stream_lag() -> Duration {
    DEFAULT_STREAM_LAG
}
fn default_header_read_timeout() -> Duration {
    DEFAULT_HEADER_READ_TIMEOUT
}
fn default_max_connections() -> Spanned<u32> {
    Spanned::new(0..0, DEFAULT_MAX_CONNECTIONS)
}

fn default_admin() -> SocketAddr {
    // A constant that always parses.
    SocketAddr::from(([127, 0, 0, 1], 9090))
}
fn default_drain_timeout() -> Duration {
    DEFAULT_DRAIN_TIMEOUT
}
fn default_ram() -> Spanned<Size> {
    Spanned::new(0..0, DEFAULT_RAM)
}
/// Default `cache.hit_for_miss` (Varnish's built-in `hit-for-miss` time).
pub const DEFAULT_HIT_FOR_MISS: Duration = Duration::from_secs(120);

fn default_hit_for_miss() -> Duration {
    DEFAULT_HIT_FOR_MISS
}

fn default_coalesce_timeout() -> Duration {
    DEFAULT_COALESCE_TIMEOUT
}
fn default_heuristic_percent() -> Spanned<u32> {
    Spanned::new(0..0, DEFAULT_HEURISTIC_PERCENT)
}
fn default_heuristic_max() -> Duration {
    DEFAULT_HEURISTIC_MAX
}
/// Default `cache.partial_slice`.
pub const DEFAULT_PARTIAL_SLICE: Size = Size::mib(1);

fn default_partial_slice() -> Spanned<Size> {
    Spanned::new(0..0, DEFAULT_PARTIAL_SLICE)
}
fn default_max_request_header() -> Spanned<Size> {
    Spanned::new(0..0, DEFAULT_MAX_REQUEST_HEADER)
}
