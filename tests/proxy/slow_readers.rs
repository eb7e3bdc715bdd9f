//! Clients that do not read their responses: they must not hold other clients back, nor hold
//! memory without bound. `limits.stream_lag` detaches a reader of a shared stream that stays a
//! whole window behind; `limits.inflight` bounds the bytes fills hold; `limits.send_timeout`
//! closes a connection whose writes make no progress.
//!
//! A "non-reader" is a raw socket with a small receive buffer that sends its request and never
//! reads; the node sees its writes stall once the socket buffers are full.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::support::*;

const MIB: usize = 1024 * 1024;

/// Connects with a small receive buffer and sends a GET for `path`; never reads.
fn non_reader(addr: SocketAddr, path: &str, extra: &str) -> TcpStream {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    s.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    s.connect(&addr.into()).expect("connect");
    let mut s: TcpStream = s.into();
    let req = format!("GET {path} HTTP/1.1\r\nHost: test.example\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).expect("send request");
    s
}

/// VmRSS of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// Reads until EOF or error (within `limit`); returns the bytes read and whether the peer
/// closed (EOF or reset) rather than the limit passing.
fn drain(s: &mut TcpStream, limit: Duration) -> (usize, bool) {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + limit;
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return (total, true),
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (total, true),
        }
    }
    (total, false)
}

#[test]
fn readers_of_a_shared_stream_finish_while_one_client_reads_nothing() {
    let origin = Origin::start();
    let node = Node::start(
        &[origin.addr],
        "[storage]\nmax_object_size = \"1MiB\"\n\n\
         [limits]\nstream_lag = \"500ms\"\nsend_timeout = \"60s\"\n",
    );
    // Chunked (no Content-Length), so the fill is shared and turns into a stream past 1 MiB;
    // the head is delayed so that every client joins the fill before it starts.
    const SIZE: usize = 24 * MIB;
    let path = format!("/obj/shared?size={SIZE}&chunked=1&delay=600");
    let _stuck = non_reader(node.addr, &path, "");
    thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let path = path.clone();
            thread::spawn(move || get(node.addr, &path, &[]))
        })
        .collect();
    let want = object_bytes("shared", SIZE);
    for r in readers {
        let r = r.join().expect("reader thread");
        assert_eq!(r.status, 200);
        assert!(
            !r.truncated && r.body.len() == SIZE && r.body == want,
            "a reader got {} of {SIZE} bytes (truncated: {})",
            r.body.len(),
            r.truncated
        );
    }
    let took = started.elapsed();
    // Head delay + stream_lag + transfer: seconds, not the reader's 15 s read timeout.
    assert!(took < Duration::from_secs(10), "readers took {took:?}");
    assert_eq!(
        origin.count("/obj/shared"),
        1,
        "the four requests shared one fill"
    );
    assert!(node.counter("stream_detached") >= 1);
}

#[test]
fn non_reading_clients_of_distinct_objects_hold_bounded_memory() {
    let origin = Origin::start();
    let node = Node::start(
        &[origin.addr],
        "[storage]\nram = \"64MiB\"\nmax_object_size = \"8MiB\"\n\n\
         [limits]\nstream_lag = \"500ms\"\nsend_timeout = \"120s\"\n",
    );
    let pid = node.proc.child.id();
    // Warm up (connections, buffers), then take the baseline.
    for i in 0..4 {
        let r = get(node.addr, &format!("/obj/warm?size={}&v={i}", 2 * MIB), &[]);
        assert_eq!(r.body.len(), 2 * MIB);
    }
    let baseline = rss(pid);
    const CLIENTS: usize = 100;
    const SIZE: usize = 8 * MIB;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| non_reader(node.addr, &format!("/obj/big?size={SIZE}&bust={i}"), ""))
        .collect();
    assert!(wait_until(Duration::from_secs(30), || {
        origin.count("/obj/big") == CLIENTS as u64
    }));
    // Let every fill reach its steady state (filled, streamed to the window, or cut).
    let mut peak = 0;
    for _ in 0..20 {
        thread::sleep(Duration::from_millis(200));
        peak = peak.max(rss(pid));
    }
    // ram (64 MiB of stored objects) + inflight (4 x 8 MiB) + per connection about 1 MiB
    // (hyper's write queue, one chunk, origin read buffer) + 64 MiB of slack.
    let bound = baseline + (64 + 32 + CLIENTS as u64 + 64) * MIB as u64;
    eprintln!(
        "RSS baseline {} MiB, peak with {CLIENTS} non-readers {} MiB, bound {} MiB",
        baseline / MIB as u64,
        peak / MIB as u64,
        bound / MIB as u64
    );
    let stats = node.stats();
    eprintln!(
        "inflight_bytes {} stored_bytes {} stream_detached {} fills_over_budget {}",
        stats["inflight_bytes"],
        stats["stored_bytes"],
        stats["stream_detached"],
        stats["fills_over_budget"]
    );
    assert!(peak < bound, "RSS {peak} over {bound}");
    assert!(node.counter("inflight_bytes") <= 32 * MIB as u64 + 8 * MIB as u64);
    drop(clients);
    let stored = node.counter("stored_bytes");
    // After they close: what is stored stays, the rest goes back.
    let after_bound = baseline + stored + 48 * MIB as u64;
    let settled = wait_until(Duration::from_secs(15), || rss(pid) < after_bound);
    eprintln!(
        "RSS after close {} MiB (stored {} MiB, bound {} MiB)",
        rss(pid) / MIB as u64,
        stored / MIB as u64,
        after_bound / MIB as u64
    );
    assert!(settled, "RSS {} stayed over {after_bound}", rss(pid));
    assert!(wait_until(Duration::from_secs(10), || node
        .counter("inflight_bytes")
        == 0));
}

#[test]
fn send_timeout_closes_a_client_that_reads_nothing_of_a_hit() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "[limits]\nsend_timeout = \"1s\"\n");
    const SIZE: usize = 12 * MIB;
    let path = format!("/obj/hit?size={SIZE}");
    assert_eq!(get(node.addr, &path, &[]).body.len(), SIZE);
    assert!(wait_until(Duration::from_secs(5), || node
        .counter("stored_objects")
        == 1));
    // The fast path answers the first; a conditional sends the second through hyper.
    let mut fast = non_reader(node.addr, &path, "");
    let mut general = non_reader(node.addr, &path, "If-None-Match: \"other\"\r\n");
    thread::sleep(Duration::from_secs(3));
    for (name, s) in [("fast path", &mut fast), ("hyper", &mut general)] {
        let (got, closed) = drain(s, Duration::from_secs(10));
        assert!(closed, "{name}: the node kept the connection open");
        assert!(got < SIZE, "{name}: got the whole body ({got} bytes)");
    }
    assert!(node.counter("send_timeouts") >= 2);
}
