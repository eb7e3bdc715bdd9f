//! Helpers of `tests/netns_topology_xdp.rs`: running `strait` and `ip`, a topology torn down on
//! drop, entering a namespace from a thread, and building IP-in-IP datagrams.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 74, 0, 100);
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 74, 0, 2);
pub const BACKEND: Ipv4Addr = Ipv4Addr::new(10, 74, 0, 11);
pub const UDP_PORT: u16 = 5555;

pub fn strait(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(args)
        .output()
        .expect("run strait")
}

pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A topology that is torn down (`strait sim down`) when dropped, also on failure.
pub struct Sim {
    pub topo: String,
    pub name: String,
}

impl Sim {
    pub fn up(dir: &Path, name: &str, text: &str) -> Sim {
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

    pub fn netns(&self, host: &str) -> String {
        format!("st-{}-{host}", self.name)
    }

    pub fn down(&self) {
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
pub fn in_netns<T: Send + 'static>(netns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
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

pub fn ipv4_checksum(header: &[u8]) -> u16 {
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
pub fn inner_datagram(dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
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
pub fn send_ipip(raw: &OwnedFd, to: Ipv4Addr, packet: &[u8]) {
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

pub fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Frames received by `dev` in `netns` (its RX packet counter).
pub fn rx_packets(netns: &str, dev: &str) -> u64 {
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

/// `Via` of a GET from `client` to `http://addr/...`, or `None` when it did not answer.
pub fn via(client: &str, addr: &str) -> Option<String> {
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
