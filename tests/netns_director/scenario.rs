//! One director scenario in an example topology (DR, TUN or NAT): thousands of short
//! connections spread by Maglev exactly as predicted, a weight change, a long-lived connection
//! across a backend being added, a killed backend taken out in time, a clean exit.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::harness::{
    admin_json, connect_from, connect_with_ttl, exchange, in_netns, post, short_get, time_until,
    Predictor,
};

/// What differs between the modes.
pub struct ModeSpec {
    /// `dr`, `tun` or `nat`.
    pub mode: &'static str,
    /// The example topology file (repo-relative).
    pub topology: &'static str,
    /// Short unique topology name for the test's copy (same length or shorter than the
    /// example's, so generated interface names stay within 15 bytes).
    pub test_name: &'static str,
    /// Host names.
    pub client_host: &'static str,
    pub director_host: &'static str,
    pub backend_hosts: [&'static str; 3],
    /// Node ids of the backends (in `Via`).
    pub node_ids: [&'static str; 3],
    /// Addresses.
    pub client_ip: Ipv4Addr,
    pub vip: Ipv4Addr,
    pub backend_ips: [Ipv4Addr; 3],
    /// NAT: the director's interface towards the backends.
    pub inner_interface: Option<&'static str>,
    /// `xdp` or `userspace`.
    pub datapath: &'static str,
    /// `threaded_napi = true` in the director's config: `eth0` must be threaded while it runs
    /// and back to softirq polling after it exits.
    pub threaded_napi: bool,
}

/// Health settings of the test's director (the kill deadline derives from them).
const INTERVAL_MS: u64 = 300;
const TIMEOUT_MS: u64 = 200;
const FALL: u64 = 2;
const ADMIN: &str = "127.0.0.1:9190";
const PORT: u16 = 80;

/// The topology copy, torn down on drop.
struct Topo {
    _topology: crate::support::SimTopology,
    prefix: String,
}

impl Topo {
    fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
}

fn write_director_config(path: &Path, m: &ModeSpec, backends: &[(Ipv4Addr, u32)]) {
    let list: Vec<String> = backends
        .iter()
        .map(|(ip, w)| format!("{{ addr = \"{ip}\", weight = {w} }}"))
        .collect();
    let inner = m
        .inner_interface
        .map(|i| format!("inner_interface = \"{i}\"\n"))
        .unwrap_or_default();
    let inner = if m.threaded_napi {
        format!("{inner}threaded_napi = true\n")
    } else {
        inner
    };
    let text = format!(
        "[director]\nid = \"test-{mode}\"\ninterface = \"eth0\"\n{inner}datapath = \"{datapath}\"\n\
         admin = \"{ADMIN}\"\n\n[[service]]\nvip = \"{vip}:{PORT}\"\nproto = \"tcp\"\n\
         mode = \"{mode}\"\nbackends = [{list}]\n\
         health = {{ kind = \"tcp\", interval = \"{INTERVAL_MS}ms\", timeout = \"{TIMEOUT_MS}ms\", \
         rise = 2, fall = {FALL} }}\n",
        mode = m.mode,
        datapath = m.datapath,
        vip = m.vip,
        list = list.join(", "),
    );
    std::fs::write(path, text).expect("director config");
}

fn stats(topo: &Topo, m: &ModeSpec) -> Option<serde_json::Value> {
    let admin: SocketAddr = ADMIN.parse().expect("admin");
    in_netns(&topo.ns(m.director_host), move || {
        admin_json(admin, "/stats.json")
    })
}

/// Backends of the first service as (addr, effective weight, up).
fn backend_view(v: &serde_json::Value) -> Vec<(String, u64, bool)> {
    v["services"][0]["backends"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|b| {
                    (
                        b["addr"].as_str().unwrap_or("").to_owned(),
                        b["effective_weight"].as_u64().unwrap_or(0),
                        b["up"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Short connections from client ports `ports`; returns the node id that answered each.
fn short_connections(
    topo: &Topo,
    m: &ModeSpec,
    ports: impl IntoIterator<Item = u16> + Send + 'static,
) -> Vec<String> {
    let (client, vip) = (m.client_ip, SocketAddr::V4(SocketAddrV4::new(m.vip, PORT)));
    in_netns(&topo.ns(m.client_host), move || {
        ports
            .into_iter()
            .map(
                |p| match short_get(SocketAddrV4::new(client, p), vip, "/obj/lb?size=16") {
                    Ok(a) if a.status == 200 => a.node,
                    Ok(a) => format!("status {}", a.status),
                    Err(e) => format!("error {e}"),
                },
            )
            .collect()
    })
}

/// Asserts every answer came from the backend the predictor names; returns counts per backend.
fn check_predicted(m: &ModeSpec, p: &Predictor, first: u16, answers: &[String]) -> [usize; 3] {
    let mut counts = [0usize; 3];
    let vip = SocketAddrV4::new(m.vip, PORT);
    let mut wrong = Vec::new();
    for (i, node) in answers.iter().enumerate() {
        let port = first + i as u16;
        let want = p.backend(SocketAddrV4::new(m.client_ip, port), vip);
        match m.node_ids.iter().position(|id| id == node) {
            Some(got) if got == want => counts[got] += 1,
            _ => wrong.push(format!(
                "port {port}: {node:?}, predicted {}",
                m.node_ids[want]
            )),
        }
    }
    assert!(
        wrong.is_empty(),
        "{}: {} of {} connections not answered by the predicted backend, e.g. {:?}",
        m.mode,
        wrong.len(),
        answers.len(),
        &wrong[..wrong.len().min(5)]
    );
    counts
}

pub fn run(m: &ModeSpec) {
    let dir = crate::support::scratch_dir(&format!("director-{}", m.mode));
    // The test's copy of the example topology: its own name, the director host's commands
    // removed (the test runs the director itself).
    let file =
        crate::support::topology_copy(m.topology, m.test_name, &dir, &[m.director_host], &[]);
    let prefix = format!("st-{}-", m.test_name);
    let topo = Topo {
        _topology: crate::support::SimTopology::up(file, &dir.join("logs")),
        prefix,
    };

    // The nodes answer on their own addresses (from the director's host, on their LAN).
    for ip in m.backend_ips {
        let ok = in_netns(&topo.ns(m.director_host), move || {
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
        assert!(ok.is_some(), "{}: backend {ip} does not answer", m.mode);
    }

    let config = dir.join("director.toml");
    let mut weights: Vec<(Ipv4Addr, u32)> = m.backend_ips.iter().map(|&ip| (ip, 100)).collect();
    write_director_config(&config, m, &weights);
    let log = std::fs::File::create(dir.join("director.log")).expect("log");
    let child = Command::new("ip")
        .args(["netns", "exec", &topo.ns(m.director_host)])
        .arg(env!("CARGO_BIN_EXE_strait"))
        .args(["director", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn director");
    let director = crate::support::Terminated(child);
    let all_up = |topo: &Topo, n: usize| {
        time_until(Duration::from_secs(20), || {
            stats(topo, m).is_some_and(|v| backend_view(&v).iter().filter(|b| b.2).count() == n)
        })
    };
    assert!(
        all_up(&topo, 3).is_some(),
        "{}: director never had 3 backends up; log: {}",
        m.mode,
        read(&dir.join("director.log"))
    );

    let dp = stats(&topo, m).map(|v| v["datapath"].as_str().unwrap_or("").to_owned());
    let want = if m.datapath == "xdp" {
        "xdp/native"
    } else {
        "userspace"
    };
    assert_eq!(dp.as_deref(), Some(want), "{}: datapath in use", m.mode);
    if m.threaded_napi {
        assert_eq!(
            threaded(&topo.ns(m.director_host)),
            "1",
            "{}: threaded NAPI",
            m.mode
        );
    }

    // 1. 3000 short connections: all answered, each by the backend Maglev predicts.
    let p = Predictor::new(&weights, PORT);
    let answers = short_connections(&topo, m, 20_000..23_000);
    let counts = check_predicted(m, &p, 20_000, &answers);
    for (i, c) in counts.iter().enumerate() {
        let share = *c as f64 / 3000.0;
        assert!(
            (0.30..=0.367).contains(&share),
            "{}: backend {} got {:.1}%",
            m.mode,
            m.node_ids[i],
            share * 100.0
        );
    }
    eprintln!(
        "{}: 3000 connections, per backend {counts:?}, all as predicted",
        m.mode
    );
    // The client's last FINs may still be on their way through the director (a userspace
    // receive thread, or a retransmission after a dropped frame): read the table until
    // every entry is closing, 5 s at most, then check the last reading.
    let read_conns = || {
        in_netns(&topo.ns(m.director_host), || {
            admin_json(ADMIN.parse().expect("admin"), "/conns.json?limit=1000000")
        })
    };
    let mut conns = None;
    let settled = time_until(Duration::from_secs(5), || {
        conns = read_conns();
        conns
            .as_ref()
            .and_then(|c| c["conns"].as_array())
            .is_some_and(|l| l.len() >= 3000 && l.iter().all(|c| c["closing"] == true))
    });
    eprintln!("{}: every entry closing after {settled:?}", m.mode);
    let count = conns
        .as_ref()
        .and_then(|c| c["count"].as_u64())
        .unwrap_or(0);
    assert!(
        count >= 3000,
        "{}: connection table holds {count} entries",
        m.mode
    );
    // The listing (the whole table, read in batches of sets) holds what the count says.
    let listed = conns
        .as_ref()
        .and_then(|c| c["conns"].as_array())
        .map_or(0, Vec::len);
    assert_eq!(listed as u64, count, "{}: /conns.json lists", m.mode);
    // Every one of the 3000 connections was closed by the client: its entry saw the FIN and
    // is listed closing, with an idle time; the per-backend counts add up to the listing.
    let list = conns.as_ref().and_then(|c| c["conns"].as_array());
    let entries = list.map_or(&[][..], Vec::as_slice);
    let closing = entries.iter().filter(|c| c["closing"] == true).count();
    assert!(
        closing >= 3000,
        "{}: {closing} entries closing; not closing: {:?}",
        m.mode,
        entries
            .iter()
            .filter(|c| c["closing"] != true)
            .take(5)
            .collect::<Vec<_>>()
    );
    assert!(
        entries.iter().all(|c| c["idle_ms"].is_u64()),
        "{}: idle times",
        m.mode
    );
    let per_backend: u64 = conns
        .as_ref()
        .and_then(|c| c["per_backend"].as_object())
        .map_or(0, |o| {
            o.values().filter_map(serde_json::Value::as_u64).sum()
        });
    assert_eq!(per_backend, count, "{}: per_backend", m.mode);

    // The director reads its new-flow events (what connection sync will ship): none lost.
    if m.datapath == "xdp" {
        let counter = |v: &serde_json::Value, name: &str| v["counters"][name].as_u64();
        let read = time_until(Duration::from_secs(5), || {
            stats(&topo, m).is_some_and(|v| counter(&v, "flow_events_read") >= Some(3000))
        });
        let v = stats(&topo, m).expect("stats");
        assert!(
            read.is_some() && counter(&v, "event_lost") == Some(0),
            "{}: flow events read {:?}, lost {:?}",
            m.mode,
            counter(&v, "flow_events_read"),
            counter(&v, "event_lost")
        );
    }

    // NAT routes: a SYN sent with TTL 1 is answered with ICMP time exceeded, not forwarded.
    if m.mode == "nat" {
        let vip = SocketAddr::V4(SocketAddrV4::new(m.vip, PORT));
        let r = in_netns(&topo.ns(m.client_host), move || {
            connect_with_ttl(vip, 1, Duration::from_millis(1500))
        });
        let sent = stats(&topo, m).and_then(|v| v["counters"]["icmp_time_exceeded"].as_u64());
        assert!(
            r.is_err() && sent.is_some_and(|n| n > 0),
            "{}: TTL 1 connect {r:?}, icmp_time_exceeded {sent:?}",
            m.mode
        );
        eprintln!(
            "{}: a TTL 1 SYN got ICMP time exceeded ({sent:?} sent)",
            m.mode
        );
    }

    // 1b. A large upload crosses the director at full frame size. TUN adds 20 bytes to a
    // full-sized segment: the director answers ICMP "fragmentation needed" and the client's
    // path-MTU discovery sends smaller ones, so the upload completes.
    let vip = SocketAddr::V4(SocketAddrV4::new(m.vip, PORT));
    let upload = in_netns(&topo.ns(m.client_host), move || {
        post(vip, "/upload", 200_000)
    });
    match upload {
        Ok((200, ref body)) if body.ends_with("body 200000") => {}
        other => panic!("{}: 200 000-byte POST through the VIP: {other:?}", m.mode),
    }
    let icmp = stats(&topo, m).and_then(|v| v["counters"]["icmp_too_big"].as_u64());
    if m.mode == "tun" {
        assert!(
            icmp.is_some_and(|n| n > 0),
            "{}: icmp_too_big = {icmp:?}",
            m.mode
        );
    }
    eprintln!(
        "{}: a 200 000-byte upload through the VIP completed (icmp_too_big {icmp:?})",
        m.mode
    );

    // 2. A weight change moves exactly the flows the new table says.
    weights[0].1 = 200;
    write_director_config(&config, m, &weights);
    signal(director.0.id(), "HUP");
    let reloaded = time_until(Duration::from_secs(10), || {
        stats(&topo, m).is_some_and(|v| backend_view(&v).first().is_some_and(|b| b.1 == 200))
    });
    assert!(reloaded.is_some(), "{}: weight change not applied", m.mode);
    let p2 = Predictor::new(&weights, PORT);
    let answers = short_connections(&topo, m, 23_000..24_000);
    let counts = check_predicted(m, &p2, 23_000, &answers);
    let vip = SocketAddrV4::new(m.vip, PORT);
    let moved = (23_000..24_000u16)
        .filter(|&port| {
            let c = SocketAddrV4::new(m.client_ip, port);
            p.backend(c, vip) != p2.backend(c, vip)
        })
        .count();
    eprintln!("{}: weight 200/100/100: per backend {counts:?}, {moved} of 1000 flows moved, all as predicted", m.mode);

    // 3. A long-lived connection survives a backend being added.
    weights[0].1 = 100;
    let without_b3 = [(weights[0].0, 100), (weights[1].0, 100), (weights[2].0, 0)];
    write_director_config(&config, m, &without_b3[..2]);
    signal(director.0.id(), "HUP");
    assert!(
        time_until(Duration::from_secs(10), || stats(&topo, m).is_some_and(
            |v| backend_view(&v).iter().filter(|b| b.1 > 0).count() == 2
        ))
        .is_some(),
        "{}: removing b3 not applied",
        m.mode
    );
    let (p_two, p_three) = (
        Predictor::new(&without_b3, PORT),
        Predictor::new(&weights, PORT),
    );
    // A client port whose flow the 3-backend table would move to b3.
    let port = (24_000..25_000u16)
        .find(|&port| {
            let c = SocketAddrV4::new(m.client_ip, port);
            p_three.backend(c, vip) == 2 && p_two.backend(c, vip) != 2
        })
        .expect("a port that moves to b3");
    let expected = m.node_ids[p_two.backend(SocketAddrV4::new(m.client_ip, port), vip)];
    let (client_ip, vip_addr) = (m.client_ip, SocketAddr::V4(vip));
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let ns = topo.ns(m.client_host);
    let long = std::thread::spawn(move || {
        in_netns(&ns, move || {
            let mut s = connect_from(
                SocketAddrV4::new(client_ip, port),
                vip_addr,
                Duration::from_secs(5),
            )
            .expect("long-lived connect");
            let first = exchange(&mut s, "vip", "/obj/long?size=16", false).expect("first request");
            done_tx.send(first).expect("send");
            rx.recv().expect("go");
            exchange(&mut s, "vip", "/obj/long?size=16", false)
        })
    });
    let first = done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("first answer");
    assert_eq!(
        first.node, expected,
        "{}: long-lived connection's first answer",
        m.mode
    );
    write_director_config(&config, m, &weights);
    signal(director.0.id(), "HUP");
    assert!(
        all_up(&topo, 3).is_some()
            && time_until(Duration::from_secs(10), || stats(&topo, m).is_some_and(
                |v| backend_view(&v).iter().filter(|b| b.1 > 0).count() == 3
            ))
            .is_some(),
        "{}: adding b3 back not applied",
        m.mode
    );
    tx.send(()).expect("go");
    let second = long
        .join()
        .expect("long thread")
        .expect("second request on the long-lived connection");
    assert_eq!(
        (second.status, second.node.as_str()),
        (200, expected),
        "{}: long-lived connection moved",
        m.mode
    );
    eprintln!(
        "{}: long-lived connection (client port {port}) stayed on {expected} after b3 was added; \
         a new flow with its 5-tuple would now go to b3",
        m.mode
    );

    // 4. A killed backend is out within fall × interval + timeout; new connections all succeed.
    let victim = topo.ns(m.backend_hosts[1]);
    let killed = kill_node(&victim);
    assert!(killed > 0, "{}: no strait node found in {victim}", m.mode);
    let bound = Duration::from_millis(FALL * INTERVAL_MS + TIMEOUT_MS);
    let took = time_until(bound * 3 + Duration::from_secs(3), || {
        stats(&topo, m).is_some_and(|v| backend_view(&v).get(1).is_some_and(|b| !b.2))
    })
    .unwrap_or_else(|| panic!("{}: killed backend never marked down", m.mode));
    eprintln!(
        "{}: killed backend marked down after {took:?} (bound {bound:?} + polling)",
        m.mode
    );
    // Typically about 0.65 s; asserted with three times the bound of headroom for a busy
    // machine (a detection several intervals late still fails).
    assert!(
        took <= bound * 3,
        "{}: took {took:?}, bound {bound:?} (asserted: three times it)",
        m.mode
    );
    let answers = short_connections(&topo, m, 26_000..26_300);
    let bad: Vec<&String> = answers
        .iter()
        .filter(|a| !(a == &m.node_ids[0] || a == &m.node_ids[2]))
        .collect();
    assert!(
        bad.is_empty(),
        "{}: after the kill {} of 300 failed or hit the dead backend: {:?}",
        m.mode,
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    // Flows recorded on the dead backend in step 1 are rescheduled (LVS expire_nodest_conn):
    // reusing their 5-tuples (TIME_WAIT is on the server side) reaches a live backend.
    let on_dead: Vec<u16> = (20_000..23_000u16)
        .filter(|&port| p.backend(SocketAddrV4::new(m.client_ip, port), vip) == 1)
        .take(50)
        .collect();
    assert_eq!(on_dead.len(), 50, "{}: step 1 flows on b2", m.mode);
    let answers = short_connections(&topo, m, on_dead);
    let bad: Vec<&String> = answers
        .iter()
        .filter(|a| !(a == &m.node_ids[0] || a == &m.node_ids[2]))
        .collect();
    assert!(
        bad.is_empty(),
        "{}: {} of 50 reused 5-tuples recorded on the dead backend failed: {:?}",
        m.mode,
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    eprintln!(
        "{}: 50 connections reusing 5-tuples recorded on the dead backend all answered by live ones",
        m.mode
    );

    // 5. The director exits on SIGTERM and leaves no XDP program attached.
    let mut director = director;
    signal(director.0.id(), "TERM");
    let exited = time_until(Duration::from_secs(10), || {
        matches!(director.0.try_wait(), Ok(Some(_)))
    });
    assert!(
        exited.is_some(),
        "{}: director did not exit on SIGTERM",
        m.mode
    );
    let links = Command::new("ip")
        .args(["-n", &topo.ns(m.director_host), "-d", "link", "show"])
        .output()
        .expect("ip link");
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(
        !links.contains("prog/xdp") && !links.contains("xdpgeneric") && !links.contains(" xdp "),
        "{}: XDP left attached:\n{links}",
        m.mode
    );
    if m.threaded_napi {
        assert_eq!(
            threaded(&topo.ns(m.director_host)),
            "0",
            "{}: NAPI mode restored",
            m.mode
        );
        eprintln!(
            "{}: eth0 was threaded while the director ran, restored after",
            m.mode
        );
    }
}

/// `eth0`'s NAPI mode in a namespace (`/sys/class/net/eth0/threaded`, as `ip netns exec`
/// mounts `/sys` for it).
fn threaded(netns: &str) -> String {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            netns,
            "cat",
            "/sys/class/net/eth0/threaded",
        ])
        .output()
        .expect("cat threaded");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// SIGKILLs the `strait node` processes in a namespace; returns how many.
fn kill_node(netns: &str) -> usize {
    let out = Command::new("ip")
        .args(["netns", "pids", netns])
        .output()
        .expect("ip netns pids");
    let mut n = 0;
    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args.iter().any(|a| *a == b"node") {
            signal(pid.parse().unwrap_or(0), "KILL");
            n += 1;
        }
    }
    n
}
