//! Fill leases under faults, end to end: four `strait node` processes (a, b, c, d on
//! 127.0.2.x) in front of one `strait sim origin` whose body dribbles in over ~2.5 s. A key
//! owned by b is asked at a, so a holds b's fill lease and pushes the body to b while it
//! arrives; meanwhile 50 clients at each of b, c and d wait on b's fill. Then a dies (SIGKILL)
//! or stalls (SIGSTOP) mid-body: b takes the fill over, resumes it from its origin at the byte
//! a stopped at, and every one of the 150 clients gets the whole, correct body — with at most
//! two origin fetches of the key (a's and b's).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use strait_lb::select::rendezvous::{self, Node as RankNode};
use support::*;

/// Node ids, in start order.
const IDS: [&str; 4] = ["a", "b", "c", "d"];
/// Clients at each of b, c and d.
const CLIENTS: usize = 50;
/// The object: 256 KiB in 4 KiB pieces 40 ms apart (~2.6 s).
const SIZE: usize = 256 * 1024;
const QUERY: &str = "size=262144&chunk_delay=40&ttl=300";

/// Node `i` of cluster `n` listens on 127.0.2.(10n + i + 1).
fn ip(n: usize, i: usize) -> String {
    format!("127.0.2.{}", 10 * n + i + 1)
}

/// Peer and gossip ports of node `i` of cluster `n`.
fn ports(n: usize, i: usize) -> (u16, u16) {
    let i = (n * 4 + i) as u16;
    (28_600 + i, 28_700 + i)
}

fn config(n: usize, i: usize, origin: SocketAddr) -> String {
    let (peer, gossip) = ports(n, i);
    let seeds: Vec<String> = (0..4)
        .filter(|&j| j != i)
        .map(|j| format!("\"{}:{}\"", ip(n, j), ports(n, j).1))
        .collect();
    format!(
        "[node]\nid = \"{id}\"\nlisten = [\"{ip}:0\"]\nadmin = \"127.0.0.1:0\"\n\n\
         [cluster]\npeer_listen = \"{ip}:{peer}\"\ngossip_listen = \"{ip}:{gossip}\"\n\
         seeds = [{seeds}]\nprobe_interval = \"200ms\"\nsuspect_timeout = \"1s\"\n\
         lease_timeout = \"1s\"\n\n\
         [[pool]]\nname = \"origin\"\nservers = [{{ addr = \"{origin}\" }}]\n\n\
         [[route]]\npool = \"origin\"\n",
        id = IDS[i],
        ip = ip(n, i),
        seeds = seeds.join(", "),
    )
}

/// The first object name whose key the four nodes give to b (rendezvous over equal weights,
/// as every node computes it).
fn name_owned_by_b() -> String {
    let nodes: Vec<RankNode> = IDS.iter().map(|id| RankNode { id, weight: 100 }).collect();
    (0..)
        .map(|k| format!("lease{k}"))
        .find(|name| {
            let key = format!("http://test.example/obj/{name}?{QUERY}");
            rendezvous::owner(&key, &nodes) == Some(1)
        })
        .expect("some name is owned by b")
}

struct Cluster {
    origin: Origin,
    nodes: Vec<Node>,
}

impl Cluster {
    fn start(n: usize) -> Cluster {
        let origin = Origin::start();
        let nodes: Vec<Node> = (0..4)
            .map(|i| Node::start_config(&config(n, i, origin.addr)))
            .collect();
        let c = Cluster { origin, nodes };
        let all_alive = wait_until(Duration::from_secs(15), || (0..4).all(|i| c.alive(i) == 4));
        assert!(all_alive, "the four nodes never saw each other alive");
        c
    }

    fn alive(&self, i: usize) -> usize {
        let r = admin_request(self.nodes[i].admin, "GET", "/cluster.json", &[]);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        v["members"]
            .as_array()
            .map_or(0, |m| m.iter().filter(|m| m["state"] == "alive").count())
    }
}

/// A GET at `addr` read by hand, its body bytes counted in `progress` as they arrive (the lease
/// holder's own client: it dies or stalls with its node, so its outcome is not checked).
fn slow_client(addr: SocketAddr, path: String, progress: Arc<AtomicUsize>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(mut s) = TcpStream::connect(addr) else {
            return;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        let req = format!("GET {path} HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n");
        if s.write_all(req.as_bytes()).is_err() {
            return;
        }
        let mut seen = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let mut head_end = None;
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if head_end.is_none() {
                head_end = seen
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map(|p| p + 4);
            }
            if let Some(h) = head_end {
                progress.store(seen.len() - h, Ordering::SeqCst);
            }
        }
    })
}

/// SIGCONTs a stopped node on drop (then `Proc`'s own drop kills it), so a failed assertion
/// never leaves a stopped process behind.
struct Resume<'a>(&'a Node);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &self.0.proc.child.id().to_string()])
            .status();
    }
}

#[derive(PartialEq)]
enum Fault {
    /// a is SIGKILLed.
    Kill,
    /// a is SIGSTOPped (and continued at the end).
    Stop,
    /// The origin is stopped, a killed, then the origin killed: b takes the fill over but
    /// cannot resume it (its origin request fails).
    KillAndOriginGone,
}

/// Starts the fill at a, waits until it is mid-body with 150 clients waiting on it, applies
/// `fault` to a, and checks that every client gets the whole body.
fn holder_fails_mid_body(n: usize, fault: Fault) {
    let mut c = Cluster::start(n);
    let name = name_owned_by_b();
    let path = format!("/obj/{name}?{QUERY}");
    let want = object_bytes(&name, SIZE);

    // 1. a asks b, b grants a the lease: a fetches and pushes to b as the body dribbles in.
    let progress = Arc::new(AtomicUsize::new(0));
    let holder = slow_client(c.nodes[0].addr, path.clone(), Arc::clone(&progress));
    let mid = wait_until(Duration::from_secs(10), || {
        progress.load(Ordering::SeqCst) >= 24 * 1024
    });
    assert!(mid, "a's client never got the first bytes");
    assert_eq!(c.nodes[1].counter("peer_leases"), 1, "b granted a lease");
    assert_eq!(c.nodes[0].counter("remote_miss"), 1, "a holds the lease");

    // 2. 50 clients at each of b, c and d: they wait on b's fill (c and d through a Lookup).
    let started = Instant::now();
    let clients: Vec<JoinHandle<Resp>> = (1..4)
        .flat_map(|i| {
            let addr = c.nodes[i].addr;
            let path = path.clone();
            (0..CLIENTS).map(move |_| {
                let path = path.clone();
                std::thread::spawn(move || get(addr, &path, &[]))
            })
        })
        .collect();
    let waiting = wait_until(Duration::from_secs(5), || {
        c.nodes[1].counter("peer_lookups") >= 3 && c.nodes[1].counter("coalesced") >= CLIENTS as u64
    });
    assert!(waiting, "the clients never all waited on b's fill");
    // Let every client's request reach its node.
    std::thread::sleep(Duration::from_millis(200));

    // 3. a fails mid-body.
    let at = progress.load(Ordering::SeqCst);
    assert!(
        at < SIZE,
        "a's push was over before the fault ({at} bytes): the test proves nothing"
    );
    let stopped;
    match fault {
        Fault::Kill => {
            stopped = None;
            let _ = c.nodes[0].proc.child.kill();
            let _ = c.nodes[0].proc.child.wait();
        }
        Fault::Stop => {
            c.nodes[0].proc.signal("STOP");
            stopped = Some(Resume(&c.nodes[0]));
        }
        Fault::KillAndOriginGone => {
            stopped = None;
            // Stopped first, so a's own fetch is not cut (a would then end its push itself).
            c.origin.proc.signal("STOP");
            let _ = c.nodes[0].proc.child.kill();
            let _ = c.nodes[0].proc.child.wait();
            // b takes the fill over and asks the (stopped) origin; then the origin dies.
            let asked = wait_until(Duration::from_secs(5), || {
                c.nodes[1].counter("lease_regranted") == 1
            });
            assert!(asked, "b never took the fill over");
            std::thread::sleep(Duration::from_millis(300));
            let _ = c.origin.proc.child.kill();
        }
    }
    eprintln!(
        "a failed ({}) after {at} of {SIZE} bytes, {:?} after the clients started",
        match fault {
            Fault::Kill => "SIGKILL",
            Fault::Stop => "SIGSTOP",
            Fault::KillAndOriginGone => "SIGKILL, origin gone",
        },
        started.elapsed()
    );
    if fault == Fault::KillAndOriginGone {
        return every_body_ends_incomplete(&c, clients, &want);
    }

    // 4. Every client gets the whole body, once a's lease is given back to b's waiters.
    let mut ok = 0;
    for (k, h) in clients.into_iter().enumerate() {
        let r = h.join().expect("client thread");
        let at = IDS[1 + k / CLIENTS];
        assert_eq!(r.status, 200, "client {k} at {at}: {}", r.text());
        assert!(!r.truncated, "client {k} at {at}: body cut short");
        assert!(r.body == want, "client {k} at {at}: body differs");
        ok += 1;
    }
    let took = started.elapsed();
    let fetches = c.origin.count(&format!("/obj/{name}"));
    let b = &c.nodes[1];
    let (regranted, resumed, refused) = (
        b.counter("lease_regranted"),
        b.counter("fill_resumed"),
        b.counter("fill_resume_refused"),
    );
    eprintln!(
        "{ok} clients, all 200 with the whole body, {took:?} after they started; origin \
         fetches {fetches}; at b: lease_regranted {regranted}, fill_resumed {resumed}, \
         fill_resume_refused {refused}"
    );
    assert_eq!(ok, 3 * CLIENTS);
    assert!(fetches <= 2, "origin fetches of the key: {fetches}");
    assert_eq!((regranted, resumed, refused), (1, 1, 0));
    // b stored the object: asking again anywhere is a hit, no new origin fetch.
    for (node, id) in c.nodes.iter().zip(IDS).skip(1) {
        let r = get(node.addr, &path, &[]);
        assert_eq!(r.status, 200);
        assert!(r.body == want, "{id}: body differs");
        let cs = r.cache_status();
        assert!(cs.starts_with("b; hit"), "{id}: {cs}");
    }
    assert_eq!(c.origin.count(&format!("/obj/{name}")), fetches);
    // A stalled holder, continued, finds its lease gone; either way it is killed now.
    drop(stopped);
    let _ = c.nodes[0].proc.child.kill();
    let _ = holder.join();
    c.nodes.clear();
}

/// b could not resume the fill: every client — at b, and at c and d through b's relayed
/// stream — sees its body cut short, never a complete-looking one.
fn every_body_ends_incomplete(c: &Cluster, clients: Vec<JoinHandle<Resp>>, want: &[u8]) {
    for (k, h) in clients.into_iter().enumerate() {
        let r = h.join().expect("client thread");
        let at = IDS[1 + k / CLIENTS];
        assert_eq!(r.status, 200, "client {k} at {at}: {}", r.text());
        assert!(
            r.truncated,
            "client {k} at {at}: a cut body looked complete"
        );
        assert!(
            r.body.len() < want.len() && want.starts_with(&r.body),
            "client {k} at {at}"
        );
    }
    let b = &c.nodes[1];
    assert_eq!(b.counter("lease_regranted"), 1);
    assert_eq!(b.counter("fill_resumed"), 0);
    assert_eq!(b.counter("fill_resume_refused"), 1);
    let stored: u64 = (1..4).map(|i| c.nodes[i].counter("stored_objects")).sum();
    assert_eq!(stored, 0, "a cut body was stored");
    eprintln!(
        "{} clients, every body cut short; b: fill_resume_refused 1",
        3 * CLIENTS
    );
}

#[test]
fn a_killed_lease_holder_loses_the_fill_and_every_waiter_gets_the_whole_body() {
    holder_fails_mid_body(0, Fault::Kill);
}

#[test]
fn a_stalled_lease_holder_loses_the_fill_after_lease_timeout() {
    holder_fails_mid_body(1, Fault::Stop);
}

#[test]
fn a_fill_that_cannot_be_resumed_ends_every_body_incomplete() {
    holder_fails_mid_body(2, Fault::KillAndOriginGone);
}
