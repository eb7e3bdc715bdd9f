//! Ten real `strait node` processes on loopback (127.0.0.31-40) form one cluster with the
//! **default** gossip timings (issue #16 item 5): every node sees ten alive members, the same
//! list on every node (the input key ownership is computed from, so they agree on every
//! key's owner; the ownership itself at scale is `lb/tests/rendezvous_scale.rs`); one node
//! SIGKILLed is declared dead by all nine others, and the time that takes is measured
//! (printed, per node) and bounded by 3 s; then a node stopped (SIGSTOP) for 1 s is not
//! declared dead, and is alive to the eight others again soon after it resumes.
//!
//! Gossip addresses are the seeds, so they are fixed: ports 47931-47940 gossip, 47951-47960
//! peer, used by no other test.

mod support;

use std::time::{Duration, Instant};

use strait_lb::membership::section::{DEFAULT_PROBE_INTERVAL, DEFAULT_SUSPECT_TIMEOUT};
use support::{admin_request, node_config, scratch_dir, wait_until, Node, Origin};

const NODES: u8 = 10;
/// How long one node is stopped (and must not be declared dead).
const PAUSE: Duration = Duration::from_secs(1);

fn ip(n: u8) -> String {
    format!("127.0.0.{}", 30 + n)
}

/// Node `n` (1..=10), id `n{n}`, seeding on nodes 1 and 2, the default timings.
fn config(origin: std::net::SocketAddr, n: u8, key: &std::path::Path) -> String {
    let seeds: Vec<String> = [1u8, 2]
        .iter()
        .filter(|&&s| s != n)
        .map(|s| format!("\"{}:{}\"", ip(*s), 47930 + u16::from(*s)))
        .collect();
    let cluster = format!(
        "[cluster]\npeer_listen = \"{ip}:{peer}\"\ngossip_listen = \"{ip}:{gossip}\"\n\
         seeds = [{seeds}]\nsecret_file = {key:?}\n",
        ip = ip(n),
        peer = 47950 + u16::from(n),
        gossip = 47930 + u16::from(n),
        seeds = seeds.join(", "),
        key = key.display().to_string(),
    );
    node_config(&[origin], &cluster).replace("id = \"a\"", &format!("id = \"n{n}\""))
}

/// `(id, state)` of every member in a node's `/cluster.json`.
fn view(node: &Node) -> Vec<(String, String)> {
    let r = admin_request(node.admin, "GET", "/cluster.json", &[]);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    v["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["id"].as_str().unwrap_or("").to_owned(),
                        m["state"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn alive(node: &Node) -> usize {
    view(node).iter().filter(|(_, s)| s == "alive").count()
}

#[test]
fn ten_nodes_join_with_the_default_timings_and_a_death_is_seen_by_all() {
    let origin = Origin::start();
    let dir = scratch_dir("cluster-scale");
    let key = dir.join("cluster.key");
    std::fs::write(&key, "a shared cluster key, long enough\n").expect("key");
    let started = Instant::now();
    let mut nodes: Vec<Node> = (1..=NODES)
        .map(|n| Node::start_config(&config(origin.addr, n, &key)))
        .collect();
    assert!(
        wait_until(Duration::from_secs(20), || nodes
            .iter()
            .all(|n| alive(n) == usize::from(NODES))),
        "no full view: {:?}",
        nodes.iter().map(alive).collect::<Vec<_>>()
    );
    println!(
        "10 nodes: every one sees 10 alive members {:.2} s after the first start",
        started.elapsed().as_secs_f64()
    );
    // The same member list (ids and states) everywhere: the input every node computes key
    // owners from, so all ten agree on every key's owner.
    let mut first_view = view(&nodes[0]);
    first_view.sort();
    for n in &nodes[1..] {
        let mut v = view(n);
        v.sort();
        assert_eq!(v, first_view, "two nodes disagree on the members");
    }
    // SIGKILL the last one: every other declares it dead.
    let mut dead = nodes.pop().expect("ten nodes");
    let killed = Instant::now();
    let _ = dead.proc.child.kill();
    let _ = dead.proc.child.wait();
    let seen_dead = |n: &Node| {
        view(n)
            .iter()
            .any(|(id, s)| id == &format!("n{NODES}") && s == "dead")
    };
    // When each of the nine first lists it dead (polled in turn, so within a poll round).
    let mut seen: Vec<Option<Duration>> = vec![None; nodes.len()];
    let all = wait_until(Duration::from_secs(10), || {
        for (i, n) in nodes.iter().enumerate() {
            if seen[i].is_none() && seen_dead(n) {
                seen[i] = Some(killed.elapsed());
            }
        }
        seen.iter().all(Option::is_some)
    });
    let took = killed.elapsed();
    let times: Vec<String> = seen
        .iter()
        .map(|t| t.map_or("-".into(), |t| format!("{:.2}", t.as_secs_f64())))
        .collect();
    let first = seen.iter().flatten().min().copied().unwrap_or(took);
    println!(
        "SIGKILL of n{NODES}: first node saw it dead after {:.2} s, all nine after {:.2} s \
         (per node: {}; default probe_interval {:?}, suspect_timeout {:?})",
        first.as_secs_f64(),
        took.as_secs_f64(),
        times.join(" "),
        DEFAULT_PROBE_INTERVAL,
        DEFAULT_SUSPECT_TIMEOUT,
    );
    assert!(all, "not every node saw n{NODES} dead within 10 s");
    // Issue #16 asks for under 3 s. The time is the wait for the dead node's first probe (the
    // least of nine places in shuffled probe rounds of nine periods: about one period, with
    // a tail), one probe period, suspect_timeout, and the spread of the news: 1.8-2.0 s (once 2.4) with
    // the defaults (200 ms, 1300 ms); over 3 s would take a first probe more than 1.2 s late,
    // about once in 10^4 runs. (With 500 ms / 1500 ms it was 2.1-3.6 s.)
    assert!(
        took < Duration::from_secs(3),
        "death seen by all in {took:?}, not under 3 s"
    );
    // Then, among the nine left: a node that stops answering for 1 s (SIGSTOP, as a long
    // pause would) may be suspected, but refutes it when it resumes: it is never declared
    // dead (it would rejoin under a renewed identity) and is alive everywhere soon after.
    let paused = &nodes[NODES as usize - 2];
    let pause_id = format!("n{}", NODES - 1);
    paused.proc.signal("STOP");
    std::thread::sleep(PAUSE);
    paused.proc.signal("CONT");
    let resumed = Instant::now();
    let mut suspected = false;
    let mut seen_dead = false;
    let others = &nodes[..NODES as usize - 2];
    let back = wait_until(Duration::from_secs(5), || {
        let mut alive_everywhere = resumed.elapsed() > Duration::from_secs(2);
        for n in others {
            let state = view(n)
                .into_iter()
                .find(|(id, _)| *id == pause_id)
                .map(|(_, s)| s)
                .unwrap_or_default();
            suspected |= state == "suspect";
            seen_dead |= state == "dead";
            alive_everywhere &= state == "alive";
        }
        alive_everywhere
    });
    let rejoined = paused
        .proc
        .try_wait_line("declared dead", Duration::from_millis(10))
        .is_some();
    println!(
        "{pause_id} stopped for {PAUSE:?}: seen suspect {suspected}, seen dead {seen_dead}, \
         declared dead and rejoined {rejoined}; alive at the eight others when checked {:.2} s \
         after SIGCONT (from 2 s on)",
        resumed.elapsed().as_secs_f64()
    );
    assert!(back, "{pause_id} not alive everywhere 5 s after it resumed");
    assert!(
        !seen_dead && !rejoined,
        "{pause_id}, stopped for {PAUSE:?}, was declared dead"
    );
}
