//! Malformed requests (RFC 9112): a clean 4xx, nothing reaches the origin, and a request with
//! ambiguous framing cannot smuggle a second request (RFC 9112 §6.1, §6.3).

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::*;

#[test]
fn a_garbage_request_line_gets_400() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let r = raw_request(node.addr, b"GARBAGE\r\n\r\n", false);
    assert_eq!(r.status, 400);
    assert_eq!(origin.stats(), serde_json::json!({}));
}

#[test]
fn a_request_head_over_max_request_header_gets_431() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "[cache]\nmax_request_header = \"16KiB\"\n");
    let small = "s".repeat(8 * 1024);
    let r = get(node.addr, "/obj/hdr", &[("X-Pad", small.as_str())]);
    assert_eq!(r.status, 200);
    let big = "b".repeat(20 * 1024);
    let r = get(node.addr, "/obj/hdr2", &[("X-Pad", big.as_str())]);
    assert_eq!(r.status, 431);
    assert_eq!(origin.count("/obj/hdr"), 1);
    assert_eq!(origin.count("/obj/hdr2"), 0);
}

/// Send a POST with both Content-Length and Transfer-Encoding (`fields` in that order) whose
/// chunked body is empty and is followed by a whole second request for `/obj/smuggled`.
fn smuggle(node: &Node, fields: [&str; 2]) {
    let tail = "0\r\n\r\nGET /obj/smuggled HTTP/1.1\r\nHost: test.example\r\n\r\n";
    let mut raw = "POST /obj/smug HTTP/1.1\r\nHost: test.example\r\n".to_string();
    for f in fields {
        match f {
            "cl" => raw.push_str(&format!("Content-Length: {}\r\n", tail.len())),
            _ => raw.push_str("Transfer-Encoding: chunked\r\n"),
        }
    }
    raw.push_str("\r\n");
    raw.push_str(tail);
    let mut s = TcpStream::connect(node.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    s.write_all(raw.as_bytes()).expect("write");
    let mut r = BufReader::new(s);
    let first = read_response(&mut r, false).expect("a first response");
    // Rejecting (400) or reading the body as chunked (RFC 9112 §6.3) are both fine ...
    match first.status {
        400 => {}
        200 => assert_eq!(first.text(), "method POST path /obj/smug body 0\n"),
        s => panic!("status {s}: {}", first.text()),
    }
    // ... but the connection must be closed after the answer (RFC 9112 §6.1).
    let mut rest = Vec::new();
    let n = r
        .read_to_end(&mut rest)
        .expect("connection closed, not held open");
    assert_eq!(
        n,
        0,
        "more after the first answer: {}",
        String::from_utf8_lossy(&rest)
    );
}

#[test]
fn content_length_with_transfer_encoding_cannot_smuggle_a_request() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    smuggle(&node, ["cl", "te"]);
    smuggle(&node, ["te", "cl"]);
    assert_eq!(origin.count("/obj/smuggled"), 0);
    assert!(origin.count("/obj/smug") <= 2);
}

#[test]
fn two_different_content_lengths_get_400() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let raw = b"POST /obj/cl HTTP/1.1\r\nHost: test.example\r\nContent-Length: 3\r\n\
                Content-Length: 5\r\nConnection: close\r\n\r\nabcde";
    let r = raw_request(node.addr, raw, false);
    assert_eq!(r.status, 400);
    assert_eq!(origin.count("/obj/cl"), 0);
}

#[test]
fn a_request_without_host_gets_400() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let r = raw_request(
        node.addr,
        b"GET /obj/nohost HTTP/1.1\r\nConnection: close\r\n\r\n",
        false,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "400 Bad Request: missing or invalid Host\n");
    assert_eq!(origin.count("/obj/nohost"), 0);
    assert_eq!(node.counter("bad_requests"), 1);
}
