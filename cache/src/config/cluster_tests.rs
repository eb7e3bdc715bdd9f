//! Tests of `[cluster]`: parsing, defaults, every refusal, the secret file, reload changes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use strait_lb::membership::section::{
    DEFAULT_HANDOVER_MIN_LEAD, DEFAULT_HANDOVER_WINDOW, DEFAULT_PEER_TIMEOUT,
};

use super::*;
use crate::config::parse;
use strait_lb::test_dir::TestDir;

/// A valid node (lines 1-8) followed by `cluster` from line 9; a `[cluster]` with neither
/// `secret_file` nor `insecure` gets `insecure = true` last (its addresses are not loopback:
/// `insecure_listeners_need_a_secret_or_insecure` tests that rule).
fn with(cluster: &str) -> Result<NodeConfig, Vec<String>> {
    let open = cluster.contains("[cluster]")
        && !cluster.contains("secret_file")
        && !cluster.contains("insecure");
    let tail = if open { "insecure = true\n" } else { "" };
    with_exactly(&format!("{cluster}{tail}"))
}

/// A valid node (lines 1-8) followed by `cluster` from line 9, as it is.
fn with_exactly(cluster: &str) -> Result<NodeConfig, Vec<String>> {
    let text = format!(
        "[node]\nid = \"a\"\nlisten = [\"127.0.0.1:8080\"]\n[[pool]]\nname = \"o\"\n\
         servers = [{{ addr = \"127.0.0.1:18080\" }}]\n[[route]]\npool = \"o\"\n{cluster}"
    );
    parse(&text).map_err(|d| d.iter().map(ToString::to_string).collect())
}

#[test]
fn insecure_listeners_need_a_secret_or_insecure() {
    // Reachable from other hosts, no secret: refused at the first such listener.
    let e = with_exactly(MINIMAL).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("10:15: cluster.peer_listen 10.0.0.1:7070 is reachable from other hosts but [cluster] has no secret_file"),
        "{e:?}"
    );
    assert!(e[0].contains("insecure = true"), "{e:?}");
    // Only gossip exposed: named.
    let e = with_exactly(
        "[cluster]\npeer_listen = \"127.0.0.1:7070\"\ngossip_listen = \"10.0.0.1:7946\"\n",
    )
    .unwrap_err();
    assert!(
        e[0].starts_with("11:17: cluster.gossip_listen 10.0.0.1:7946"),
        "{e:?}"
    );
    // Loopback only: no secret needed; said insecure, or with a secret: accepted.
    with_exactly(
        "[cluster]\npeer_listen = \"127.0.0.2:7070\"\ngossip_listen = \"127.0.0.2:7946\"\n",
    )
    .expect("loopback");
    with_exactly(&format!("{MINIMAL}insecure = true\n")).expect("insecure");
    let dir = TestDir::new("cluster");
    let key = temp_file(&dir, "insecure.key", b"0123456789abcdef");
    with_exactly(&format!("{MINIMAL}secret_file = {key:?}\n")).expect("a secret");
}

const MINIMAL: &str =
    "[cluster]\npeer_listen = \"10.0.0.1:7070\"\ngossip_listen = \"10.0.0.1:7946\"\n";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// `bytes` written to `name` in `dir` (a test's own directory, removed when it drops).
fn temp_file(dir: &TestDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn a_minimal_section_gets_the_documented_defaults() {
    let c = with(MINIMAL).expect("valid").cluster.expect("cluster");
    assert_eq!(*c.peer_listen.get_ref(), addr("10.0.0.1:7070"));
    assert_eq!(*c.gossip_listen.get_ref(), addr("10.0.0.1:7946"));
    assert!(c.seeds.get_ref().is_empty());
    assert_eq!(*c.weight.get_ref(), DEFAULT_CLUSTER_WEIGHT);
    assert_eq!(c.probe_interval, DEFAULT_PROBE_INTERVAL);
    assert_eq!(c.suspect_timeout, DEFAULT_SUSPECT_TIMEOUT);
    assert_eq!(c.handover_window, DEFAULT_HANDOVER_WINDOW);
    assert_eq!(c.handover_min_lead, DEFAULT_HANDOVER_MIN_LEAD);
    assert!(c.secret_file.is_none() && c.secret.key().is_none());
    assert!(with("").expect("valid").cluster.is_none());
}

#[test]
fn a_full_section_parses() {
    let c = with(&format!(
        "{MINIMAL}seeds = [\"10.0.0.2:7946\", \"10.0.0.3:7946\"]\nweight = 250\n\
         probe_interval = \"200ms\"\nsuspect_timeout = \"1s\"\n"
    ))
    .expect("valid")
    .cluster
    .expect("cluster");
    let seeds: Vec<SocketAddr> = c.seeds.get_ref().iter().map(|s| *s.get_ref()).collect();
    assert_eq!(seeds, [addr("10.0.0.2:7946"), addr("10.0.0.3:7946")]);
    assert_eq!(*c.weight.get_ref(), 250);
    assert_eq!(c.probe_interval, Duration::from_millis(200));
    assert_eq!(c.suspect_timeout, Duration::from_secs(1));
}

#[test]
fn listen_addresses_are_required_and_must_be_reachable() {
    let e = with("[cluster]\ngossip_listen = \"10.0.0.1:7946\"\n").unwrap_err();
    assert!(e[0].contains("missing field `peer_listen`"), "{e:?}");
    let e = with("[cluster]\npeer_listen = \"10.0.0.1:7070\"\n").unwrap_err();
    assert!(e[0].contains("missing field `gossip_listen`"), "{e:?}");
    assert_eq!(
        with("[cluster]\npeer_listen = \"0.0.0.0:7070\"\ngossip_listen = \"10.0.0.1:0\"\n")
            .unwrap_err(),
        [
            "10:15: cluster.peer_listen 0.0.0.0:7070 is unspecified; other nodes must be able \
             to reach this address",
            "11:17: cluster.gossip_listen 10.0.0.1:0 has port 0; other nodes must know the port",
        ]
    );
    let e = with("[cluster]\npeer_listen = \"10.0.0.1\"\ngossip_listen = \"10.0.0.1:1\"\n")
        .unwrap_err();
    assert_eq!(
        e,
        [
            "10:15: cluster.peer_listen: \"10.0.0.1\" is not an ip:port address (e.g. \
          \"127.0.0.1:8080\"); names are not resolved"
        ]
    );
}

#[test]
fn seeds_are_distinct_reachable_addresses() {
    assert_eq!(
        with(&format!(
            "{MINIMAL}seeds = [\"10.0.0.2:7946\", \"10.0.0.2:7946\", \"0.0.0.0:1\"]\n"
        ))
        .unwrap_err(),
        [
            "12:27: cluster.seeds lists 10.0.0.2:7946 twice",
            "12:44: cluster.seeds: 0.0.0.0:1 is unspecified; other nodes must be able to reach \
             this address",
        ]
    );
    let e = with(&format!("{MINIMAL}seeds = [\"nowhere\"]\n")).unwrap_err();
    assert_eq!(
        e,
        [
            "12:10: cluster.seeds: \"nowhere\" is not an ip:port address (e.g. \
          \"127.0.0.1:8080\"); names are not resolved"
        ]
    );
}

#[test]
fn weight_is_1_to_10000() {
    assert_eq!(
        with(&format!("{MINIMAL}weight = 0\n")).unwrap_err(),
        ["12:10: cluster.weight must be 1 to 10000, not 0"]
    );
    assert_eq!(
        with(&format!("{MINIMAL}weight = 10001\n")).unwrap_err(),
        ["12:10: cluster.weight must be 1 to 10000, not 10001"]
    );
    let e = with(&format!("{MINIMAL}weight = -1\n")).unwrap_err();
    assert!(
        e[0].starts_with("12:10: cluster.weight: invalid value"),
        "{e:?}"
    );
    assert!(with(&format!("{MINIMAL}weight = 10000\n")).is_ok());
}

#[test]
fn timings_are_bounded_and_consistent() {
    assert_eq!(
        with(&format!("{MINIMAL}probe_interval = \"10ms\"\n")).unwrap_err(),
        ["12:18: cluster.probe_interval must be 50ms to 60s, not 10ms"]
    );
    assert_eq!(
        with(&format!(
            "{MINIMAL}probe_interval = \"1s\"\nsuspect_timeout = \"500ms\"\n"
        ))
        .unwrap_err(),
        ["13:19: cluster.suspect_timeout (500ms) must be at least probe_interval (1s)"]
    );
    let e = with(&format!("{MINIMAL}suspect_timeout = \"soon\"\n")).unwrap_err();
    assert_eq!(
        e,
        [
            "12:19: cluster.suspect_timeout: \"soon\" is not a duration; write e.g. \"500ms\", \
          \"2s\" or \"5m\""
        ]
    );
}

#[test]
fn unknown_keys_are_named_at_their_position() {
    let e = with(&format!("{MINIMAL}seed = []\n")).unwrap_err();
    assert!(
        e[0].starts_with("12:1: cluster: unknown field `seed`"),
        "{e:?}"
    );
    let e = with(&format!("{MINIMAL}secret = \"x\"\n")).unwrap_err();
    assert!(e[0].contains("unknown field `secret`"), "{e:?}");
}

#[test]
fn the_secret_file_is_read_trimmed_and_must_be_long_enough() {
    let dir = TestDir::new("cluster");
    let good = temp_file(&dir, "good.key", b"0123456789abcdef-key\n\n");
    let c = with(&format!(
        "{MINIMAL}secret_file = {:?}\n",
        good.display().to_string()
    ))
    .expect("valid")
    .cluster
    .expect("cluster");
    assert_eq!(
        c.secret.key().as_deref(),
        Some(&b"0123456789abcdef-key"[..])
    );
    assert_eq!(format!("{:?}", c.secret), "Secret(20 bytes)");

    let short = temp_file(&dir, "short.key", b"0123456789abcde \n");
    let e = with(&format!(
        "{MINIMAL}secret_file = {:?}\n",
        short.display().to_string()
    ))
    .unwrap_err();
    assert_eq!(
        e,
        [format!(
            "12:15: cluster.secret_file {}: the key is 15 bytes long (after trimming trailing \
             whitespace); at least 16 are needed",
            short.display()
        )]
    );
    let e = with(&format!(
        "{MINIMAL}secret_file = \"/nonexistent/strait.key\"\n"
    ))
    .unwrap_err();
    assert!(
        e[0].starts_with("12:15: cluster.secret_file /nonexistent/strait.key: cannot read: "),
        "{e:?}"
    );
    assert!(secret_from_bytes(b"  \n").is_err());
}

#[test]
fn reload_changes_to_the_section_are_named() {
    let base = with(MINIMAL).unwrap().cluster.unwrap();
    assert_eq!(restart_only_changes(Some(&base), Some(&base)), None);
    assert_eq!(restart_only_changes(None, None), None);
    assert!(restart_only_changes(None, Some(&base))
        .unwrap()
        .contains("adding [cluster]"));
    let moved = with(
        "[cluster]\npeer_listen = \"10.0.0.1:7071\"\ngossip_listen = \"10.0.0.1:7947\"\n\
         weight = 5\n",
    )
    .unwrap()
    .cluster
    .unwrap();
    assert_eq!(
        restart_only_changes(Some(&base), Some(&moved)).unwrap(),
        "[cluster] peer_listen, gossip_listen, weight changed; cluster settings apply at \
         restart only"
    );
}

#[test]
fn handover_settings_parse_and_are_bounded() {
    let c = with(&format!(
        "{MINIMAL}handover_window = \"0s\"\nhandover_min_lead = \"1m\"\n"
    ))
    .expect("valid")
    .cluster
    .expect("cluster");
    assert_eq!(c.handover_window, Duration::ZERO);
    assert_eq!(c.handover_min_lead, Duration::from_secs(60));
    let e = with(&format!("{MINIMAL}handover_window = \"2days\"\n")).unwrap_err();
    assert!(
        e.iter()
            .any(|m| m.contains("cluster.handover_window must be at most 1day")),
        "{e:?}"
    );
    let e = with(&format!("{MINIMAL}handover_window = \"soon\"\n")).unwrap_err();
    assert!(e.iter().any(|m| m.starts_with("12:")), "{e:?}");
}

#[test]
fn lease_timeout_defaults_to_3s_and_must_be_positive() {
    let c = with(MINIMAL).expect("valid").cluster.expect("cluster");
    assert_eq!(c.lease_timeout, Duration::from_secs(3));
    let c = with(&format!("{MINIMAL}lease_timeout = \"750ms\"\n"))
        .expect("valid")
        .cluster
        .expect("cluster");
    assert_eq!(c.lease_timeout, Duration::from_millis(750));
    for bad in ["0s", "11m"] {
        let e = with(&format!("{MINIMAL}lease_timeout = \"{bad}\"\n")).unwrap_err();
        assert!(
            e.iter()
                .any(|m| m.contains("cluster.lease_timeout must be greater than 0")),
            "{bad}: {e:?}"
        );
    }
}

#[test]
fn peer_timeout_defaults_to_one_second_and_must_be_positive() {
    let c = with(MINIMAL).expect("valid").cluster.expect("cluster");
    assert_eq!(c.peer_timeout, DEFAULT_PEER_TIMEOUT);
    assert!(DEFAULT_PEER_TIMEOUT <= Duration::from_secs(1));
    let c = with(&format!("{MINIMAL}peer_timeout = \"250ms\"\n"))
        .expect("valid")
        .cluster
        .expect("cluster");
    assert_eq!(c.peer_timeout, Duration::from_millis(250));
    for bad in ["0s", "2m"] {
        let e = with(&format!("{MINIMAL}peer_timeout = \"{bad}\"\n")).unwrap_err();
        assert!(
            e.iter()
                .any(|m| m.contains("cluster.peer_timeout must be greater than 0 and at most 1m")),
            "{bad}: {e:?}"
        );
    }
}
