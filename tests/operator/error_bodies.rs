//! Error bodies are for any client to read: the status and a short reason. The origin's
//! address, the pool's name and the error's text go to the node's log only.

use crate::support::*;
use crate::{closed_addr_on, node_config_on, SOON};

const IP: &str = "127.0.20.2";
const POOL: &str = "backstage-pool-7";

/// Everything a client sees of a response: status line pieces, every header, the body.
fn seen_by_client(r: &Resp) -> String {
    let mut all = format!("{}\n", r.status);
    for (name, value) in &r.headers {
        all.push_str(&format!("{name}: {value}\n"));
    }
    all.push_str(&r.text());
    all
}

fn assert_no_details(r: &Resp, origin: std::net::SocketAddr) {
    let seen = seen_by_client(r);
    for secret in [
        origin.to_string(),
        origin.ip().to_string(),
        format!(":{}", origin.port()),
        POOL.to_string(),
        "refused".to_string(),
    ] {
        assert!(
            !seen.contains(&secret),
            "{secret:?} shown to the client:\n{seen}"
        );
    }
}

#[test]
fn a_502_and_a_503_name_neither_the_origin_nor_the_pool() {
    // One server that refuses connections; one failure ejects it, so the next request finds
    // no server in the pool.
    let refusing = closed_addr_on(IP);
    let passive = "passive = { failures = 1, backoff = \"60s\" }";
    let node = Node::start_config(&node_config_on(IP, POOL, &[refusing], passive));

    let r = get(node.addr, "/obj/e", &[]);
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(
        r.text(),
        "502 Bad Gateway: the origin server could not be reached\n"
    );
    assert_no_details(&r, refusing);
    // The details are in the log.
    let line = node.proc.wait_line("origin request failed", SOON);
    assert!(
        line.contains(&refusing.to_string()) && line.contains(POOL),
        "{line}"
    );

    let r = get(node.addr, "/obj/e", &[]);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(
        r.text(),
        "503 Service Unavailable: no origin server is available\n"
    );
    assert_no_details(&r, refusing);
    let line = node.proc.wait_line("no server available", SOON);
    assert!(line.contains(POOL), "{line}");
    assert_eq!(node.counter("stored_objects"), 0);
}
