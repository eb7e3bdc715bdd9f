//! Forwarding: every method with its body (RFC 9110 §9), streamed bodies both ways, hop-by-hop
//! fields dropped in both directions and `Via` added (RFC 9110 §7.6.1, §7.6.3), `Cache-Status`
//! (RFC 9211) on every proxied response.

use crate::support::*;
use crate::{head_has, head_value};

#[test]
fn methods_with_bodies_are_forwarded_with_the_whole_body() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let body = vec![b'x'; 100 * 1024];
    for m in ["POST", "PUT", "PATCH", "DELETE"] {
        let r = request(node.addr, m, "/echo/m?k=1", &[], &body);
        assert_eq!(r.status, 200, "{m}");
        assert_eq!(r.text(), format!("method {m} path /echo/m body 102400\n"));
        assert_eq!(r.cache_status(), "a; fwd=method");
    }
    assert_eq!(origin.count("/echo/m"), 4);
    assert_eq!(node.counter("passed"), 4);
    assert_eq!(node.counter("stored_objects"), 0);
}

#[test]
fn extension_method_is_forwarded() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let r = request(node.addr, "M-SEARCH", "/ssdp", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "method M-SEARCH path /ssdp body 0\n");
    assert_eq!(r.cache_status(), "a; fwd=method");
    assert_eq!(origin.count("/ssdp"), 1);
}

#[test]
fn large_uncacheable_response_is_streamed_intact() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let r = get(node.addr, "/obj/big?size=5000000&cc=no-store", &[]);
    assert_eq!(r.status, 200);
    assert!(!r.truncated);
    assert_eq!(r.body.len(), 5_000_000);
    assert!(r.body == object_bytes("big", 5_000_000), "body differs");
    assert_eq!(r.cache_status(), "a; fwd=miss");
    assert_eq!(node.counter("stored_objects"), 0);
}

#[test]
fn chunked_request_body_is_forwarded_intact() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let mut raw = b"POST /up HTTP/1.1\r\nHost: test.example\r\nTransfer-Encoding: chunked\r\n\
                    Connection: close\r\n\r\n"
        .to_vec();
    for size in [10_000usize, 5_000, 1] {
        raw.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        raw.extend(std::iter::repeat_n(b'c', size));
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let r = raw_request(node.addr, &raw, false);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "method POST path /up body 15001\n");
    assert_eq!(origin.count("/up"), 1);
}

// ---- hop-by-hop fields, Via, Cache-Status ----

#[test]
fn connection_named_request_fields_are_not_forwarded() {
    let origin = RecordingOrigin::start(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: no-store\r\n\
          Connection: close\r\n\r\nok",
    );
    let node = Node::start(&[origin.addr], "");
    let headers = [
        ("Connection", "X-Foo"),
        ("X-Foo", "1"),
        ("Keep-Alive", "timeout=5"),
        ("X-Bar", "2"),
        ("Via", "1.0 fred"),
    ];
    let r = get(node.addr, "/hop", &headers);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "ok");
    let heads = origin.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let head = &heads[0];
    assert!(head.starts_with("GET /hop HTTP/1.1\r\n"), "{head}");
    assert!(!head_has(head, "x-foo"), "X-Foo forwarded: {head}");
    assert!(
        !head_has(head, "keep-alive"),
        "Keep-Alive forwarded: {head}"
    );
    assert_eq!(head_value(head, "x-bar"), Some("2"), "{head}");
    assert_eq!(head_value(head, "host"), Some("test.example"), "{head}");
    assert_eq!(
        head_value(head, "via"),
        Some("1.0 fred, 1.1 a (strait)"),
        "{head}"
    );
}

#[test]
fn connection_named_response_fields_are_not_passed_to_the_client() {
    let origin = RecordingOrigin::start(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: max-age=60\r\n\
          Connection: X-Secret, close\r\nX-Secret: 1\r\nKeep-Alive: timeout=9\r\n\
          X-Kept: 2\r\n\r\nok",
    );
    let node = Node::start(&[origin.addr], "");
    let miss = get(node.addr, "/hop", &[]);
    let hit = get(node.addr, "/hop", &[]);
    assert_eq!(miss.cache_status(), "a; fwd=miss; stored");
    assert!(hit.cache_status().starts_with("a; hit; ttl="));
    for r in [&miss, &hit] {
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "ok");
        assert_eq!(r.header("x-secret"), None, "{:?}", r.headers);
        assert_eq!(r.header("keep-alive"), None, "{:?}", r.headers);
        assert_eq!(r.header("x-kept"), Some("2"));
        assert_eq!(r.header("via"), Some("1.1 a (strait)"));
    }
    assert_eq!(origin.heads().len(), 1);
}

#[test]
fn via_and_cache_status_on_every_proxied_response() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let miss = get(node.addr, "/obj/v", &[]);
    let hit = get(node.addr, "/obj/v", &[]);
    let head = request(node.addr, "HEAD", "/obj/h", &[], b"");
    let post = request(node.addr, "POST", "/obj/p", &[], b"abc");
    let absent = get(node.addr, "/nowhere", &[]);
    let no_cache = get(node.addr, "/obj/nc", &[("Cache-Control", "no-cache")]);
    for (r, status) in [
        (&miss, "a; fwd=miss; stored"),
        (&head, "a; fwd=miss"),
        (&post, "a; fwd=method"),
        (&absent, "a; fwd=miss"),
        (&no_cache, "a; fwd=request; stored"),
    ] {
        assert_eq!(r.cache_status(), status);
        assert_eq!(r.header("via"), Some("1.1 a (strait)"), "{status}");
    }
    assert_eq!(absent.status, 404);
    assert_eq!(hit.header("via"), Some("1.1 a (strait)"));
    let ttl: i64 = hit
        .cache_status()
        .strip_prefix("a; hit; ttl=")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("hit status {:?}", hit.cache_status()));
    assert!((3598..=3600).contains(&ttl), "ttl {ttl}");
    assert!(hit.body == object_bytes("v", 1024));
    assert_eq!(origin.count("/obj/v"), 1);
}

/// One request as a raw origin read it: its connection (in accept order), head and body
/// (decoded when chunked) and whether the body came chunked.
struct Seen {
    conn: usize,
    head: String,
    body: Vec<u8>,
    chunked: bool,
}

/// A keep-alive origin that reads each request whole (`Content-Length` or chunked), records it
/// and answers `200 ok` with `Cache-Control: no-store`.
fn body_origin() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
) {
    use std::io::{BufRead, BufReader, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for (conn, s) in l.incoming().enumerate() {
            let Ok(s) = s else { continue };
            let kept = std::sync::Arc::clone(&kept);
            std::thread::spawn(move || {
                let mut r = BufReader::new(s);
                while let Some(head) = crate::support::read_head(&mut r) {
                    let lower = head.to_ascii_lowercase();
                    let chunked = lower.contains("transfer-encoding: chunked\r\n");
                    let mut body = Vec::new();
                    if chunked {
                        loop {
                            let mut size = String::new();
                            r.read_line(&mut size).expect("chunk size");
                            let n = usize::from_str_radix(size.trim_end(), 16).expect("hex");
                            let mut data = vec![0; n + 2];
                            r.read_exact(&mut data).expect("chunk");
                            assert_eq!(&data[n..], b"\r\n");
                            if n == 0 {
                                break;
                            }
                            body.extend_from_slice(&data[..n]);
                        }
                    } else if let Some(l) = lower
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                    {
                        body = vec![0; l.trim().parse().expect("length")];
                        r.read_exact(&mut body).expect("body");
                    }
                    kept.lock().expect("lock").push(Seen {
                        conn,
                        head,
                        body,
                        chunked,
                    });
                    let answer =
                        b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 2\r\n\r\nok";
                    if r.get_mut().write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// Uploads go on the node's own client: a GET (bodyless, the own client's since ever), then a
/// 1 MiB POST with `Content-Length` and a chunked POST all reach the origin on one kept
/// connection (hyper's client, which carried uploads before, kept connections of its own), each body byte for byte, the
/// chunked one re-chunked by the node.
#[test]
fn uploads_share_the_own_clients_connections_and_arrive_byte_for_byte() {
    use std::io::{BufReader, Write};
    let (addr, seen) = body_origin();
    let node = Node::start(&[addr], "");
    let r = get(node.addr, "/first", &[]);
    assert_eq!((r.status, &r.body[..]), (200, &b"ok"[..]));
    let big: Vec<u8> = (0..1usize << 20).map(|i| (i * 7 % 251) as u8).collect();
    let r = request(node.addr, "POST", "/big", &[], &big);
    assert_eq!((r.status, &r.body[..]), (200, &b"ok"[..]));
    // A chunked upload, in pieces with pauses between them.
    let mut s = std::net::TcpStream::connect(node.addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"POST /chunked HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: chunked\r\n\r\n")
        .expect("head");
    let parts: [&[u8]; 3] = [b"hello", b" chunked", &[b'z'; 3000]];
    for p in parts {
        std::thread::sleep(std::time::Duration::from_millis(20));
        s.write_all(format!("{:x}\r\n", p.len()).as_bytes())
            .expect("size");
        s.write_all(p).expect("chunk");
        s.write_all(b"\r\n").expect("crlf");
    }
    s.write_all(b"0\r\n\r\n").expect("end");
    let r = read_response(&mut BufReader::new(s), false).expect("a response");
    assert_eq!((r.status, &r.body[..]), (200, &b"ok"[..]));
    let seen = seen.lock().expect("lock");
    assert_eq!(
        seen.len(),
        3,
        "{:?}",
        seen.iter().map(|s| &s.head).collect::<Vec<_>>()
    );
    assert!(seen[0].head.starts_with("GET /first "));
    assert!(seen[1].head.starts_with("POST /big "));
    assert!(!seen[1].chunked);
    assert!(seen[1].body == big, "the 1 MiB body arrives byte for byte");
    assert!(seen[2].head.starts_with("POST /chunked "));
    assert!(seen[2].chunked);
    assert_eq!(seen[2].body, parts.concat());
    let conns: Vec<usize> = seen.iter().map(|s| s.conn).collect();
    assert_eq!(conns, [0, 0, 0], "one connection, the own client's");
}
