//! `strait sim run soak` for 40 s on a copy of the soak topology (its own name, `soakt`, so
//! its namespaces are its own): exit 0, faults done, bodies checked, no failure, and no
//! `st-soakt-` namespace left. Needs root; outside CI it says SKIP.

mod support;

use std::process::Command;

#[test]
fn a_short_soak_kills_and_restarts_and_every_body_checks() {
    if !support::require_root(
        "a_short_soak_kills_and_restarts_and_every_body_checks",
        &["ip", "ethtool"],
    ) {
        return;
    }
    let dir = support::scratch_dir("soak");
    let topology = support::topology_copy(
        "topology/examples/topologies/soak.toml",
        "soakt",
        &dir,
        &[],
        &[],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["sim", "run", "soak", "--duration", "40s", "--seed", "18"])
        .arg("--topology")
        .arg(&topology)
        .arg("--logs")
        .arg(dir.join("logs"))
        .output()
        .expect("strait sim run soak");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    let left = support::namespaces("st-soakt-");
    assert!(left.is_empty(), "namespaces left: {left:?}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\nstderr:\n{stderr}\nlogs in {}",
        dir.join("logs").display()
    );
    for needle in [
        "seed 18, 40 s",
        "the director has 3/3 backends up",
        "s: killed ",
        "wrong body 0, truncated 0, bad status 0",
        "0 panics; 0 processes exited on their own",
        "result    held: no failure",
        "topology soakt torn down (8 namespaces removed)",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in:\n{stdout}");
    }
    let full = stdout
        .split("full ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(full >= 100, "too few checked answers ({full}):\n{stdout}");
}
