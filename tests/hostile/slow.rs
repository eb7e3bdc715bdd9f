//! Slow and silent clients: `limits.header_read_timeout` bounds the wait for a request head on
//! the raw fast path and on hyper alike (a slowloris that trickles a head gets 408 and is
//! closed; an idle connection is closed); `limits.body_timeout` bounds a stalled request body
//! (408, never the origin's fault). `limits.send_timeout` (a client that stops reading) is
//! tested in `tests/proxy/slow_readers.rs`.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::support::strict;
use crate::support::*;
use crate::{connect, node, origin};

/// Trickle `head` a byte every 200 ms until the node answers or closes; the answer (None:
/// closed without one) and when it came.
fn trickle(addr: std::net::SocketAddr, head: &[u8]) -> (Option<u16>, Duration) {
    let mut r = connect(addr, Duration::from_millis(200));
    let start = Instant::now();
    for b in head.iter().cycle().take(200) {
        if r.get_mut().write_all(&[*b]).is_err() {
            break;
        }
        match strict::read(&mut r, false) {
            Ok(Some(resp)) => {
                strict::expect_closed(&mut r).expect("closed after the 408");
                return (Some(resp.status), start.elapsed());
            }
            Ok(None) => return (None, start.elapsed()),
            Err(e) if e.contains("os error 11") || e.contains("timed out") => continue,
            Err(e) => panic!("{e}"),
        }
    }
    (None, start.elapsed())
}

#[test]
fn a_slowloris_head_is_cut_at_header_read_timeout_on_both_paths() {
    let origin = origin();
    let node = node(&[origin.addr], "[limits]\nheader_read_timeout = \"1s\"\n");
    // The raw fast path: the first head of a connection.
    let (status, took) = trickle(
        node.addr,
        b"GET /obj/slow HTTP/1.1\r\nX-Pad: aaaaaaaaaaaaaaaaa",
    );
    assert_eq!(status, Some(408), "fast path");
    assert!(took < Duration::from_secs(4), "fast path took {took:?}");
    // hyper: a request whose `Connection` names a field moves the connection there (an
    // upload stays on the connection's own loop: the upload lane); then its next head trickles.
    let mut r = connect(node.addr, Duration::from_millis(200));
    r.get_mut()
        .write_all(
            b"POST /obj/first HTTP/1.1\r\nHost: test.example\r\nConnection: x-to-hyper\r\n\
              Content-Length: 1\r\n\r\nx",
        )
        .expect("write");
    r.get_ref()
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("timeout");
    let first = strict::read_final(&mut r, false).expect("first response");
    assert_eq!(first.status, 200);
    r.get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let start = Instant::now();
    let mut closed = false;
    for b in
        b"GET /obj/slow2 HTTP/1.1\r\nX-Pad: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
    {
        if r.get_mut().write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        match strict::read(&mut r, false) {
            Ok(None) => {
                closed = true;
                break;
            }
            Ok(Some(resp)) => panic!("hyper answered {}", resp.status),
            Err(e) if e.contains("os error 11") || e.contains("timed out") => {}
            Err(e) if e.contains("reset") => {
                closed = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        closed,
        "hyper kept a trickling head for {:?}",
        start.elapsed()
    );
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "hyper took {:?}",
        start.elapsed()
    );
    assert!(node.counter("header_timeouts") >= 2);
    assert_eq!(origin.count("/obj/slow"), 0);
    assert_eq!(origin.count("/obj/slow2"), 0);
}

#[test]
fn an_idle_connection_is_closed_at_header_read_timeout() {
    let origin = origin();
    let node = node(&[origin.addr], "[limits]\nheader_read_timeout = \"1s\"\n");
    let mut r = connect(node.addr, Duration::from_secs(10));
    let start = Instant::now();
    // Closed with nothing written (no 408 for a client that sent nothing).
    strict::expect_closed(&mut r).expect("closed without a byte");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert!(wait_until(Duration::from_secs(2), || node
        .counter("header_timeouts")
        == 1));
}

#[test]
fn a_stalled_request_body_gets_408_and_the_origin_is_not_blamed() {
    let origin = origin();
    let node = node(&[origin.addr], "[limits]\nbody_timeout = \"500ms\"\n");
    let mut r = connect(node.addr, IO_TIMEOUT);
    r.get_mut()
        .write_all(b"PUT /obj/stall HTTP/1.1\r\nHost: test.example\r\nContent-Length: 100\r\n\r\n0123456789")
        .expect("write");
    let start = Instant::now();
    let resp = strict::read_final(&mut r, false).expect("a strict answer");
    assert_eq!(resp.status, 408);
    assert!(resp.closes(), "408 must close: {:?}", resp.headers);
    strict::expect_closed(&mut r).expect("closed");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(wait_until(Duration::from_secs(5), || node
        .counter("client_body_timeout")
        == 1));
    assert_eq!(node.counter("origin_errors"), 0);
}
