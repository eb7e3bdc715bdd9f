//! The admin listener refuses clients that are not on loopback, even when bound to 0.0.0.0:
//! a node in one network namespace, a client in another (both created here, joined by a veth
//! pair; nothing is added to the root namespace). Needs root; outside CI it says SKIP.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::require_root;

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("run ip");
    assert!(st.success(), "ip {args:?} failed");
}

/// Namespaces removed on drop (also when the test fails).
struct Netns(Vec<String>);

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[test]
fn admin_refuses_a_client_from_another_host() {
    if !require_root("admin_refuses_a_client_from_another_host", &["ip"]) {
        return;
    }
    let tag = std::process::id() % 100_000;
    let (node_ns, client_ns) = (format!("strait-t{tag}-n"), format!("strait-t{tag}-c"));
    ip(&["netns", "add", &node_ns]);
    let _guard = Netns(vec![node_ns.clone(), client_ns.clone()]);
    ip(&["netns", "add", &client_ns]);
    let (va, vb) = (format!("st{tag}a"), format!("st{tag}b"));
    ip(&[
        "link", "add", &va, "netns", &node_ns, "type", "veth", "peer", "name", &vb, "netns",
        &client_ns,
    ]);
    ip(&["-n", &node_ns, "addr", "add", "10.99.0.1/24", "dev", &va]);
    ip(&["-n", &client_ns, "addr", "add", "10.99.0.2/24", "dev", &vb]);
    for (ns, dev) in [(&node_ns, &va), (&client_ns, &vb)] {
        ip(&["-n", ns, "link", "set", dev, "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }

    let dir = support::scratch_dir("netns-admin");
    let config = dir.join("node.toml");
    std::fs::write(
        &config,
        "[node]\nid = \"a\"\nlisten = [\"127.0.0.1:8080\"]\nadmin = \"0.0.0.0:9090\"\n\
         [[pool]]\nname = \"o\"\nservers = [{ addr = \"127.0.0.1:1\" }]\n[[route]]\npool = \"o\"\n",
    )
    .expect("config");
    let bin = env!("CARGO_BIN_EXE_strait");
    let mut node = Command::new("ip")
        .args(["netns", "exec", &node_ns, bin, "node", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node");
    let ctl = |ns: &str, admin: &str| {
        Command::new("ip")
            .args(["netns", "exec", ns, bin, "ctl", "--admin", admin, "stats"])
            .output()
            .expect("run ctl")
    };
    // Loopback inside the node's namespace is allowed (wait for the node to come up).
    let deadline = Instant::now() + Duration::from_secs(10);
    let local = loop {
        let out = ctl(&node_ns, "127.0.0.1:9090");
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        local.status.success(),
        "{}",
        String::from_utf8_lossy(&local.stderr)
    );
    // The same listener, reached from the other namespace: 403.
    let remote = ctl(&client_ns, "10.99.0.1:9090");
    let _ = node.kill();
    let _ = node.wait();
    assert_eq!(remote.status.code(), Some(1));
    let err = String::from_utf8_lossy(&remote.stderr);
    assert!(err.contains("403"), "{err}");
    assert!(err.contains("loopback"), "{err}");
}
