//! What the origin learns about the client: `X-Forwarded-For` (the client address appended to
//! any list the client sent) and `Forwarded: for=...;proto=http` (RFC 7239 §4, §5.2), on
//! cache fills and on passed requests alike.

use crate::routed_config;
use crate::support::*;

const REPLY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: no-store\r\n\r\nok";

/// A node whose only pool is a recording origin.
fn recorded() -> (RecordingOrigin, Node) {
    let origin = RecordingOrigin::start(REPLY);
    let node = Node::start_config(&routed_config(
        &[("o", origin.addr)],
        "[[route]]\npool = \"o\"\n",
    ));
    (origin, node)
}

/// Every value of field `name` in a recorded request head, in order.
fn values(head: &str, name: &str) -> Vec<String> {
    head.lines()
        .skip(1)
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
        .collect()
}

/// The one request head the origin received.
fn only_head(origin: &RecordingOrigin) -> String {
    let heads = origin.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    heads[0].clone()
}

#[test]
fn the_origin_is_told_the_client_address() {
    let (origin, node) = recorded();
    let r = get(node.addr, "/a", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    let head = only_head(&origin);
    assert_eq!(values(&head, "x-forwarded-for"), ["127.0.0.1"], "{head}");
    assert_eq!(
        values(&head, "forwarded"),
        ["for=127.0.0.1;proto=http"],
        "{head}"
    );
}

#[test]
fn the_client_address_is_appended_to_an_existing_x_forwarded_for() {
    let (origin, node) = recorded();
    let r = get(
        node.addr,
        "/b",
        &[
            ("X-Forwarded-For", "10.1.2.3"),
            ("Forwarded", "for=10.1.2.3"),
        ],
    );
    assert_eq!(r.status, 200);
    let head = only_head(&origin);
    assert_eq!(
        values(&head, "x-forwarded-for"),
        ["10.1.2.3, 127.0.0.1"],
        "{head}"
    );
    // Forwarded elements are appended too: as a list, the client's first.
    assert_eq!(
        values(&head, "forwarded").join(", "),
        "for=10.1.2.3, for=127.0.0.1;proto=http",
        "{head}"
    );
}

#[test]

fn every_x_forwarded_for_line_is_kept_before_the_client_address() {
    let (origin, node) = recorded();
    let r = get(
        node.addr,
        "/c",
        &[
            ("X-Forwarded-For", "10.0.0.1"),
            ("X-Forwarded-For", "10.0.0.2"),
        ],
    );
    assert_eq!(r.status, 200);
    let head = only_head(&origin);
    assert_eq!(
        values(&head, "x-forwarded-for").join(", "),
        "10.0.0.1, 10.0.0.2, 127.0.0.1",
        "{head}"
    );
}

#[test]
fn passed_requests_carry_the_forwarding_fields_too() {
    let (origin, node) = recorded();
    let r = request(
        node.addr,
        "POST",
        "/d",
        &[("X-Forwarded-For", "10.1.2.3")],
        b"xyz",
    );
    assert_eq!((r.status, r.cache_status()), (200, "a; fwd=method"));
    let head = only_head(&origin);
    assert!(head.starts_with("POST /d HTTP/1.1\r\n"), "{head}");
    assert_eq!(
        values(&head, "x-forwarded-for"),
        ["10.1.2.3, 127.0.0.1"],
        "{head}"
    );
    assert_eq!(
        values(&head, "forwarded"),
        ["for=127.0.0.1;proto=http"],
        "{head}"
    );
}
