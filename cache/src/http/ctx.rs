//! The state every request handler shares: store, fills, counters and the swappable runtime
//! config (pools and knobs) that a reload replaces.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::{HeaderMap, HeaderName, Method, Uri, Version};

use super::object::{FillHead, Object};
use crate::config::NodeConfig;
use crate::origin::Pool;
use crate::policy::freshness::FreshnessParams;
use crate::stats::Counters;
use crate::store::fill::Fills;
use crate::store::ram::RamStore;

/// The RFC 9213 targeted field every strait node honours.
pub const CDN_CACHE_CONTROL: HeaderName = HeaderName::from_static("cdn-cache-control");

/// What a reload replaces as one unit.
pub struct Runtime {
    pub pools: Vec<Arc<Pool>>,
    /// The pool of the default route.
    pub default_pool: Arc<Pool>,
    /// Targeted cache-control fields, most specific first (operator's, then CDN-Cache-Control).
    pub targets: Vec<HeaderName>,
    pub freshness: FreshnessParams,
    pub max_object_size: u64,
    pub coalesce_timeout: Duration,
}

impl Runtime {
    /// Build pools and knobs from a validated config.
    pub fn from_config(cfg: &NodeConfig) -> Option<Runtime> {
        let pools: Vec<Arc<Pool>> = cfg
            .pools
            .iter()
            .map(|p| Arc::new(Pool::new(p.get_ref())))
            .collect();
        let default_name = cfg.routes.last()?.get_ref().pool.get_ref().clone();
        let default_pool = pools.iter().find(|p| p.name == default_name)?.clone();
        let mut targets = Vec::new();
        if let Some(t) = &cfg.cache.target_header {
            targets.push(HeaderName::from_bytes(t.get_ref().as_bytes()).ok()?);
        }
        targets.push(CDN_CACHE_CONTROL);
        Some(Runtime {
            pools,
            default_pool,
            targets,
            freshness: FreshnessParams {
                heuristic_percent: *cfg.cache.heuristic_percent.get_ref(),
                heuristic_max: cfg.cache.heuristic_max,
            },
            max_object_size: cfg.storage.max_object_size.get_ref().as_u64(),
            coalesce_timeout: cfg.cache.coalesce_timeout,
        })
    }
}

/// Shared by every connection of a node.
pub struct Ctx {
    pub node_id: String,
    pub store: RamStore<Object>,
    pub fills: Fills<FillHead>,
    pub counters: Counters,
    pub started: Instant,
    pub rt: ArcSwap<Runtime>,
}

impl Ctx {
    /// Remove targeted cache-control fields (they are for this cache, not downstream).
    pub fn strip_targeted(&self, h: &mut HeaderMap) {
        for t in self.rt.load().targets.iter() {
            h.remove(t);
        }
    }
}

/// The parts of a client request the cache logic needs; cheap to move, cloned only for
/// background refreshes.
#[derive(Debug, Clone)]
pub struct ReqHead {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
}
