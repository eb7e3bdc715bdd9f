//! Pools and routes a node adopts from the cluster are reloads too, reported the same way: two
//! `strait node` processes on 127.0.22.21-22 (gossip on fixed ports 36221-36222 and peers on
//! 36231-36232, so a can be named as the seed); a server added by a reload on a shows on b as a `cluster`
//! reload, with its one-line summary in b's log and its outcome in b's `/stats.json`.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use support::{admin_request, scratch_dir, wait_until, Node, Proc, START_TIMEOUT};

fn origin(ip: &str) -> (Proc, SocketAddr) {
    let p = Proc::spawn_origin_on(format!("{ip}:0").parse().unwrap());
    let line = p.wait_line("listening on", START_TIMEOUT);
    let addr = line.split_whitespace().last().unwrap().parse().unwrap();
    (p, addr)
}

fn config(n: u8, key: &Path, servers: &[SocketAddr]) -> String {
    let list: Vec<String> = servers
        .iter()
        .map(|a| format!("{{ addr = \"{a}\" }}"))
        .collect();
    format!(
        "[node]\nid = \"n{n}\"\nlisten = [\"127.0.22.2{n}:0\"]\nadmin = \"127.0.22.2{n}:0\"\n\n\
         [[pool]]\nname = \"one\"\nservers = [{}]\n\n[[route]]\npool = \"one\"\n\n\
         [cluster]\npeer_listen = \"127.0.22.2{n}:3623{n}\"\ngossip_listen = \"127.0.22.2{n}:3622{n}\"\n\
         seeds = [\"127.0.22.21:36221\"]\nsecret_file = {:?}\n\
         probe_interval = \"200ms\"\nsuspect_timeout = \"1s\"\n",
        list.join(", "),
        key.display().to_string(),
    )
}

fn alive(node: &Node, ids: &[&str]) -> bool {
    let r = admin_request(node.admin, "GET", "/cluster.json", &[]);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    ids.iter().all(|id| {
        v["members"]
            .as_array()
            .is_some_and(|l| l.iter().any(|m| m["id"] == *id && m["state"] == "alive"))
    })
}

#[test]
fn pools_adopted_from_the_cluster_are_reported_as_a_cluster_reload() {
    let (_o1, one) = origin("127.0.22.23");
    let (_o2, two) = origin("127.0.22.24");
    let dir = scratch_dir("reload-cluster");
    let key = dir.join("cluster.key");
    std::fs::write(&key, "a shared cluster key, long enough\n").unwrap();
    let a = Node::start_config(&config(1, &key, &[one]));
    let b = Node::start_config(&config(2, &key, &[one]));
    assert!(
        wait_until(Duration::from_secs(15), || alive(&a, &["n1", "n2"])
            && alive(&b, &["n1", "n2"])),
        "no membership"
    );
    std::fs::write(&a.config, config(1, &key, &[one, two])).unwrap();
    let (code, out, err) = a.ctl(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, format!("reloaded: servers +one/{two}\n"));

    let summary = format!("servers +one/{two}");
    b.proc.wait_line(
        &format!("reload (cluster) applied: {summary}"),
        Duration::from_secs(15),
    );
    let stats = b.stats();
    let last = &stats["config"]["last_reload"];
    assert_eq!(last["source"], "cluster", "{stats}");
    assert_eq!(last["result"], "applied", "{stats}");
    assert_eq!(last["summary"], summary.as_str(), "{stats}");
    assert_eq!(last["not_applied"], serde_json::json!([]), "{stats}");
}
