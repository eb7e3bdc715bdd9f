//! Honest reloads, against a real node on 127.0.22.0/24: a reload that changes `listen` and
//! adds a server applies the server and names `node.listen` as not applied — in `strait ctl
//! reload` (and `--json`), the log's one-line summary, `/stats.json`, `/metrics` and the stats
//! page; a refused reload shows its errors there too.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::{admin_request, get, Node, Proc, START_TIMEOUT};

fn origin(ip: &str) -> (Proc, SocketAddr) {
    let p = Proc::spawn_origin_on(format!("{ip}:0").parse().unwrap());
    let line = p.wait_line("listening on", START_TIMEOUT);
    let addr = line.split_whitespace().last().unwrap().parse().unwrap();
    (p, addr)
}

fn config(listen: &str, admin: &str, servers: &[SocketAddr]) -> String {
    let list: Vec<String> = servers
        .iter()
        .map(|a| format!("{{ addr = \"{a}\" }}"))
        .collect();
    format!(
        "[node]\nid = \"a\"\nlisten = [\"{listen}\"]\nadmin = \"{admin}\"\n\n\
         [[pool]]\nname = \"origin\"\nservers = [{}]\n\n[[route]]\npool = \"origin\"\n",
        list.join(", ")
    )
}

#[test]
fn a_reload_applies_a_new_server_and_names_listen_as_not_applied() {
    let (_a, a) = origin("127.0.22.11");
    let (_b, b) = origin("127.0.22.12");
    let node = Node::start_config(&config("127.0.22.10:0", "127.0.22.10:0", &[a]));
    let before = node.stats();
    assert_eq!(before["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        before["config"]["path"],
        node.config.display().to_string().as_str()
    );
    let hash = before["config"]["hash"].as_str().unwrap().to_string();
    assert_eq!(hash.len(), 64);
    assert!(before["config"]["last_reload"].is_null());

    // Another listen port (not applied) and a second server (applied).
    // The admin address as written (port 0: the node kept the port it was given).
    let moved = config("127.0.22.10:1", "127.0.22.10:0", &[a, b]);
    std::fs::write(&node.config, &moved).unwrap();
    let (code, out, err) = node.ctl(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        format!("reloaded: servers +origin/{b}\nnot applied (restart needed): node.listen\n")
    );
    node.proc.wait_line(
        &format!("reload (file) applied: servers +origin/{b}"),
        Duration::from_secs(10),
    );
    node.proc.wait_line(
        "reload (file) not applied (restart needed): node.listen",
        Duration::from_secs(10),
    );

    // Still on the old port; the new server takes requests.
    for i in 0..4 {
        assert_eq!(get(node.addr, &format!("/dyn/r{i}"), &[]).status, 200);
    }
    let servers = node.stats()["pools"][0]["servers"].clone();
    assert_eq!(servers.as_array().unwrap().len(), 2, "{servers}");

    // --json: the same outcome as data (a second reload of the same file: no changes).
    let (code, out, err) = node.ctl(&["--json", "reload"]);
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["reloaded"], true);
    assert_eq!(j["summary"], "no changes");
    assert_eq!(j["not_applied"], serde_json::json!(["node.listen"]));

    let stats = node.stats();
    let last = &stats["config"]["last_reload"];
    assert_eq!(last["result"], "applied", "{stats}");
    assert_eq!(last["source"], "file");
    assert_eq!(last["not_applied"], serde_json::json!(["node.listen"]));
    assert_ne!(
        stats["config"]["hash"],
        hash.as_str(),
        "the new file's hash"
    );
    assert_eq!(stats["config"]["reloads_applied"], 2);

    let metrics = admin_request(node.admin, "GET", "/metrics", &[]).text();
    assert!(
        metrics.contains("strait_config_last_reload_success 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("strait_config_reloads_total{result=\"applied\"} 2"),
        "{metrics}"
    );
    let page = admin_request(node.admin, "GET", "/", &[]).text();
    assert!(page.contains("not applied (restart needed)"), "{page}");
    assert!(page.contains("node.listen"), "{page}");

    // A refused reload: the errors are shown, the running config stays.
    std::fs::write(
        &node.config,
        moved.replace("pool = \"origin\"", "pool = \"nope\""),
    )
    .unwrap();
    let (code, _out, err) = node.ctl(&["reload"]);
    assert_eq!(code, 1, "{err}");
    let stats = node.stats();
    let last = &stats["config"]["last_reload"];
    assert_eq!(last["result"], "refused", "{stats}");
    assert!(
        last["errors"][0].as_str().unwrap().contains("nope"),
        "{stats}"
    );
    let metrics = admin_request(node.admin, "GET", "/metrics", &[]).text();
    assert!(
        metrics.contains("strait_config_last_reload_success 0"),
        "{metrics}"
    );
    let page = admin_request(node.admin, "GET", "/", &[]).text();
    assert!(page.contains("refused (file)"), "{page}");
    assert_eq!(get(node.addr, "/dyn/still", &[]).status, 200);
}
