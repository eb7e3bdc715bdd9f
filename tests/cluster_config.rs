//! Configuration distribution with real `strait node` processes on 127.0.1.1-3 (fixed ports
//! 36101-36123): a change to pools and routes reloaded on node a reaches b and c (the same
//! version and hash everywhere, and b and c route by it); a version c must refuse (a pool
//! server that is c's own listen address: a loop there, fine on a and b) is refused by c
//! alone, with the reason visible on every node and in `strait ctl cluster`; a newer version
//! clears the refusal; a restarted c with its old file adopts the cluster's version.
//!
//! Gossip addresses are the seeds and c's listen address is named in a pool, so the ports
//! are fixed: 3610n http, 3611n peer, 3612n gossip for node n.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{admin_request, get, scratch_dir, wait_until, Node, Origin};

const PROBE: Duration = Duration::from_millis(200);
const SUSPECT: Duration = Duration::from_secs(1);
/// Bound for joining (seeds are re-announced every second).
const JOIN_BOUND: Duration = Duration::from_secs(10);
/// Bound for a version to reach (and be applied or refused by) every node.
const SPREAD_BOUND: Duration = Duration::from_secs(5);

fn http(n: u8) -> String {
    format!("127.0.1.{n}:3610{n}")
}

/// Pools and routes every node starts with: everything to origin one.
fn shared_v0(one: std::net::SocketAddr) -> String {
    format!(
        "[[pool]]\nname = \"one\"\nservers = [{{ addr = \"{one}\" }}]\n\n\
         [[route]]\npool = \"one\"\n"
    )
}

/// Node `n`'s file with the pools and routes `shared`.
fn config(n: u8, id: &str, key: &Path, shared: &str) -> String {
    format!(
        "# node {id}\n[node]\nid = \"{id}\"\nlisten = [\"{}\"]\nadmin = \"127.0.1.{n}:0\"\n\n\
         {shared}\n\
         [cluster]\npeer_listen = \"127.0.1.{n}:3611{n}\"\ngossip_listen = \"127.0.1.{n}:3612{n}\"\n\
         seeds = [\"127.0.1.1:36121\"]\nweight = 100\nsecret_file = {:?}\n\
         probe_interval = \"{}ms\"\nsuspect_timeout = \"{}ms\"\n",
        http(n),
        key.display().to_string(),
        PROBE.as_millis(),
        SUSPECT.as_millis(),
    )
}

fn view(node: &Node) -> Value {
    let r = admin_request(node.admin, "GET", "/cluster.json", &[]);
    assert_eq!(r.status, 200, "cluster.json: {}", r.text());
    serde_json::from_slice(&r.body).expect("cluster json")
}

/// `(config_version, config_hash, config_state)` of member `id` in `node`'s view.
fn config_of(node: &Node, id: &str) -> Option<(u64, String, String)> {
    let v = view(node);
    let m = v["members"]
        .as_array()?
        .iter()
        .find(|m| m["id"] == id)?
        .clone();
    Some((
        m["config_version"].as_u64()?,
        m["config_hash"].as_str()?.to_owned(),
        m["config_state"].as_str()?.to_owned(),
    ))
}

fn member(node: &Node, id: &str) -> Value {
    view(node)["members"]
        .as_array()
        .and_then(|l| l.iter().find(|m| m["id"] == id).cloned())
        .unwrap_or(Value::Null)
}

fn all_alive(node: &Node) -> bool {
    let v = view(node);
    ["a", "b", "c"].iter().all(|id| {
        v["members"]
            .as_array()
            .is_some_and(|l| l.iter().any(|m| m["id"] == *id && m["state"] == "alive"))
    })
}

/// Every node lists every member (a, b, c) as in `want(id)`.
fn everywhere(nodes: &[&Node], want: impl Fn(&str) -> (u64, String, String)) -> bool {
    nodes.iter().all(|n| {
        ["a", "b", "c"]
            .iter()
            .all(|id| config_of(n, id) == Some(want(id)))
    })
}

fn reload(node: &Node) {
    let (code, out, err) = node.ctl(&["reload"]);
    assert_eq!(code, 0, "reload: {out}{err}");
}

#[test]
fn a_reloaded_change_reaches_every_node_and_a_refusal_is_shown_everywhere() {
    let one = Origin::start();
    let two = Origin::start();
    let dir = scratch_dir("confdist");
    let key = dir.join("cluster.key");
    std::fs::write(&key, "a shared cluster key, long enough\n").expect("key");
    let v0 = shared_v0(one.addr);
    let a = Node::start_config(&config(1, "a", &key, &v0));
    let b = Node::start_config(&config(2, "b", &key, &v0));
    let mut c = Node::start_config(&config(3, "c", &key, &v0));
    assert!(
        wait_until(JOIN_BOUND, || [&a, &b, &c].iter().all(|n| all_alive(n))),
        "no full membership: {}",
        view(&a)
    );
    // Version 0 everywhere, one hash (the same pools and routes, other node-local keys).
    let (n0, h0, _) = config_of(&a, "a").expect("a's version");
    assert_eq!(n0, 0);
    assert!(
        wait_until(SPREAD_BOUND, || everywhere(&[&a, &b, &c], |_| (
            0,
            h0.clone(),
            "applied".into()
        ))),
        "version 0 not everywhere: {}",
        view(&b)
    );
    // Before the change, /two/ goes to origin one.
    assert_eq!(get(c.addr, "/dyn/two/before", &[]).status, 200);
    assert_eq!(
        (one.count("/dyn/two/before"), two.count("/dyn/two/before")),
        (1, 0)
    );

    // 1. A new pool and route on a, reloaded there: version 1 on every node.
    let v1 = format!(
        "[[pool]]\nname = \"two\"\nservers = [{{ addr = \"{}\" }}]\n\n\
         [[route]]\nmatch = {{ path_prefix = \"/dyn/two/\" }}\npool = \"two\"\ncache = false\n\n{v0}",
        two.addr
    );
    std::fs::write(&a.config, config(1, "a", &key, &v1)).expect("write a");
    let t = Instant::now();
    reload(&a);
    let (n1, h1, s1) = config_of(&a, "a").expect("a's version");
    assert_eq!((n1, s1.as_str()), (1, "applied"));
    assert_ne!(h1, h0);
    assert!(
        wait_until(SPREAD_BOUND, || everywhere(&[&a, &b, &c], |_| (
            1,
            h1.clone(),
            "applied".into()
        ))),
        "version 1 not everywhere within {SPREAD_BOUND:?}: a {}\nb {}\nc {}",
        view(&a),
        view(&b),
        view(&c)
    );
    println!("version 1 on all three nodes after {:?}", t.elapsed());
    // b and c route by it: /two/ goes to origin two (not cached: every request goes there).
    for (node, path) in [(&b, "/dyn/two/at-b"), (&c, "/dyn/two/at-c")] {
        let r = get(node.addr, path, &[]);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!((one.count(path), two.count(path)), (0, 1), "{path}");
    }
    // A reload of b whose file's pools and routes did not change keeps version 1 (it does
    // not undo a's change with b's file).
    reload(&b);
    assert_eq!(config_of(&b, "b"), Some((1, h1.clone(), "applied".into())));
    assert_eq!(get(b.addr, "/dyn/two/after-b-reload", &[]).status, 200);
    assert_eq!(two.count("/dyn/two/after-b-reload"), 1);
    // b's and c's files are untouched: the version lives in memory.
    assert!(std::fs::read_to_string(&b.config)
        .unwrap()
        .contains("# node b"));
    assert!(!std::fs::read_to_string(&c.config)
        .unwrap()
        .contains("\"two\""));

    // 2. A pool whose server is c's own listen address: fine on a and b, a loop on c.
    let v2 = format!(
        "[[pool]]\nname = \"mirror\"\nservers = [{{ addr = \"{}\" }}]\n\n\
         [[route]]\nmatch = {{ path_prefix = \"/dyn/mirror/\" }}\npool = \"mirror\"\n\
         cache = false\n\n{v1}",
        http(3)
    );
    std::fs::write(&a.config, config(1, "a", &key, &v2)).expect("write a");
    reload(&a);
    let (n2, h2, _) = config_of(&a, "a").expect("a's version");
    assert_eq!(n2, 2);
    let c_refuses = |node: &Node| {
        let m = member(node, "c");
        m["config_version"] == 1
            && m["config_hash"] == h1.as_str()
            && m["config_state"] == "refused"
            && m["config_refused"]["version"] == 2
            && m["config_refused"]["hash"] == h2.as_str()
            && m["config_error"].as_str().is_some_and(|e| {
                e.contains(&format!(
                    "server {} is this node's own listen address",
                    http(3)
                ))
            })
    };
    assert!(
        wait_until(SPREAD_BOUND, || {
            [&a, &b, &c].iter().all(|n| {
                c_refuses(n)
                    && config_of(n, "a") == Some((2, h2.clone(), "applied".into()))
                    && config_of(n, "b") == Some((2, h2.clone(), "applied".into()))
            })
        }),
        "c's refusal not seen everywhere: a {}\nb {}\nc {}",
        view(&a),
        view(&b),
        view(&c)
    );
    // c keeps version 1: /two/ still goes to origin two, /mirror/ to the default route.
    assert_eq!(get(c.addr, "/dyn/two/still", &[]).status, 200);
    assert_eq!(two.count("/dyn/two/still"), 1);
    // b runs version 2: /mirror/ goes to c (whose default route takes it to origin one).
    let r = get(b.addr, "/dyn/mirror/x", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(one.count("/dyn/mirror/x"), 1);
    // The operator's view, on any node: the table and the JSON.
    let (code, out, err) = b.ctl(&["cluster"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("v1 {h1}  refused")),
        "ctl cluster:\n{out}"
    );
    assert!(
        out.contains(&format!(
            "refused: c v2 {h2}: pool \"mirror\" server {}",
            http(3)
        )),
        "ctl cluster:\n{out}"
    );
    println!("strait ctl cluster (at b):\n{out}");
    let (code, out, _) = a.ctl(&["--json", "cluster"]);
    assert_eq!(code, 0);
    let json: Value = serde_json::from_str(&out).expect("ctl --json");
    assert_eq!(
        json["members"][2]["config_state"], "refused",
        "ctl --json cluster: {out}"
    );
    // A refused version is not tried again: still refused a few rechecks later.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(c_refuses(&c), "{}", view(&c));

    // 3. A newer version (the mirror removed again) is taken by c: the refusal clears.
    std::fs::write(&a.config, config(1, "a", &key, &v1)).expect("write a");
    reload(&a);
    let (n3, h3, _) = config_of(&a, "a").expect("a's version");
    assert_eq!(n3, 3);
    assert_eq!(
        h3, h1,
        "the same pools and routes as version 1: the same hash"
    );
    assert!(
        wait_until(SPREAD_BOUND, || everywhere(&[&a, &b, &c], |_| (
            3,
            h3.clone(),
            "applied".into()
        )) && member(&a, "c")["config_error"]
            .is_null()),
        "version 3 not everywhere: {}",
        view(&a)
    );

    // 4. c restarted with its old file (version 0's pools and routes) adopts version 3.
    let _ = c.proc.child.kill();
    let _ = c.proc.child.wait();
    c = Node::start_config(&config(3, "c", &key, &v0));
    assert!(
        wait_until(JOIN_BOUND, || config_of(&c, "c")
            == Some((3, h3.clone(), "applied".into()))),
        "restarted c did not adopt version 3: {}",
        view(&c)
    );
    let r = get(c.addr, "/dyn/two/after-restart", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(two.count("/dyn/two/after-restart"), 1);
}
