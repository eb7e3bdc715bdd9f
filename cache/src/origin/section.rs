//! The `[[pool]]` and `[[route]]` sections of a node config as plain data: what the origin
//! pools (`pool`, `probe`, `persist`) and the route table (`route`) are built from. The node
//! config (`crate::config`) holds them and re-exports them; `crate::config::validate` checks
//! them with `FILE:LINE:COL` (a route's matchers through [`super::route::RouteTable::check_one`]).
//! Defaults are named `DEFAULT_*` consts; durations are humantime strings ("500ms", "2s").

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;
use strait_lb::select::schedule::Algorithm;

/// Origin connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Origin time to the response head.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle keep-alive connections to one origin server are closed after this.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle keep-alive connections kept per origin server.
pub const DEFAULT_MAX_IDLE_PER_SERVER: usize = 1024;

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
