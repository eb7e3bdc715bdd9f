//! `strait sim run failover` end to end, in a copy of the example topology (its own name, so
//! its namespaces are its own): SIGKILL of the master with strait's VRRP (the new master
//! forwards, every established connection survives, the service is back), SIGTERM (a
//! graceful handover: every established connection survives, at most a probe or two lost to
//! a busy machine), and the same pair with keepalived moving the VIP (the comparison runs).
//! Then connection sync (`connection_sync_keeps_every_flow`), 100 long connections and a
//! backend added before every kill, so that the new master's own table would send some of
//! them elsewhere: with sync every one survives and no probe fails after the takeover; with
//! `--no-sync` some are lost (so the test can fail); with 1% of the sync datagrams dropped
//! none is lost; the killed master restarted catches up, preempts, and none is lost.
//! The runs are sequential: each one's timings should not suffer from the others.
//! Needs root; outside CI it says SKIP.

mod support;

use std::path::Path;
use std::process::Command;

/// The tests of this file one at a time: two failovers at once on a 2-core machine would
/// measure each other.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs the scenario; returns (exit code, stdout).
fn run(topology: &Path, logs: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["sim", "run", "failover", "--topology"])
        .arg(topology)
        .arg("--logs")
        .arg(logs)
        .args(extra)
        .output()
        .expect("strait sim run failover");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}");
    (out.status.code().unwrap_or(-1), stdout)
}

/// The number after `label` in `text` (e.g. "probes, " → failed count).
fn number_before(text: &str, suffix: &str) -> Option<u64> {
    let at = text.find(suffix)?;
    text[..at]
        .split_whitespace()
        .last()?
        .trim_start_matches('(')
        .parse()
        .ok()
}

#[test]
fn the_failover_scenario_measures_takeovers() {
    if !support::require_root("failover_scenario", &["ip", "keepalived"]) {
        return;
    }
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = support::scratch_dir("failover");
    let topo = support::topology_copy("topology/examples/topologies/ha.toml", "fo", &dir, &[], &[]);
    let logs = dir.join("logs");

    let (code, out) = run(&topo, &logs, &["--kill", "sigkill"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("dir-a is master, dir-b backup"), "{out}");
    assert!(out.contains("takeover on the wire: "), "{out}");
    assert!(out.contains("20/20 delivered"), "{out}");
    assert!(out.contains("no advert from the master"), "{out}");
    assert!(out.contains("torn down (7 namespaces removed)"), "{out}");

    let (code, out) = run(&topo, &logs, &["--kill", "sigterm"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("20/20 delivered"), "{out}");
    assert!(out.contains("the master resigned (priority 0)"), "{out}");
    let failed = number_before(&out, " failed (").expect("failed probes");
    assert!(
        failed <= 2,
        "a graceful handover lost {failed} probes:\n{out}"
    );

    let (_, out) = run(&topo, &logs, &["--vrrp", "keepalived", "--kill", "sigterm"]);
    assert!(out.contains("VRRP by keepalived"), "{out}");
    assert!(out.contains("takeover on the wire: "), "{out}");
    assert!(out.contains("torn down (7 namespaces removed)"), "{out}");
    assert!(support::namespaces("st-fo-").is_empty());
}

/// Long connections delivered whole, failed probes after the takeover.
fn outcome(out: &str) -> (u64, u64) {
    (
        number_before(out, "/100 delivered").expect("long connections"),
        number_before(out, " after the takeover)").expect("probes failed after the takeover"),
    )
}

#[test]
fn connection_sync_keeps_every_flow() {
    if !support::require_root("connection_sync", &["ip", "nft"]) {
        return;
    }
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = support::scratch_dir("sync");
    let topo = support::topology_copy("topology/examples/topologies/ha.toml", "sy", &dir, &[], &[]);
    let logs = dir.join("logs");
    let base = ["--kill", "sigkill", "--add-backend", "--long", "100"];

    let (code, out) = run(&topo, &logs, &base);
    assert_eq!(code, 0, "{out}");
    assert_eq!(outcome(&out), (100, 0), "{out}");
    assert!(out.contains("dir-b: sync received"), "{out}");

    let no_sync: Vec<&str> = base.iter().copied().chain(["--no-sync"]).collect();
    let (_, out) = run(&topo, &logs, &no_sync);
    let (kept, _) = outcome(&out);
    assert!(
        kept < 100,
        "without sync some flows must move to the new backend:\n{out}"
    );
    assert!(out.contains("dir-b: no connection sync"), "{out}");

    let loss: Vec<&str> = base.iter().copied().chain(["--sync-loss", "1"]).collect();
    let (code, out) = run(&topo, &logs, &loss);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1% of the sync datagrams into dir-b"), "{out}");
    assert_eq!(outcome(&out), (100, 0), "{out}");

    let restart: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--restart-after", "2s", "--after", "6s"])
        .collect();
    let (code, out) = run(&topo, &logs, &restart);
    assert_eq!(code, 0, "{out}");
    assert_eq!(outcome(&out).0, 100, "{out}");
    assert!(out.contains("dir-a: sync received"), "{out}");
    assert!(out.contains("catch-up done"), "{out}");
    assert!(out.contains("dir-a after its restart: master"), "{out}");
    assert!(support::namespaces("st-sy-").is_empty());
}
