//! Native XDP on topology veths, end to end (root; outside CI it says SKIP).
//!
//! * `tun_node_decapsulates_natively_and_delivers_to_the_vip`: a backend host runs `strait
//!   node` with `[l4] mode = "tun"` and `xdp_mode = "native"`; the client host sends IP-in-IP
//!   datagrams (a raw socket, protocol 4) whose inner UDP datagram goes to the VIP; each one
//!   reaches a UDP socket bound to the VIP inside the backend, with the client as source, and
//!   an inner datagram to another address does not; on SIGTERM the node reports its counters.
//! * `example_topologies_serve_from_every_backend`, `example_node_configs_pass_check`: the
//!   DR/TUN/NAT examples come up and serve (see their doc comments).
//! * `xdp_tx_frames_leave_a_host_through_the_bridge_at_once`: a host bouncing every frame
//!   with a native `XDP_TX` program: the bridge port receives the 20 bounced frames within a
//!   second because it runs the pass-all program (a few stray multicast frames may come back
//!   too), and without that program none arrive (the reason for the plan's step).

#[path = "netns_topology_xdp/helpers.rs"]
mod helpers;
mod support;

use std::net::UdpSocket;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

use helpers::{
    in_netns, inner_datagram, ip, rx_packets, send_ipip, strait, via, wait_for, Sim, BACKEND,
    CLIENT, UDP_PORT, VIP,
};
use support::require_root;

#[test]
fn tun_node_decapsulates_natively_and_delivers_to_the_vip() {
    let test = "tun_node_decapsulates_natively_and_delivers_to_the_vip";
    if !require_root(test, &["ip", "ethtool"]) {
        return;
    }
    let name = format!("xd{}", std::process::id() % 100_000);
    let dir = support::scratch_dir("xdp-tun");
    let node = dir.join("node.toml");
    std::fs::write(
        &node,
        format!(
            "[node]\nid = \"b1\"\nlisten = [\"0.0.0.0:80\"]\n[[pool]]\nname = \"o\"\n\
             servers = [{{ addr = \"127.0.0.1:18080\" }}]\n[[route]]\npool = \"o\"\n\
             [l4]\nvips = [\"{VIP}\"]\nmode = \"tun\"\ninterface = \"eth0\"\n\
             xdp_mode = \"native\"\n"
        ),
    )
    .expect("node config");
    let sim = Sim::up(
        &dir,
        &name,
        &format!(
            "name = \"{name}\"\n[[lan]]\nname = \"lan\"\nsubnet = \"10.74.0.0/24\"\n\
             [[host]]\nname = \"c\"\nlan = [{{ lan = \"lan\", addr = \"{CLIENT}\" }}]\n\
             [[host]]\nname = \"b\"\nlan = [{{ lan = \"lan\", addr = \"{BACKEND}\" }}]\n\
             run = [[\"strait\", \"node\", \"--config\", \"{}\"]]\n",
            node.display()
        ),
    );
    let (client, backend) = (sim.netns("c"), sim.netns("b"));
    wait_for("the node to apply [l4]", Duration::from_secs(15), || {
        let lo = ip(&["-n", &backend, "-4", "-o", "address", "show", "dev", "lo"]);
        let eth0 = ip(&["-n", &backend, "link", "show", "dev", "eth0"]);
        lo.contains(&format!("inet {VIP}/32")) && eth0.contains("prog/xdp")
    });
    let eth0 = ip(&["-n", &backend, "link", "show", "dev", "eth0"]);
    assert!(
        eth0.contains(" xdp ") && !eth0.contains("xdpgeneric"),
        "{eth0}"
    );
    // Frames sent to a host's own XDP program need no program on its bridge port (only a
    // host that sends frames out with XDP does: `port_xdp`).
    let port = ip(&["-n", &sim.netns("sw"), "link", "show", "dev", "b-0"]);
    assert!(!port.contains("strait_pass"), "bridge port: {port}");

    let listener = in_netns(&backend, || {
        UdpSocket::bind((VIP, UDP_PORT)).expect("bind VIP")
    });
    listener
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let raw = in_netns(&client, || {
        // SAFETY: plain socket(2); the fd is owned right away.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_IPIP) };
        assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        // SAFETY: fd is a fresh, valid descriptor owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(fd) }
    });
    // Not to a VIP: the program passes it, and nothing reaches the listener.
    send_ipip(&raw, BACKEND, &inner_datagram(BACKEND, b"not-for-the-vip"));
    let mut buf = [0u8; 256];
    for i in 0..20 {
        let payload = format!("datagram {i}");
        send_ipip(&raw, BACKEND, &inner_datagram(VIP, payload.as_bytes()));
        let (n, from) = listener.recv_from(&mut buf).expect("decapsulated datagram");
        assert_eq!(&buf[..n], payload.as_bytes());
        assert_eq!(from.ip(), CLIENT);
    }
    sim.down();
    let log = std::fs::read_to_string(dir.join("logs").join("b-0.log")).expect("node log");
    let plain: String = log
        .split('\x1b')
        .map(|part| part.split_once('m').map_or(part, |(_, rest)| rest))
        .collect();
    assert!(
        plain.contains("decapsulated=20"),
        "node log should report 20 decapsulated frames:\n{plain}"
    );
    assert!(plain.contains("VIP removed from lo"), "{plain}");
}

#[test]
fn xdp_tx_frames_leave_a_host_through_the_bridge_at_once() {
    let test = "xdp_tx_frames_leave_a_host_through_the_bridge_at_once";
    if !require_root(test, &["ip", "ethtool"]) {
        return;
    }
    let name = format!("xt{}", std::process::id() % 100_000);
    let dir = support::scratch_dir("xdp-tx");
    let sim = Sim::up(
        &dir,
        &name,
        &format!(
            "name = \"{name}\"\n[[lan]]\nname = \"lan\"\nsubnet = \"10.75.0.0/24\"\n\
             [[host]]\nname = \"c\"\nlan = [{{ lan = \"lan\", addr = \"10.75.0.2\" }}]\n\
             sysctls = {{ \"net.ipv6.conf.all.disable_ipv6\" = \"1\" }}\n\
             [[host]]\nname = \"a\"\nlan = [{{ lan = \"lan\", addr = \"10.75.0.3\" }}]\n\
             port_xdp = true\n\
             sysctls = {{ \"net.ipv6.conf.all.disable_ipv6\" = \"1\" }}\n"
        ),
    );
    let (client, bouncer, switch) = (sim.netns("c"), sim.netns("a"), sim.netns("sw"));
    let link = ip(&["-n", &bouncer, "link", "show", "dev", "eth0"]);
    let mac = link
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .expect("MAC")
        .to_owned();
    ip(&[
        "-n",
        &client,
        "neigh",
        "add",
        "10.75.0.3",
        "lladdr",
        &mac,
        "dev",
        "eth0",
    ]);
    let object = dir.join("tx.o");
    std::fs::write(&object, strait_topology::xdp_pass::object_returning(3)).expect("object");
    let object = object.to_str().expect("utf-8").to_owned();
    ip(&[
        "-n", &bouncer, "link", "set", "dev", "eth0", "xdpdrv", "obj", &object, "sec", "xdp",
    ]);
    let sender = in_netns(&client, || UdpSocket::bind("10.75.0.2:0").expect("bind"));
    let send_and_count = |label: &str| -> u64 {
        let before = rx_packets(&switch, "a-0");
        for i in 0..20u8 {
            sender.send_to(&[i; 32], "10.75.0.3:9").expect(label);
        }
        std::thread::sleep(Duration::from_millis(1000));
        rx_packets(&switch, "a-0") - before
    };
    // Everything the bouncer receives comes back, our 20 datagrams and any stray multicast.
    let with = send_and_count("with the pass program");
    assert!((20..=30).contains(&with), "{with} frames came back");
    ip(&["-n", &switch, "link", "set", "dev", "a-0", "xdpdrv", "off"]);
    assert_eq!(send_and_count("without it"), 0);
}

/// The example topologies (topology/examples/topologies/{dr,tun,nat}.toml) come up, every
/// backend's node answers the client on the backend's own address, DR/TUN backends hold the
/// VIP on `lo` and TUN backends run the decapsulation program; when this build has `strait
/// director`, the VIP answers too. Each is torn down after.
#[test]
fn example_topologies_serve_from_every_backend() {
    let test = "example_topologies_serve_from_every_backend";
    if !require_root(test, &["ip", "ethtool", "curl"]) {
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let has_director = strait(&["director", "--help"]).status.success();
    for (name, vip, backends) in [
        ("dr", "10.71.0.100", "10.71.0"),
        ("tun", "10.73.0.100", "10.73.0"),
        ("nat", "10.72.0.100", "10.72.1"),
    ] {
        let topo = format!("{root}/topology/examples/topologies/{name}.toml");
        let logs = support::scratch_dir(&format!("example-{name}")).join("logs");
        let up = Command::new(env!("CARGO_BIN_EXE_strait"))
            .current_dir(root)
            .args(["sim", "up", "--topology", &topo, "--logs"])
            .arg(&logs)
            .output()
            .expect("sim up");
        let sim = Sim {
            topo: topo.clone(),
            name: name.to_owned(),
        };
        assert!(
            up.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&up.stderr)
        );
        let client = sim.netns("client");
        for i in 1..=3 {
            let addr = format!("{backends}.1{i}");
            let expected = format!("1.1 b{i} (strait)");
            wait_for(
                &format!("{name}: b{i} on {addr}"),
                Duration::from_secs(20),
                || via(&client, &addr).as_deref() == Some(expected.as_str()),
            );
            let backend = sim.netns(&format!("b{i}"));
            let lo = ip(&["-n", &backend, "-4", "-o", "address", "show", "dev", "lo"]);
            assert_eq!(
                lo.contains(&format!("inet {vip}/32")),
                name != "nat",
                "{name} b{i}: {lo}"
            );
            let eth0 = ip(&["-n", &backend, "link", "show", "dev", "eth0"]);
            assert_eq!(
                eth0.contains("strait_decap"),
                name == "tun",
                "{name} b{i}: {eth0}"
            );
        }
        if has_director {
            wait_for(
                &format!("{name}: the VIP {vip}"),
                Duration::from_secs(20),
                || via(&client, vip).is_some_and(|v| v.starts_with("1.1 b")),
            );
        }
        sim.down();
    }
}

/// `strait check` accepts every node config of the director examples (no root needed).
#[test]
fn example_node_configs_pass_check() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/topology/examples/director");
    let mut files = Vec::new();
    for mode in ["dr", "tun", "nat"] {
        for i in 1..=3 {
            files.push(format!("{dir}/{mode}/node-{i}.toml"));
        }
    }
    let args: Vec<&str> = std::iter::once("check")
        .chain(files.iter().map(String::as_str))
        .collect();
    let out = strait(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 9);
}
