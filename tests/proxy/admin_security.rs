//! The admin listener refuses what a web page open in a browser on the node's machine could
//! send it: a `Host` that is not loopback, `localhost` or the admin address (DNS rebinding), a
//! cross-site `Origin` or `Sec-Fetch-Site`, a state change by any method but POST or with a
//! content type an HTML form can send, and a ban of every object. `strait ctl` keeps working.

use crate::support::*;
use crate::SOON;

const BAN_EMPTY: &str = "/ban?prefix=";
const BAN_ALL: &str = "/ban?all=1";
const BAN_HOST: &str = "/ban?prefix=http%3A%2F%2Ftest.example%2F";
const PURGE_X: &str = "/purge?url=http%3A%2F%2Ftest.example%2Fobj%2Fx";

/// A node with `/obj/x` cached.
fn node_with_x() -> (Origin, Node) {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    assert_eq!(
        get(node.addr, "/obj/x", &[]).cache_status(),
        "a; fwd=miss; stored"
    );
    assert_still_hit(&node);
    (origin, node)
}

fn assert_still_hit(node: &Node) {
    let r = get(node.addr, "/obj/x", &[]);
    assert!(
        r.cache_status().starts_with("a; hit;"),
        "/obj/x is no longer cached: {}",
        r.cache_status()
    );
}

#[test]
fn a_cross_site_ban_is_refused_and_the_object_stays_cached() {
    let (origin, node) = node_with_x();
    let cross_site: [&[(&str, &str)]; 5] = [
        &[("Origin", "http://evil.example")],
        &[("Origin", "null")],
        &[("Sec-Fetch-Site", "cross-site")],
        &[("Sec-Fetch-Site", "same-site")],
        &[
            ("Origin", "http://evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
    ];
    for headers in cross_site {
        for target in [BAN_EMPTY, BAN_ALL, BAN_HOST, PURGE_X] {
            let r = admin_request(node.admin, "POST", target, headers);
            assert_eq!(r.status, 403, "{target} {headers:?}: {}", r.text());
        }
    }
    node.proc.wait_line("admin request refused", SOON);
    assert_still_hit(&node);
    assert_eq!(origin.count("/obj/x"), 1);
}

#[test]
fn a_foreign_host_cannot_read_the_stats() {
    let (_origin, node) = node_with_x();
    for host in [
        "evil.example:9090",
        "evil.example",
        "127.0.0.1.evil.example",
        "localhost.evil.example:9090",
        "10.0.0.1:9090",
        "[::2]:9090",
        "127.0.0.1:http",
    ] {
        let r = admin_request(node.admin, "GET", "/stats.json", &[("Host", host)]);
        assert_eq!(r.status, 421, "Host {host}: {}", r.text());
        assert!(!r.text().contains("\"node\""), "{}", r.text());
    }
    let no_host = raw_request(
        node.admin,
        b"GET /stats.json HTTP/1.1\r\nConnection: close\r\n\r\n",
        false,
    );
    assert_eq!(no_host.status, 421, "{}", no_host.text());
    let port = node.admin.port();
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1:1".to_owned(),
        "127.0.0.1".to_owned(),
        format!("localhost:{port}"),
        "localhost".to_owned(),
        format!("[::1]:{port}"),
    ] {
        let r = admin_request(node.admin, "GET", "/stats.json", &[("Host", &host)]);
        assert_eq!(r.status, 200, "Host {host}: {}", r.text());
    }
}

#[test]
fn a_form_content_type_cannot_purge() {
    let (_origin, node) = node_with_x();
    for ctype in [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain;charset=UTF-8",
        "Text/Plain",
    ] {
        let r = admin_request(node.admin, "POST", PURGE_X, &[("Content-Type", ctype)]);
        assert_eq!(r.status, 415, "{ctype}: {}", r.text());
    }
    assert_still_hit(&node);
    let r = admin_request(
        node.admin,
        "POST",
        PURGE_X,
        &[("Content-Type", "application/json")],
    );
    assert_eq!(
        (r.status, r.text()),
        (
            200,
            "{\"key\":\"http://test.example/obj/x\",\"removed\":1}".to_owned()
        )
    );
}

#[test]
fn state_changes_are_post_only() {
    let (_origin, node) = node_with_x();
    for (method, target) in [
        ("GET", BAN_HOST),
        ("GET", PURGE_X),
        ("GET", "/reload"),
        ("PUT", BAN_HOST),
        ("DELETE", PURGE_X),
    ] {
        let r = admin_request(node.admin, method, target, &[]);
        assert_eq!(r.status, 405, "{method} {target}: {}", r.text());
        assert_eq!(r.header("allow"), Some("POST"), "{method} {target}");
    }
    assert_still_hit(&node);
}

#[test]
fn a_ban_of_everything_by_accident_is_refused() {
    let (_origin, node) = node_with_x();
    for (target, why) in [
        (BAN_EMPTY, "a ban needs a prefix"),
        ("/ban?prefix=http%3A%2F%2F", "must name a host"),
        ("/ban?prefix=http", "absolute URL prefix"),
        ("/ban?prefix=%2Fobj%2F", "absolute URL prefix"),
        ("/ban", "ban needs ?prefix="),
    ] {
        let r = admin_request(node.admin, "POST", target, &[]);
        assert_eq!(r.status, 400, "{target}: {}", r.text());
        assert!(r.text().contains(why), "{target}: {}", r.text());
    }
    assert_still_hit(&node);
    // strait ctl refuses it before asking the node: a usage error, exit 2.
    for prefix in ["", "/obj/", "test.example/obj/"] {
        let (code, out, err) = node.ctl(&["ban", prefix]);
        assert_eq!((code, out.as_str()), (2, ""), "{prefix:?}: {err}");
        assert!(err.contains("refused"), "{err}");
    }
    assert_still_hit(&node);
}

#[test]
fn strait_ctl_still_reads_purges_and_bans() {
    let (_origin, node) = node_with_x();
    let (code, out, err) = node.ctl(&["stats"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("node a\n"), "{out}");
    let purge = node.ctl(&["purge", "http://test.example/obj/x"]);
    assert_eq!(purge.0, 0, "{}", purge.2);
    assert_eq!(purge.1, "removed 1 object(s)\n");
    assert_eq!(get(node.addr, "/obj/x", &[]).status, 200);
    let ban = node.ctl(&["ban", "http://test.example/obj/"]);
    assert_eq!(ban.0, 0, "{}", ban.2);
    assert_eq!(ban.1, "removed 1 object(s)\n");
    let reload = node.ctl(&["reload"]);
    assert_eq!(
        (reload.0, reload.1.as_str()),
        (0, "reloaded: no changes\n"),
        "{}",
        reload.2
    );
}
