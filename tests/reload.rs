//! Reload: `strait ctl reload` / `POST /reload` / SIGHUP apply a new config; in-flight requests
//! finish, stored objects survive, an invalid config is refused and the old one stays.

mod support;

use std::time::Duration;

use support::{get, node_config, wait_until, Node, Origin};

fn rewrite(node: &Node, text: &str) {
    // Keep the ports the node already has: the listeners are not rebound by a reload.
    let text = text
        .replace("127.0.0.1:0\"]", &format!("{}\"]", node.addr))
        .replace(
            "admin = \"127.0.0.1:0\"",
            &format!("admin = \"{}\"", node.admin),
        );
    std::fs::write(&node.config, text).expect("write config");
}

#[test]
fn ctl_reload_switches_pools_keeps_objects_and_finishes_in_flight_requests() {
    let a = Origin::start();
    let b = Origin::start();
    let node = Node::start(&[a.addr], "");
    assert_eq!(get(node.addr, "/obj/kept", &[]).status, 200);
    assert!(wait_until(Duration::from_secs(5), || node
        .counter("stored_objects")
        == 1));

    // A slow request in flight on the old pool while the config changes.
    let addr = node.addr;
    let slow = std::thread::spawn(move || get(addr, "/dyn/slow?delay=700", &[]));
    assert!(wait_until(Duration::from_secs(5), || a.count("/dyn/slow") == 1));
    rewrite(&node, &node_config(&[b.addr], ""));
    let (code, out, err) = node.ctl(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("reloaded: "), "{out}");
    assert!(out.contains("servers +origin/"), "{out}");

    let r = slow.join().expect("slow request");
    assert_eq!(r.status, 200, "in-flight request failed across the reload");
    assert_eq!(r.text(), "dyn slow 1\n");

    // New requests go to the new pool; the stored object is still a hit.
    assert_eq!(get(node.addr, "/dyn/new", &[]).status, 200);
    assert_eq!(b.count("/dyn/new"), 1);
    assert_eq!(a.count("/dyn/new"), 0);
    let hit = get(node.addr, "/obj/kept", &[]);
    assert!(
        hit.cache_status().starts_with("a; hit"),
        "{}",
        hit.cache_status()
    );
}

#[test]
fn an_invalid_config_is_refused_with_its_reason_and_the_old_one_stays() {
    let a = Origin::start();
    let node = Node::start(&[a.addr], "");
    let bad = node_config(&[a.addr], "").replace("pool = \"origin\"", "pool = \"nope\"");
    rewrite(&node, &bad);
    let (code, _out, err) = node.ctl(&["reload"]);
    assert_eq!(code, 1);
    assert!(err.contains("422"), "{err}");
    assert!(err.contains("route pool \"nope\" does not exist"), "{err}");
    // Still serving with the old config.
    assert_eq!(get(node.addr, "/dyn/still", &[]).status, 200);
    assert_eq!(a.count("/dyn/still"), 1);
}

#[test]
fn sighup_reloads_too() {
    let a = Origin::start();
    let b = Origin::start();
    let node = Node::start(&[a.addr], "");
    rewrite(&node, &node_config(&[b.addr], ""));
    node.proc.signal("HUP");
    assert!(wait_until(Duration::from_secs(5), || {
        get(node.addr, "/dyn/hup", &[]).status == 200 && b.count("/dyn/hup") >= 1
    }));
}

#[test]
fn reload_keeps_the_health_state_of_unchanged_servers() {
    let a = Origin::start();
    let dead = support::closed_addr();
    let pool = |servers: &str| {
        format!(
            "[node]\nid = \"a\"\nlisten = [\"127.0.0.1:0\"]\nadmin = \"127.0.0.1:0\"\n\
             [[pool]]\nname = \"origin\"\nservers = [{servers}]\n\
             health = {{ kind = \"tcp\", interval = \"400ms\", timeout = \"200ms\", rise = 2, fall = 2 }}\n\
             [[route]]\npool = \"origin\"\n"
        )
    };
    let two = format!("{{ addr = \"{}\" }}, {{ addr = \"{dead}\" }}", a.addr);
    let node = Node::start_config(&pool(&two));
    let state = |node: &Node, addr: std::net::SocketAddr| -> String {
        let s = node.stats();
        s["pools"][0]["servers"]
            .as_array()
            .and_then(|v| v.iter().find(|x| x["addr"] == addr.to_string()))
            .and_then(|x| x["state"].as_str())
            .unwrap_or("?")
            .to_string()
    };
    // Two check rounds (at start, then 400 ms later) take the dead server down (fall = 2).
    assert!(wait_until(Duration::from_secs(3), || state(&node, dead) == "down"));
    // Reload with one more server. A server whose health had been reset would show "up" until
    // two more failed checks (the new checker's first round fails once at once, the second is
    // 400 ms away). It must still be down right after the reload; the new one starts up.
    let b = Origin::start();
    let three = format!("{two}, {{ addr = \"{}\" }}", b.addr);
    rewrite(&node, &pool(&three));
    let (code, out, err) = node.ctl(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(state(&node, dead), "down");
    assert_eq!(state(&node, a.addr), "up");
    assert_eq!(state(&node, b.addr), "up");
}
