//! Age and Date on served responses (RFC 9111 §5.1, RFC 9110 §6.6.1), and no reuse without
//! freshness information or a validator (RFC 9111 §4.2.2: the node has no default TTL).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::support::{get, object_bytes, wait_until, Node};
use crate::{age_of, fill, http_date, start};

#[test]
fn age_on_hits_grows_with_time() {
    let (origin, node) = start("");
    let miss = fill(&node, "/obj/age", &[]);
    assert_eq!(miss.cache_status(), "a; fwd=miss; stored");
    let hit = get(node.addr, "/obj/age", &[]);
    assert!(hit.cache_status().starts_with("a; hit; ttl="));
    let first = age_of(&hit);
    assert!(first <= 1, "a new object is {first} s old");
    let grew = wait_until(Duration::from_secs(4), || {
        age_of(&get(node.addr, "/obj/age", &[])) > first
    });
    assert!(grew, "Age stayed at {first}");
    let later = get(node.addr, "/obj/age", &[]);
    assert!(age_of(&later) >= 1);
    assert_eq!(later.body, object_bytes("age", 1024));
    assert_eq!(origin.count("/obj/age"), 1);
}

/// A minimal origin that answers every request with `response` and counts them. Its threads end
/// with the test process.
fn fixed_origin(response: &'static [u8]) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().expect("clone stream");
                let mut reader = BufReader::new(stream);
                loop {
                    // One request head (GETs without bodies), then the answer.
                    let mut blank = false;
                    while !blank {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        blank = line == "\r\n" || line == "\n";
                    }
                    seen.fetch_add(1, Ordering::SeqCst);
                    if writer.write_all(response).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, count)
}

#[test]
fn date_is_added_when_the_origin_omits_it() {
    let (addr, count) = fixed_origin(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nCache-Control: max-age=60\r\n\r\nhello",
    );
    let node = Node::start(&[addr], "");
    let before = SystemTime::now() - Duration::from_secs(1);
    let miss = fill(&node, "/nodate", &[]);
    let after = SystemTime::now() + Duration::from_secs(1);
    assert_eq!(miss.status, 200);
    assert_eq!(miss.text(), "hello");
    assert_eq!(miss.cache_status(), "a; fwd=miss; stored");
    let date = miss.header("date").expect("a Date field").to_string();
    let near: Vec<String> = (0..=before_after_secs(before, after))
        .map(|s| http_date(before + Duration::from_secs(s)))
        .collect();
    assert!(near.contains(&date), "Date {date:?} not in {near:?}");
    let dates = miss
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("date"));
    assert_eq!(dates.count(), 1);

    let hit = get(node.addr, "/nodate", &[]);
    assert!(hit.cache_status().starts_with("a; hit; ttl="));
    assert_eq!(hit.header("date"), Some(date.as_str()));
    assert_eq!(hit.text(), "hello");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

fn before_after_secs(before: SystemTime, after: SystemTime) -> u64 {
    after.duration_since(before).map_or(0, |d| d.as_secs())
}

#[test]
fn origin_date_is_kept() {
    let (origin, node) = start("");
    let miss = fill(&node, "/obj/dt", &[]);
    let hit = get(node.addr, "/obj/dt", &[]);
    let date = miss.header("date").expect("Date from the origin");
    assert_eq!(hit.header("date"), Some(date));
    assert_eq!(origin.count("/obj/dt"), 1);
}

#[test]
fn response_without_freshness_or_validator_is_never_reused() {
    let (origin, node) = start("");
    let path = "/obj/bare?cc=&etag=0&lm=0";
    for n in 1..=2 {
        let r = get(node.addr, path, &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.cache_status(), "a; fwd=miss");
        assert_eq!(r.body, object_bytes("bare", 1024));
        assert_eq!(origin.count("/obj/bare"), n);
    }
    assert_eq!(node.counter("stored_objects"), 0);
    assert_eq!(node.counter("uncacheable"), 2);
}
