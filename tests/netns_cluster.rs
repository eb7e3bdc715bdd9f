//! The cache cluster behind the XDP director, end to end in network namespaces: runs
//! `topology/examples/cluster-demo.sh` (the cluster example topology: a client, the director in
//! DR mode, three cache nodes forming one cluster) and checks what it printed. The script
//! itself fails on a request not answered 200, on an origin fetch count other than one per key
//! (and one more per key of the node it kills), and on the killed node still answering. Needs
//! root; outside CI it says SKIP.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn the_cluster_behind_the_director_fetches_each_key_once_and_survives_a_node() {
    if !support::require_root("netns_cluster", &["ip", "curl", "ethtool"]) {
        return;
    }
    let start = Instant::now();
    let out = Command::new("timeout")
        .args(["120", "bash", "topology/examples/cluster-demo.sh"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("STRAIT_BIN", env!("CARGO_BIN_EXE_strait"))
        .output()
        .expect("run the cluster demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "cluster demo failed ({:?}) after {:?}:\n{stdout}\n{stderr}",
        out.status,
        start.elapsed()
    );
    for line in [
        "ready: the director has 3 backends up; each node sees 3 alive members",
        "phase 1: 60 requests, all 200",
        "origin fetches over the three nodes: 20 for 20 keys",
        "dead in the cluster and down at the director",
        "phase 2: 40 requests, all 200",
        "torn down",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // Requests reached every node, and some took the remote paths.
    assert!(stdout.contains("remote-hit"), "{stdout}");
    assert!(
        support::namespaces("st-cl-").is_empty(),
        "namespaces left behind"
    );
    assert!(start.elapsed() < Duration::from_secs(120));
}
