//! Tests of director config loading: defaults, and each rule at its LINE:COL.

use std::time::Duration;

use super::*;
use crate::datapath::XdpMode;
use crate::packet::ratelimit::IcmpLimit;
use crate::packet::service::Mode;
use crate::sched::Scheduler;
use crate::test_dir::TestDir;

const EXAMPLE: &str = r#"[director]
id = "dir-a"
interface = "eth0"
inner_interface = "eth1"
datapath = "userspace"
xdp_mode = "generic"
admin = "127.0.0.1:9191"
max_conns = 1000
table_size = 251
threaded_napi = true
icmp_rate = 200
icmp_burst = 10
new_flow_rate = 50000
new_flow_burst = 5000
tcp_timeout = "15m"
udp_timeout = "0s"
tcp_fin_timeout = "30s"

[[service]]
vip = "10.0.0.100:80"
mode = "dr"
backends = [{ addr = "10.0.0.11", weight = 100 }, { addr = "10.0.0.12" }]
health = { kind = "http", path = "/health", port = 8080, interval = "500ms", timeout = "300ms", rise = 3, fall = 2, expect = 204 }

[[service]]
vip = "10.0.0.100:53"
proto = "udp"
mode = "nat"
scheduler = "sh"
backends = [{ addr = "10.0.1.11:5353", weight = 0 }, { addr = "10.0.1.12" }]
"#;

const MINIMAL: &str = "[director]\nid = \"d\"\ninterface = \"eth0\"\n\
                       [[service]]\nvip = \"10.0.0.100:80\"\nmode = \"tun\"\n\
                       backends = [{ addr = \"10.0.0.11\" }]\n";

/// The diagnostics of `text`, each rendered; panics if it parses.
pub(super) fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(c) => panic!("expected problems, got {c:?}\n{text}"),
        Err(d) => d.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_example_parses_with_every_value() {
    let c = parse(EXAMPLE).unwrap();
    assert_eq!(c.id, "dir-a");
    assert_eq!(c.inner_interface.as_deref(), Some("eth1"));
    assert_eq!(
        (c.datapath, c.xdp_mode),
        (DatapathKind::Userspace, XdpMode::Generic)
    );
    assert_eq!(c.admin, "127.0.0.1:9191".parse().unwrap());
    assert_eq!((c.max_conns, c.table_size), (1000, 251));
    assert_eq!(c.threaded_napi, Some(true));
    assert_eq!(c.icmp, IcmpLimit::new(200, 10));
    assert_eq!(c.new_flow, IcmpLimit::new(50_000, 5000));
    assert_eq!(
        (c.conn_timeouts.tcp, c.conn_timeouts.udp),
        (Duration::from_secs(900), Duration::ZERO)
    );
    assert_eq!(c.conn_timeouts.tcp_fin, Duration::from_secs(30));
    let s = &c.services[0];
    assert_eq!(
        (s.proto, s.mode, s.scheduler),
        (Proto::Tcp, Mode::Dr, Scheduler::Maglev)
    );
    assert_eq!(s.backends[1].weight, 100);
    assert_eq!(s.backends[1].port, 80);
    assert_eq!(
        s.health,
        HealthCheck {
            kind: CheckKind::Http {
                path: "/health".into(),
                expect: 204
            },
            port: Some(8080),
            interval: Duration::from_millis(500),
            timeout: Duration::from_millis(300),
            rise: 3,
            fall: 2,
        }
    );
    let s = &c.services[1];
    assert_eq!(
        (s.proto, s.mode, s.scheduler),
        (Proto::Udp, Mode::Nat, Scheduler::Sh)
    );
    assert_eq!((s.backends[0].port, s.backends[0].weight), (5353, 0));
    assert_eq!(s.backends[1].port, 53);
}

#[test]
fn defaults_are_filled_in() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.datapath, DatapathKind::Xdp);
    assert_eq!(c.xdp_mode, XdpMode::Auto);
    assert_eq!(c.admin, DEFAULT_ADMIN.parse().unwrap());
    assert_eq!((c.max_conns, c.table_size), (DEFAULT_MAX_CONNS, 65_537));
    assert_eq!(c.threaded_napi, None);
    assert_eq!(c.icmp, IcmpLimit::new(1000, 50));
    assert_eq!(c.icmp.cost_ns, 1_000_000);
    assert_eq!(c.new_flow, IcmpLimit::NONE, "no new-flow guard by default");
    assert_eq!(
        (c.conn_timeouts.tcp, c.conn_timeouts.udp),
        (DEFAULT_TCP_TIMEOUT, DEFAULT_UDP_TIMEOUT)
    );
    assert_eq!(c.conn_timeouts.tcp_fin, DEFAULT_TCP_FIN_TIMEOUT);
    // In jiffies at 250 Hz, and in the userspace table's milliseconds.
    let t = c.conn_timeouts.ticks(250);
    assert_eq!((t.tcp, t.tcp_fin, t.udp), (225_000, 30_000, 75_000));
    assert_eq!(c.conn_timeouts.ticks(1000).udp, 300_000);
    assert_eq!(c.services[0].health, HealthCheck::default());
    assert_eq!(c.services[0].backends[0].weight, DEFAULT_WEIGHT);
}

#[test]
fn director_rules_are_reported_at_their_values() {
    let text = MINIMAL.replace("\"d\"", "\"bad id!\"").replace(
        "\"eth0\"",
        "\"eth0/x\"\ndatapath = \"dpdk\"\ntable_size = 100\nmax_conns = 0\nicmp_rate = -1\n\
         icmp_burst = 0\ntcp_timeout = \"8d\"\nudp_timeout = \"soon\"\nnew_flow_rate = 100000001\n\
         new_flow_burst = 0",
    );
    assert_eq!(
        errors(&text),
        [
            "2:6: director.id \"bad id!\" must be 1 to 32 letters, digits, '_' or '-'",
            "3:13: interface \"eth0/x\" is not a valid interface name (1 to 15 bytes, no '/', ':' or spaces)",
            "4:12: datapath \"dpdk\" is unknown; use \"xdp\" or \"userspace\"",
            "5:14: table_size 100 is not prime (65537, 4099 and 251 are)",
            "6:13: max_conns 0 is out of range 1..=16777216",
            "7:13: icmp_rate -1 is out of range 0..=1000000",
            "8:14: icmp_burst 0 is out of range 1..=1000000",
            "9:15: tcp_timeout \"8d\" is longer than 7 days",
            "10:15: udp_timeout: \"soon\" is not a duration; write e.g. \"900s\" or \"15m\" \
             (\"0s\": never)",
            "11:17: new_flow_rate 100000001 is out of range 0..=100000000",
            "12:18: new_flow_burst 0 is out of range 1..=100000000",
        ]
    );
}

#[test]
fn unsupported_features_are_refused_with_their_reason() {
    let text = MINIMAL.replace("mode = \"tun\"", "mode = \"tun\"\nscheduler = \"wlc\"");
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("7:13: scheduler \"wlc\" is not supported yet: wlc needs per-backend"),
        "{e:?}"
    );
    let text = MINIMAL.replace("[{ addr = \"10.0.0.11\" }]", "\"cluster\"");
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("7:12: backends = \"cluster\""), "{e:?}");
}

#[test]
fn service_rules_are_reported_at_their_values() {
    let text = MINIMAL.replace(
        "backends = [{ addr = \"10.0.0.11\" }]",
        "backends = [{ addr = \"10.0.0.11:8080\" }, { addr = \"10.0.0.12\", weight = 70000 }, \
         { addr = \"10.0.0.12\" }]\nhealth = { interval = \"1s\", timeout = \"1s\", rise = 0 }",
    );
    assert_eq!(
        errors(&text),
        [
            "7:22: backend addr \"10.0.0.11:8080\": a port is only allowed in nat mode (dr and tun keep the VIP's port)",
            "7:73: weight 70000 is out of range 0..=65535",
            "7:91: backend 10.0.0.12:80 is listed twice in this service",
            "8:39: health.timeout (1s) must be shorter than health.interval (1s)",
            "8:52: health.rise 0 is out of range 1..=100",
        ]
    );
}

#[test]
fn duplicate_services_and_bad_vips_are_reported() {
    let service = "[[service]]\nvip = \"10.0.0.100:80\"\nmode = \"dr\"\nbackends = [{ addr = \"10.0.0.11\" }]\n";
    let text = format!(
        "{MINIMAL}{service}[[service]]\nvip = \"10.0.0.100\"\nmode = \"fast\"\nbackends = []\n"
    );
    assert_eq!(
        errors(&text),
        [
            "9:7: service 10.0.0.100:80 tcp is already defined by service #1",
            "13:7: vip \"10.0.0.100\" must be an IPv4 address with a port, e.g. \"10.0.0.100:80\"; \
             names are not resolved",
            "14:8: mode \"fast\" is unknown; use \"dr\", \"tun\" or \"nat\"",
            "15:12: backends is empty: a service needs at least one",
        ]
    );
    assert_eq!(
        errors("[director]\nid = \"d\"\ninterface = \"lo\"\n"),
        ["1:1: no [[service]]: a director needs 1 to 32 services"]
    );
}

#[test]
fn serde_errors_name_their_key() {
    let text = MINIMAL.replace("mode = \"tun\"", "mode = \"tun\"\ncolour = 1");
    let e = errors(&text);
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("7:1: service: unknown field `colour`"),
        "{e:?}"
    );
    let text = MINIMAL.replace("\"10.0.0.11\" }", "\"10.0.0.11\", wieght = 1 }");
    let e = errors(&text);
    assert!(e[0].contains("unknown field `wieght`"), "{e:?}");
    let text = MINIMAL.replace("\"eth0\"", "\"eth0\"\nthreaded_napi = \"yes\"");
    let e = errors(&text);
    assert!(
        e[0].starts_with("4:17: ") && e[0].contains("expected a boolean"),
        "{e:?}"
    );
}

#[test]
fn table_size_must_hold_twice_the_backends() {
    let text = MINIMAL
        .replace("\"eth0\"", "\"eth0\"\ntable_size = 3")
        .replace(
            "[{ addr = \"10.0.0.11\" }]",
            "[{ addr = \"10.0.0.11\" }, { addr = \"10.0.0.12\" }]",
        );
    assert_eq!(
        errors(&text),
        ["4:14: table_size 3 is too small for service 10.0.0.100:80's 2 backends (need a prime of at least 4)"]
    );
}

const CLUSTER: &str = "[director]\nid = \"d\"\ninterface = \"eth0\"\n\
                       [[service]]\nvip = \"10.0.0.100:80\"\nmode = \"dr\"\n\
                       backends = \"cluster\"\n\
                       [cluster]\ngossip_listen = \"10.0.0.3:7946\"\ninsecure = true\n";

#[test]
fn a_reachable_gossip_listener_needs_a_secret_or_insecure() {
    let e = errors(&CLUSTER.replace("insecure = true\n", ""));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("9:17: cluster.gossip_listen 10.0.0.3:7946 is reachable from other hosts but [cluster] has no secret_file"),
        "{e:?}"
    );
    let local = CLUSTER
        .replace("insecure = true\n", "")
        .replace("10.0.0.3:7946", "127.0.0.1:7946");
    assert!(parse(&local).is_ok(), "loopback needs no secret");
}

#[test]
fn a_cluster_service_takes_its_backends_from_the_cluster_table() {
    let c = parse(CLUSTER).unwrap();
    assert!(c.services[0].cluster);
    assert!(c.services[0].backends.is_empty());
    let cl = c.cluster.unwrap();
    assert_eq!(cl.gossip_listen, "10.0.0.3:7946".parse().unwrap());
    assert!(cl.seeds.is_empty() && cl.secret.is_none());
    assert_eq!(
        (cl.probe_interval, cl.suspect_timeout),
        (Duration::from_millis(200), Duration::from_millis(1300))
    );
    assert!(!parse(MINIMAL).unwrap().services[0].cluster);
    assert!(parse(MINIMAL).unwrap().cluster.is_none());
}

#[test]
fn cluster_backends_need_the_cluster_table() {
    let text = MINIMAL.replace("[{ addr = \"10.0.0.11\" }]", "\"cluster\"");
    assert_eq!(
        errors(&text),
        [
            "7:12: backends = \"cluster\" needs a [cluster] table in this file (gossip_listen, \
          seeds, secret_file) to join the cache cluster's gossip"
        ]
    );
    let text = MINIMAL.replace("[{ addr = \"10.0.0.11\" }]", "\"nodes\"");
    assert_eq!(
        errors(&text),
        ["7:12: backends \"nodes\" is not a list of backends"]
    );
}

#[test]
fn cluster_rules_are_reported_at_their_values() {
    let dir = TestDir::new("dir-cluster");
    let short = dir.join("short.key");
    std::fs::write(&short, "tooshort   \n").unwrap();
    let text = CLUSTER.replace(
        "gossip_listen = \"10.0.0.3:7946\"\n",
        &format!(
            "gossip_listen = \"0.0.0.0:7946\"\nseeds = [\"10.0.0.11:7946\", \"10.0.0.11:7946\", \
             \"10.0.0.12\", \"10.0.0.13:0\"]\nsecret_file = {short:?}\n\
             probe_interval = \"10ms\"\nsuspect_timeout = \"soon\"\n"
        ),
    );
    let e = errors(&text);
    assert_eq!(e.len(), 7, "{e:?}");
    assert_eq!(
        e[0],
        "9:17: cluster.gossip_listen \"0.0.0.0:7946\" is unspecified; the nodes must be able \
         to reach this address"
    );
    assert_eq!(e[1], "10:28: cluster.seeds lists 10.0.0.11:7946 twice");
    assert_eq!(
        e[2],
        "10:46: cluster.seeds: \"10.0.0.12\" is not an ip:port address; names are not resolved"
    );
    assert_eq!(
        e[3],
        "10:59: cluster.seeds: \"10.0.0.13:0\" has port 0; the nodes must know the port"
    );
    assert!(
        e[4].starts_with("11:15: cluster.secret_file ")
            && e[4].ends_with(": the key is 8 bytes long (after trimming trailing whitespace); at least 16 are needed"),
        "{e:?}"
    );
    assert_eq!(
        e[5],
        "12:18: cluster.probe_interval \"10ms\" must be 50ms to 60s"
    );
    assert_eq!(
        e[6],
        "13:19: cluster.suspect_timeout: \"soon\" is not a duration; write e.g. \"500ms\" or \"2s\""
    );
    let missing = CLUSTER.replace(
        "gossip_listen = \"10.0.0.3:7946\"\n",
        "gossip_listen = \"10.0.0.3:7946\"\nsecret_file = \"/nonexistent/strait.key\"\n\
         probe_interval = \"2s\"\nsuspect_timeout = \"1s\"\n",
    );
    let e = errors(&missing);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with("10:15: cluster.secret_file /nonexistent/strait.key: cannot read:"),
        "{e:?}"
    );
    assert_eq!(
        e[1],
        "12:19: cluster.suspect_timeout (1s) must be at least probe_interval (2s)"
    );
    let key = dir.join("good.key");
    std::fs::write(&key, "0123456789abcdef0123\n").unwrap();
    let good = CLUSTER.replace(
        "gossip_listen = \"10.0.0.3:7946\"\n",
        &format!("gossip_listen = \"10.0.0.3:7946\"\nsecret_file = {key:?}\n"),
    );
    let secret = parse(&good).unwrap().cluster.unwrap().secret.unwrap();
    assert_eq!(&secret.0[..], b"0123456789abcdef0123");
    assert_eq!(format!("{secret:?}"), "ClusterKey(20 bytes)");
}

#[test]
fn cluster_unknown_and_missing_keys_are_errors() {
    let typo = CLUSTER.replace(
        "gossip_listen = ",
        "gossip_listen = \"10.0.0.3:7946\"\nweight = 3\n#",
    );
    let e = errors(&typo);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("10:1: cluster: unknown field `weight`"),
        "{e:?}"
    );
    let missing = CLUSTER.replace("gossip_listen = \"10.0.0.3:7946\"", "seeds = []");
    let e = errors(&missing);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("missing field `gossip_listen`"), "{e:?}");
}

/// Found by the `director_config` fuzz target: toml reports a control character in a comment
/// with an empty message, so `strait check` printed a bare position.
#[test]
fn a_control_character_in_a_comment_is_named() {
    let text = "# a comment with \u{1d} in it\n[director]\n";
    let diags = match crate::config::parse(text) {
        Err(d) => d,
        Ok(_) => panic!("a control character parsed"),
    };
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].message, "invalid character U+001D");
    assert_eq!((diags[0].line, diags[0].col), (1, 18));
}
