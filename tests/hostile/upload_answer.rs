//! The upload lane's answer (`cache/src/http/upload_lane.rs`): a `plain` upload's answer head is
//! relayed from the origin's raw bytes (`passlane::relay`), an upload the lane reads into parts
//! (here: one carrying `Via`, a field the node merges its own into) gets it through the general
//! stages' field map. For each origin answer the client must get the same bytes both ways (only
//! a `Date` the node adds may differ: it is the clock's), and the answer's `Location` and
//! `Content-Location` must invalidate as the map's do.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use crate::support::IO_TIMEOUT;
use crate::{connect, node, own_date_masked, ORIGIN_IP};

/// A keep-alive origin that reads each request's head and `Content-Length` body, then writes
/// the current reply (and closes after one whose body ends at the close).
struct ReplyOrigin {
    addr: SocketAddr,
    reply: Arc<Mutex<Vec<u8>>>,
}

impl ReplyOrigin {
    fn start() -> ReplyOrigin {
        let l = TcpListener::bind(format!("{ORIGIN_IP}:0")).expect("bind");
        let addr = l.local_addr().expect("addr");
        let reply = Arc::new(Mutex::new(Vec::new()));
        let current = Arc::clone(&reply);
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let current = Arc::clone(&current);
                std::thread::spawn(move || {
                    let mut r = BufReader::new(conn);
                    while let Some(len) = read_request(&mut r) {
                        let reply = current.lock().expect("reply").clone();
                        let mut body = vec![0; len];
                        if r.read_exact(&mut body).is_err()
                            || r.get_mut().write_all(&reply).is_err()
                        {
                            return;
                        }
                        // A body that ends at the close ends the connection.
                        let text = String::from_utf8_lossy(&reply).to_ascii_lowercase();
                        if !text.contains("content-length") && !text.contains("chunked") {
                            return;
                        }
                    }
                });
            }
        });
        ReplyOrigin { addr, reply }
    }

    fn set_reply(&self, reply: &[u8]) {
        *self.reply.lock().expect("reply") = reply.to_vec();
    }
}

/// A request head from `r`: its `Content-Length` (0 without one); None at the end.
fn read_request(r: &mut BufReader<std::net::TcpStream>) -> Option<usize> {
    let mut len = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        if line == "\r\n" {
            return Some(len);
        }
        if let Some((n, v)) = line.split_once(':') {
            if n.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
}

/// One POST of a 3-byte body to `path`, `extra` fields added, with `Connection: close`:
/// everything the node wrote until it closed, its own `Date` replaced.
fn post(node: SocketAddr, path: &str, extra: &str) -> String {
    let mut r = connect(node, IO_TIMEOUT);
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: up.example\r\nUser-Agent: t/1\r\n{extra}\
         Content-Length: 3\r\nConnection: close\r\n\r\nabc"
    );
    r.get_mut().write_all(req.as_bytes()).expect("write");
    let mut got = Vec::new();
    r.read_to_end(&mut got).expect("read to the close");
    own_date_masked(&got)
}

#[test]
fn a_plain_uploads_answer_is_the_general_stages_byte_for_byte() {
    let kib = "k".repeat(1024);
    let answers: Vec<String> = vec![
        format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1024\r\n\r\n{kib}"),
        "HTTP/1.1 201 Created\r\nLocation: /items/7\r\nContent-Location: /items/7?v=1\r\nContent-Length: 2\r\n\r\nok".into(),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n5\r\nhello\r\n0\r\n\r\n".into(),
        "HTTP/1.1 200 OK\r\nDate: Mon, 07 Dec 2020 05:00:00 GMT\r\n\r\nto the close".into(),
        "HTTP/1.1 200 OK\r\nConnection: close, X-A, keep-alive\r\nX-A: gone\r\nKeep-Alive: timeout=1\r\nX-B: kept\r\nContent-Length: 2\r\n\r\nok".into(),
        "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nCache-Control: max-age=60\r\nX-Mid: m\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nsc".into(),
        "HTTP/1.1 200 OK\r\nVia: 1.0 upstream\r\nCache-Status: up; hit\r\nContent-Length: 1\r\n\r\nv".into(),
        "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nei".into(),
        "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n".into(),
        "HTTP/1.1 303 See Other\r\nlocation: http://up.example/done\r\nx-lower: 1\r\nX-UPPER: 2\r\nx-lower: 3\r\nContent-Length: 0\r\n\r\n".into(),
        "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n10".into(),
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\n5x".into(),
        // Refused by every reading of a head: a 502 both ways.
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".into(),
        "HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\r\nContent-Length: 2\r\n\r\nab".into(),
    ];
    let origin = ReplyOrigin::start();
    let node = node(&[origin.addr], "");
    for (i, answer) in answers.iter().enumerate() {
        origin.set_reply(answer.as_bytes());
        let path = format!("/up/{i}");
        let before = node.counter("upload_lane");
        let lane = post(node.addr, &path, "");
        let general = post(node.addr, &path, "Via: 1.1 client\r\n");
        assert_eq!(node.counter("upload_lane"), before + 2, "{answer:?}");
        assert_eq!(lane, general, "{answer:?}");
        assert!(lane.contains("a; fwd=method"), "{lane}");
        // A good answer between: two broken ones in a row would be the server's third
        // failure in a row, and passive health would take it out.
        origin.set_reply(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert!(post(node.addr, "/up/good", "").starts_with("HTTP/1.1 200 "));
    }
}

#[test]
fn a_plain_uploads_answer_invalidates_its_location_and_content_location() {
    let origin = crate::origin();
    let node = node(&[origin.addr], "");
    let get = |path: &str| crate::support::get(node.addr, path, &[("Host", "up.example")]);
    for p in ["/obj/a", "/obj/b", "/obj/c"] {
        assert!(get(p).cache_status().ends_with("stored"), "{p}");
        assert!(get(p).cache_status().starts_with("a; hit"), "{p}");
    }
    let target = format!(
        "/obj/a?hdr={}&hdr={}",
        q("location:/obj/b"),
        q("CONTENT-LOCATION:http://up.example/obj/c")
    );
    let answer = post(node.addr, &target, "");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    // b and c; the target itself, with its query, was never stored.
    assert_eq!(node.counter("invalidated"), 2);
    for p in ["/obj/b", "/obj/c"] {
        assert!(get(p).cache_status().contains("fwd=miss"), "{p}");
    }
    assert!(get("/obj/a").cache_status().starts_with("a; hit"));
}

/// `s` as a query parameter's value (`:` and `/` escaped).
fn q(s: &str) -> String {
    s.replace(':', "%3A").replace('/', "%2F")
}
