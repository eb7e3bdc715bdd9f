//! One consistent read of a node's counters, rendered as JSON (`/stats.json`); the page and
//! `/metrics` render the same read.
//!
//! Derived figures (in `/stats.json` and at the top of the page):
//! * `hit_ratio`: (local_hit + remote_hit) / (those + local_miss + remote_miss), since start;
//! * `byte_hit_ratio`: body bytes served from this node's store / (those + body bytes received
//!   from the origin servers of the current pools), since start;
//! * `rates`: over the interval since an earlier read of the page or `/stats.json`
//!   (`rates.rs`): requests/s, bytes/s written to clients, 5xx/s and their share, hit ratio,
//!   and each server's requests/s.

use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use serde_json::{json, Map, Value};
use strait_lb::health::ServerState;

use super::rates::{ratio, Rates, Totals};
use crate::http::ctx::Ctx;
use crate::origin::Server;
use crate::stats::{Group, Kind, Reading, Stat, TrafficSnapshot, ACCESS_LOG, CLASSES};

/// Figures of the store and the fills, after the counters.
pub const STORE: [Stat; 9] = [
    gauge(
        "stored_objects",
        "store_objects",
        "Objects in this node's store",
    ),
    gauge(
        "stored_bytes",
        "store_bytes",
        "Bytes this node's store holds (bodies and metadata, as weighed against storage.ram)",
    ),
    gauge(
        "capacity_bytes",
        "store_capacity_bytes",
        "The store's bound in bytes (storage.ram)",
    ),
    Stat {
        key: "evictions",
        metric: "store_evictions",
        group: Group::Cache,
        kind: Kind::Counter,
        help: "Objects evicted from the store to make room",
    },
    gauge(
        "fills_in_flight",
        "fills_in_flight",
        "Fills (fetches being stored while clients read them) running now",
    ),
    gauge(
        "inflight_bytes",
        "fills_inflight_bytes",
        "Body bytes held by running fills now",
    ),
    gauge(
        "inflight_limit_bytes",
        "fills_inflight_limit_bytes",
        "Bound on the body bytes running fills may hold (limits.inflight)",
    ),
    Stat {
        key: "stream_detached",
        metric: "fills_readers_detached",
        group: Group::Cache,
        kind: Kind::Counter,
        help: "Client readers detached from a fill (too far behind, or cut over the budget)",
    },
    Stat {
        key: "fills_over_budget",
        metric: "fills_over_budget",
        group: Group::Cache,
        kind: Kind::Counter,
        help: "Fills that stopped storing because the in-flight byte budget was exceeded",
    },
];

const fn gauge(key: &'static str, metric: &'static str, help: &'static str) -> Stat {
    Stat {
        key,
        metric,
        group: Group::Cache,
        kind: Kind::Gauge,
        help,
    }
}

/// Counters and pool state read at one moment.
pub struct Snapshot {
    pub node: String,
    pub uptime_secs: u64,
    /// Every node counter, then the store figures ([`STORE`]), then the access log's
    /// ([`ACCESS_LOG`]).
    pub values: Vec<Reading>,
    /// Responses, durations, connections and bytes.
    pub traffic: TrafficSnapshot,
    /// The pool of each route of the current table, by index.
    pub routes: Vec<String>,
    pub pools: Vec<PoolSnapshot>,
    /// The cluster, when the node has `[cluster]`.
    pub cluster: Option<super::ClusterSnapshot>,
    /// Rates over the last interval (only for reads of the page and `/stats.json`).
    pub rates: Option<Rates>,
    /// Version, config in effect and the last reload.
    pub config: crate::reload::ReloadView,
}

/// One pool in a snapshot.
pub struct PoolSnapshot {
    pub name: String,
    pub algorithm: &'static str,
    pub servers: Vec<ServerSnapshot>,
}

/// One origin server in a snapshot.
pub struct ServerSnapshot {
    pub addr: String,
    /// Takes new requests now (state up, not ejected, weight > 0, admin state ready).
    pub up: bool,
    /// "maint" (admin), "up", "down", "ejected" (passive back-off) or "draining" (admin
    /// drain, or weight 0).
    pub state: &'static str,
    /// Runtime control: "ready", "drain" or "maint" (`strait ctl server`).
    pub admin_state: &'static str,
    /// The weight in the file (`weight` is the one in effect, a runtime override's if set).
    pub file_weight: u32,
    /// Seconds since the last up/down change.
    pub since_secs: u64,
    /// Last active check: result and latency (ms), when the pool has checks.
    pub check: Option<(String, f64)>,
    pub weight: u32,
    pub requests: u64,
    pub active: u64,
    pub errors: u64,
    pub bytes: u64,
    /// Moving average of the time to the response head, ms.
    pub response_ms: f64,
}

fn server_snapshot(s: &Server) -> ServerSnapshot {
    let now = Instant::now();
    let weight = s.weight.load(Ordering::Relaxed);
    let admin = s.admin();
    let h = s.health.lock();
    let available = h.available(now);
    let state = match (h.state(), available, weight) {
        _ if !admin.keeps_existing() => "maint",
        (ServerState::Down, _, _) => "down",
        (ServerState::Up, false, _) => "ejected",
        _ if !admin.takes_new() => "draining",
        (ServerState::Up, true, 0) => "draining",
        (ServerState::Up, true, _) => "up",
    };
    ServerSnapshot {
        addr: s.addr.to_string(),
        up: available && weight > 0 && admin.takes_new(),
        state,
        admin_state: admin.state.as_str(),
        file_weight: s.file_weight.load(Ordering::Relaxed),
        since_secs: SystemTime::now()
            .duration_since(h.since())
            .map_or(0, |d| d.as_secs()),
        check: h
            .last_check()
            .map(|c| (c.detail.clone(), c.latency.as_secs_f64() * 1000.0)),
        weight,
        requests: s.requests.load(Ordering::Relaxed),
        active: s.active.load(Ordering::Relaxed),
        errors: s.errors.load(Ordering::Relaxed),
        bytes: s.bytes.load(Ordering::Relaxed),
        response_ms: s.response_us.load(Ordering::Relaxed) as f64 / 1000.0,
    }
}

impl Snapshot {
    /// Read everything now, without rates (what `/metrics` reads).
    pub fn take(ctx: &Ctx) -> Snapshot {
        let mut values = ctx.counters.snapshot();
        let store = [
            ctx.store.objects(),
            ctx.store.bytes(),
            ctx.store.capacity(),
            ctx.store.evictions(),
            ctx.fills.in_flight() as u64,
            ctx.fills.inflight_bytes(),
            ctx.fills.inflight_limit(),
            ctx.fills.detached(),
            ctx.fills.over_budget(),
        ];
        values.extend(
            STORE
                .iter()
                .zip(store)
                .map(|(stat, value)| Reading { stat, value }),
        );
        let log = [
            ctx.access.written(),
            ctx.access.dropped(),
            ctx.access.failed(),
        ];
        values.extend(
            ACCESS_LOG
                .iter()
                .zip(log)
                .map(|(stat, value)| Reading { stat, value }),
        );
        let rt = ctx.rt.load();
        let pools = rt
            .pools
            .iter()
            .map(|p| PoolSnapshot {
                name: p.name.clone(),
                algorithm: p.algorithm.as_str(),
                servers: p.servers.iter().map(|s| server_snapshot(s)).collect(),
            })
            .collect();
        Snapshot {
            node: ctx.node_id.clone(),
            uptime_secs: ctx.started.elapsed().as_secs(),
            values,
            traffic: ctx.counters.traffic.read(),
            routes: rt.routes.routes().iter().map(|r| r.pool.clone()).collect(),
            pools,
            cluster: ctx.cluster.as_ref().map(super::ClusterSnapshot::of),
            rates: None,
            config: ctx.reloads.view(),
        }
    }

    /// Read everything now, with the rates since an earlier read (the page, `/stats.json`).
    pub fn with_rates(ctx: &Ctx) -> Snapshot {
        let mut s = Snapshot::take(ctx);
        let totals = s.totals();
        s.rates = ctx.sampler.lock().observe(Instant::now(), &totals);
        s
    }

    /// A counter or store figure by its `/stats.json` key (0 when unknown).
    pub fn value(&self, key: &str) -> u64 {
        self.values
            .iter()
            .find(|r| r.stat.key == key)
            .map_or(0, |r| r.value)
    }

    /// What the rates are computed from.
    pub fn totals(&self) -> Totals {
        Totals {
            responses: self.traffic.responses(),
            responses_5xx: self.traffic.classes[4],
            hits: self.value("local_hit") + self.value("remote_hit"),
            misses: self.value("local_miss") + self.value("remote_miss"),
            sent_bytes: self.traffic.sent_bytes,
            servers: self
                .pools
                .iter()
                .flat_map(|p| {
                    p.servers
                        .iter()
                        .map(move |s| (server_key(&p.name, &s.addr), s.requests))
                })
                .collect(),
        }
    }

    /// Hits / lookups since start.
    pub fn hit_ratio(&self) -> Option<f64> {
        let t = self.totals();
        ratio(t.hits, t.hits + t.misses)
    }

    /// Body bytes received from the current pools' servers.
    pub fn origin_bytes(&self) -> u64 {
        self.pools
            .iter()
            .flat_map(|p| &p.servers)
            .map(|s| s.bytes)
            .sum()
    }

    /// Bytes served from the store / (those + bytes from the origin) since start.
    pub fn byte_hit_ratio(&self) -> Option<f64> {
        let hit = self.traffic.hit_bytes;
        ratio(hit, hit + self.origin_bytes())
    }

    /// A server's requests per second over the last interval.
    pub fn server_rate(&self, pool: &str, addr: &str) -> Option<f64> {
        let rates = self.rates.as_ref()?;
        rates.servers.get(&server_key(pool, addr)).copied()
    }

    /// The `/stats.json` document.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("node".into(), json!(self.node));
        m.insert("version".into(), json!(self.config.version));
        m.insert("uptime_secs".into(), json!(self.uptime_secs));
        m.insert("config".into(), self.config.to_json());
        for r in &self.values {
            m.insert(r.stat.key.into(), json!(r.value));
        }
        let t = &self.traffic;
        let classes: Map<String, Value> = CLASSES
            .iter()
            .zip(t.classes)
            .map(|(c, n)| ((*c).to_owned(), json!(n)))
            .collect();
        m.insert("responses".into(), Value::Object(classes));
        m.insert("connections_open".into(), json!(t.connections_open));
        m.insert("connections_total".into(), json!(t.connections_total));
        m.insert("draining".into(), json!(t.draining));
        m.insert("client_sent_bytes".into(), json!(t.sent_bytes));
        m.insert("hit_bytes".into(), json!(t.hit_bytes));
        m.insert("origin_bytes".into(), json!(self.origin_bytes()));
        m.insert("hit_ratio".into(), json!(self.hit_ratio().map(round3)));
        m.insert(
            "byte_hit_ratio".into(),
            json!(self.byte_hit_ratio().map(round3)),
        );
        m.insert(
            "rates".into(),
            self.rates.as_ref().map_or(Value::Null, rates_json),
        );
        m.insert("pools".into(), Value::Array(self.pools_json()));
        Value::Object(m)
    }

    fn pools_json(&self) -> Vec<Value> {
        self.pools
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "algorithm": p.algorithm,
                    "servers": p.servers.iter().map(|s| json!({
                        "addr": s.addr, "up": s.up, "state": s.state, "since_secs": s.since_secs,
                        "admin_state": s.admin_state, "file_weight": s.file_weight,
                        "last_check": s.check.as_ref().map(|c| c.0.clone()),
                        "check_ms": s.check.as_ref().map(|c| round3(c.1)),
                        "weight": s.weight, "requests": s.requests, "active": s.active,
                        "errors": s.errors, "bytes": s.bytes,
                        "response_ms": round3(s.response_ms),
                        "requests_per_sec": self.server_rate(&p.name, &s.addr).map(round3),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect()
    }
}

fn rates_json(r: &Rates) -> Value {
    json!({
        "interval_secs": round3(r.interval.as_secs_f64()),
        "requests_per_sec": round3(r.requests_per_sec),
        "bytes_per_sec": round3(r.bytes_per_sec),
        "errors_5xx_per_sec": round3(r.errors_5xx_per_sec),
        "error_5xx_ratio": r.error_5xx_ratio.map(round3),
        "hit_ratio": r.hit_ratio.map(round3),
    })
}

/// The sampler's key of a server.
fn server_key(pool: &str, addr: &str) -> String {
    format!("{pool}/{addr}")
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::stats::Counters;

    /// A snapshot of one pool with one server, for the page and metrics tests.
    pub fn sample() -> Snapshot {
        let mut values = Counters::default().snapshot();
        values.extend(STORE.iter().map(|stat| Reading { stat, value: 0 }));
        values.extend(ACCESS_LOG.iter().map(|stat| Reading { stat, value: 0 }));
        for r in values.iter_mut() {
            r.value = match r.stat.key {
                "local_hit" => 7,
                "local_miss" => 3,
                "stored_bytes" => 100,
                _ => 0,
            };
        }
        let mut traffic = TrafficSnapshot {
            classes: [0, 9, 0, 0, 1],
            routes: vec![0; crate::stats::ROUTE_SLOTS],
            buckets: vec![0; crate::stats::DURATION_BOUNDS.len() + 1],
            duration_sum: 0.5,
            connections_open: 2,
            connections_total: 5,
            sent_bytes: 4000,
            hit_bytes: 300,
            draining: false,
        };
        traffic.routes[0] = 10;
        traffic.buckets[0] = 6;
        traffic.buckets[5] = 4;
        Snapshot {
            node: "a".into(),
            uptime_secs: 1,
            values,
            traffic,
            routes: vec!["origin".into()],
            pools: vec![PoolSnapshot {
                name: "origin".into(),
                algorithm: "roundrobin",
                servers: vec![ServerSnapshot {
                    addr: "127.0.0.1:1".into(),
                    up: true,
                    state: "up",
                    admin_state: "ready",
                    file_weight: 1,
                    since_secs: 5,
                    check: Some(("200".into(), 1.5)),
                    weight: 1,
                    requests: 3,
                    active: 0,
                    errors: 1,
                    bytes: 100,
                    response_ms: 2.5,
                }],
            }],
            cluster: None,
            rates: None,
            config: crate::reload::ReloadView::for_tests(),
        }
    }

    #[test]
    fn json_carries_the_derived_figures() {
        let v = sample().to_json();
        assert_eq!(v["local_hit"], 7);
        assert_eq!(v["stored_bytes"], 100);
        assert_eq!(v["hit_ratio"], 0.7);
        assert_eq!(v["byte_hit_ratio"], 0.75);
        assert_eq!(v["responses"]["5xx"], 1);
        assert_eq!(v["connections_open"], 2);
        assert_eq!(v["rates"], Value::Null);
        assert_eq!(v["pools"][0]["servers"][0]["state"], "up");
    }

    #[test]
    fn store_figures_have_help_and_unique_metrics() {
        let mut names: Vec<_> = Counters::STATS
            .iter()
            .chain(&STORE)
            .chain(ACCESS_LOG)
            .map(|s| s.metric)
            .collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
        assert!(STORE.iter().all(|s| s.help.len() > 10));
        assert!(ACCESS_LOG.iter().all(|s| s.help.trim().len() > 10));
    }
}
