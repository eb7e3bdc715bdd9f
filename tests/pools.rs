//! Pool scheduling and cookie persistence, end to end: a real `strait node` in front of several
//! `strait sim origin` processes on loopback (see `tests/support`). Which server answered is read
//! from each origin's per-path request counts; `/dyn/<name>` is never stored, so every request
//! reaches a server.
//!
//! Contract under test (`lb/src/select/schedule.rs`, `cache/src/origin/pool.rs`,
//! `cache/src/origin/persist.rs`):
//! * `roundrobin`: smooth weighted round robin, exact shares by weight.
//! * `uri`: one path (query ignored), one server; paths spread over the servers.
//! * `source`: one client address, one server (the tests all come from 127.0.0.1).
//! * `leastconn`: the server with the fewest requests waiting for a response head; idle
//!   servers share requests round robin.
//! * `random2`: the lighter of two distinct random servers, so with two servers an idle one
//!   always wins over a busy one.
//! * `persistence = { cookie = "SRV" }`: a response that reached a server carries
//!   `Set-Cookie: SRV=<16 hex digits>; Path=/; HttpOnly` naming it by an opaque id; a request
//!   with that cookie goes to the same server (no new cookie) while it is available, and to
//!   another one with a new cookie when it is not (a connect failure is retried). Stored
//!   objects never carry the cookie of the client whose request filled them.

mod support;

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use support::{get, object_bytes, wait_until, Node, Origin, Resp};

/// A node config with one pool "p" of `servers` (address, weight); `pool_extra` is added to the
/// pool table (e.g. `algorithm = "uri"`); one route to it.
fn pool_config(servers: &[(SocketAddr, u32)], pool_extra: &str) -> String {
    let list: Vec<String> = servers
        .iter()
        .map(|(a, w)| format!("{{ addr = \"{a}\", weight = {w} }}"))
        .collect();
    format!(
        "[node]\nid = \"a\"\nlisten = [\"127.0.0.1:0\"]\nadmin = \"127.0.0.1:0\"\n\n\
         [[pool]]\nname = \"p\"\nservers = [{}]\n{pool_extra}\n\n[[route]]\npool = \"p\"\n",
        list.join(", ")
    )
}

/// `n` origins and a node in front of them, all with weight 1.
fn start(n: usize, pool_extra: &str) -> (Vec<Origin>, Node) {
    let origins: Vec<Origin> = (0..n).map(|_| Origin::start()).collect();
    let servers: Vec<(SocketAddr, u32)> = origins.iter().map(|o| (o.addr, 1)).collect();
    let node = Node::start_config(&pool_config(&servers, pool_extra));
    (origins, node)
}

/// How many requests for `path` each origin answered, in order.
fn counts(origins: &[Origin], path: &str) -> Vec<u64> {
    origins.iter().map(|o| o.count(path)).collect()
}

/// GET `path` through the node `n` times, each answered 200 by some origin.
fn get_n(node: &Node, path: &str, n: usize) {
    for i in 0..n {
        let r = get(node.addr, path, &[]);
        assert_eq!(r.status, 200, "{path} request {i}: {}", r.text());
    }
}

/// Send a slow `/dyn/slow?delay=<ms>` through the node in a thread, wait until an origin
/// received it, and return that origin's index and the thread (which yields the response).
fn busy_one(node: &Node, origins: &[Origin], ms: u64) -> (usize, JoinHandle<Resp>) {
    let addr = node.addr;
    let path = format!("/dyn/slow?delay={ms}");
    let slow = std::thread::spawn(move || get(addr, &path, &[]));
    let mut busy = None;
    assert!(
        wait_until(Duration::from_secs(3), || {
            busy = counts(origins, "/dyn/slow").iter().position(|&c| c == 1);
            busy.is_some()
        }),
        "the slow request reached no origin"
    );
    let busy = busy.unwrap_or(usize::MAX);
    assert_eq!(counts(origins, "/dyn/slow").iter().sum::<u64>(), 1);
    (busy, slow)
}

/// The value of the persistence cookie `SRV` in a response's `Set-Cookie`, checking its exact
/// form: `SRV=<16 lowercase hex digits>; Path=/; HttpOnly`.
fn srv_cookie(r: &Resp) -> String {
    let sc = r
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no Set-Cookie in {:?}", r.headers));
    let id = sc
        .strip_prefix("SRV=")
        .and_then(|rest| rest.strip_suffix("; Path=/; HttpOnly"))
        .unwrap_or_else(|| panic!("unexpected Set-Cookie {sc:?}"));
    assert_eq!(id.len(), 16, "{sc}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{sc}"
    );
    id.to_string()
}

/// The index of the only origin with a nonzero count in `c`.
fn only_one(c: &[u64]) -> usize {
    let used: Vec<usize> = (0..c.len()).filter(|&i| c[i] > 0).collect();
    assert_eq!(used.len(), 1, "counts {c:?}");
    used[0]
}

#[test]
fn roundrobin_with_weights_3_to_1_gives_exactly_30_and_10_of_40() {
    let a = Origin::start();
    let b = Origin::start();
    let node = Node::start_config(&pool_config(&[(a.addr, 3), (b.addr, 1)], ""));
    get_n(&node, "/dyn/x", 40);
    assert_eq!([a.count("/dyn/x"), b.count("/dyn/x")], [30, 10]);
}

#[test]
fn roundrobin_with_equal_weights_gives_10_10_10_of_30() {
    let (origins, node) = start(3, "algorithm = \"roundrobin\"");
    get_n(&node, "/dyn/x", 30);
    assert_eq!(counts(&origins, "/dyn/x"), [10, 10, 10]);
}

#[test]
fn uri_sends_each_path_to_one_server_and_spreads_paths() {
    let (origins, node) = start(3, "algorithm = \"uri\"");
    let mut per_server = [0u32; 3];
    for i in 0..30 {
        let path = format!("/dyn/u{i}");
        for round in 0..3 {
            // The query is not part of what `uri` hashes.
            let r = get(node.addr, &format!("{path}?round={round}"), &[]);
            assert_eq!(r.status, 200);
        }
        let c = counts(&origins, &path);
        let server = only_one(&c);
        assert_eq!(c[server], 3, "{path}: {c:?}");
        per_server[server] += 1;
    }
    let used = per_server.iter().filter(|&&n| n > 0).count();
    assert!(used > 1, "all 30 paths on one server: {per_server:?}");
}

#[test]
fn source_sends_every_request_of_one_client_to_one_server() {
    let (origins, node) = start(3, "algorithm = \"source\"");
    get_n(&node, "/dyn/s", 20);
    let c = counts(&origins, "/dyn/s");
    let server = only_one(&c);
    assert_eq!(c[server], 20, "{c:?}");
}

#[test]
fn leastconn_sends_quick_requests_to_the_idle_server_while_the_other_is_busy() {
    let (origins, node) = start(2, "algorithm = \"leastconn\"");
    // One request waits 3 s for its response head on one server: that server has 1 active.
    let (busy, slow) = busy_one(&node, &origins, 3000);
    let idle = 1 - busy;
    // Quick requests, one after the other, all go to the idle server (round robin would
    // alternate: 5 and 5).
    get_n(&node, "/dyn/quick", 10);
    let c = counts(&origins, "/dyn/quick");
    assert_eq!((c[idle], c[busy]), (10, 0), "{c:?}");
    let r = slow.join().expect("slow request thread");
    assert_eq!((r.status, r.text()), (200, "dyn slow 1\n".to_string()));
}

#[test]
fn leastconn_shares_requests_evenly_between_idle_servers() {
    let (origins, node) = start(2, "algorithm = \"leastconn\"");
    // Sequential requests never overlap: every pick is a tie, shared round robin.
    get_n(&node, "/dyn/even", 10);
    assert_eq!(counts(&origins, "/dyn/even"), [5, 5]);
}

#[test]
fn random2_sends_quick_requests_to_the_idle_server_while_the_other_is_busy() {
    let (origins, node) = start(2, "algorithm = \"random2\"");
    let (busy, slow) = busy_one(&node, &origins, 3000);
    let idle = 1 - busy;
    get_n(&node, "/dyn/quick", 10);
    let c = counts(&origins, "/dyn/quick");
    // Two distinct choices out of two servers: the idle one always wins.
    assert_eq!((c[idle], c[busy]), (10, 0), "{c:?}");
    let r = slow.join().expect("slow request thread");
    assert_eq!((r.status, r.text()), (200, "dyn slow 1\n".to_string()));
}

#[test]
fn random2_spreads_requests_over_idle_servers() {
    let (origins, node) = start(2, "algorithm = \"random2\"");
    get_n(&node, "/dyn/r", 40);
    let c = counts(&origins, "/dyn/r");
    assert_eq!(c.iter().sum::<u64>(), 40);
    // Ties go to the first random draw: both servers get some (all 40 on one: 2^-39).
    assert!(c[0] > 0 && c[1] > 0, "{c:?}");
}

#[test]
fn persistence_cookie_pins_a_client_and_moves_it_when_its_server_dies() {
    let (mut origins, node) = start(2, "persistence = { cookie = \"SRV\" }");
    // First request: no cookie, the answer names the server.
    let r = get(node.addr, "/dyn/p", &[]);
    assert_eq!(r.status, 200);
    let first_id = srv_cookie(&r);
    let pinned = only_one(&counts(&origins, "/dyn/p"));
    let other = 1 - pinned;
    for o in &origins {
        assert!(!first_id.contains(&o.addr.port().to_string()), "{first_id}");
    }
    // With the cookie: always the same server (round robin would alternate), no new cookie.
    let cookie = format!("SRV={first_id}");
    for i in 0..20 {
        let r = get(node.addr, "/dyn/p", &[("Cookie", &cookie)]);
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.header("set-cookie"), None, "request {i}");
    }
    assert_eq!(origins[pinned].count("/dyn/p"), 21);
    assert_eq!(origins[other].count("/dyn/p"), 0);
    // Another cookie in the same field does not hide ours.
    let r = get(
        node.addr,
        "/dyn/p",
        &[("Cookie", &format!("theme=dark; {cookie}"))],
    );
    assert_eq!((r.status, r.header("set-cookie")), (200, None));
    assert_eq!(origins[pinned].count("/dyn/p"), 22);

    // The pinned server dies: the request with its cookie is retried on the other one and
    // gets a new cookie naming it.
    let dead = &mut origins[pinned].proc.child;
    dead.kill().expect("kill the pinned origin");
    dead.wait().expect("reap the pinned origin");
    let r = get(node.addr, "/dyn/p", &[("Cookie", &cookie)]);
    assert_eq!((r.status, r.text()), (200, "dyn p 1\n".to_string()));
    let second_id = srv_cookie(&r);
    assert_ne!(second_id, first_id);
    assert!(
        !second_id.contains(&origins[other].addr.port().to_string()),
        "{second_id}"
    );
    assert_eq!(origins[other].count("/dyn/p"), 1);
    // The new cookie sticks to the live server without being set again.
    let cookie = format!("SRV={second_id}");
    for i in 0..5 {
        let r = get(node.addr, "/dyn/p", &[("Cookie", &cookie)]);
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.header("set-cookie"), None, "request {i}");
    }
    assert_eq!(origins[other].count("/dyn/p"), 6);
}

#[test]
fn a_stored_object_never_carries_the_cookie_of_the_client_that_filled_it() {
    let (origins, node) = start(2, "persistence = { cookie = \"SRV\" }");
    let r = get(node.addr, "/obj/p?size=64", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.cache_status(), "a; fwd=miss; stored");
    assert_eq!(r.body, object_bytes("p", 64));
    let id = srv_cookie(&r);
    assert_eq!(id.len(), 16);
    // A second client gets the stored object: a hit, without the first client's cookie.
    let r = get(node.addr, "/obj/p?size=64", &[]);
    assert_eq!(r.status, 200);
    assert!(
        r.cache_status().starts_with("a; hit; ttl="),
        "{}",
        r.cache_status()
    );
    assert_eq!(r.body, object_bytes("p", 64));
    assert_eq!(r.header("set-cookie"), None, "{:?}", r.headers);
    assert_eq!(counts(&origins, "/obj/p").iter().sum::<u64>(), 1);
    assert_eq!(node.counter("stored_objects"), 1);
}
