//! The node config as plain data: what `config.toml` deserializes into.
//!
//! `node.toml -> NodeConfig (serde, unknown keys rejected) -> validate() -> Arc<NodeConfig>`.
//! Defaults are named `DEFAULT_*` consts; durations are humantime strings ("500ms", "2s"),
//! sizes are bytesize strings ("64MiB").

use std::net::SocketAddr;
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;
use serde_spanned::Spanned;

/// Scheduling algorithm of a pool: the scheduler's own, from `strait_lb::select`.
pub use strait_lb::select::schedule::Algorithm;

/// Default admin listener.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:9090";
/// Default RAM tier bound.
pub const DEFAULT_RAM: ByteSize = ByteSize::mib(256);
/// Default largest object kept in the RAM tier (larger ones are streamed, not stored), when
/// `storage.ram / RAM_SHARD_DIVISOR` is not smaller.
pub const DEFAULT_MAX_OBJECT_SIZE: ByteSize = ByteSize::mib(16);
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
pub const DEFAULT_MAX_REQUEST_HEADER: ByteSize = ByteSize::kib(64);
/// Origin connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Origin time to the response head.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle keep-alive connections to one origin server are closed after this.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle keep-alive connections kept per origin server.
pub const DEFAULT_MAX_IDLE_PER_SERVER: usize = 1024;
/// Time a draining node gives in-flight requests on SIGTERM.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request body a client may send (413 beyond).
pub const DEFAULT_MAX_REQUEST_BODY: ByteSize = ByteSize::mib(64);
/// A client request body that sends nothing for this long is cut (408).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// A client that takes none of its response for this long is disconnected.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// A reader of a shared stream that stays a whole window behind for this long is detached.
pub const DEFAULT_STREAM_LAG: Duration = Duration::from_secs(2);
/// `limits.inflight` when absent: this many times `storage.max_object_size`.
pub const DEFAULT_INFLIGHT_OBJECTS: u64 = 4;

/// A whole node config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub node: NodeSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub cache: CacheSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(rename = "pool", default)]
    pub pools: Vec<Spanned<PoolConfig>>,
    #[serde(rename = "route", default)]
    pub routes: Vec<Spanned<RouteConfig>>,
    /// What this node does for the L4 director (`super::l4`); absent: nothing.
    #[serde(default)]
    pub l4: Option<super::l4::L4Section>,
    /// This node's cluster membership (`super::cluster`); absent: a single node.
    #[serde(default)]
    pub cluster: Option<super::cluster::ClusterSection>,
}

/// `[node]`
#[derive(Debug, Clone, Deserialize)]
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
    #[serde(default = "default_drain_timeout", with = "humantime_serde")]
    pub drain_timeout: Duration,
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// RAM tier bound: bodies plus metadata.
    #[serde(default = "default_ram")]
    pub ram: Spanned<ByteSize>,
    /// Objects larger than this are streamed to clients but not stored; absent:
    /// min(`DEFAULT_MAX_OBJECT_SIZE`, `ram / RAM_SHARD_DIVISOR`). Read it through
    /// [`StorageSection::max_object_size_bytes`].
    #[serde(default)]
    pub max_object_size: Option<Spanned<ByteSize>>,
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    /// An operator-named targeted cache-control header (RFC 9213), honoured before
    /// `CDN-Cache-Control` and `Cache-Control`, e.g. "Strait-Cache-Control".
    #[serde(default)]
    pub target_header: Option<Spanned<String>>,
    /// Bounded wait of a request coalesced onto another request's fill.
    #[serde(default = "default_coalesce_timeout", with = "humantime_serde")]
    pub coalesce_timeout: Duration,
    /// Heuristic freshness: percent of (Date - Last-Modified).
    #[serde(default = "default_heuristic_percent")]
    pub heuristic_percent: Spanned<u32>,
    /// Heuristic freshness cap.
    #[serde(default = "default_heuristic_max", with = "humantime_serde")]
    pub heuristic_max: Duration,
    /// Largest request head accepted (431 beyond).
    #[serde(default = "default_max_request_header")]
    pub max_request_header: Spanned<ByteSize>,
}

/// `[limits]`: what one client may cost the node (bytes held, time taken).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Largest request body accepted (413 beyond, before anything is sent upstream when
    /// `Content-Length` says so, else when the body crosses it).
    #[serde(default = "default_max_request_body")]
    pub max_request_body: Spanned<ByteSize>,
    /// A request body that sends nothing for this long is cut: 408, never blamed on the origin.
    #[serde(default = "default_body_timeout", with = "humantime_serde")]
    pub body_timeout: Duration,
    /// A client that accepts none of its response bytes for this long is disconnected.
    #[serde(default = "default_send_timeout", with = "humantime_serde")]
    pub send_timeout: Duration,
    /// A reader of a response shared with others (a coalesced stream) that stays a whole
    /// window behind the fastest for this long is detached, so it cannot hold the others back.
    #[serde(default = "default_stream_lag", with = "humantime_serde")]
    pub stream_lag: Duration,
    /// Bytes the node may hold for responses in flight (fills being written, stream windows)
    /// outside the `storage.ram` bound; absent: 4 x the effective `storage.max_object_size`.
    #[serde(default)]
    pub inflight: Option<Spanned<ByteSize>>,
}

impl LimitsSection {
    /// `inflight`, or its default for `max_object_size`.
    pub fn inflight_bytes(&self, max_object_size: u64) -> u64 {
        match &self.inflight {
            Some(b) => b.get_ref().as_u64(),
            None => max_object_size.saturating_mul(DEFAULT_INFLIGHT_OBJECTS),
        }
    }
}

/// One `[[pool]]` of origin servers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub name: Spanned<String>,
    #[serde(default)]
    pub algorithm: Algorithm,
    pub servers: Spanned<Vec<Spanned<ServerConfig>>>,
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(default = "default_first_byte_timeout", with = "humantime_serde")]
    pub first_byte_timeout: Duration,
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    #[serde(default = "default_max_idle_per_server")]
    pub max_idle_per_server: usize,
    /// Active health checks; absent: none (servers are up unless passively ejected).
    #[serde(default)]
    pub health: Option<Spanned<HealthConfig>>,
    /// Passive ejection on failed requests.
    #[serde(default)]
    pub passive: PassiveConfig,
    /// Cookie persistence.
    #[serde(default)]
    pub persistence: Option<PersistenceConfig>,
}

/// Default interval between active checks of one server.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// Default time an active check may take.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// Consecutive failed checks that take a server down, by default.
pub const DEFAULT_FALL: u32 = 3;
/// Consecutive good checks that bring it back, by default.
pub const DEFAULT_RISE: u32 = 2;
/// Consecutive failed requests (connect failure, reset, 5xx) that eject a server, by default.
pub const DEFAULT_PASSIVE_FAILURES: u32 = 5;
/// How long an ejected server gets no new requests, by default.
pub const DEFAULT_PASSIVE_BACKOFF: Duration = Duration::from_secs(10);

/// How an active check probes a server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    /// `GET path`, expecting the `expect` status.
    #[default]
    Http,
    /// A TCP connect.
    Tcp,
}

/// `health = { ... }` of a pool: active checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    #[serde(default)]
    pub kind: CheckKind,
    #[serde(default = "default_check_path")]
    pub path: String,
    #[serde(default = "default_expect")]
    pub expect: u16,
    #[serde(default = "default_check_interval", with = "humantime_serde")]
    pub interval: Duration,
    #[serde(default = "default_check_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default = "default_rise")]
    pub rise: u32,
    #[serde(default = "default_fall")]
    pub fall: u32,
}

/// `passive = { ... }` of a pool: ejection on failed real requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassiveConfig {
    /// Consecutive failures (connect failure, reset, 5xx) that eject a server; 0 disables.
    #[serde(default = "default_passive_failures")]
    pub failures: u32,
    #[serde(default = "default_passive_backoff", with = "humantime_serde")]
    pub backoff: Duration,
}

impl Default for PassiveConfig {
    fn default() -> Self {
        PassiveConfig {
            failures: DEFAULT_PASSIVE_FAILURES,
            backoff: DEFAULT_PASSIVE_BACKOFF,
        }
    }
}

/// `persistence = { cookie = "SRV" }` of a pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistenceConfig {
    /// Name of the cookie that pins a client to a server.
    pub cookie: Spanned<String>,
}

fn default_check_path() -> String {
    "/".to_string()
}
fn default_expect() -> u16 {
    200
}
fn default_check_interval() -> Duration {
    DEFAULT_CHECK_INTERVAL
}
fn default_check_timeout() -> Duration {
    DEFAULT_CHECK_TIMEOUT
}
fn default_rise() -> u32 {
    DEFAULT_RISE
}
fn default_fall() -> u32 {
    DEFAULT_FALL
}
fn default_passive_failures() -> u32 {
    DEFAULT_PASSIVE_FAILURES
}
fn default_passive_backoff() -> Duration {
    DEFAULT_PASSIVE_BACKOFF
}

/// One origin server of a pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    #[serde(default = "default_weight")]
    pub weight: u32,
}

/// One `[[route]]`: routes are tried in order and the first whose `match` holds takes the
/// request; a route without `match` takes every request (the default route, last).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(rename = "match", default)]
    pub matcher: Option<Spanned<MatchConfig>>,
    pub pool: Spanned<String>,
    /// false: requests on this route are passed to the origin, never cached.
    #[serde(default = "default_true")]
    pub cache: bool,
    /// Freshness lifetime for responses that carry no freshness information of their own.
    #[serde(default, with = "humantime_serde")]
    pub ttl: Option<Duration>,
    /// Extra request fields that become part of the cache key on this route.
    #[serde(default)]
    pub cache_key: Option<CacheKeyConfig>,
    /// Store responses that carry `Set-Cookie` (they are not stored otherwise).
    #[serde(default)]
    pub store_set_cookie: bool,
}

/// `match = { ... }` of a route: every given condition must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// Exact host (`example.com`) or a suffix (`*.example.com`), case-insensitive, port ignored.
    #[serde(default)]
    pub host: Option<Spanned<String>>,
    #[serde(default)]
    pub path_prefix: Option<Spanned<String>>,
    /// A regular expression (Rust `regex` syntax) on the path (without the query).
    #[serde(default)]
    pub path_regex: Option<Spanned<String>>,
    /// One method or a list of methods.
    #[serde(default)]
    pub method: Option<Spanned<OneOrMany>>,
    /// A request header whose value matches a regular expression.
    #[serde(default)]
    pub header: Option<Spanned<HeaderMatch>>,
}

/// A string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// `header = { name = "...", regex = "..." }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    pub name: String,
    pub regex: String,
}

/// `cache_key = { headers = ["Accept-Language"] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheKeyConfig {
    pub headers: Spanned<Vec<String>>,
}

fn default_true() -> bool {
    true
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
            heuristic_percent: default_heuristic_percent(),
            heuristic_max: DEFAULT_HEURISTIC_MAX,
            max_request_header: default_max_request_header(),
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
        }
    }
}

fn default_max_request_body() -> Spanned<ByteSize> {
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

fn default_admin() -> SocketAddr {
    // A constant that always parses.
    SocketAddr::from(([127, 0, 0, 1], 9090))
}
fn default_drain_timeout() -> Duration {
    DEFAULT_DRAIN_TIMEOUT
}
fn default_ram() -> Spanned<ByteSize> {
    Spanned::new(0..0, DEFAULT_RAM)
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
fn default_max_request_header() -> Spanned<ByteSize> {
    Spanned::new(0..0, DEFAULT_MAX_REQUEST_HEADER)
}
fn default_connect_timeout() -> Duration {
    DEFAULT_CONNECT_TIMEOUT
}
fn default_first_byte_timeout() -> Duration {
    DEFAULT_FIRST_BYTE_TIMEOUT
}
fn default_idle_timeout() -> Duration {
    DEFAULT_IDLE_TIMEOUT
}
fn default_max_idle_per_server() -> usize {
    DEFAULT_MAX_IDLE_PER_SERVER
}
fn default_weight() -> u32 {
    1
}
