//! `node.default_host`: an HTTP/1.0 request without `Host` is served as if it had named the
//! configured host (route, cache key, `Host` upstream); HTTP/1.1 requires `Host` (RFC 9112
//! §3.2), so one without it stays a 400, as does HTTP/1.0 when no default host is configured.

use std::io::{BufReader, Write};
use std::net::TcpStream;

use crate::support::{get, raw_request, read_response, Node, RecordingOrigin, IO_TIMEOUT};

const REPLY: &[u8] =
    b"HTTP/1.1 200 OK\r\ncache-control: max-age=600\r\ncontent-length: 2\r\n\r\nok";

/// A node whose default route goes to `other` and whose route for `www.example.com` goes to
/// `origin`, with `default_host` set (or not).
fn node(origin: &RecordingOrigin, other: &RecordingOrigin, default_host: bool) -> Node {
    let mut text = format!(
        "[node]\nid = \"a\"\nlisten = [\"127.0.0.1:0\"]\nadmin = \"127.0.0.1:0\"\n\n\
         [[pool]]\nname = \"www\"\nservers = [{{ addr = \"{}\" }}]\n\n\
         [[pool]]\nname = \"other\"\nservers = [{{ addr = \"{}\" }}]\n\n\
         [[route]]\nmatch = {{ host = \"www.example.com\" }}\npool = \"www\"\n\n\
         [[route]]\npool = \"other\"\n",
        origin.addr, other.addr
    );
    if default_host {
        text = text.replace("[node]\n", "[node]\ndefault_host = \"WWW.example.com\"\n");
    }
    Node::start_config(&text)
}

#[test]
fn http_1_0_without_host_is_served_under_the_default_host() {
    let (origin, other) = (RecordingOrigin::start(REPLY), RecordingOrigin::start(REPLY));
    let node = node(&origin, &other, true);
    let r = raw_request(node.addr, b"GET /dh HTTP/1.0\r\n\r\n", false);
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(r.cache_status(), "a; fwd=miss; stored");
    let heads = origin.heads();
    assert_eq!(heads.len(), 1, "routed by the default host: {heads:?}");
    assert!(
        heads[0]
            .to_ascii_lowercase()
            .contains("\r\nhost: www.example.com\r\n"),
        "{heads:?}"
    );
    // The same key as a client naming that host: a hit.
    let ok = crate::support::wait_until(IO_TIMEOUT, || {
        get(node.addr, "/dh", &[("Host", "www.example.com")])
            .cache_status()
            .starts_with("a; hit")
    });
    assert!(ok, "not a hit under www.example.com");
    // After a fast-path request on the same connection too.
    let mut s = TcpStream::connect(node.addr).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s.write_all(b"GET /dh HTTP/1.1\r\nHost: www.example.com\r\n\r\nGET /dh HTTP/1.0\r\n\r\n")
        .expect("write");
    let mut r = BufReader::new(s);
    for n in 1..=2 {
        let resp = read_response(&mut r, false).expect("a response");
        assert_eq!(resp.status, 200, "request {n}");
        assert!(resp.cache_status().starts_with("a; hit"), "request {n}");
    }
    assert_eq!((origin.heads().len(), other.heads().len()), (1, 0));
}

#[test]
fn a_missing_host_is_400_for_http_1_1_and_without_default_host() {
    let (origin, other) = (RecordingOrigin::start(REPLY), RecordingOrigin::start(REPLY));
    let with = node(&origin, &other, true);
    let r = raw_request(
        with.addr,
        b"GET /dh HTTP/1.1\r\nConnection: close\r\n\r\n",
        false,
    );
    assert_eq!(r.status, 400);
    let without = node(&origin, &other, false);
    let r = raw_request(without.addr, b"GET /dh HTTP/1.0\r\n\r\n", false);
    assert_eq!(r.status, 400);
    assert_eq!((origin.heads().len(), other.heads().len()), (0, 0));
}
