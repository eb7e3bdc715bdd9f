//! Runtime control of a node's origin servers, end to end: a real `strait node` in front of two
//! `strait sim origin` processes on 127.0.23.x, driven by `strait ctl server` and `strait ctl
//! show config` (with `--admin` after the subcommand). Which server answered is read from each
//! origin's per-path counts; `/dyn/` is never stored, so every request reaches a server.
//!
//! Contract under test (`cache/src/origin/control.rs`, `cache/src/admin/control.rs`,
//! `strait_lb::health::admin`): `drain` sends every new request to the other server while a
//! request in flight on the drained one completes; `ready` brings it back; `weight N` is shown
//! in `/stats.json` and respected by round robin; `maint` takes it out; overrides show in
//! `/stats.json`, `/metrics` and `show config`, survive a reload that keeps the server's weight
//! in the file and are cleared by one that changes it; bad input is a 4xx and ctl exits 1.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::{admin_request, get, wait_until, Node, Origin, Proc, START_TIMEOUT};

/// `strait sim origin` on `ip`, a port picked by the kernel.
fn origin_on(ip: &str) -> Origin {
    let proc = Proc::spawn_origin_on(format!("{ip}:0").parse().unwrap());
    let line = proc.wait_line("listening on", START_TIMEOUT);
    let addr: SocketAddr = line
        .split_whitespace()
        .last()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    Origin { proc, addr }
}

fn config(servers: &[(SocketAddr, u32)]) -> String {
    let list: Vec<String> = servers
        .iter()
        .map(|(a, w)| format!("{{ addr = \"{a}\", weight = {w} }}"))
        .collect();
    format!(
        "[node]\nid = \"rc\"\nlisten = [\"127.0.23.10:0\"]\nadmin = \"127.0.23.10:0\"\n\n\
         [[pool]]\nname = \"p\"\nservers = [{}]\n\n[[route]]\npool = \"p\"\n",
        list.join(", ")
    )
}

/// `strait ctl ARGS... --admin ADMIN` (the option after the subcommand).
fn ctl(admin: SocketAddr, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strait"))
        .arg("ctl")
        .args(args)
        .args(["--admin", &admin.to_string()])
        .output()
        .expect("run strait ctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Requests for `/dyn/<tag>` each origin answered.
fn counts(origins: &[Origin], tag: &str) -> Vec<u64> {
    let path = format!("/dyn/{tag}");
    origins.iter().map(|o| o.count(&path)).collect()
}

/// GET `/dyn/<tag>` `n` times through the node; then how many each origin answered.
fn get_n(node: &Node, origins: &[Origin], tag: &str, n: usize) -> Vec<u64> {
    for i in 0..n {
        let r = get(node.addr, &format!("/dyn/{tag}"), &[]);
        assert_eq!(r.status, 200, "{tag} request {i}: {}", r.text());
    }
    counts(origins, tag)
}

/// The `/stats.json` entry of server `addr`.
fn server_stats(node: &Node, addr: SocketAddr) -> serde_json::Value {
    let stats = node.stats();
    stats["pools"][0]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["addr"] == addr.to_string())
        .cloned()
        .unwrap_or_else(|| panic!("no server {addr} in {stats}"))
}

#[test]
fn drain_ready_weight_and_maint_through_ctl_survive_a_reload_that_keeps_the_weight() {
    let origins = vec![origin_on("127.0.23.1"), origin_on("127.0.23.2")];
    let (a, b) = (origins[0].addr, origins[1].addr);
    let node = Node::start_config(&config(&[(a, 1), (b, 1)]));
    let admin = node.admin;
    let addrs = [a, b];

    // A slow request in flight on one server, then that server drained.
    let slow_addr = node.addr;
    let slow = std::thread::spawn(move || get(slow_addr, "/dyn/slow?delay=1500", &[]));
    let mut busy = usize::MAX;
    assert!(
        wait_until(Duration::from_secs(3), || {
            busy = counts(&origins, "slow")
                .iter()
                .position(|&c| c == 1)
                .unwrap_or(usize::MAX);
            busy != usize::MAX
        }),
        "the slow request reached no origin"
    );
    let drained = addrs[busy];
    let (code, out, err) = ctl(admin, &["server", "p", &drained.to_string(), "drain"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        format!("pool p server {drained}: drain, weight 1 (file 1)\n")
    );
    let got = get_n(&node, &origins, "d", 10);
    assert_eq!(got[busy], 0, "a drained server got new requests: {got:?}");
    assert_eq!(got[1 - busy], 10);
    let r = slow.join().unwrap();
    assert_eq!(
        r.status, 200,
        "the request in flight on the drained server completes"
    );
    let s = server_stats(&node, drained);
    assert_eq!(
        (s["admin_state"].as_str(), s["state"].as_str()),
        (Some("drain"), Some("draining"))
    );
    assert_eq!(s["up"], false);
    let metrics = admin_request(admin, "GET", "/metrics", &[]).text();
    let line = format!(
        "strait_origin_server_admin_state{{pool=\"p\",server=\"{drained}\",state=\"drain\"}} 1"
    );
    assert!(metrics.contains(&line), "{metrics}");
    let page = admin_request(admin, "GET", "/", &[]).text();
    assert!(page.contains("DRAINING"), "{page}");

    // Ready: both again, round robin.
    let (code, out, _) = ctl(admin, &["server", "p", &drained.to_string(), "ready"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(get_n(&node, &origins, "r", 10), [5, 5]);

    // A new weight: shown and respected (3:1 round robin).
    let (code, out, _) = ctl(admin, &["server", "p", &a.to_string(), "weight", "3"]);
    assert_eq!(code, 0, "{out}");
    let s = server_stats(&node, a);
    assert_eq!(
        (s["weight"].as_u64(), s["file_weight"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(get_n(&node, &origins, "w", 8), [6, 2]);

    // Maint: no traffic at all.
    let (code, out, _) = ctl(admin, &["server", "p", &b.to_string(), "maint"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(get_n(&node, &origins, "m", 4), [4, 0]);
    assert_eq!(server_stats(&node, b)["state"], "maint");

    // show config: the file's text, then the overrides as comments.
    let (code, shown, err) = ctl(admin, &["show", "config"]);
    assert_eq!(code, 0, "{err}");
    let file = std::fs::read_to_string(&node.config).unwrap();
    assert!(shown.contains(&file), "{shown}");
    assert!(
        shown.contains(&format!(
            "# runtime override: pool \"p\" server {a}: weight 3 (file 1)\n"
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "# runtime override: pool \"p\" server {b}: state maint\n"
        )),
        "{shown}"
    );
    let _: toml::Table = shown.parse().expect("show config is TOML");

    // A reload that keeps both weights keeps both overrides.
    let (code, out, err) = ctl(admin, &["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(server_stats(&node, a)["weight"], 3);
    assert_eq!(server_stats(&node, b)["admin_state"], "maint");
    assert_eq!(get_n(&node, &origins, "k", 3), [3, 0]);

    // A reload that changes a's weight in the file clears a's override only.
    std::fs::write(&node.config, config(&[(a, 2), (b, 1)])).unwrap();
    let (code, out, err) = ctl(admin, &["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    let s = server_stats(&node, a);
    assert_eq!(
        (s["weight"].as_u64(), s["admin_state"].as_str()),
        (Some(2), Some("ready"))
    );
    assert_eq!(server_stats(&node, b)["admin_state"], "maint");
    let (_, shown, _) = ctl(admin, &["show", "config"]);
    assert!(shown.contains("weight = 2"), "the reloaded text: {shown}");
    assert!(!shown.contains(&format!("server {a}:")), "{shown}");
}

#[test]
fn bad_runtime_requests_are_refused_with_a_reason_and_ctl_exits_1() {
    let origin = origin_on("127.0.23.3");
    let node = Node::start_config(&config(&[(origin.addr, 1)]));
    let admin = node.admin;
    let addr = origin.addr.to_string();
    let (code, _, err) = ctl(admin, &["server", "nope", &addr, "drain"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("404") && err.contains("no pool named \"nope\""),
        "{err}"
    );
    let (code, _, err) = ctl(admin, &["server", "p", "127.0.23.3:1", "maint"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("pool \"p\" has no server 127.0.23.3:1"),
        "{err}"
    );
    let (code, _, err) = ctl(admin, &["server", "p", &addr, "weight", "1001"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("400") && err.contains("from 0 to 1000"),
        "{err}"
    );
    let (code, _, err) = ctl(admin, &["server", "p", "host-a", "drain"]);
    assert_eq!(code, 1);
    assert!(err.contains("bad addr"), "{err}");
    let target = format!("/server?pool=p&addr={addr}&state=drain");
    assert_eq!(admin_request(admin, "GET", &target, &[]).status, 405);
    let form = admin_request(admin, "POST", &target, &[("Content-Type", "text/plain")]);
    assert_eq!(form.status, 415, "a change guarded as the others");
    let r = admin_request(admin, "POST", "/server?pool=p", &[]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        node.stats()["pools"][0]["servers"][0]["admin_state"],
        "ready"
    );
    // GET /config is the text as well.
    let r = admin_request(admin, "GET", "/config", &[]);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("[[pool]]\nname = \"p\""), "{}", r.text());
}

/// `--admin` takes a host name (resolved by ctl only; config files keep ip:port), before or
/// after the subcommand.
#[test]
fn ctl_reaches_the_admin_by_name_with_the_option_anywhere() {
    let origin = origin_on("127.0.23.3");
    let text =
        config(&[(origin.addr, 1)]).replace("admin = \"127.0.23.10:0\"", "admin = \"127.0.0.1:0\"");
    let node = Node::start_config(&text);
    assert_eq!(node.admin.ip().to_string(), "127.0.0.1");
    let by_name = format!("localhost:{}", node.admin.port());
    for args in [
        vec!["ctl", "--admin", by_name.as_str(), "status"],
        vec!["ctl", "status", "--admin", by_name.as_str()],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_strait"))
            .args(&args)
            .output()
            .expect("run strait ctl");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("rc"), "{args:?}: {stdout}");
    }
}
