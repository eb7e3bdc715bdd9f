//! Hostile clients (issue 11): a client's broken, stalled, aborted or oversized body is the
//! client's fault alone; the absolute form and `Connection` cannot poison another host's or
//! variant's key; unsupported transfer codings are refused; a path that only looks different
//! (`//`, escapes) takes the route of the resource it names.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::*;
use crate::SOON;

/// The first server of the node's first pool, as `/stats.json` shows it.
fn first_server(node: &Node) -> serde_json::Value {
    node.stats()["pools"][0]["servers"][0].clone()
}

/// One hostile upload; returns the status answered, if any.
fn hostile(addr: SocketAddr, kind: usize) -> Option<u16> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let head = "POST /dyn/upload HTTP/1.1\r\nHost: test.example\r\n";
    match kind {
        // A malformed chunk size.
        0 => {
            let raw = format!("{head}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n");
            s.write_all(raw.as_bytes()).ok()?;
        }
        // Announces 100 bytes, sends 10, then goes away.
        1 => {
            let raw = format!("{head}Content-Length: 100\r\n\r\n0123456789");
            s.write_all(raw.as_bytes()).ok()?;
            thread::sleep(Duration::from_millis(20));
            return None;
        }
        // Announces 100 bytes, sends 10, then stalls (body_timeout answers).
        2 => {
            let raw = format!("{head}Content-Length: 100\r\n\r\n0123456789");
            s.write_all(raw.as_bytes()).ok()?;
        }
        // A chunked body that grows past max_request_body.
        _ => {
            let mut raw = format!("{head}Transfer-Encoding: chunked\r\n\r\n");
            for _ in 0..3 {
                raw.push_str(&format!("400\r\n{}\r\n", "x".repeat(1024)));
            }
            s.write_all(raw.as_bytes()).ok()?;
        }
    }
    let mut r = BufReader::new(s);
    read_response(&mut r, false).map(|resp| resp.status)
}

#[test]
fn a_thousand_hostile_bodies_never_eject_the_only_server() {
    let origin = Origin::start();
    let node = Node::start(
        &[origin.addr],
        "[limits]\nbody_timeout = \"300ms\"\nmax_request_body = \"2KiB\"\n",
    );
    let started = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let addr = node.addr;
            thread::spawn(move || {
                let mut answered = [0usize; 4];
                let mut normal_ok = 0;
                for i in 0..125 {
                    // 4 kinds; stalled ones are rarer (each waits for body_timeout).
                    let kind = match (w * 125 + i) % 10 {
                        0 => 2,
                        1..=4 => 0,
                        5..=7 => 1,
                        _ => 3,
                    };
                    let status = hostile(addr, kind);
                    let want = [Some(400), None, Some(408), Some(413)][kind];
                    if kind != 1 {
                        assert_eq!(status, want, "hostile kind {kind}");
                    }
                    answered[kind] += 1;
                    if i % 5 == 0 {
                        let r = request(addr, "POST", "/dyn/normal", &[], b"fine");
                        assert_eq!(r.status, 200, "{}", r.text());
                        let r = get(addr, &format!("/obj/normal-{w}-{i}"), &[]);
                        assert_eq!(r.status, 200, "{}", r.text());
                        normal_ok += 2;
                    }
                }
                (answered, normal_ok)
            })
        })
        .collect();
    let mut total = [0usize; 4];
    let mut normal = 0;
    for w in workers {
        let (a, n) = w.join().expect("worker");
        for k in 0..4 {
            total[k] += a[k];
        }
        normal += n;
    }
    eprintln!(
        "hostile bodies: {} malformed, {} aborted, {} stalled, {} too large; {normal} normal \
         requests all 200; {:?}",
        total[0],
        total[1],
        total[2],
        total[3],
        started.elapsed()
    );
    assert_eq!(total.iter().sum::<usize>(), 1000);
    let server = first_server(&node);
    assert_eq!(server["state"], "up", "{server}");
    assert_eq!(server["errors"], 0, "{server}");
    assert_eq!(node.counter("origin_errors"), 0);
    assert_eq!(node.counter("client_bad_body"), total[0] as u64);
    assert_eq!(node.counter("client_body_timeout"), total[2] as u64);
    assert!(node.counter("client_body_too_large") >= total[3] as u64);
    // The aborted ones are counted once the node notices (it reads the body's end).
    assert!(wait_until(Duration::from_secs(5), || node
        .counter("client_aborted")
        >= total[1] as u64));
}

#[test]
fn a_declared_body_over_the_limit_is_413_before_the_origin_is_asked() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "[limits]\nmax_request_body = \"1KiB\"\n");
    let r = request(node.addr, "POST", "/dyn/big", &[], &[b'x'; 1025]);
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(origin.count("/dyn/big"), 0);
    let r = request(node.addr, "POST", "/dyn/big", &[], &[b'x'; 1024]);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn transfer_codings_other_than_chunked_are_refused_not_dropped() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let raw = b"POST /dyn/te HTTP/1.1\r\nHost: test.example\r\n\
        Transfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n";
    let r = raw_request(node.addr, raw, false);
    assert_eq!(r.status, 501, "{}", r.text());
    assert_eq!(origin.count("/dyn/te"), 0);
}

#[test]
fn a_client_that_goes_away_does_not_cancel_the_fill_others_wait_on() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let path = "/obj/abandoned?delay=600";
    // The leader asks, then leaves before the origin answers.
    let mut leader = TcpStream::connect(node.addr).expect("connect");
    let raw = format!("GET {path} HTTP/1.1\r\nHost: test.example\r\n\r\n");
    leader.write_all(raw.as_bytes()).expect("write");
    // Wait on the events, not on guessed times: the leader's fetch reached the origin, then
    // the follower joined its fill.
    assert!(wait_until(SOON, || origin.count("/obj/abandoned") == 1));
    let follower = thread::spawn({
        let addr = node.addr;
        move || get(addr, path, &[])
    });
    assert!(wait_until(SOON, || node.counter("coalesced") == 1));
    drop(leader);
    let r = follower.join().expect("follower");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, object_bytes("abandoned", 1024));
    assert_eq!(
        origin.count("/obj/abandoned"),
        1,
        "one fetch, not cancelled"
    );
    let r = get(node.addr, path, &[]);
    assert!(r.cache_status().contains("hit"), "{}", r.cache_status());
}

const CACHEABLE: &[u8] = b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n\
    Content-Length: 4\r\nConnection: close\r\n\r\npage";

fn host_of(head: &str) -> Option<&str> {
    crate::head_value(head, "host")
}

#[test]
fn the_absolute_form_cannot_poison_another_host() {
    let origin = RecordingOrigin::start(CACHEABLE);
    let node = Node::start(&[origin.addr], "");
    let raw = b"GET http://victim.example/page HTTP/1.1\r\nHost: attacker.example\r\n\
        Connection: close\r\n\r\n";
    assert_eq!(raw_request(node.addr, raw, false).status, 200);
    let heads = origin.heads();
    assert_eq!(heads.len(), 1);
    assert_eq!(host_of(&heads[0]), Some("victim.example"), "{}", heads[0]);
    // The victim's own request is a hit on what the origin sent for the victim.
    let r = get(node.addr, "/page", &[("Host", "victim.example")]);
    assert!(r.cache_status().contains("hit"), "{}", r.cache_status());
    assert_eq!(origin.heads().len(), 1);
}

#[test]
fn connection_cannot_strip_host_or_a_vary_field_the_key_used() {
    let origin = RecordingOrigin::start(CACHEABLE);
    let node = Node::start(&[origin.addr], "");
    let r = get(
        node.addr,
        "/page",
        &[("Host", "victim.example"), ("Connection", "Host")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(host_of(&origin.heads()[0]), Some("victim.example"));

    // A Vary variant: the attacker hides its Accept-Language from the origin.
    origin.set_reply(
        b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nVary: Accept-Language\r\n\
        Content-Length: 2\r\nConnection: close\r\n\r\nen",
    );
    let attack = [
        ("Host", "victim.example"),
        ("Accept-Language", "fr"),
        ("Connection", "keep-alive, Accept-Language"),
    ];
    assert_eq!(get(node.addr, "/vary", &attack).status, 200);
    let heads = origin.heads();
    assert!(
        !crate::head_has(&heads[1], "accept-language"),
        "{}",
        heads[1]
    );
    // A French client is not served what the origin sent for a request without the field.
    let r = get(
        node.addr,
        "/vary",
        &[("Host", "victim.example"), ("Accept-Language", "fr")],
    );
    assert!(!r.cache_status().contains("hit"), "{}", r.cache_status());
    let heads = origin.heads();
    assert_eq!(heads.len(), 3);
    assert_eq!(crate::head_value(&heads[2], "accept-language"), Some("fr"));
}

#[test]
fn paths_that_name_a_private_route_take_it() {
    let origin = Origin::start();
    let config = format!(
        "[node]\nid = \"a\"\nlisten = [\"127.0.0.1:0\"]\nadmin = \"127.0.0.1:0\"\n\n\
         [[pool]]\nname = \"origin\"\nservers = [{{ addr = \"{}\" }}]\n\n\
         [[route]]\nmatch = {{ path_prefix = \"/obj/private\" }}\npool = \"origin\"\ncache = false\n\n\
         [[route]]\npool = \"origin\"\n",
        origin.addr
    );
    let node = Node::start_config(&config);
    for (i, path) in [
        "/obj/private/me",
        "//obj/private/me",
        "/%6Fbj/private/me",
        "/obj//private/me",
        "/obj/x/../private/me",
        "/obj/%2e%2e/obj/private/me",
    ]
    .iter()
    .enumerate()
    {
        let r = get(node.addr, path, &[]);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let r = get(node.addr, path, &[]);
        assert!(
            !r.cache_status().contains("hit"),
            "{path} was cached: {}",
            r.cache_status()
        );
        // Every request reached the origin, as the one resource it names.
        assert_eq!(
            origin.count("/obj/private/me"),
            2 * (i as u64 + 1),
            "{path}"
        );
    }
}

#[test]
fn a_path_with_a_bad_escape_is_400() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let r = get(node.addr, "/obj/%zz", &[]);
    assert_eq!(r.status, 400);
    assert_eq!(origin.stats(), serde_json::json!({}));
}
