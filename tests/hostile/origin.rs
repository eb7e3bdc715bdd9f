//! Hostile origins, through the node's own HTTP/1.1 origin client (bodyless GETs): both
//! `Content-Length` and `Transfer-Encoding`, a bad chunk size, a head over the limit, a flood
//! of interim responses. Each is a 502 with nothing stored, and the connection it came on is
//! never used again. The same origins against the upload client: `upload.rs`; bodies that
//! break later: `cut.rs`.

use std::io::Write;
use std::net::SocketAddr;

use crate::script::{Scripted, Step};
use crate::support::strict;
use crate::{node, send};

const GOOD: &str = "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok";

/// The reply for a request path.
fn reply(_method: &str, path: &str) -> Vec<Step> {
    let fresh = "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n";
    let text = match path {
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
    };
    vec![Step::Send(text.into_bytes())]
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
    let origin = Scripted::start(reply);
    let node = node(&[origin.addr], "");
    let conn_of = |target: &str| origin.conns_of(target);
    for path in ["/cl-te", "/bad-chunk", "/long-head", "/flood"] {
        for round in 0..2 {
            match get(node.addr, path) {
                Ok(resp) => assert_eq!(resp.status, 502, "{path} {round}: {:?}", resp.headers),
                // A bad chunk comes after the head: the head may already be on its way, and
                // then the client sees the body cut, never a complete-looking one.
                Err(e) if path == "/bad-chunk" && e.starts_with(strict::INCOMPLETE) => {}
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
