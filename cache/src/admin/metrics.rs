//! `/metrics`: the node's snapshot in Prometheus text format, through the one registry built
//! when the admin listener starts (`strait_lb::admin::Metrics`); each scrape reads a fresh
//! snapshot, so pools and servers a reload changes need no re-registering.
//! Counters are `strait_<name>_total`; store sizes and per-server state are gauges.

use std::fmt;

use strait_lb::admin::metrics::{counter, counters, gauge, gauges, DescriptorEncoder};
use strait_lb::admin::Metrics;

use super::Snapshot;

/// Names of snapshot values that are gauges, not counters.
const GAUGES: &[&str] = &[
    "stored_objects",
    "stored_bytes",
    "capacity_bytes",
    "fills_in_flight",
    "inflight_bytes",
    "inflight_limit_bytes",
];

/// The node's registry: `read` takes the snapshot at each scrape.
pub fn registry(read: impl Fn() -> Snapshot + Send + Sync + 'static) -> Metrics {
    Metrics::new("strait", move |enc| {
        let s = read();
        encode(enc, &s)?;
        super::control::encode_admin_states(enc, &s)
    })
}

/// Every metric of one snapshot.
fn encode(enc: &mut DescriptorEncoder<'_>, s: &Snapshot) -> fmt::Result {
    for (name, value) in &s.values {
        let help = format!("strait node counter {name} (see docs/cache.md)");
        if GAUGES.contains(name) {
            gauge(enc, name, &help, *value)?;
        } else {
            counter(enc, name, &help, *value)?;
        }
    }
    let servers = || {
        s.pools.iter().flat_map(|p| {
            p.servers.iter().map(move |srv| {
                (
                    [("pool", p.name.as_str()), ("server", srv.addr.as_str())],
                    srv,
                )
            })
        })
    };
    gauges(
        enc,
        "origin_server_up",
        "1 when the origin server takes requests",
        servers().map(|(l, srv)| (l, u64::from(srv.up))),
    )?;
    counters(
        enc,
        "origin_server_requests",
        "Requests sent to the origin server",
        servers().map(|(l, srv)| (l, srv.requests)),
    )?;
    counters(
        enc,
        "origin_server_errors",
        "Failed requests to the origin server",
        servers().map(|(l, srv)| (l, srv.errors)),
    )?;
    gauges(
        enc,
        "origin_server_active",
        "Requests waiting on the origin server",
        servers().map(|(l, srv)| (l, srv.active)),
    )?;
    super::cluster::encode_metrics(enc, s.cluster.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::snapshot::{PoolSnapshot, ServerSnapshot};

    fn snapshot() -> Snapshot {
        Snapshot {
            node: "a".into(),
            uptime_secs: 1,
            values: vec![("local_hit", 7), ("stored_bytes", 100)],
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
                    bytes: 10,
                    response_ms: 2.5,
                }],
            }],
            cluster: None,
        }
    }

    #[test]
    fn counters_get_total_suffix_and_servers_get_labels() {
        let text = registry(snapshot).render().unwrap();
        assert!(text.contains("strait_local_hit_total 7"), "{text}");
        assert!(text.contains("strait_stored_bytes 100"), "{text}");
        assert!(
            text.contains(
                "strait_origin_server_requests_total{pool=\"origin\",server=\"127.0.0.1:1\"} 3"
            ),
            "{text}"
        );
    }
}
