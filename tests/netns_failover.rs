//! `strait sim run failover` end to end, in a copy of the example topology (its own name, so
//! its namespaces are its own): SIGKILL of the master with strait's VRRP (the new master
//! forwards, every established connection survives, the service is back), SIGTERM (a
//! graceful handover: every established connection survives, at most a probe or two lost to
//! a busy machine), a backend added before the kill (the report counts what is lost without
//! connection sync), and the same pair with keepalived moving the VIP (the comparison runs).
//! The runs are sequential: each one's timings should not suffer from the others.
//! Needs root; outside CI it says SKIP.

mod support;

use std::path::Path;
use std::process::Command;

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
    text[..at].split_whitespace().last()?.parse().ok()
}

#[test]
fn the_failover_scenario_measures_takeovers() {
    if !support::require_root("failover_scenario", &["ip", "keepalived"]) {
        return;
    }
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
    let failed = number_before(&out, " failed; the longest gap").expect("failed probes");
    assert!(
        failed <= 2,
        "a graceful handover lost {failed} probes:\n{out}"
    );

    let (code, out) = run(&topo, &logs, &["--kill", "sigkill", "--add-backend"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("the last backend added to both directors"),
        "{out}"
    );
    let kept = number_before(&out, "/20 delivered").expect("long connections");
    assert!(
        kept < 20,
        "without sync some flows must move to the new backend:\n{out}"
    );

    let (_, out) = run(&topo, &logs, &["--vrrp", "keepalived", "--kill", "sigterm"]);
    assert!(out.contains("VRRP by keepalived"), "{out}");
    assert!(out.contains("takeover on the wire: "), "{out}");
    assert!(out.contains("torn down (7 namespaces removed)"), "{out}");
    assert!(support::namespaces("st-fo-").is_empty());
}
