//! The admin listener (`/stats.json`, `/metrics`, the stats page, purge, ban) and `strait ctl`
//! run as a process against it.

use crate::support::*;

/// `strait ctl --admin ADDR ARGS...`: (exit code, stdout).
fn ctl(node: &Node, args: &[&str]) -> (i32, String) {
    let admin = node.admin.to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["ctl", "--admin", admin.as_str()])
        .args(args)
        .output()
        .expect("run strait ctl");
    let code = out.status.code().unwrap_or(-1);
    (code, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The number on the `name  value` line of `strait ctl stats`.
fn ctl_number(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some(name)).then(|| words.next()?.parse().ok())?
    })
}

fn admin_post(node: &Node, target: &str) -> Resp {
    admin_request(node.admin, "POST", target, &[])
}

#[test]
fn stats_json_and_metrics_count_misses_and_hits() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    assert_eq!(get(node.addr, "/obj/s", &[]).status, 200);
    assert_eq!(get(node.addr, "/obj/s", &[]).status, 200);
    let s = node.stats();
    for (name, want) in [
        ("requests", 2),
        ("local_miss", 1),
        ("local_hit", 1),
        ("origin_fetches", 1),
        ("stored_objects", 1),
        ("passed", 0),
    ] {
        assert_eq!(s[name].as_u64(), Some(want), "{name}: {s}");
    }
    assert!(s["stored_bytes"].as_u64() >= Some(1024), "{s}");
    let m = admin_request(node.admin, "GET", "/metrics", &[]);
    assert_eq!(m.status, 200);
    let text = m.text();
    assert!(
        text.lines().any(|l| l == "strait_cache_local_hits_total 1"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l == "strait_cache_local_misses_total 1"),
        "{text}"
    );
}

#[test]
fn the_stats_page_is_html_that_refreshes_itself() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let r = admin_request(node.admin, "GET", "/", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let page = r.text();
    assert!(page.contains("<meta http-equiv=\"refresh\""), "{page}");
    assert!(page.contains("strait node a"), "{page}");
}

#[test]
fn purge_removes_one_object_and_the_next_get_misses() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    assert_eq!(
        get(node.addr, "/obj/a", &[]).cache_status(),
        "a; fwd=miss; stored"
    );
    let r = admin_post(&node, "/purge?url=http%3A%2F%2Ftest.example%2Fobj%2Fa");
    assert_eq!(
        (r.status, r.text()),
        (
            200,
            "{\"key\":\"http://test.example/obj/a\",\"removed\":1}".to_string()
        )
    );
    assert_eq!(
        get(node.addr, "/obj/a", &[]).cache_status(),
        "a; fwd=miss; stored"
    );
    assert_eq!(origin.count("/obj/a"), 2);
    let r = admin_post(&node, "/purge?url=http%3A%2F%2Ftest.example%2Fobj%2Fnone");
    assert_eq!(
        r.text(),
        "{\"key\":\"http://test.example/obj/none\",\"removed\":0}"
    );
}

#[test]
fn ban_removes_every_object_under_a_prefix() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    for p in ["/obj/b1", "/obj/b2", "/obj/b3"] {
        assert_eq!(get(node.addr, p, &[]).status, 200);
    }
    let other = [("Host", "other.example")];
    assert_eq!(get(node.addr, "/obj/b1", &other).status, 200);
    let r = admin_post(&node, "/ban?prefix=http%3A%2F%2Ftest.example%2Fobj%2F");
    assert_eq!(
        (r.status, r.text()),
        (
            200,
            "{\"prefix\":\"http://test.example/obj/\",\"removed\":3}".to_string()
        )
    );
    assert_eq!(
        get(node.addr, "/obj/b2", &[]).cache_status(),
        "a; fwd=miss; stored"
    );
    assert!(get(node.addr, "/obj/b1", &other)
        .cache_status()
        .starts_with("a; hit;"));
    assert_eq!(origin.count("/obj/b2"), 2);
    assert_eq!(origin.count("/obj/b1"), 2);
}

#[test]
fn strait_ctl_prints_stats_and_purges_and_bans() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    for p in ["/obj/c1", "/obj/c1", "/obj/c2", "/obj/c3"] {
        assert_eq!(get(node.addr, p, &[]).status, 200);
    }
    let (code, text) = ctl(&node, &["stats"]);
    assert_eq!(code, 0);
    assert!(text.starts_with("node a\n"), "{text}");
    assert_eq!(ctl_number(&text, "requests"), Some(4), "{text}");
    assert_eq!(ctl_number(&text, "local_hit"), Some(1), "{text}");
    assert_eq!(ctl_number(&text, "stored_objects"), Some(3), "{text}");
    let (code, json) = ctl(&node, &["--json", "stats"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).expect("ctl --json output");
    assert_eq!(v["local_miss"].as_u64(), Some(3), "{json}");
    assert_eq!(v["node"].as_str(), Some("a"));
    let purge = ctl(&node, &["purge", "http://test.example/obj/c1"]);
    assert_eq!(purge, (0, "removed 1 object(s)\n".to_string()));
    let ban = ctl(&node, &["ban", "http://test.example/obj/c"]);
    assert_eq!(ban, (0, "removed 2 object(s)\n".to_string()));
    assert_eq!(node.counter("stored_objects"), 0);
}
