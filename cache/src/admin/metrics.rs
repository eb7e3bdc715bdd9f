//! `/metrics`: the node's snapshot in Prometheus text (or OpenMetrics, on `Accept`), through
//! the one registry built when the admin listener starts (`strait_lb::admin::Metrics`); each
//! scrape reads a fresh snapshot, so pools and servers a reload changes need no
//! re-registering. Every series and its meaning is listed in docs/cache.md ("Metrics").

use std::fmt;

use strait_lb::admin::metrics::{
    build_info, counter, counters, gauge, gauges, gauges_f64, histogram, DescriptorEncoder,
    HistogramSnapshot,
};
use strait_lb::admin::Metrics;

use super::Snapshot;
use crate::stats::{Kind, CLASSES, DURATION_BOUNDS, ROUTE_SLOTS};

/// Server states, each a sample of `origin_server_state`.
const SERVER_STATES: [&str; 5] = ["up", "down", "ejected", "draining", "maint"];

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
    build_info(enc)?;
    for r in &s.values {
        let help = r.stat.help.trim();
        match r.stat.kind {
            Kind::Counter => counter(enc, r.stat.metric, help, r.value)?,
            Kind::Gauge => gauge(enc, r.stat.metric, help, r.value)?,
        }
    }
    encode_traffic(enc, s)?;
    encode_servers(enc, s)?;
    encode_config(enc, &s.config)?;
    super::cluster::encode_metrics(enc, s.cluster.as_ref())
}

/// Responses, routes, durations, connections and bytes.
fn encode_traffic(enc: &mut DescriptorEncoder<'_>, s: &Snapshot) -> fmt::Result {
    let t = &s.traffic;
    counters(
        enc,
        "http_responses",
        "Client responses by status class, counted when complete or handed to the writer",
        CLASSES
            .iter()
            .zip(t.classes)
            .map(|(c, n)| ([("code", *c)], n)),
    )?;
    let routes: Vec<(String, String, u64)> = t
        .routes
        .iter()
        .enumerate()
        .filter(|&(i, &n)| n > 0 || i < s.routes.len())
        .map(|(i, &n)| {
            let route = if i == ROUTE_SLOTS - 1 {
                format!("{i}+")
            } else {
                i.to_string()
            };
            (route, s.routes.get(i).cloned().unwrap_or_default(), n)
        })
        .collect();
    counters(
        enc,
        "route_requests",
        "Client requests answered, by route (its 0-based position in [[route]]) and its pool",
        routes
            .iter()
            .map(|(r, p, n)| ([("route", r.as_str()), ("pool", p.as_str())], *n)),
    )?;
    histogram(
        enc,
        "http_request_duration_seconds",
        "Client request durations: from the request read to its response complete (or, \
         through hyper, its head handed to the writer)",
        &HistogramSnapshot {
            bounds: &DURATION_BOUNDS,
            counts: t.buckets.clone(),
            sum: t.duration_sum,
        },
    )?;
    gauge(
        enc,
        "client_connections_open",
        "Client connections open now",
        t.connections_open,
    )?;
    counter(
        enc,
        "client_connections",
        "Client connections accepted",
        t.connections_total,
    )?;
    counter(
        enc,
        "client_sent_bytes",
        "Bytes written to client connections (heads and bodies)",
        t.sent_bytes,
    )?;
    counter(
        enc,
        "cache_hit_bytes",
        "Body bytes of responses served from this node's store",
        t.hit_bytes,
    )?;
    gauge(
        enc,
        "draining",
        "1 while the node drains (SIGTERM): listeners closed, open connections finishing",
        u64::from(t.draining),
    )
}

/// Per origin server: state, weight, load, errors, bytes and latency.
fn encode_servers(enc: &mut DescriptorEncoder<'_>, s: &Snapshot) -> fmt::Result {
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
        "1 when the origin server takes new requests (up, not ejected, weight above 0)",
        servers().map(|(l, srv)| (l, u64::from(srv.up))),
    )?;
    let states = servers().flat_map(|([pool, server], srv)| {
        SERVER_STATES
            .iter()
            .map(move |st| ([pool, server, ("state", *st)], u64::from(srv.state == *st)))
    });
    gauges(
        enc,
        "origin_server_state",
        "1 for the origin server's state (up, down, ejected by passive checks, draining at \
         weight 0), 0 for the others",
        states,
    )?;
    gauges(
        enc,
        "origin_server_weight",
        "The origin server's weight now (0: draining, no new requests)",
        servers().map(|(l, srv)| (l, u64::from(srv.weight))),
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
        "Failed requests to the origin server (connect, timeout, broken response, 5xx)",
        servers().map(|(l, srv)| (l, srv.errors)),
    )?;
    gauges(
        enc,
        "origin_server_active",
        "Requests waiting for the origin server's response head now",
        servers().map(|(l, srv)| (l, srv.active)),
    )?;
    counters(
        enc,
        "origin_server_received_bytes",
        "Response body bytes received from the origin server",
        servers().map(|(l, srv)| (l, srv.bytes)),
    )?;
    gauges_f64(
        enc,
        "origin_server_response_seconds",
        "Moving average (1/8 weight) of the origin server's time to the response head",
        servers().map(|(l, srv)| (l, srv.response_ms / 1000.0)),
    )
}

/// Version, config and the last reload (`crate::reload`).
fn encode_config(enc: &mut DescriptorEncoder<'_>, c: &crate::reload::ReloadView) -> fmt::Result {
    gauges(
        enc,
        "config_info",
        "Always 1: the build's version, the config file and the SHA-256 of its last read text",
        [(
            [
                ("version", c.version),
                ("path", c.path.as_str()),
                ("hash", c.hash.as_str()),
            ],
            1,
        )],
    )?;
    gauge(
        enc,
        "config_last_reload_timestamp_seconds",
        "Unix time of the last reload (file or cluster), 0 before the first",
        c.last_time(),
    )?;
    gauge(
        enc,
        "config_last_reload_success",
        "1 when the last reload was applied (or none happened yet), 0 when it was refused",
        u64::from(c.last.as_ref().is_none_or(|o| o.applied)),
    )?;
    counters(
        enc,
        "config_reloads",
        "Reloads by result (applied: maybe without start-only keys; refused: the running config stayed)",
        [
            ([("result", "applied")], c.applied),
            ([("result", "refused")], c.refused),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::snapshot::tests::sample;

    #[test]
    fn counters_get_total_suffix_and_servers_get_labels() {
        let text = registry(sample).render().unwrap();
        for want in [
            "strait_cache_local_hits_total 7\n",
            "strait_store_bytes 100\n",
            "strait_origin_server_requests_total{pool=\"origin\",server=\"127.0.0.1:1\"} 3\n",
            "strait_origin_server_weight{pool=\"origin\",server=\"127.0.0.1:1\"} 1\n",
            "strait_origin_server_received_bytes_total{pool=\"origin\",server=\"127.0.0.1:1\"} 100\n",
            "strait_origin_server_response_seconds{pool=\"origin\",server=\"127.0.0.1:1\"} 0.0025\n",
            "strait_origin_server_state{pool=\"origin\",server=\"127.0.0.1:1\",state=\"up\"} 1\n",
            "strait_http_responses_total{code=\"5xx\"} 1\n",
            "strait_route_requests_total{route=\"0\",pool=\"origin\"} 10\n",
            "strait_http_request_duration_seconds_bucket{le=\"+Inf\"} 10\n",
            "strait_http_request_duration_seconds_count 10\n",
            "strait_client_connections_open 2\n",
            "strait_client_connections_total 5\n",
            "# TYPE strait_client_connections_total counter\n",
        ] {
            assert!(text.contains(want), "{want:?} in\n{text}");
        }
        assert!(!text.contains("see "), "{text}");
        assert!(!text.contains("route=\"1\""), "{text}");
        for want in [
            "strait_config_reloads_total{result=\"refused\"} 0\n",
            "strait_config_info{version=\"",
            "strait_config_last_reload_success 1\n",
            "strait_access_log_dropped_total 0\n",
            "# TYPE strait_access_log_lines_total counter\n",
        ] {
            assert!(text.contains(want), "{want:?} in\n{text}");
        }
    }

    #[test]
    fn every_family_has_one_help_and_type() {
        let text = registry(sample).render().unwrap();
        let mut helps: Vec<_> = text.lines().filter(|l| l.starts_with("# HELP ")).collect();
        let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        assert_eq!(helps.len(), types);
        let n = helps.len();
        helps.sort_unstable();
        helps.dedup_by(|a, b| a.split(' ').nth(2) == b.split(' ').nth(2));
        assert_eq!(helps.len(), n, "a family twice");
    }
}
