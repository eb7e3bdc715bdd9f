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
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Required; non-empty, unique among the pools; what routes name.
    pub name: Spanned<String>,
    /// How a request picks a server: `roundrobin` (default), `leastconn`, `source`, `uri`
    /// or `random2`.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// Required; at least one, no address twice, weights not all 0.
    pub servers: Spanned<Vec<Spanned<ServerConfig>>>,
    /// Above 0, default 3s; 502 when no server can be connected in time.
    #[serde(
        default = "default_connect_timeout",
        with = "strait_lb::config::units::duration"
    )]
    pub connect_timeout: Duration,
    /// Above 0, default 30s; 504 when the response head does not arrive in time.
    #[serde(
        default = "default_first_byte_timeout",
        with = "strait_lb::config::units::duration"
    )]
    pub first_byte_timeout: Duration,
    /// Above 0, default 60s; idle keep-alive connections to a server are closed after this.
    #[serde(
        default = "default_idle_timeout",
        with = "strait_lb::config::units::duration"
    )]
    pub idle_timeout: Duration,
    /// Idle keep-alive connections kept per server, default 1024 (a busy pool needs one per
    /// concurrent request).
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// `http` (default) or `tcp`.
    #[serde(default)]
    pub kind: CheckKind,
    /// The path an `http` check gets, default `/`; must start with `/`.
    #[serde(default = "default_check_path")]
    pub path: String,
    /// The status an `http` check passes on, default 200; 100..=599.
    #[serde(default = "default_expect")]
    pub expect: u16,
    /// Time between two checks of one server, default 2s; above 0.
    #[serde(
        default = "default_check_interval",
        with = "strait_lb::config::units::duration"
    )]
    pub interval: Duration,
    /// Time one check may take, default 1s; above 0 and not above `interval`.
    #[serde(
        default = "default_check_timeout",
        with = "strait_lb::config::units::duration"
    )]
    pub timeout: Duration,
    /// Consecutive good checks that bring a down server back, default 2; at least 1.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Consecutive failed checks that take a server down, default 3; at least 1.
    #[serde(default = "default_fall")]
    pub fall: u32,
}

/// `passive = { ... }` of a pool: ejection on failed real requests.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassiveConfig {
    /// Consecutive failures (connect failure, reset, 5xx) that eject a server, default 5;
    /// 0 disables.
    #[serde(default = "default_passive_failures")]
    pub failures: u32,
    /// How long an ejected server gets no new requests, default 10s; above 0.
    #[serde(
        default = "default_passive_backoff",
        with = "strait_lb::config::units::duration"
    )]
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The server's `ip:port`; required, not twice in a pool.
    pub addr: SocketAddr,
    /// Its share of the requests, default 1; 0..=1000, 0: draining (no new requests).
    #[serde(default = "default_weight")]
    pub weight: u32,
}

/// One `[[route]]`: routes are tried in order and the first whose `match` holds takes the
/// request; a route without `match` takes every request (the default route, last).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// `match`: the conditions a request must meet; absent: the default route, which takes
    /// every request and must be last.
    #[serde(rename = "match", default)]
    pub matcher: Option<Spanned<MatchConfig>>,
    /// Required; the pool the route's requests go to, one defined in the file.
    pub pool: Spanned<String>,
    /// Default true; false: requests on this route are passed to the origin, never cached.
    #[serde(default = "default_true")]
    pub cache: bool,
    /// Freshness lifetime for responses that carry no freshness information of their own
    /// (beats the heuristic); absent: the heuristic.
    #[serde(default, with = "strait_lb::config::units::duration::option")]
    pub ttl: Option<Duration>,
    /// Extra request fields that become part of the cache key on this route.
    #[serde(default)]
    pub cache_key: Option<CacheKeyConfig>,
    /// Store responses that carry `Set-Cookie` (they are not stored otherwise).
    #[serde(default)]
    pub store_set_cookie: bool,
}

/// `match = { ... }` of a route: every given condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// Exact host (`example.com`) or a suffix (`*.example.com`), case-insensitive, port ignored.
    #[serde(default)]
    pub host: Option<Spanned<String>>,
    /// Paths starting with this (case-sensitive).
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single string.
    One(String),
    /// A list of strings.
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    /// The request header field's name.
    pub name: String,
    /// A regular expression (Rust `regex` syntax) that one of its field lines must match.
    pub regex: String,
}

/// `cache_key = { headers = ["Accept-Language"] }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheKeyConfig {
    /// Request header fields whose values become part of the cache key (absent fields as
    /// empty); purge of the URL and bans by prefix still reach these objects.
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
