//! An origin body that breaks after its head has gone to the client (a bad chunk size, a
//! `Content-Length` body cut short, a chunked body cut by a close): a 502 is impossible by
//! then, so the client's body is cut where it can never look complete — a chunked body without
//! its last chunk, a `Content-Length` body short of its length, then the connection closes.
//! Nothing is stored (the next request for the URL goes to the origin again), the origin's
//! connection is closed, never reused, and the fault is the origin's (`origin_errors`).

use std::io::Write;
use std::time::Duration;

use crate::script::{Scripted, Step};
use crate::support::strict;
use crate::support::*;
use crate::{connect, node};

const FRESH: &str = "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n";
/// Long enough for the node to send the head (and the first bytes) before the body breaks.
const BEFORE_BREAK: Duration = Duration::from_millis(300);

/// What the origin says of storing: `/cut/…` may be stored, `/pass/…` may not (so it streams
/// straight through, unstored, on the pass path).
fn storing(path: &str) -> &'static str {
    if path.starts_with("/pass/") {
        "HTTP/1.1 200 OK\r\nCache-Control: no-store\r\n"
    } else {
        FRESH
    }
}

fn script(_method: &str, path: &str) -> Vec<Step> {
    let start = storing(path);
    let head = |framing: &str, first: &str| {
        Step::Send(format!("{start}{framing}\r\n\r\n{first}").into_bytes())
    };
    let path = path.replacen("/pass/", "/cut/", 1);
    match path.as_str() {
        // A bad chunk size mid-body; the origin keeps its connection open after it.
        "/cut/bad-chunk" => vec![
            head("Transfer-Encoding: chunked", "5\r\nhello\r\n"),
            Step::Pause(BEFORE_BREAK),
            Step::Send(b"zz\r\nnever\r\n0\r\n\r\n".to_vec()),
        ],
        "/cut/short-length" => vec![
            head("Content-Length: 10", "hello"),
            Step::Pause(BEFORE_BREAK),
            Step::Close,
        ],
        "/cut/chunked-close" => vec![
            head("Transfer-Encoding: chunked", "5\r\nhello\r\n"),
            Step::Pause(BEFORE_BREAK),
            Step::Close,
        ],
        _ => vec![Step::Send(
            format!("{FRESH}Content-Length: 2\r\n\r\nok").into_bytes(),
        )],
    }
}

/// GET `path` on a new connection: on the node's own loop (`fast`), or on hyper (a
/// `Keep-Alive` field sends the connection there); what the strict reader made of it.
fn get(addr: std::net::SocketAddr, path: &str, fast: bool) -> Result<strict::Strict, String> {
    let extra = if fast {
        ""
    } else {
        "Keep-Alive: timeout=5\r\n"
    };
    let raw = format!("GET {path} HTTP/1.1\r\nHost: test.example\r\n{extra}\r\n");
    let mut r = connect(addr, IO_TIMEOUT);
    r.get_mut().write_all(raw.as_bytes()).expect("write");
    strict::read_final(&mut r, false)
}

#[test]
fn a_body_that_breaks_after_the_head_is_cut_visibly_and_never_stored() {
    let origin = Scripted::start(script);
    let node = node(&[origin.addr], "");
    let mut cuts = 0;
    let paths = ["/cut/bad-chunk", "/cut/short-length", "/cut/chunked-close"];
    let passes = paths.map(|p| p.replacen("/cut/", "/pass/", 1));
    for path in paths
        .iter()
        .copied()
        .chain(passes.iter().map(|p| p.as_str()))
    {
        for (round, fast) in [true, false, true].into_iter().enumerate() {
            let what = format!("{path} (round {round}, fast path {fast})");
            let e = get(node.addr, path, fast).expect_err(&format!("{what}: looked complete"));
            // The head (200) went out; the body is cut, not mis-framed and not stalled.
            assert!(
                e.starts_with("incomplete") && e.contains("(status 200)"),
                "{what}: {e}"
            );
            cuts += 1;
            // Nothing stored: every request for it went to the origin.
            let conns = origin.conns_of(path);
            assert_eq!(conns.len(), round + 1, "{what}: served from a stored cut");
            // The connection it came on is closed by the node, never reused.
            let conn = *conns.last().expect("a connection");
            assert!(
                wait_until(Duration::from_secs(5), || origin.closed(conn)),
                "{what}: the origin connection was kept"
            );
            let after = format!("/good?after={round}{}", path.replace('/', "-"));
            assert_eq!(get(node.addr, &after, fast).expect("good").status, 200);
            assert_ne!(origin.conns_of(&after), vec![conn], "{what}: reused");
            // Counted as the origin's fault, once per cut.
            assert!(
                wait_until(Duration::from_secs(5), || node.counter("origin_errors")
                    == cuts),
                "{what}: origin_errors {}",
                node.counter("origin_errors")
            );
        }
    }
    assert_eq!(node.counter("client_aborted"), 0);
}
