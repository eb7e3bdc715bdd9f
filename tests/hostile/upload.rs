//! Hostile origins against requests that carry a client's body (the node's own client,
//! `origin/h1/upload.rs`): both `Content-Length` and `Transfer-Encoding`, a head over 64 KiB and twenty 103s
//! are a 502 before any head reaches the client; a bad chunk and a close mid-body come after
//! the head, and the client's body is cut where it cannot look complete. Either way the
//! origin connection is closed, never reused (nothing it sent after is read as another
//! answer), and the fault is the origin's, never the client's.

use std::io::Write;
use std::time::Duration;

use crate::script::{Scripted, Step};
use crate::support::strict;
use crate::support::*;
use crate::{connect, node};

const GOOD: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
/// An answer hidden behind the hostile ones: read as the answer to the next request, it would
/// be a smuggled response.
const SMUGGLED: &str = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled";
const BEFORE_BREAK: Duration = Duration::from_millis(300);

fn script(_method: &str, path: &str) -> Vec<Step> {
    let send = |s: String| Step::Send(s.into_bytes());
    let ok = "HTTP/1.1 200 OK\r\n";
    match path {
        "/up/cl-te" => vec![send(format!(
            "{ok}Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n\
             {SMUGGLED}"
        ))],
        "/up/long-head" => vec![send(format!(
            "{ok}X-Pad: {}\r\nContent-Length: 2\r\n\r\nok{SMUGGLED}",
            "p".repeat(100 * 1024)
        ))],
        "/up/flood" => vec![send(
            "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n".repeat(20) + GOOD,
        )],
        "/up/bad-chunk" => vec![
            send(format!(
                "{ok}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
            )),
            Step::Pause(BEFORE_BREAK),
            send(format!("zz\r\n{SMUGGLED}")),
        ],
        "/up/close-mid-body" => vec![
            send(format!("{ok}Content-Length: 10\r\n\r\nhello")),
            Step::Pause(BEFORE_BREAK),
            Step::Close,
        ],
        "/up/chunked-close" => vec![
            send(format!(
                "{ok}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
            )),
            Step::Pause(BEFORE_BREAK),
            Step::Close,
        ],
        _ => vec![send(GOOD.to_string())],
    }
}

/// What a client made of one POST: the interim responses before the final one, and the final
/// one read strictly (Err: why not).
fn post(addr: std::net::SocketAddr, target: &str) -> (usize, Result<strict::Strict, String>) {
    let raw = format!(
        "POST {target} HTTP/1.1\r\nHost: test.example\r\nContent-Length: 5\r\n\
         Connection: close\r\n\r\nhello"
    );
    let mut r = connect(addr, IO_TIMEOUT);
    r.get_mut().write_all(raw.as_bytes()).expect("write");
    let mut interims = 0;
    loop {
        match strict::read(&mut r, false) {
            Ok(Some(resp)) if resp.status < 200 => interims += 1,
            Ok(Some(resp)) => {
                let end = strict::expect_closed(&mut r).map(|()| resp);
                return (interims, end);
            }
            Ok(None) => return (interims, Err("closed without a response".into())),
            Err(e) => return (interims, Err(e)),
        }
    }
}

#[test]
fn hostile_origins_of_uploads_give_502_or_a_visible_cut_and_lose_their_connection() {
    let origin = Scripted::start(script);
    let node = node(&[origin.addr], "");
    let cases = [
        ("/up/cl-te", true),
        ("/up/long-head", true),
        ("/up/flood", true),
        ("/up/bad-chunk", false),
        ("/up/close-mid-body", false),
        ("/up/chunked-close", false),
    ];
    let mut faults = 0;
    for (path, before_head) in cases {
        for round in 0..2 {
            let what = format!("{path} (round {round})");
            let (interims, got) = post(node.addr, path);
            if before_head {
                let resp = got.unwrap_or_else(|e| panic!("{what}: {e}"));
                let names: Vec<&str> = resp.headers.iter().map(|(n, _)| n.as_str()).collect();
                assert_eq!(resp.status, 502, "{what}: {names:?}");
                assert_ne!(&resp.body[..], b"smuggled", "{what}");
            } else {
                let e = got.expect_err(&format!("{what}: looked complete"));
                assert!(
                    e.starts_with("incomplete") && e.contains("(status 200)"),
                    "{what}: {e}"
                );
            }
            assert!(
                interims <= 16,
                "{what}: {interims} interim responses relayed"
            );
            faults += 1;
            // Every upload reached the origin once, with its whole body.
            let conns = origin.conns_of(path);
            assert_eq!(conns.len(), round + 1, "{what}: {conns:?}");
            let conn = *conns.last().expect("a connection");
            assert_eq!(origin.body_of(conn, path), Some(5), "{what}");
            // Its connection is closed, never reused: the next upload gets its own answer.
            assert!(
                wait_until(Duration::from_secs(5), || origin.closed(conn)),
                "{what}: the origin connection was kept"
            );
            let after = format!("/up/good?after={round}{}", path.replace('/', "-"));
            let (_, good) = post(node.addr, &after);
            let good = good.unwrap_or_else(|e| panic!("{what}, after: {e}"));
            assert_eq!((good.status, &good.body[..]), (200, &b"ok"[..]), "{what}");
            assert_ne!(origin.conns_of(&after), vec![conn], "{what}: reused");
            assert!(
                wait_until(Duration::from_secs(5), || node.counter("origin_errors")
                    == faults),
                "{what}: origin_errors {} (want {faults})",
                node.counter("origin_errors")
            );
        }
    }
    for client in ["client_bad_body", "client_aborted", "client_body_timeout"] {
        assert_eq!(node.counter(client), 0, "{client}: blamed on the client");
    }
}
