//! `backends = "cluster"` end to end in network namespaces: the cluster-auto example topology
//! (topologies/cluster-auto.toml: a client, the XDP director in DR mode, three cache nodes
//! forming one cluster) where the director lists no backend and takes the cluster's live nodes
//! from gossip. Checks: the director reaches 3 backends up on its own, 30 requests through the
//! VIP are all answered 200, a SIGKILLed node is drained (weight 0) or down at the director
//! within seconds, and 30 more requests are all answered. Every host lives in namespaces
//! `sim up` creates; `sim down` runs at the end whatever happens. Needs root; outside CI it
//! says SKIP.

mod support;

#[allow(dead_code)]
#[path = "netns_director/harness.rs"]
mod harness;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::Command;
use std::time::Duration;

use harness::{admin_json, in_netns, short_get, time_until};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const TOPO: &str = "topology/examples/topologies/cluster-auto.toml";
const DIRECTOR: &str = "st-ca-director";
const CLIENT: &str = "st-ca-client";
const ADMIN: &str = "127.0.0.1:9190";
const VIP: &str = "10.74.0.100:80";

/// Runs `strait sim down` when dropped, so a failed assertion leaves no namespace behind.
struct Down;

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_strait"))
            .current_dir(ROOT)
            .args(["sim", "down", "--topology", TOPO])
            .output();
    }
}

/// The cluster service's backends at the director: (addr, effective weight, up).
fn backends() -> Vec<(String, u64, bool)> {
    let admin: SocketAddr = ADMIN.parse().expect("admin");
    let Some(stats) = in_netns(DIRECTOR, move || admin_json(admin, "/stats.json")) else {
        return Vec::new();
    };
    let Some(list) = stats["services"][0]["backends"].as_array() else {
        return Vec::new();
    };
    list.iter()
        .map(|b| {
            (
                b["addr"].as_str().unwrap_or_default().to_owned(),
                b["effective_weight"].as_u64().unwrap_or(u64::MAX),
                b["up"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// `n` short requests for keys `first_key..` from the client through the VIP; for each, the
/// first node in its `Via` (the node that fetched the object from the origin).
fn traffic(n: u16, first_key: u16, first_port: u16) -> Vec<String> {
    in_netns(CLIENT, move || {
        let vip: SocketAddr = VIP.parse().expect("vip");
        (0..n)
            .map(|i| {
                let src = SocketAddrV4::new(Ipv4Addr::new(10, 74, 0, 2), first_port + i);
                let path = format!("/obj/k{}?size=1000&ttl=600", first_key + i);
                let a = short_get(src, vip, &path)
                    .unwrap_or_else(|e| panic!("request {i} from {src}: {e}"));
                assert_eq!(a.status, 200, "request {i} from {src}");
                a.node
            })
            .collect()
    })
}

/// The pid `sim up` printed for `host`'s `strait node`.
fn node_pid(up: &str, host: &str) -> i32 {
    let tag = format!("started [{host}]");
    up.lines()
        .filter(|l| l.contains(&tag) && l.contains("strait node"))
        .find_map(|l| {
            let rest = &l[l.find("(pid ")? + 5..];
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no pid for {host}'s node in:\n{up}"))
}

#[test]
fn the_director_follows_the_cluster_members() {
    if !support::require_root("netns_cluster_auto", &["ip", "ethtool"]) {
        return;
    }
    assert!(
        support::namespaces("st-ca-").is_empty(),
        "st-ca- namespaces exist already"
    );
    let down = Down;
    let up = Command::new(env!("CARGO_BIN_EXE_strait"))
        .current_dir(ROOT)
        .args(["sim", "up", "--topology", TOPO])
        .output()
        .expect("sim up");
    let up_text = String::from_utf8_lossy(&up.stdout).into_owned();
    assert!(
        up.status.success(),
        "sim up: {}\n{}",
        up_text,
        String::from_utf8_lossy(&up.stderr)
    );

    let ready = time_until(Duration::from_secs(30), || {
        let b = backends();
        b.len() == 3 && b.iter().all(|(_, w, up)| *up && *w > 0)
    });
    assert!(
        ready.is_some(),
        "the director did not reach 3 cluster backends up in 30 s: {:?}",
        backends()
    );
    eprintln!(
        "ready after {:?}: director backends {:?}",
        ready.unwrap(),
        backends()
    );

    let nodes = traffic(30, 0, 20_000);
    eprintln!("phase 1: 30 requests, all 200, fetched by {nodes:?}");

    let pid = node_pid(&up_text, "b3");
    // SAFETY: kill(2) on the pid `sim up` started for b3's node.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill {pid}");
    let drained = time_until(Duration::from_secs(10), || {
        backends()
            .iter()
            .any(|(a, w, up)| a.starts_with("10.74.0.13:") && (*w == 0 || !*up))
    });
    assert!(
        drained.is_some(),
        "b3 not drained or down at the director within 10 s: {:?}",
        backends()
    );
    eprintln!(
        "b3's node killed: drained at the director after {:?}: {:?}",
        drained.unwrap(),
        backends()
    );

    // New keys: none of them can have been fetched by b3.
    let nodes = traffic(30, 100, 21_000);
    assert!(
        nodes.iter().all(|n| n != "b3"),
        "b3 fetched a key after it died: {nodes:?}"
    );
    eprintln!("phase 2: 30 requests, all 200, fetched by {nodes:?}");
    drop(down);
    assert!(
        support::namespaces("st-ca-").is_empty(),
        "namespaces left after sim down"
    );
    eprintln!("torn down: no st-ca- namespace left");
}
