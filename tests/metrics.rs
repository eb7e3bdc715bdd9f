//! What an operator reads from a running node: `/metrics` parsed whole by a Prometheus text
//! parser from crates.io (`prometheus-parse`), the format chosen by `Accept`, `/stats.json`'s
//! derived figures, and the admin listener answering through a drain until the process exits.
//! Every address here is on 127.0.21.0/24.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use prometheus_parse::{Scrape, Value};
use support::*;

/// A node on 127.0.21.1 in front of `origin`.
fn node_on_21(origin: SocketAddr, node: &str) -> Node {
    Node::start_config(&format!(
        "[node]\nid = \"{node}\"\nlisten = [\"127.0.21.1:0\"]\nadmin = \"127.0.21.1:0\"\n\
         drain_timeout = \"20s\"\n\n[[pool]]\nname = \"origin\"\nservers = [{{ addr = \"{origin}\" }}]\n\n\
         [[route]]\nmatch = {{ path_prefix = \"/dyn/\" }}\npool = \"origin\"\ncache = false\n\n\
         [[route]]\npool = \"origin\"\n"
    ))
}

/// `strait sim origin` on 127.0.21.1.
fn origin_on_21() -> Proc {
    Proc::spawn_origin_on("127.0.21.1:0".parse().unwrap())
}

fn origin_addr(p: &Proc) -> SocketAddr {
    let line = p.wait_line("listening on", START_TIMEOUT);
    line.split_whitespace().last().unwrap().parse().unwrap()
}

/// Checks a whole 0.0.4 exposition: every family has HELP and TYPE, counters end in `_total`,
/// histogram buckets are monotone and `+Inf` equals `_count`; returns the parsed scrape.
fn check_exposition(text: &str) -> Scrape {
    assert!(!text.contains("# EOF"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            let help = format!("# HELP {name} ");
            assert!(
                i > 0 && lines[i - 1].starts_with(&help),
                "no HELP before {l}"
            );
            assert!(
                lines[i - 1].len() > help.len() + 5,
                "empty help: {}",
                lines[i - 1]
            );
            assert!(
                !lines[i - 1].contains("see "),
                "placeholder help: {}",
                lines[i - 1]
            );
        }
    }
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let sample = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .map(|s| s.value.clone())
    };
    for s in &scrape.samples {
        match &s.value {
            Value::Counter(_) => assert!(s.metric.ends_with("_total"), "{}", s.metric),
            Value::Gauge(_) => {}
            Value::Histogram(b) => {
                assert!(b.windows(2).all(|w| w[0].less_than < w[1].less_than));
                assert!(b.windows(2).all(|w| w[0].count <= w[1].count), "{b:?}");
                let inf = b.last().unwrap();
                assert!(inf.less_than.is_infinite());
                let count = sample(&format!("{}_count", s.metric));
                assert_eq!(count, Some(Value::Untyped(inf.count)), "{}", s.metric);
            }
            Value::Untyped(_) => {
                let family = ["_sum", "_count"]
                    .iter()
                    .find_map(|suf| s.metric.strip_suffix(suf))
                    .unwrap_or_else(|| panic!("no TYPE for {}", s.metric));
                assert!(scrape.docs.contains_key(family), "{}", s.metric);
                continue;
            }
            Value::Summary(_) => panic!("unexpected summary {}", s.metric),
        }
        assert!(
            scrape.docs.contains_key(&s.metric),
            "no HELP for {}",
            s.metric
        );
    }
    scrape
}

fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            other => panic!("{name}: {other:?}"),
        })
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
}

#[test]
fn a_live_nodes_metrics_parse_whole_and_count_what_was_served() {
    let origin = origin_on_21();
    let node = node_on_21(origin_addr(&origin), "m");
    assert_eq!(get(node.addr, "/obj/m?size=2000", &[]).status, 200);
    assert_eq!(get(node.addr, "/obj/m?size=2000", &[]).status, 200);
    assert_eq!(get(node.addr, "/dyn/x", &[]).status, 200);
    assert_eq!(get(node.addr, "/nothing-here", &[]).status, 404);
    // A response is counted once written: the client may have it (and scrape) a moment
    // before the node's task counts it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let r = loop {
        let r = admin_request(node.admin, "GET", "/metrics", &[]);
        let counted = r
            .text()
            .contains("strait_http_responses_total{code=\"4xx\"} 1\n");
        if counted || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    let scrape = check_exposition(&text);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(&scrape, "strait_build_info", &[("version", version)]),
        1.0
    );
    assert_eq!(value(&scrape, "strait_cache_local_hits_total", &[]), 1.0);
    assert_eq!(value(&scrape, "strait_http_requests_total", &[]), 4.0);
    assert_eq!(
        value(&scrape, "strait_http_responses_total", &[("code", "2xx")]),
        3.0
    );
    assert_eq!(
        value(&scrape, "strait_http_responses_total", &[("code", "4xx")]),
        1.0
    );
    let route = |r| value(&scrape, "strait_route_requests_total", &[("route", r)]);
    assert_eq!((route("0"), route("1")), (1.0, 3.0));
    assert_eq!(
        value(&scrape, "strait_http_request_duration_seconds_count", &[]),
        4.0
    );
    assert_eq!(value(&scrape, "strait_client_connections_total", &[]), 4.0);
    assert!(value(&scrape, "strait_client_sent_bytes_total", &[]) > 4000.0);
    assert_eq!(value(&scrape, "strait_cache_hit_bytes_total", &[]), 2000.0);
    let server = [("pool", "origin")];
    assert_eq!(value(&scrape, "strait_origin_server_weight", &server), 1.0);
    assert!(
        value(
            &scrape,
            "strait_origin_server_received_bytes_total",
            &server
        ) >= 2000.0
    );
    assert!(value(&scrape, "strait_origin_server_response_seconds", &server) > 0.0);
    for old in [
        "strait_local_hit_total",
        "strait_stored_bytes ",
        "strait_requests_total",
    ] {
        assert!(!text.contains(old), "{old} still served");
    }
}

#[test]
fn openmetrics_is_served_when_asked_for_with_its_own_type_and_eof() {
    let origin = origin_on_21();
    let node = node_on_21(origin_addr(&origin), "o");
    let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let r = admin_request(node.admin, "GET", "/metrics", &[("Accept", accept)]);
    assert_eq!(r.status, 200);
    let ctype = r.header("content-type").unwrap_or_default();
    assert!(
        ctype.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ctype}"
    );
    let text = r.text();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("# TYPE strait_http_requests counter\n"),
        "{text}"
    );
    assert!(text.contains("\nstrait_http_requests_total 0\n"), "{text}");
}

#[test]
fn stats_json_carries_hit_ratios_rates_and_connections() {
    let origin = origin_on_21();
    let node = node_on_21(origin_addr(&origin), "j");
    let first = node.stats();
    assert_eq!(first["rates"], serde_json::Value::Null, "{first}");
    assert_eq!(first["hit_ratio"], serde_json::Value::Null, "{first}");
    for _ in 0..4 {
        assert_eq!(get(node.addr, "/obj/j?size=100", &[]).status, 200);
    }
    std::thread::sleep(Duration::from_millis(1100));
    let s = node.stats();
    assert_eq!(s["hit_ratio"], 0.75, "{s}");
    let rates = &s["rates"];
    assert!(rates["interval_secs"].as_f64() >= Some(1.0), "{s}");
    assert!(rates["requests_per_sec"].as_f64() > Some(0.0), "{s}");
    assert!(rates["bytes_per_sec"].as_f64() > Some(0.0), "{s}");
    assert_eq!(rates["error_5xx_ratio"], 0.0, "{s}");
    assert_eq!(s["responses"]["2xx"], 4, "{s}");
    assert_eq!(s["connections_total"], 4, "{s}");
    let page = admin_request(node.admin, "GET", "/", &[]).text();
    assert!(page.contains("hit ratio (requests)<b>75.0%</b>"), "{page}");
}

/// An origin that answers one request only when told to.
fn held_origin() -> (SocketAddr, mpsc::Sender<()>) {
    let l = TcpListener::bind("127.0.21.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let _ = rx.recv_timeout(Duration::from_secs(30));
        let body = "held";
        let head = format!(
            "HTTP/1.1 200 OK\r\ncache-control: no-store\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let _ = s.write_all(head.as_bytes());
        let _ = s.write_all(body.as_bytes());
    });
    (addr, tx)
}

#[test]
fn the_admin_listener_answers_through_a_drain_and_shows_the_connection_left() {
    let (origin, release) = held_origin();
    let mut node = node_on_21(origin, "d");
    // A client whose response the origin holds.
    let mut client = TcpStream::connect(node.addr).unwrap();
    client.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    client
        .write_all(b"GET /dyn/slow HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        node.stats()["connections_open"] == 1
    }));
    node.proc.signal("TERM");
    node.proc.wait_line("draining", START_TIMEOUT);
    // The client listener is closed, the admin one still answers.
    assert!(wait_until(Duration::from_secs(10), || TcpStream::connect(
        node.addr
    )
    .is_err()));
    let s = node.stats();
    assert_eq!(
        (s["draining"].as_bool(), s["connections_open"].as_u64()),
        (Some(true), Some(1))
    );
    let page = admin_request(node.admin, "GET", "/", &[]).text();
    assert!(
        page.contains("draining: 1 client connection(s) left"),
        "{page}"
    );
    let metrics = admin_request(node.admin, "GET", "/metrics", &[]).text();
    assert!(metrics.contains("\nstrait_draining 1\n"), "{metrics}");
    assert!(
        metrics.contains("\nstrait_client_connections_open 1\n"),
        "{metrics}"
    );
    // The held response completes, the node exits cleanly, and admin with it.
    release.send(()).unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("held"), "{answer}");
    let status = node.proc.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(TcpStream::connect(node.admin).is_err());
}
