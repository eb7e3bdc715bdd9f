//! One consistent read of a node's counters, rendered as JSON (`/stats.json`).

use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use serde_json::{json, Map, Value};
use strait_lb::health::ServerState;

use crate::http::ctx::Ctx;
use crate::origin::Server;

/// Counters and pool state read at one moment.
pub struct Snapshot {
    pub node: String,
    pub uptime_secs: u64,
    /// (name, value) for every node counter, then the store gauges.
    pub values: Vec<(&'static str, u64)>,
    pub pools: Vec<PoolSnapshot>,
    /// The cluster, when the node has `[cluster]`.
    pub cluster: Option<super::ClusterSnapshot>,
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
    /// Read everything now.
    pub fn take(ctx: &Ctx) -> Snapshot {
        let mut values = ctx.counters.snapshot();
        values.push(("stored_objects", ctx.store.objects()));
        values.push(("stored_bytes", ctx.store.bytes()));
        values.push(("capacity_bytes", ctx.store.capacity()));
        values.push(("evictions", ctx.store.evictions()));
        values.push(("fills_in_flight", ctx.fills.in_flight() as u64));
        values.push(("inflight_bytes", ctx.fills.inflight_bytes()));
        values.push(("inflight_limit_bytes", ctx.fills.inflight_limit()));
        values.push(("stream_detached", ctx.fills.detached()));
        values.push(("fills_over_budget", ctx.fills.over_budget()));
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
            pools,
            cluster: ctx.cluster.as_ref().map(super::ClusterSnapshot::of),
        }
    }

    /// The `/stats.json` document.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("node".into(), json!(self.node));
        m.insert("uptime_secs".into(), json!(self.uptime_secs));
        for (k, v) in &self.values {
            m.insert((*k).into(), json!(v));
        }
        let pools: Vec<Value> = self
            .pools
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "algorithm": p.algorithm,
                    "servers": p.servers.iter().map(|s| json!({
                        "addr": s.addr, "up": s.up, "state": s.state, "since_secs": s.since_secs,
                        "admin_state": s.admin_state, "file_weight": s.file_weight,
                        "last_check": s.check.as_ref().map(|c| c.0.clone()),
                        "check_ms": s.check.as_ref().map(|c| (c.1 * 1000.0).round() / 1000.0),
                        "weight": s.weight, "requests": s.requests, "active": s.active,
                        "errors": s.errors, "bytes": s.bytes,
                        "response_ms": (s.response_ms * 1000.0).round() / 1000.0,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        m.insert("pools".into(), Value::Array(pools));
        Value::Object(m)
    }
}
