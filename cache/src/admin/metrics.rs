//! `/metrics`: the snapshot in Prometheus text format, via the prometheus-client crate.
//! Counters are `strait_<name>_total`; store sizes and per-server state are gauges.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

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

type Labels = Vec<(String, String)>;

/// Render the snapshot.
pub fn render(s: &Snapshot) -> String {
    let mut reg = Registry::with_prefix("strait");
    for (name, value) in &s.values {
        if GAUGES.contains(name) {
            let g: Gauge = Gauge::default();
            g.set(i64::try_from(*value).unwrap_or(i64::MAX));
            reg.register(*name, help(name), g);
        } else {
            let c: Counter = Counter::default();
            c.inc_by(*value);
            reg.register(*name, help(name), c);
        }
    }
    let up: Family<Labels, Gauge> = Family::default();
    let requests: Family<Labels, Counter> = Family::default();
    let errors: Family<Labels, Counter> = Family::default();
    let active: Family<Labels, Gauge> = Family::default();
    let bytes: Family<Labels, Counter> = Family::default();
    let resp: Family<Labels, Gauge<f64, AtomicU64>> = Family::default();
    for p in &s.pools {
        for srv in &p.servers {
            let l = vec![
                ("pool".to_string(), p.name.clone()),
                ("server".to_string(), srv.addr.clone()),
            ];
            up.get_or_create(&l).set(i64::from(srv.up));
            bytes.get_or_create(&l).inc_by(srv.bytes);
            resp.get_or_create(&l).set(srv.response_ms);
            requests.get_or_create(&l).inc_by(srv.requests);
            errors.get_or_create(&l).inc_by(srv.errors);
            active
                .get_or_create(&l)
                .set(i64::try_from(srv.active).unwrap_or(i64::MAX));
        }
    }
    reg.register(
        "origin_server_up",
        "1 when the origin server takes requests",
        up,
    );
    reg.register(
        "origin_server_requests",
        "Requests sent to the origin server",
        requests,
    );
    reg.register(
        "origin_server_errors",
        "Failed requests to the origin server",
        errors,
    );
    reg.register(
        "origin_server_active",
        "Requests waiting on the origin server",
        active,
    );
    super::cluster::register(&mut reg, s.cluster.as_ref());
    let mut out = String::new();
    if encode(&mut out, &reg).is_err() {
        return "# encoding failed\n".to_string();
    }
    out
}

fn help(name: &str) -> String {
    format!("strait node counter {name} (see docs/cache.md)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::snapshot::{PoolSnapshot, ServerSnapshot};

    #[test]
    fn counters_get_total_suffix_and_servers_get_labels() {
        let s = Snapshot {
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
        };
        let text = render(&s);
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
