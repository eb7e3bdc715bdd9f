//! The pass lane (`cache/src/http/passlane/`): a plain GET for a key whose last answer could
//! not be stored, relayed from the origin's raw response head. For each origin answer, the
//! client must get the same bytes from the lane as from the general stages (the first request
//! for a key, before it is marked): the same status line, fields (names lower-cased, in the
//! same order), framing and body, interim responses included; only a `Date` the node adds may
//! differ (it is the clock's). A head the origin client refuses is a 502 on both ways.

use std::io::{Read, Write};
use std::net::SocketAddr;

use crate::support::{Node, RecordingOrigin, IO_TIMEOUT};
use crate::{config, connect, own_date_masked};

/// One GET for `path` with `Connection: close`: everything the node wrote until it closed.
fn exchange(node: SocketAddr, path: &str) -> String {
    let mut r = connect(node, IO_TIMEOUT);
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: lane.example\r\nUser-Agent: t/1\r\nConnection: close\r\n\r\n"
    );
    r.get_mut().write_all(req.as_bytes()).expect("write");
    let mut got = Vec::new();
    r.read_to_end(&mut got).expect("read to the close");
    own_date_masked(&got)
}

const MARK: &[u8] = b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 4\r\n\r\nmark";

#[test]
fn the_lane_answers_byte_for_byte_as_the_general_stages() {
    let kib = "k".repeat(1024);
    let answers: Vec<String> = vec![
        format!("HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Type: text/plain\r\nContent-Length: 1024\r\n\r\n{kib}"),
        "HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n5\r\nhello\r\n0\r\n\r\n".into(),
        "HTTP/1.1 200 OK\r\nCache-Control: private\r\nDate: Mon, 07 Dec 2020 05:00:00 GMT\r\n\r\nto the close".into(),
        "HTTP/1.1 200 OK\r\nConnection: close, X-A, keep-alive\r\nX-A: gone\r\nKeep-Alive: timeout=1\r\nX-B: kept\r\nCache-Control: no-store\r\nContent-Length: 2\r\n\r\nok".into(),
        "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nCache-Control: max-age=60\r\nX-Mid: m\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nsc".into(),
        "HTTP/1.1 200 OK\r\nVia: 1.0 upstream\r\nCache-Control: no-store\r\nCache-Status: up; hit\r\nContent-Length: 1\r\n\r\nv".into(),
        "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 2\r\n\r\nei".into(),
        "HTTP/1.1 204 No Content\r\nCache-Control: no-store\r\nContent-Length: 3\r\n\r\n".into(),
        "HTTP/1.1 404 Gone Fishing\r\nx-lower: 1\r\nX-UPPER: 2\r\nx-lower: 3\r\nCache-Control: no-store\r\nContent-Length: 3\r\n\r\n404".into(),
        "HTTP/1.0 200 OK\r\nCache-Control: no-store\r\nContent-Length: 2\r\n\r\n10".into(),
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\n5x".into(),
    ];
    let origin = RecordingOrigin::start(MARK);
    let node = Node::start_config(&config(&[origin.addr], ""));
    for (i, answer) in answers.iter().enumerate() {
        origin.set_reply(answer.as_bytes());
        let path = format!("/cmp/{i}");
        let general = exchange(node.addr, &path);
        let lane_before = node.counter("pass_lane");
        let lane = exchange(node.addr, &path);
        assert_eq!(
            node.counter("pass_lane"),
            lane_before + 1,
            "the second request took the lane: {answer:?}"
        );
        assert_eq!(lane, general, "{answer:?}");
        assert!(lane.contains("cache-status: "), "{lane}");
    }
}

#[test]
fn a_head_the_origin_client_refuses_is_a_502_on_the_lane_too() {
    let many: String = (0..129).map(|i| format!("X-{i}: 1\r\n")).collect();
    let huge = format!("X-Big: {}\r\n", "b".repeat(64 * 1024));
    let broken = [
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            .to_string(),
        "HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nabc".into(),
        "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nab".into(),
        "HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\r\nContent-Length: 2\r\n\r\nab".into(),
        "HTTP/1.1 200 OK\r\nX-Bad: a\x01b\r\nContent-Length: 2\r\n\r\nab".into(),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n".into(),
        format!("HTTP/1.1 200 OK\r\n{many}Content-Length: 2\r\n\r\nab"),
        format!("HTTP/1.1 200 OK\r\n{huge}Content-Length: 2\r\n\r\nab"),
    ];
    let origin = RecordingOrigin::start(MARK);
    let node = Node::start_config(&config(&[origin.addr], ""));
    for (i, answer) in broken.iter().enumerate() {
        let path = format!("/broken/{i}");
        origin.set_reply(answer.as_bytes());
        let general = exchange(node.addr, &path);
        assert!(general.starts_with("HTTP/1.1 502 "), "{general}");
        // Marked by an unstorable answer, then broken: the lane's request.
        origin.set_reply(MARK);
        let _ = exchange(node.addr, &path);
        let marked = node.counter("hit_for_miss");
        origin.set_reply(answer.as_bytes());
        let lane = exchange(node.addr, &path);
        assert_eq!(node.counter("hit_for_miss"), marked + 1, "{answer:?}");
        assert_eq!(lane, general, "{answer:?}");
    }
}
