//! One consistent read of a node's counters, rendered as JSON (`/stats.json`).

use std::sync::atomic::Ordering;

use serde_json::{json, Map, Value};

use crate::http::ctx::Ctx;

/// Counters and pool state read at one moment.
pub struct Snapshot {
    pub node: String,
    pub uptime_secs: u64,
    /// (name, value) for every node counter, then the store gauges.
    pub values: Vec<(&'static str, u64)>,
    pub pools: Vec<PoolSnapshot>,
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
    pub up: bool,
    pub weight: u32,
    pub requests: u64,
    pub active: u64,
    pub errors: u64,
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
        let rt = ctx.rt.load();
        let pools = rt
            .pools
            .iter()
            .map(|p| PoolSnapshot {
                name: p.name.clone(),
                algorithm: p.algorithm.as_str(),
                servers: p
                    .servers
                    .iter()
                    .map(|s| ServerSnapshot {
                        addr: s.addr.to_string(),
                        up: true,
                        weight: s.weight,
                        requests: s.requests.load(Ordering::Relaxed),
                        active: s.active.load(Ordering::Relaxed),
                        errors: s.errors.load(Ordering::Relaxed),
                    })
                    .collect(),
            })
            .collect();
        Snapshot {
            node: ctx.node_id.clone(),
            uptime_secs: ctx.started.elapsed().as_secs(),
            values,
            pools,
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
                        "addr": s.addr, "up": s.up, "weight": s.weight,
                        "requests": s.requests, "active": s.active, "errors": s.errors,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        m.insert("pools".into(), Value::Array(pools));
        Value::Object(m)
    }
}
