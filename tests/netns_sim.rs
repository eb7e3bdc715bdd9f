//! `strait sim up|down`: a topology of namespaces is built, its commands run inside their
//! hosts and talk across the LAN, and `down` leaves nothing behind. Needs root; outside CI it
//! says SKIP.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::require_root;

fn strait(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(args)
        .output()
        .expect("run strait")
}

#[test]
fn sim_up_runs_the_hosts_commands_and_sim_down_removes_everything() {
    if !require_root(
        "sim_up_runs_the_hosts_commands_and_sim_down_removes_everything",
        &["ip", "curl"],
    ) {
        return;
    }
    let name = format!("t{}", std::process::id() % 10_000);
    let dir = support::scratch_dir("sim");
    let topo = dir.join("topo.toml");
    std::fs::write(
        &topo,
        format!(
            "name = \"{name}\"\n[[lan]]\nname = \"lan\"\nsubnet = \"10.71.0.0/24\"\n\
             [[host]]\nname = \"o\"\nlan = [{{ lan = \"lan\", addr = \"10.71.0.10/24\" }}]\n\
             run = [\"strait sim origin --listen 10.71.0.10:8080\"]\n\
             [[host]]\nname = \"c\"\nlan = [{{ lan = \"lan\", addr = \"10.71.0.20/24\" }}]\n"
        ),
    )
    .expect("topology");
    let topo = topo.to_str().expect("utf-8 path");
    let prefix = format!("st-{name}-");
    let logs = dir.join("logs");
    let up = strait(&[
        "sim",
        "up",
        "--topology",
        topo,
        "--logs",
        logs.to_str().expect("path"),
    ]);
    let cleanup = || {
        let _ = strait(&["sim", "down", "--topology", topo]);
    };
    if !up.status.success() {
        cleanup();
        panic!("sim up failed: {}", String::from_utf8_lossy(&up.stderr));
    }
    // The origin runs in its namespace; the client reaches it over the LAN.
    let client = format!("{prefix}c");
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let out = Command::new("ip")
            .args(["netns", "exec", &client, "curl", "-s", "--max-time", "2"])
            .arg("http://10.71.0.10:8080/obj/hello?size=32")
            .output()
            .expect("curl");
        if out.status.success() && out.stdout.len() == 32 {
            break out.stdout;
        }
        if Instant::now() > deadline {
            cleanup();
            panic!(
                "client could not reach the origin: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(body, strait_topology::origin::object_bytes("hello", 32));
    assert_eq!(
        support::namespaces(&prefix).len(),
        3,
        "two hosts and the switch"
    );

    let down = strait(&["sim", "down", "--topology", topo]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(
        support::namespaces(&prefix).is_empty(),
        "namespaces left: {:?}",
        support::namespaces(&prefix)
    );
    // Down again: nothing to do, still success.
    assert!(strait(&["sim", "down", "--topology", topo])
        .status
        .success());
}
