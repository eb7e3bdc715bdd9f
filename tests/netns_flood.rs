//! The director under a SYN flood, in copies of the example topologies (a client, the
//! director, three backends running `strait node` in front of `strait sim origin`), each case
//! in its own copy (so they run in parallel):
//! * XDP, DR (topology/examples/topologies/dr.toml, copy `fl`);
//! * XDP, NAT (topology/examples/topologies/nat.toml, copy `fln`: the client and the VIP on
//!   10.72.0.0/24, the backends on 10.72.1.0/24 behind the director's `eth1`), the backends
//!   not answering the flood (a blackhole route to its sources on each: the recorded flood
//!   flows stay half-open in both directions);
//! * the userspace datapath (`datapath = "userspace"`), DR (dr.toml, copy `flu`);
//! * XDP, NAT with the backends answering the flood (copy `flr`): their SYN+ACKs use the
//!   flood flows' reply entries but leave them half-open (`ebpf/lib/conntrack.h`).
//!
//! Contract checked: with a small connection table (`max_conns = 256`: 64 sets of 8 ways) and
//! a new-flow guard (`new_flow_rate = 2000`, `new_flow_burst = 500` per CPU or receive
//! thread), 50 keep-alive connections established through the VIP on b1 and b2 (each sending
//! a request and reading its answer every 300 ms), then b3 added (a rescheduled connection
//! could move to it and be reset), then 200 000 raw SYN frames of distinct 5-tuples (sources
//! in 198.18.0.0/15, varied ports) sent from the client host through a packet socket within
//! 10 s: every keep-alive connection still answers, from the backend that answered it first,
//! during and after the flood; the director's counters show the guard acting (DR:
//! `new_flow_unrecorded` > 0, forwarded without a record; NAT: `drop_new_flow_limit` > 0 and
//! `new_flow_unrecorded` = 0, dropped) and every eviction was of a half-open entry
//! (`conn_evicted == conn_evicted_half_open`: no established flow, nor an established NAT
//! connection's reply entry, evicted).
//! Needs root; without it prints SKIP (with `CI=true` it fails instead).

mod support;

#[path = "netns_director/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{admin_json, connect_from, exchange, in_netns, short_get, time_until};

const ADMIN: &str = "127.0.0.1:9190";
const PORT: u16 = 80;
/// The flood's sources (see [`syn`]).
const FLOOD_SOURCES: &str = "198.18.0.0/15";
const CONNS: u16 = 50;
const SYNS: u32 = 200_000;

/// One flood case: its topology copy, mode, datapath and addresses.
struct Case {
    /// The topology copy's name (namespaces `st-<name>-<host>`).
    name: &'static str,
    /// The example topology copied.
    topology: &'static str,
    /// `dr` or `nat`.
    mode: &'static str,
    /// `xdp` or `userspace`.
    datapath: &'static str,
    vip: Ipv4Addr,
    client: Ipv4Addr,
    backends: [Ipv4Addr; 3],
    /// NAT: the backends' side.
    inner_interface: Option<&'static str>,
    /// Whether the backends answer the flood's SYNs (false: a blackhole route to
    /// 198.18.0.0/15 on each backend, so no SYN+ACK of theirs reaches the director).
    flood_answered: bool,
}

/// A case in the DR example (10.71.0.0/24).
fn dr(name: &'static str, datapath: &'static str) -> Case {
    Case {
        name,
        topology: "topology/examples/topologies/dr.toml",
        mode: "dr",
        datapath,
        vip: Ipv4Addr::new(10, 71, 0, 100),
        client: Ipv4Addr::new(10, 71, 0, 2),
        backends: [11, 12, 13].map(|h| Ipv4Addr::new(10, 71, 0, h)),
        inner_interface: None,
        flood_answered: true,
    }
}

/// A case in the NAT example (client side 10.72.0.0/24, backends on 10.72.1.0/24 via `eth1`).
fn nat(name: &'static str, flood_answered: bool) -> Case {
    Case {
        name,
        topology: "topology/examples/topologies/nat.toml",
        mode: "nat",
        datapath: "xdp",
        vip: Ipv4Addr::new(10, 72, 0, 100),
        client: Ipv4Addr::new(10, 72, 0, 2),
        backends: [11, 12, 13].map(|h| Ipv4Addr::new(10, 72, 1, h)),
        inner_interface: Some("eth1"),
        flood_answered,
    }
}

impl Case {
    fn ns(&self, host: &str) -> String {
        format!("st-{}-{host}", self.name)
    }
}

/// The director's config: the case's mode over the first `backends`, a small table, the guard.
fn write_config(c: &Case, path: &Path, backends: usize) {
    let list: Vec<String> = c.backends[..backends]
        .iter()
        .map(|ip| format!("{{ addr = \"{ip}\", weight = 100 }}"))
        .collect();
    let inner = c
        .inner_interface
        .map(|i| format!("inner_interface = \"{i}\"\n"))
        .unwrap_or_default();
    let text = format!(
        "[director]\nid = \"flood\"\ninterface = \"eth0\"\n{inner}datapath = \"{datapath}\"\n\
         admin = \"{ADMIN}\"\nmax_conns = 256\nnew_flow_rate = 2000\nnew_flow_burst = 500\n\n\
         [[service]]\nvip = \"{vip}:{PORT}\"\nproto = \"tcp\"\nmode = \"{mode}\"\n\
         backends = [{list}]\n\
         health = {{ kind = \"tcp\", interval = \"300ms\", timeout = \"200ms\", rise = 2, fall = 2 }}\n",
        datapath = c.datapath,
        vip = c.vip,
        mode = c.mode,
        list = list.join(", "),
    );
    std::fs::write(path, text).expect("director config");
}

/// The case's example under its own name, the director's run line removed (the test runs it).
fn stats(c: &Case) -> Option<serde_json::Value> {
    in_netns(&c.ns("director"), || {
        admin_json(ADMIN.parse().expect("admin"), "/stats.json")
    })
}

fn counter(v: &serde_json::Value, name: &str) -> u64 {
    v["counters"][name].as_u64().unwrap_or(0)
}

/// Backends up with weight > 0, from `/stats.json`.
fn serving(v: &serde_json::Value) -> usize {
    let Some(services) = v["services"].as_array() else {
        return 0;
    };
    services
        .iter()
        .flat_map(|s| s["backends"].as_array().cloned().unwrap_or_default())
        .filter(|b| b["up"] == true && b["effective_weight"].as_u64().unwrap_or(0) > 0)
        .count()
}

/// The MAC of `dev` in namespace `netns`.
fn mac_of(netns: &str, dev: &str) -> [u8; 6] {
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "cat"])
        .arg(format!("/sys/class/net/{dev}/address"))
        .output()
        .expect("read a MAC");
    let text = String::from_utf8_lossy(&out.stdout);
    let bytes: Vec<u8> = text
        .trim()
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).expect("MAC byte"))
        .collect();
    bytes.try_into().expect("6 bytes")
}

fn csum(data: &[u8], mut sum: u32) -> u16 {
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// SYN number `n` to `vip`: source 198.18.0.0/15 + n / 4, port 1024 + n % 4 × 16 000 + ….
fn syn(n: u32, vip: Ipv4Addr, dmac: [u8; 6], smac: [u8; 6]) -> Vec<u8> {
    let src = (u32::from(Ipv4Addr::new(198, 18, 0, 0)) + n / 4).to_be_bytes();
    let sport = 1024 + (n % 4) as u16 * 16_000 + (n % 15_991) as u16;
    let mut f = Vec::with_capacity(54);
    f.extend_from_slice(&dmac);
    f.extend_from_slice(&smac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&vip.octets());
    let c = csum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&PORT.to_be_bytes());
    tcp[4..8].copy_from_slice(&n.to_be_bytes());
    tcp[12] = 0x50;
    tcp[13] = 0x02; // SYN
    tcp[14..16].copy_from_slice(&64_240u16.to_be_bytes());
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&vip.octets());
    pseudo.extend_from_slice(&[0, 6, 0, 20]);
    let pre: u32 = pseudo
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    let c = csum(&tcp, pre);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&tcp);
    f
}

/// Sends `SYNS` SYN frames to `vip` out of `dev` (in the calling thread's namespace) through a
/// packet socket; returns how many the kernel took.
fn flood(dev: &str, vip: Ipv4Addr, dmac: [u8; 6], smac: [u8; 6]) -> u32 {
    // SAFETY: plain socket calls on a descriptor owned here, with valid buffers.
    unsafe {
        let fd = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            i32::from((libc::ETH_P_ALL as u16).to_be()),
        );
        assert!(
            fd >= 0,
            "packet socket: {}",
            std::io::Error::last_os_error()
        );
        let name = std::ffi::CString::new(dev).expect("name");
        let ifindex = libc::if_nametoindex(name.as_ptr());
        assert!(ifindex > 0, "{dev}: no such interface");
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&dmac);
        let mut sent = 0;
        for n in 0..SYNS {
            let f = syn(n, vip, dmac, smac);
            let rc = libc::sendto(
                fd,
                f.as_ptr().cast(),
                f.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            if rc == f.len() as isize {
                sent += 1;
            }
        }
        libc::close(fd);
        sent
    }
}

/// The 50 keep-alive connections: each answers a request every 300 ms until `stop`; returns
/// the first answering node of each and the failures seen (connection, error).
fn keep_alive(
    streams: Vec<(TcpStream, String)>,
    stop: Arc<AtomicBool>,
    rounds: Arc<std::sync::atomic::AtomicU64>,
) -> Vec<String> {
    let mut streams = streams;
    let mut failures = Vec::new();
    loop {
        let last = stop.load(Ordering::Relaxed);
        for (i, (s, node)) in streams.iter_mut().enumerate() {
            match exchange(s, "vip", "/obj/keep?size=16", false) {
                Ok(a) if a.status == 200 && a.node == *node => {}
                Ok(a) => failures.push(format!("connection {i}: {a:?}, first on {node}")),
                Err(e) => failures.push(format!("connection {i}: {e}")),
            }
        }
        rounds.fetch_add(1, Ordering::Relaxed);
        if last || failures.len() > 20 {
            return failures;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The flood against case `c` (see the module doc); `test` names it in SKIP and messages.
fn run(test: &str, c: Case) {
    if !support::require_root(test, &["ip"]) {
        return;
    }
    let dir = support::scratch_dir(&format!("flood-{}", c.name));
    let file = support::topology_copy(c.topology, c.name, &dir, &["director"], &[]);
    let _topo = support::SimTopology::up(file, &dir.join("logs"));
    for ip in c.backends {
        let ok = in_netns(&c.ns("director"), move || {
            time_until(Duration::from_secs(20), || {
                let dst = SocketAddr::V4(SocketAddrV4::new(ip, PORT));
                short_get(
                    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                    dst,
                    "/obj/warm?size=16",
                )
                .is_ok_and(|a| a.status == 200)
            })
        });
        assert!(ok.is_some(), "{test}: backend {ip} does not answer");
    }

    if !c.flood_answered {
        for b in ["b1", "b2", "b3"] {
            let ok = Command::new("ip")
                .args(["netns", "exec", &c.ns(b), "ip", "route", "add", "blackhole"])
                .arg(FLOOD_SOURCES)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "{test}: blackhole route on {b}");
        }
    }

    // The director over b1 and b2.
    let config = dir.join("director.toml");
    write_config(&c, &config, 2);
    let log_path = dir.join("director.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let child = Command::new("ip")
        .args(["netns", "exec", &c.ns("director")])
        .arg(env!("CARGO_BIN_EXE_strait"))
        .args(["director", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn director");
    let director = crate::support::Terminated(child);
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        time_until(Duration::from_secs(20), || stats(&c)
            .is_some_and(|v| serving(&v) == 2))
        .is_some(),
        "{test}: director never had 2 backends up; log: {}",
        log()
    );
    let datapath = stats(&c).map(|v| v["datapath"].as_str().unwrap_or("").to_owned());
    let want = if c.datapath == "xdp" {
        "xdp/native"
    } else {
        "userspace"
    };
    assert_eq!(datapath.as_deref(), Some(want), "{test}: datapath in use");

    // 50 keep-alive connections, each answered once.
    let (client, vip) = (c.client, c.vip);
    let streams = in_netns(&c.ns("client"), move || {
        (0..CONNS)
            .map(|i| {
                let mut s = connect_from(
                    SocketAddrV4::new(client, 30_000 + i),
                    SocketAddr::V4(SocketAddrV4::new(vip, PORT)),
                    Duration::from_secs(5),
                )
                .expect("keep-alive connect");
                let a = exchange(&mut s, "vip", "/obj/keep?size=16", false).expect("first answer");
                assert_eq!(a.status, 200);
                (s, a.node)
            })
            .collect::<Vec<_>>()
    });
    let on_b3 = streams.iter().filter(|s| s.1 == "b3").count();
    assert_eq!(on_b3, 0, "{test}: b3 is not in the table yet");
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let keeper = {
        let (stop, rounds, client_ns) = (stop.clone(), rounds.clone(), c.ns("client"));
        std::thread::spawn(move || in_netns(&client_ns, move || keep_alive(streams, stop, rounds)))
    };

    // b3 added: a connection rescheduled now could move to it.
    write_config(&c, &config, 3);
    let _ = Command::new("kill")
        .args(["-HUP", &director.0.id().to_string()])
        .status();
    assert!(
        time_until(Duration::from_secs(20), || stats(&c)
            .is_some_and(|v| serving(&v) == 3))
        .is_some(),
        "{test}: adding b3 not applied; log: {}",
        log()
    );
    let before = stats(&c).expect("stats before the flood");

    // The flood, from the client host, straight to the director's MAC.
    let (dmac, smac) = (
        mac_of(&c.ns("director"), "eth0"),
        mac_of(&c.ns("client"), "eth0"),
    );
    let started = Instant::now();
    let sent = in_netns(&c.ns("client"), move || flood("eth0", vip, dmac, smac));
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "{test}: flood took {took:?}"
    );
    assert!(sent > SYNS * 9 / 10, "{test}: {sent} of {SYNS} SYNs sent");

    // Two more rounds after the flood, then stop.
    let r0 = rounds.load(Ordering::Relaxed);
    let more = time_until(Duration::from_secs(20), || {
        rounds.load(Ordering::Relaxed) >= r0 + 2
    });
    stop.store(true, Ordering::Relaxed);
    let failures = keeper.join().expect("keep-alive thread");
    let after = stats(&c).expect("stats after the flood");
    let delta = |name: &str| counter(&after, name) - counter(&before, name);
    let (unrecorded, dropped, evicted, half_open, tx_new) = (
        delta("new_flow_unrecorded"),
        delta("drop_new_flow_limit"),
        delta("conn_evicted"),
        delta("conn_evicted_half_open"),
        delta("tx_new"),
    );
    eprintln!(
        "{test}: {sent} SYNs sent in {took:?}; {} keep-alive rounds, {} failures; during the \
         flood: tx_new {tx_new}, new_flow_unrecorded {unrecorded}, drop_new_flow_limit \
         {dropped}, conn_evicted {evicted} (half-open {half_open}); counters {}",
        rounds.load(Ordering::Relaxed),
        failures.len(),
        after["counters"]
    );
    assert!(
        failures.is_empty(),
        "{test}: keep-alive connections failed: {failures:?}"
    );
    assert!(
        more.is_some(),
        "{test}: keep-alive rounds stalled after the flood"
    );
    if c.mode == "nat" {
        assert!(dropped > 0, "{test}: the guard never dropped a NAT flow");
        assert_eq!(unrecorded, 0, "{test}: a NAT flow forwarded unrecorded");
    } else {
        assert!(unrecorded > 0, "{test}: the guard never acted");
    }
    assert_eq!(
        counter(&after, "conn_evicted"),
        counter(&after, "conn_evicted_half_open"),
        "{test}: an established entry was evicted"
    );
}

#[test]
fn syn_flood_spares_established_connections() {
    run("syn_flood_spares_established_connections", dr("fl", "xdp"));
}

/// NAT, the backends not answering the flood (their SYN+ACKs to its sources blackholed): the
/// flood's recorded flows stay half-open in both directions.
#[test]
fn syn_flood_spares_established_nat_connections() {
    run(
        "syn_flood_spares_established_nat_connections",
        nat("fln", false),
    );
}

/// NAT, the backends answering the flood as any host would: their SYN+ACKs use the flood
/// flows' reply entries, which stay half-open (a segment with SYN does not establish an
/// entry), so every eviction is still of a half-open entry. (Before that rule they became
/// established, filled the sets and evicted the keep-alive connections' entries.)
#[test]
fn syn_flood_spares_established_nat_connections_answered() {
    run(
        "syn_flood_spares_established_nat_connections_answered",
        nat("flr", true),
    );
}

#[test]
fn syn_flood_spares_established_connections_userspace() {
    run(
        "syn_flood_spares_established_connections_userspace",
        dr("flu", "userspace"),
    );
}
