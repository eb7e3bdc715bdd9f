//! Cluster membership with real `strait node` processes on loopback (127.0.0.11-14): join in
//! any start order, failure detection (suspect, then dead) after SIGKILL, rejoin after a
//! restart, a node with another secret kept out, and a graceful leave on SIGTERM.
//!
//! Gossip addresses must be known in advance (they are the seeds), so this file uses fixed
//! high ports that no other test uses (47911-47914 gossip, 47921-47924 peer).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{admin_request, node_config, scratch_dir, wait_until, Node, Origin};

/// Short timings so the test is quick; the bounds below derive from them.
const PROBE: Duration = Duration::from_millis(200);
const SUSPECT: Duration = Duration::from_secs(1);
/// Bound for joining (seeds are re-announced every second).
const JOIN_BOUND: Duration = Duration::from_secs(10);

fn gossip(n: u8) -> String {
    format!("127.0.0.1{n}:4791{n}")
}

/// The config of node `n` (1..=4) with id `id`, seeding on node 1 unless it is node 1.
fn config(origin: std::net::SocketAddr, n: u8, id: &str, key: &std::path::Path) -> String {
    let seeds = if n == 1 {
        String::new()
    } else {
        format!("\"{}\"", gossip(1))
    };
    let cluster = format!(
        "[cluster]\npeer_listen = \"127.0.0.1{n}:4792{n}\"\ngossip_listen = \"{}\"\n\
         seeds = [{seeds}]\nweight = {}\nsecret_file = {:?}\nprobe_interval = \"{}ms\"\n\
         suspect_timeout = \"{}ms\"\n",
        gossip(n),
        100 * u32::from(n),
        key.display().to_string(),
        PROBE.as_millis(),
        SUSPECT.as_millis(),
    );
    node_config(&[origin], &cluster).replace("id = \"a\"", &format!("id = \"{id}\""))
}

/// `(id, state)` of every member in a node's `/cluster.json`.
fn view(node: &Node) -> Vec<(String, String)> {
    let r = admin_request(node.admin, "GET", "/cluster.json", &[]);
    assert_eq!(r.status, 200, "cluster.json: {}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("cluster json");
    v["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap_or("").to_owned(),
                m["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn state(node: &Node, id: &str) -> Option<String> {
    view(node)
        .into_iter()
        .find(|(i, _)| i == id)
        .map(|(_, s)| s)
}

fn all_alive(node: &Node, ids: &[&str]) -> bool {
    let v = view(node);
    ids.iter()
        .all(|id| v.iter().any(|(i, s)| i == id && s == "alive"))
}

/// A counter's value in a node's `/metrics`.
fn metric(node: &Node, name: &str) -> u64 {
    let text = admin_request(node.admin, "GET", "/metrics", &[]).text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn nodes_join_detect_failures_rejoin_keep_strangers_out_and_leave() {
    let origin = Origin::start();
    let dir = scratch_dir("cluster");
    let key = dir.join("cluster.key");
    std::fs::write(&key, "a shared cluster key, long enough\n").expect("key");
    let other_key = dir.join("other.key");
    std::fs::write(&other_key, "some other key, also long enough\n").expect("key");

    // Seeds first: b and c announce to a, which is not up yet.
    let started = Instant::now();
    let b = Node::start_config(&config(origin.addr, 2, "b", &key));
    let mut c = Node::start_config(&config(origin.addr, 3, "c", &key));
    std::thread::sleep(Duration::from_millis(300));
    let a = Node::start_config(&config(origin.addr, 1, "a", &key));
    let ids = ["a", "b", "c"];
    assert!(
        wait_until(JOIN_BOUND, || [&a, &b, &c]
            .iter()
            .all(|n| all_alive(n, &ids))),
        "no full view: a {:?} b {:?} c {:?}",
        view(&a),
        view(&b),
        view(&c)
    );
    println!(
        "joined: all three see 3 alive members {:.2}s after the first start",
        started.elapsed().as_secs_f64()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["ctl", "--admin", &a.admin.to_string(), "cluster"])
        .output()
        .expect("strait ctl cluster");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    assert!(
        table.contains("a*") && table.contains("127.0.0.12:47922"),
        "{table}"
    );
    print!("strait ctl cluster:\n{table}");

    // SIGKILL c: suspect within a few probe periods, dead suspect_timeout later.
    let killed = Instant::now();
    let _ = c.proc.child.kill();
    let _ = c.proc.child.wait();
    // c is probed within two probe periods and found silent at the end of one (≤ 0.8 s with
    // the spread); the bound is over three times that, for a busy machine.
    let suspect_bound = PROBE * 4 + Duration::from_secs(2);
    let dead_bound = suspect_bound + SUSPECT + Duration::from_secs(2);
    for n in [&a, &b] {
        assert!(
            wait_until(suspect_bound, || matches!(
                state(n, "c").as_deref(),
                Some("suspect" | "dead")
            )),
            "c not suspected: {:?}",
            view(n)
        );
    }
    let suspected = killed.elapsed();
    for n in [&a, &b] {
        assert!(
            wait_until(dead_bound.saturating_sub(killed.elapsed()), || state(
                n, "c"
            )
            .as_deref()
                == Some("dead")),
            "c not dead: {:?}",
            view(n)
        );
    }
    let dead = killed.elapsed();
    println!(
        "SIGKILL c: suspect everywhere after {:.2}s (bound {:.2}s), dead after {:.2}s \
         (bound {:.2}s; probe {}ms, suspect_timeout {}ms)",
        suspected.as_secs_f64(),
        suspect_bound.as_secs_f64(),
        dead.as_secs_f64(),
        dead_bound.as_secs_f64(),
        PROBE.as_millis(),
        SUSPECT.as_millis()
    );

    // Restart c on the same addresses: alive everywhere again.
    let restarted = Instant::now();
    c = Node::start_config(&config(origin.addr, 3, "c", &key));
    assert!(
        wait_until(JOIN_BOUND, || [&a, &b, &c]
            .iter()
            .all(|n| all_alive(n, &ids))),
        "c did not rejoin: a {:?} b {:?} c {:?}",
        view(&a),
        view(&b),
        view(&c)
    );
    println!(
        "restart c: alive everywhere after {:.2}s",
        restarted.elapsed().as_secs_f64()
    );

    // A node with another key announces to a: it is never listed, its datagrams are counted.
    // Garbage datagrams are counted and change nothing.
    let rejected_before = metric(&a, "strait_gossip_rejected_total");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    for junk in [&b""[..], b"hello", &[0xffu8; 2000][..]] {
        udp.send_to(junk, gossip(1)).expect("send junk");
    }
    assert!(
        wait_until(Duration::from_secs(2), || metric(
            &a,
            "strait_gossip_rejected_total"
        ) >= rejected_before + 3),
        "junk not counted"
    );
    assert!(all_alive(&a, &ids));
    let rejected_before = metric(&a, "strait_gossip_rejected_total");
    let d = Node::start_config(&config(origin.addr, 4, "d", &other_key));
    assert!(
        wait_until(Duration::from_secs(5), || metric(
            &a,
            "strait_gossip_rejected_total"
        ) >= rejected_before + 3),
        "a rejected nothing from d"
    );
    std::thread::sleep(PROBE * 5);
    for n in [&a, &b, &c] {
        assert_eq!(state(n, "d"), None, "d listed: {:?}", view(n));
    }
    assert_eq!(view(&d), [("d".to_owned(), "alive".to_owned())]);
    println!(
        "stranger d: a rejected {} datagrams, d is in no list",
        metric(&a, "strait_gossip_rejected_total") - rejected_before
    );
    drop(d);

    // SIGTERM b: it leaves before draining; a and c see it go at once, not after a suspicion.
    let left = Instant::now();
    b.proc.signal("TERM");
    let leave_bound = Duration::from_millis(800);
    for n in [&a, &c] {
        assert!(
            wait_until(leave_bound, || state(n, "b").as_deref() == Some("dead")),
            "b's leave not seen: {:?}",
            view(n)
        );
    }
    println!(
        "SIGTERM b: dead everywhere after {:.2}s (bound {:.2}s)",
        left.elapsed().as_secs_f64(),
        leave_bound.as_secs_f64()
    );
    assert!(all_alive(&a, &["a", "c"]) && all_alive(&c, &["a", "c"]));
}
