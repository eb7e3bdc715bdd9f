//! Hostile origins, through the node's own HTTP/1.1 origin client (bodyless GETs): both
//! `Content-Length` and `Transfer-Encoding`, a bad chunk size, a head over the limit, a flood
//! of interim responses. Each is a 502 with nothing stored, and the connection it came on is
//! never used again.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crate::support::strict;
use crate::{node, send, ORIGIN_IP};

const GOOD: &str = "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok";

/// The reply for a request path.
fn reply(path: &str) -> Vec<u8> {
    let fresh = "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n";
    match path {
        "/cl-te" => format!(
            "{fresh}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        ),
        "/bad-chunk" => {
            format!("{fresh}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
        }
        "/long-head" => format!(
            "{fresh}X-Pad: {}\r\nContent-Length: 2\r\n\r\nok",
            "p".repeat(100 * 1024)
        ),
        "/flood" => {
            "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n".repeat(20) + GOOD
        }
        _ => GOOD.to_string(),
    }
    .into_bytes()
}

/// (connection number, request target) per request, in arrival order.
type Seen = Arc<Mutex<Vec<(usize, String)>>>;

/// A keep-alive origin on [`ORIGIN_IP`] that records what it is asked, and on which connection.
fn scripted_origin() -> (SocketAddr, Seen) {
    let l = TcpListener::bind(format!("{ORIGIN_IP}:0")).expect("bind origin");
    let addr = l.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for (n, conn) in l.incoming().enumerate() {
            let Ok(conn) = conn else { continue };
            let log = Arc::clone(&log);
            std::thread::spawn(move || serve(n, conn, &log));
        }
    });
    (addr, seen)
}

fn serve(n: usize, conn: TcpStream, log: &Mutex<Vec<(usize, String)>>) {
    let mut r = BufReader::new(conn);
    loop {
        let mut path = None;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if path.is_none() {
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                path = Some(target);
            }
        }
        let target = path.unwrap_or_default();
        log.lock().expect("log").push((n, target.clone()));
        let p = target.split('?').next().unwrap_or("").to_string();
        if r.get_mut().write_all(&reply(&p)).is_err() {
            return;
        }
    }
}

fn get(addr: SocketAddr, target: &str) -> Result<strict::Strict, String> {
    let raw = format!("GET {target} HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n");
    let mut r = crate::connect(addr, crate::support::IO_TIMEOUT);
    r.get_mut()
        .write_all(raw.as_bytes())
        .map_err(|e| e.to_string())?;
    strict::read_final(&mut r, false)
}

#[test]
fn ambiguous_broken_or_flooding_origins_give_502_store_nothing_and_lose_their_connection() {
    let (origin, seen) = scripted_origin();
    let node = node(&[origin], "");
    let conn_of = |target: &str| {
        let seen = seen.lock().expect("log");
        let hits: Vec<usize> = seen
            .iter()
            .filter(|(_, t)| t == target)
            .map(|(n, _)| *n)
            .collect();
        hits
    };
    for path in ["/cl-te", "/bad-chunk", "/long-head", "/flood"] {
        for round in 0..2 {
            match get(node.addr, path) {
                Ok(resp) => assert_eq!(resp.status, 502, "{path} {round}: {:?}", resp.headers),
                // A bad chunk comes after the head: the head may already be on its way, and
                // then the client sees the body cut, never a complete-looking one.
                Err(e) if path == "/bad-chunk" && e.contains("cut") => {}
                Err(e) => panic!("{path}: {e}"),
            }
            // The next request to the origin comes on another connection.
            let after = format!("/good?after={}{round}", &path[1..]);
            assert_eq!(get(node.addr, &after).expect("good").status, 200);
            let (bad, good) = (conn_of(path), conn_of(&after));
            assert_eq!(bad.len(), round + 1, "{path}: stored? {bad:?}");
            assert_ne!(bad.last(), good.last(), "{path}: its connection was reused");
        }
    }
    let (ok, _) = send(
        node.addr,
        b"GET /good HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(ok.status, 200);
}
