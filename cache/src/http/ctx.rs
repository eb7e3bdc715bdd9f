//! The state every request handler shares: store, fills, counters and the swappable runtime
//! config (pools and knobs) that a reload replaces.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, Version};

use crate::config::NodeConfig;
use crate::origin::route::{host_without_port, RouteError, RouteInput, RouteTable};
use crate::origin::Pool;
use crate::policy::freshness::FreshnessParams;
use crate::stats::Counters;
use crate::store::fill::Fills;
use crate::store::object::{FillHead, Object};
use crate::store::ram::RamStore;

/// The RFC 9213 targeted field every strait node honours.
pub const CDN_CACHE_CONTROL: HeaderName = HeaderName::from_static("cdn-cache-control");

/// What a reload replaces as one unit.
pub struct Runtime {
    pub pools: Vec<Arc<Pool>>,
    pub routes: RouteTable,
    /// The pool of each route, by route index.
    pub route_pools: Vec<Arc<Pool>>,
    /// The fast path may route by itself: no route looks at request headers.
    pub fast_routing: bool,
    /// Targeted cache-control fields, most specific first (operator's, then CDN-Cache-Control).
    pub targets: Vec<HeaderName>,
    /// The targeted fields this cache removes on the way out: the operator's own
    /// (`target_header`) only. `CDN-Cache-Control` goes downstream like any other field (RFC
    /// 9213 does not ask a cache to remove it, and a CDN tier below may obey it).
    pub strip: Vec<HeaderName>,
    pub freshness: FreshnessParams,
    pub max_object_size: u64,
    pub coalesce_timeout: Duration,
    /// `cache.hit_for_miss`: how long an unstorable key skips coalescing.
    pub hit_for_miss: Duration,
    /// `cache.hot_ttl`: how long a small remote hit is kept here (0: never).
    pub hot_ttl: Duration,
    /// `cache.partial_slice` when `cache.partial = "on"`: range misses fetch aligned slices.
    pub partial_slice: Option<u64>,
    pub limits: Limits,
    /// `node.default_host`: the `Host` of HTTP/1.0 requests that send none (`admit`).
    pub default_host: Option<HeaderValue>,
}

/// `[limits]` as the request path uses them.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest client request body, in bytes (413 beyond).
    pub max_request_body: u64,
    /// A client request body that sends nothing for this long is cut (408).
    pub body_timeout: Duration,
    /// A client that accepts none of its response for this long is disconnected.
    pub send_timeout: Duration,
    /// A reader of a shared stream a whole window behind for this long is detached.
    pub stream_lag: Duration,
    /// Bytes held for responses in flight, across the node.
    pub inflight: u64,
    /// A whole request head must arrive within this (new connections read it at accept).
    pub header_read_timeout: Duration,
}

impl Limits {
    pub fn from_config(cfg: &NodeConfig) -> Limits {
        let l = &cfg.limits;
        Limits {
            max_request_body: l.max_request_body.get_ref().as_u64(),
            body_timeout: l.body_timeout,
            send_timeout: l.send_timeout,
            stream_lag: l.stream_lag,
            header_read_timeout: l.header_read_timeout,
            inflight: l.inflight_bytes(cfg.storage.max_object_size_bytes()),
        }
    }
}

/// Why a runtime can't be built from a (validated) config.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error("route {route} names unknown pool {pool:?}")]
    UnknownPool { route: usize, pool: String },
    #[error("invalid target_header {0:?}")]
    TargetHeader(String),
    #[error("invalid default_host {0:?}")]
    DefaultHost(String),
}

impl Runtime {
    /// Build pools, routes and knobs from a validated config. Servers of `previous` pools with
    /// the same pool name and address are carried over (their health and counters survive a
    /// reload).
    pub fn from_config(
        cfg: &NodeConfig,
        previous: Option<&Runtime>,
    ) -> Result<Runtime, RuntimeError> {
        let pools: Vec<Arc<Pool>> = cfg
            .pools
            .iter()
            .map(|p| {
                let p = p.get_ref();
                let old =
                    previous.and_then(|r| r.pools.iter().find(|o| o.name == *p.name.get_ref()));
                Arc::new(Pool::new(p, old.map(|o| o.as_ref())))
            })
            .collect();
        let route_cfgs: Vec<_> = cfg.routes.iter().map(|r| r.get_ref().clone()).collect();
        let routes = RouteTable::new(&route_cfgs)?;
        let mut route_pools = Vec::with_capacity(routes.routes().len());
        for r in routes.routes() {
            let pool = pools.iter().find(|p| p.name == r.pool).ok_or_else(|| {
                RuntimeError::UnknownPool {
                    route: r.index,
                    pool: r.pool.clone(),
                }
            })?;
            route_pools.push(Arc::clone(pool));
        }
        let mut targets = Vec::new();
        if let Some(t) = &cfg.cache.target_header {
            targets.push(
                HeaderName::from_bytes(t.get_ref().as_bytes())
                    .map_err(|_| RuntimeError::TargetHeader(t.get_ref().clone()))?,
            );
        }
        let strip = targets.clone();
        let default_host = match &cfg.node.default_host {
            Some(h) => Some(
                HeaderValue::from_str(h.get_ref())
                    .map_err(|_| RuntimeError::DefaultHost(h.get_ref().clone()))?,
            ),
            None => None,
        };
        targets.push(CDN_CACHE_CONTROL);
        Ok(Runtime {
            fast_routing: !routes.uses_headers(),
            pools,
            routes,
            route_pools,
            targets,
            strip,
            freshness: FreshnessParams {
                heuristic_percent: *cfg.cache.heuristic_percent.get_ref(),
                heuristic_max: cfg.cache.heuristic_max,
            },
            max_object_size: cfg.storage.max_object_size_bytes(),
            coalesce_timeout: cfg.cache.coalesce_timeout,
            hit_for_miss: cfg.cache.hit_for_miss,
            hot_ttl: cfg.cache.hot_ttl,
            partial_slice: (cfg.cache.partial == crate::config::PartialMode::On)
                .then(|| cfg.cache.partial_slice.get_ref().as_u64()),
            limits: Limits::from_config(cfg),
            default_host,
        })
    }

    /// The route a request takes, with its pool.
    pub fn route(
        &self,
        method: &Method,
        key: &str,
        path: &str,
        headers: &HeaderMap,
    ) -> RouteChoice {
        let route = self.routes.select(&RouteInput {
            method,
            host: key_host(key),
            path,
            headers,
        });
        self.choice(route)
    }

    /// The route at `index` of this snapshot's table (an index [`Runtime::route`] or the fast
    /// path's routing found in this same snapshot), with its pool.
    pub fn route_at(&self, index: usize) -> RouteChoice {
        self.choice(&self.routes.routes()[index])
    }

    fn choice(&self, route: &crate::origin::route::Route) -> RouteChoice {
        RouteChoice {
            index: route.index,
            pool: Arc::clone(&self.route_pools[route.index]),
            cache: route.cache,
            ttl: route.ttl,
            store_set_cookie: route.store_set_cookie,
            key_headers: !route.key_headers.is_empty(),
        }
    }
}

/// The host of a primary key ("http://host:port/path" -> "host"), for routing.
pub fn key_host(key: &str) -> &str {
    let rest = key.strip_prefix("http://").unwrap_or(key);
    let authority = crate::policy::target::before(rest, b'/');
    host_without_port(authority)
}

/// The route a request took.
#[derive(Clone)]
pub struct RouteChoice {
    pub index: usize,
    pub pool: Arc<Pool>,
    /// false: pass to the origin, never cache.
    pub cache: bool,
    /// Lifetime for responses without freshness information.
    pub ttl: Option<Duration>,
    /// Responses with Set-Cookie may be stored.
    pub store_set_cookie: bool,
    /// The route extends the cache key with request fields.
    pub key_headers: bool,
}

/// Shared by every connection of a node.
pub struct Ctx {
    pub node_id: String,
    pub store: RamStore<Object>,
    pub fills: Fills<FillHead>,
    /// Keys whose last answer could not be stored (`store::uncacheable`).
    pub uncacheable: crate::store::uncacheable::Marks,
    /// Shared with the origin bodies in flight, which count their own failures.
    pub counters: Arc<Counters>,
    pub started: Instant,
    pub rt: ArcSwap<Runtime>,
    /// The config text in effect (`GET /config`; `admin::control`).
    pub applied_text: crate::admin::control::AppliedText,
    /// The config file (re-read on reload).
    pub config_path: std::path::PathBuf,
    /// The cluster (membership, peer connections), when the config has `[cluster]`.
    pub cluster: Option<crate::cluster::Cluster>,
    /// The previous read of the stats page or `/stats.json`, for its rates (admin only).
    pub sampler: parking_lot::Mutex<crate::admin::rates::Sampler>,
    /// The access log (`[log]`; off unless configured).
    pub access: crate::access::AccessLog,
    /// The config in effect and the last reload's outcome (`crate::reload`).
    pub reloads: crate::reload::Reloads,
    /// Lean remote hits out, by key (`remote::flights`).
    pub lean: super::remote::flights::Flights,
    /// The owners' wire heads already checked (`remote::wirecheck::Verdicts`).
    pub verdicts: super::remote::wirecheck::Verdicts,
    /// Small remote hits kept here for `cache.hot_ttl` (`remote::hot`).
    pub hot: super::remote::hot::Hot,
}

impl Ctx {
    /// Remove the operator's targeted cache-control field (it is for this cache, not
    /// downstream); `CDN-Cache-Control` stays.
    pub fn strip_targeted(&self, h: &mut HeaderMap) {
        for t in self.rt.load().strip.iter() {
            h.remove(t);
        }
    }
}

/// The parts of a client request the cache logic needs; cheap to move, cloned only for
/// background refreshes.
#[derive(Clone)]
pub struct ReqHead {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    /// The client's address (X-Forwarded-For, Forwarded, `source` scheduling).
    pub client: Option<SocketAddr>,
    pub route: RouteChoice,
    /// Where the origin's interim (1xx) responses go: HTTP/1.1 clients only (`interim`).
    pub interim: Option<crate::interim::InterimSink>,
}
