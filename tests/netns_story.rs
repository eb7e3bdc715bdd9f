//! `strait sim run demo` on the story topology, end to end, in a copy of the example (its own
//! name, so its namespaces are its own): exit 0, every step's live line, every step of the
//! report held with its key figures, and no `st-<name>-` namespace left. Needs root; outside
//! CI it says SKIP.

mod support;

use std::process::Command;

#[test]
fn the_story_holds_every_step_and_leaves_nothing_behind() {
    if !support::require_root(
        "the_story_holds_every_step_and_leaves_nothing_behind",
        &["ip", "ethtool"],
    ) {
        return;
    }
    let dir = support::scratch_dir("story");
    let topology = support::topology_copy(
        "topology/examples/topologies/story.toml",
        "sty",
        &dir,
        &[],
        &[],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["sim", "run", "demo", "--topology"])
        .arg(&topology)
        .arg("--logs")
        .arg(dir.join("logs"))
        .output()
        .expect("strait sim run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\nstderr:\n{stderr}\nlogs in {}",
        dir.join("logs").display()
    );
    for needle in [
        "[1/7] topology up: 9 hosts, 7 processes started (b4 held back",
        "dir-a master, dir-b backup, 3/3 backends up at both; the cluster has 3 nodes",
        "[3/7] ",
        "b4 started: in the cluster after",
        "dir-a killed (SIGKILL to every process on it); dir-b master after",
        "b3's node killed (SIGKILL): down at dir-b after",
        "dir-a restarted; master again after",
        "static objects: 24, fetched from the origin 24 times before the node kill",
        "(none cached)",
        "result: every step held",
        "topology sty torn down (10 namespaces removed)",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in:\n{stdout}");
    }
    for step in ["up", "traffic", "join", "failover", "node loss", "return"] {
        let line = format!("{step:<10} held ");
        assert!(stdout.contains(&line), "no {line:?} in:\n{stdout}");
    }
    assert!(
        support::namespaces("st-sty-").is_empty(),
        "namespaces left: {:?}",
        support::namespaces("st-sty-")
    );
}
