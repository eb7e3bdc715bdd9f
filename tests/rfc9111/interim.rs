//! Interim (1xx) responses (RFC 9110 §15.2): an origin's 102 and 103 reach an HTTP/1.1 client
//! before the final response, on the connection's own loop and under hyper (a request handed
//! over, an upload with its body), in order on a pipelined connection; never an
//! HTTP/1.0 client; `100 Continue` is not relayed; nothing of them is stored or replayed by a
//! hit. The client side reads raw bytes, so the order on the wire is what is checked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{get, read_response, Node, IO_TIMEOUT};

const HINTS: &str = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n";
const FINAL: &str =
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\n\
     cache-control: max-age=600\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

/// An origin that answers each connection with [`HINTS`], then (after `go` is told, when
/// `wait`) the rest: [`FINAL`], with its own 100 and 102 first.
fn origin(wait: bool) -> (SocketAddr, mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind origin");
    let addr = listener.local_addr().expect("origin address");
    let (go, told) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let mut r = BufReader::new(conn);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            let _ = r.read_exact(&mut body);
            let mut w = r.into_inner();
            let _ = w.write_all(HINTS.as_bytes());
            if wait {
                let _ = told.recv_timeout(Duration::from_secs(10));
            }
            let _ = w.write_all(FINAL.as_bytes());
        }
    });
    (addr, go)
}

fn connect(node: &Node) -> TcpStream {
    let s = TcpStream::connect(node.addr).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s
}

/// Read one head (through its blank line) from `r`, raw.
fn head(r: &mut impl BufRead) -> String {
    let mut out = String::new();
    loop {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).expect("read a head line") > 0,
            "closed: {out:?}"
        );
        out.push_str(&line);
        if line == "\r\n" {
            return out;
        }
    }
}

/// The 103 arrives while the origin still holds the final response back; then the final one.
fn hints_come_first(node: &Node, go: &mpsc::Sender<()>, request: &[u8]) {
    let mut s = connect(node);
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(request).expect("write");
    let mut r = BufReader::new(s);
    let hints = head(&mut r);
    assert!(
        hints.starts_with("HTTP/1.1 103 Early Hints\r\n"),
        "{hints:?}"
    );
    assert!(hints
        .to_ascii_lowercase()
        .contains("\r\nlink: </style.css>; rel=preload\r\n"));
    go.send(()).expect("origin");
    let processing = head(&mut r);
    assert!(
        processing.starts_with("HTTP/1.1 102 Processing\r\n"),
        "{processing:?}"
    );
    let last = read_response(&mut r, false).expect("the final response");
    assert_eq!((last.status, last.body.as_slice()), (200, &b"ok"[..]));
}

#[test]
fn early_hints_reach_the_client_before_the_final_response_and_are_never_stored() {
    let (addr, go) = origin(true);
    let node = Node::start(&[addr], "");
    // A plain miss: answered on the connection's own loop.
    hints_come_first(
        &node,
        &go,
        b"GET /eh HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n",
    );
    // A hit replays nothing: its first bytes are the final status line.
    let stored = crate::support::wait_until(IO_TIMEOUT, || node.counter("stored_objects") == 1);
    assert!(stored, "the final response was not stored");
    let hit = get(node.addr, "/eh", &[("Host", "t.example")]);
    assert!(
        hit.cache_status().starts_with("a; hit"),
        "{}",
        hit.cache_status()
    );
    let mut s = connect(&node);
    s.write_all(b"GET /eh HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw:?}");
    // Under hyper: a request with Cache-Control leaves the connection's own loop.
    let req = b"GET /eh2 HTTP/1.1\r\nHost: t.example\r\nCache-Control: no-cache\r\n\r\n";
    hints_come_first(&node, &go, req);
    // And an upload (its body streamed by the node's own client).
    let req = b"POST /up HTTP/1.1\r\nHost: t.example\r\nContent-Length: 3\r\n\r\nabc";
    hints_come_first(&node, &go, req);
}

#[test]
fn pipelined_requests_under_hyper_get_their_interims_in_order() {
    let (addr, _go) = origin(false);
    let node = Node::start(&[addr], "");
    let mut s = connect(&node);
    let one =
        |path: &str| format!("GET {path} HTTP/1.1\r\nHost: t.example\r\nPragma: no-cache\r\n\r\n");
    s.write_all(format!("{}{}", one("/p1"), one("/p2")).as_bytes())
        .expect("write");
    let mut r = BufReader::new(s);
    for n in 1..=2 {
        for status in ["103 Early Hints", "102 Processing"] {
            let h = head(&mut r);
            assert!(
                h.starts_with(&format!("HTTP/1.1 {status}\r\n")),
                "request {n}: {h:?}"
            );
        }
        let last = read_response(&mut r, false).expect("the final response");
        assert_eq!(
            (last.status, last.body.as_slice()),
            (200, &b"ok"[..]),
            "request {n}"
        );
    }
}

#[test]
fn an_http_1_0_client_gets_no_interim_response() {
    let (addr, _go) = origin(false);
    let node = Node::start(&[addr], "");
    let mut s = connect(&node);
    s.write_all(b"GET /old HTTP/1.0\r\nHost: t.example\r\n\r\n")
        .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    assert!(
        raw.starts_with("HTTP/1.0 200 OK\r\n") || raw.starts_with("HTTP/1.1 200 OK\r\n"),
        "{raw:?}"
    );
    assert!(!raw.contains(" 103 ") && !raw.contains(" 102 "), "{raw:?}");
    assert!(raw.ends_with("\r\n\r\nok"), "{raw:?}");
}

/// `Expect: 100-continue` is answered by the node (hyper sends its 100 when the body is first
/// read); the origin's own 100 is not relayed, its 103 and 102 are.
#[test]
fn the_node_answers_expect_100_continue_and_drops_the_origins_100() {
    let (addr, _go) = origin(false);
    let node = Node::start(&[addr], "");
    let mut s = connect(&node);
    s.write_all(
        b"POST /x HTTP/1.1\r\nHost: t.example\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
    )
    .expect("write");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let cont = head(&mut r);
    assert!(cont.starts_with("HTTP/1.1 100 Continue\r\n"), "{cont:?}");
    s.write_all(b"abc").expect("write body");
    for status in ["103 Early Hints", "102 Processing"] {
        let h = head(&mut r);
        assert!(h.starts_with(&format!("HTTP/1.1 {status}\r\n")), "{h:?}");
    }
    let last = read_response(&mut r, false).expect("the final response");
    assert_eq!((last.status, last.body.as_slice()), (200, &b"ok"[..]));
}
