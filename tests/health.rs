//! Origin health: active checks take a dead server out within `fall × interval + timeout` and
//! bring it back after `rise` good checks; no client sees an error meanwhile (retries, then only
//! live servers); passive ejection; a pool with no server up answers 503.

mod support;

use std::time::{Duration, Instant};

use support::{get, wait_until, Node, Origin};

fn two_server_config(a: std::net::SocketAddr, b: std::net::SocketAddr, extra_pool: &str) -> String {
    format!(
        "[node]\nid = \"a\"\nlisten = [\"127.0.0.1:0\"]\nadmin = \"127.0.0.1:0\"\n\n\
         [[pool]]\nname = \"origin\"\nservers = [{{ addr = \"{a}\" }}, {{ addr = \"{b}\" }}]\n{extra_pool}\n\
         [[route]]\npool = \"origin\"\n"
    )
}

fn server_state(node: &Node, addr: std::net::SocketAddr) -> String {
    let stats = node.stats();
    stats["pools"][0]["servers"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["addr"] == addr.to_string()))
        .and_then(|s| s["state"].as_str())
        .unwrap_or("?")
        .to_string()
}

#[test]
fn a_killed_server_is_marked_down_in_time_clients_see_no_error_and_it_comes_back() {
    let a = Origin::start();
    let mut b = Origin::start();
    let b_addr = b.addr;
    let node = Node::start_config(&two_server_config(
        a.addr,
        b_addr,
        "health = { path = \"/health\", interval = \"200ms\", timeout = \"100ms\", rise = 2, fall = 2 }\n",
    ));
    // The first check round runs at start: b is up with a good check result.
    assert!(wait_until(Duration::from_secs(3), || {
        let stats = node.stats();
        let srv = &stats["pools"][0]["servers"][1];
        srv["state"] == "up" && srv["last_check"] == "200"
    }));

    // Kill b: within fall × interval + timeout (+ scheduling slack) it is down.
    let _ = b.proc.child.kill();
    let _ = b.proc.child.wait();
    let killed = Instant::now();
    // Meanwhile every client request succeeds (a connect failure is retried on a).
    for i in 0..20 {
        let r = get(node.addr, &format!("/dyn/k{i}"), &[]);
        assert_eq!(
            r.status,
            200,
            "request {i} during the failure: {}",
            r.text()
        );
    }
    // fall × interval + timeout is 500 ms; the bound is three times that, so a busy machine
    // (which also serves the 20 requests above in this time) does not fail it, while a
    // detection several intervals late still does.
    let bound = 3 * (2 * Duration::from_millis(200) + Duration::from_millis(100));
    assert!(wait_until(bound + Duration::from_secs(3), || server_state(
        &node, b_addr
    ) == "down"));
    let took = killed.elapsed();
    assert!(took < bound, "marked down after {took:?}, bound {bound:?}");
    let stats = node.stats();
    let check = stats["pools"][0]["servers"][1]["last_check"]
        .as_str()
        .unwrap_or("");
    assert!(check.starts_with("connect"), "{check}");
    // While down, nothing is sent to it: all requests succeed on a.
    let before = a.count("/dyn/while-down");
    for _ in 0..10 {
        assert_eq!(get(node.addr, "/dyn/while-down", &[]).status, 200);
    }
    assert_eq!(a.count("/dyn/while-down"), before + 10);

    // Bring b back on the same address: up again after `rise` good checks.
    let back = restart_origin_on(b_addr);
    assert!(wait_until(Duration::from_secs(3), || server_state(
        &node, b_addr
    ) == "up"));
    for _ in 0..10 {
        assert_eq!(get(node.addr, "/dyn/after", &[]).status, 200);
    }
    assert!(back.count("/dyn/after") > 0, "b takes requests again");
}

/// Start `strait sim origin` on a given address (retrying while the port is released).
fn restart_origin_on(addr: std::net::SocketAddr) -> Origin {
    for _ in 0..50 {
        let proc = support::Proc::spawn_origin_on(addr);
        if let Some(line) = proc.try_wait_line("listening on", Duration::from_secs(2)) {
            assert!(line.ends_with(&addr.to_string()));
            return Origin { proc, addr };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("could not restart the origin on {addr}");
}

#[test]
fn a_pool_with_no_server_up_answers_503() {
    let a = support::closed_addr();
    let b = support::closed_addr();
    let node = Node::start_config(&two_server_config(
        a,
        b,
        "health = { kind = \"tcp\", interval = \"100ms\", timeout = \"50ms\", rise = 1, fall = 1 }\n",
    ));
    assert!(wait_until(Duration::from_secs(3), || {
        server_state(&node, a) == "down" && server_state(&node, b) == "down"
    }));
    let r = get(node.addr, "/dyn/none", &[]);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.cache_status().contains("detail=no-server"),
        "{}",
        r.cache_status()
    );
}

#[test]
fn consecutive_5xx_eject_a_server_for_the_backoff() {
    let good = Origin::start();
    // A server that answers 500 to everything.
    let bad = support::RecordingOrigin::start(
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\nboom",
    );
    let node = Node::start_config(&two_server_config(
        good.addr,
        bad.addr,
        "passive = { failures = 2, backoff = \"30s\" }\n",
    ));
    // Round robin: the bad server gets every other request until it is ejected.
    let mut errors = 0;
    for _ in 0..20 {
        if get(node.addr, "/dyn/p", &[]).status == 500 {
            errors += 1;
        }
    }
    assert_eq!(errors, 2, "two 5xx, then the server is ejected");
    assert_eq!(server_state(&node, bad.addr), "ejected");
    assert_eq!(bad.heads().len(), 2);
}
