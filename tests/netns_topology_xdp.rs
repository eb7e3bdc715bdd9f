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

mod support;

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::require_root;

const VIP: Ipv4Addr = Ipv4Addr::new(10, 74, 0, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 74, 0, 2);
const BACKEND: Ipv4Addr = Ipv4Addr::new(10, 74, 0, 11);
const UDP_PORT: u16 = 5555;

fn strait(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(args)
        .output()
        .expect("run strait")
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A topology that is torn down (`strait sim down`) when dropped, also on failure.
struct Sim {
    topo: String,
    name: String,
}

impl Sim {
    fn up(dir: &Path, name: &str, text: &str) -> Sim {
        let topo = dir.join("topo.toml");
        std::fs::write(&topo, text).expect("topology file");
        let sim = Sim {
            topo: topo.to_string_lossy().into_owned(),
            name: name.to_owned(),
        };
        let logs = dir.join("logs");
        let logs = logs.to_str().expect("utf-8");
        let up = strait(&["sim", "up", "--topology", &sim.topo, "--logs", logs]);
        assert!(
            up.status.success(),
            "sim up: {}",
            String::from_utf8_lossy(&up.stderr)
        );
        sim
    }

    fn netns(&self, host: &str) -> String {
        format!("st-{}-{host}", self.name)
    }

    fn down(&self) {
        let out = strait(&["sim", "down", "--topology", &self.topo]);
        assert!(out.status.success(), "sim down failed");
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = strait(&["sim", "down", "--topology", &self.topo]);
    }
}

/// Runs `f` on a thread that has entered network namespace `netns`; what it creates (sockets)
/// stays in that namespace after it returns.
fn in_netns<T: Send + 'static>(netns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{netns}");
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).expect("open the namespace");
        // SAFETY: setns on a namespace fd only changes this (short-lived) thread's namespace.
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread")
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An inner IPv4 + UDP datagram (UDP checksum 0: none) from the client to `dst`.
fn inner_datagram(dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(28 + payload.len()).expect("small");
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
    p.extend_from_slice(&CLIENT.octets());
    p.extend_from_slice(&dst.octets());
    let c = ipv4_checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&40000u16.to_be_bytes());
    p.extend_from_slice(&UDP_PORT.to_be_bytes());
    p.extend_from_slice(
        &u16::try_from(8 + payload.len())
            .expect("small")
            .to_be_bytes(),
    );
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// Sends `packet` as the payload of an IP-in-IP datagram (protocol 4) to `to` through `raw`.
fn send_ipip(raw: &OwnedFd, to: Ipv4Addr, packet: &[u8]) {
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(to.octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: buffer and address are valid for the given lengths during the call.
    let n = unsafe {
        libc::sendto(
            raw.as_raw_fd(),
            packet.as_ptr().cast(),
            packet.len(),
            0,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(
        n,
        packet.len() as isize,
        "sendto: {}",
        std::io::Error::last_os_error()
    );
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

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
    let port = ip(&["-n", &sim.netns("sw"), "link", "show", "dev", "b-0"]);
    assert!(port.contains("strait_pass"), "bridge port: {port}");

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

/// Frames received by `dev` in `netns` (its RX packet counter).
fn rx_packets(netns: &str, dev: &str) -> u64 {
    let out = ip(&["-n", netns, "-s", "link", "show", "dev", dev]);
    let mut lines = out.lines();
    lines.find(|l| l.trim_start().starts_with("RX:"));
    let stats = lines.next().expect("RX counters");
    stats
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("packets")
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

/// `Via` of a GET from `client` to `http://addr/...`, or `None` when it did not answer.
fn via(client: &str, addr: &str) -> Option<String> {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            client,
            "curl",
            "-s",
            "-m",
            "2",
            "-D-",
            "-o",
            "/dev/null",
        ])
        .arg(format!("http://{addr}/obj/example?size=10"))
        .output()
        .expect("curl");
    let head = String::from_utf8_lossy(&out.stdout).into_owned();
    head.lines()
        .find_map(|l| l.strip_prefix("via: ").or_else(|| l.strip_prefix("Via: ")))
        .map(|v| v.trim().to_owned())
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
