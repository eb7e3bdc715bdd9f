//! `strait sim run demo` end to end, on a copy of the DR example topology (its own name, so it
//! runs beside other tests): exit 0, every phase's line, both traffic phases fully answered,
//! the killed backend gone from the spread, and no `st-<name>-` namespace left — also after a
//! Ctrl-C in the middle. Needs root; outside CI it says SKIP. Without the default topology in
//! the current directory the demo fails with a clear message (no root needed).

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Datapath of the test's director copy: the example's own (`xdp`); the director scenario
/// tests (tests/netns_director.rs) also cover the userspace one.
const DATAPATH: &str = "xdp";
/// Bound on a whole demo run (the demo's own waits are all shorter).
const RUN_BOUND: Duration = Duration::from_secs(120);
const EXAMPLE: &str = "topology/examples/topologies/dr.toml";
const EXAMPLE_DIRECTOR: &str = "topology/examples/director/dr/director.toml";

/// `strait sim down` for the copy, on drop (the demo tears down itself; this is for when the
/// demo process itself died).
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_strait"))
            .args(["sim", "down", "--topology"])
            .arg(&self.0)
            .output();
    }
}

/// The example topology renamed `name`, its director running a copy of the example director
/// config with [`DATAPATH`]; the nodes keep the example's repo-relative configs.
fn topology_copy(name: &str, dir: &Path) -> PathBuf {
    let mut director: toml::Table = std::fs::read_to_string(EXAMPLE_DIRECTOR)
        .expect("example director config")
        .parse()
        .expect("director toml");
    director["director"]
        .as_table_mut()
        .expect("[director]")
        .insert("datapath".into(), DATAPATH.into());
    let director_file = dir.join("director.toml");
    std::fs::write(&director_file, toml::to_string(&director).expect("toml")).expect("write");

    let mut topo: toml::Table = std::fs::read_to_string(EXAMPLE)
        .expect("example topology")
        .parse()
        .expect("topology toml");
    topo.insert("name".into(), name.into());
    let hosts = topo["host"].as_array_mut().expect("hosts");
    let host = hosts
        .iter_mut()
        .find(|h| h["name"].as_str() == Some("director"))
        .expect("director host");
    let line = format!("strait director --config {}", director_file.display());
    host.as_table_mut()
        .expect("host table")
        .insert("run".into(), toml::Value::Array(vec![line.into()]));
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, toml::to_string(&topo).expect("toml")).expect("write topology");
    file
}

/// `strait sim run demo` on `file`, started with piped stdout (lines sent on the receiver).
fn start_demo(
    file: &Path,
    dir: &Path,
    requests: u32,
) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["sim", "run", "demo", "--topology"])
        .arg(file)
        .arg("--logs")
        .arg(dir.join("logs"))
        .args(["--requests", &requests.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn strait sim run demo");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits for the child within `bound` (killing it after); returns its exit code and stderr.
fn finish(mut child: std::process::Child, bound: Duration) -> (Option<i32>, String) {
    let deadline = Instant::now() + bound;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    (status.and_then(|s| s.code()), stderr)
}

#[test]
fn demo_answers_every_request_reports_and_leaves_nothing_behind() {
    if !support::require_root(
        "demo_answers_every_request_reports_and_leaves_nothing_behind",
        &["ip", "ethtool"],
    ) {
        return;
    }
    let name = "dmt";
    let prefix = format!("st-{name}-");
    let dir = support::scratch_dir("demo");
    let file = topology_copy(name, &dir);
    let _down = Down(file.clone());
    let (child, lines) = start_demo(&file, &dir, 300);
    let (code, stderr) = finish(child, RUN_BOUND);
    let out: Vec<String> = lines.try_iter().collect();
    let text = out.join("\n");
    let logs = dir.join("logs");
    assert_eq!(
        code,
        Some(0),
        "demo failed:\n{text}\nstderr:\n{stderr}\nlogs in {}",
        logs.display()
    );
    let has = |needle: &str| out.iter().any(|l| l.contains(needle));
    for needle in [
        "[1/5] topology up: 5 hosts, 7 processes started",
        "director dir-dr reports 3/3 backends up",
        "[3/5] the director's table",
        "datapath xdp/native",
        "10.71.0.100:80 tcp  10.71.0.13:80  up",
        "[4/5] killed `strait node` on b3",
        "the director marked 10.71.0.13:80 down after",
        "[5/5] Report: before the kill, 300 of 300 requests were answered",
        "topology dmt torn down (6 namespaces removed)",
    ] {
        assert!(has(needle), "no line with {needle:?} in:\n{text}");
    }
    // Both traffic phases: every request answered; the spread after the kill has no b3.
    let phases: Vec<usize> = (0..out.len())
        .filter(|&i| out[i].contains("300 GETs from client to 10.71.0.100:80"))
        .collect();
    assert_eq!(phases.len(), 2, "two traffic phases in:\n{text}");
    for &i in &phases {
        assert!(out[i].ends_with("300 answered, 0 failed"), "{}", out[i]);
    }
    let spread_before = &out[phases[0] + 1];
    let spread_after = &out[phases[1] + 1];
    for node in ["b1 ", "b2 ", "b3 "] {
        assert!(spread_before.contains(node), "{spread_before}");
    }
    assert!(
        spread_after.contains("b1 ")
            && spread_after.contains("b2 ")
            && !spread_after.contains("b3"),
        "{spread_after}"
    );
    assert!(
        support::namespaces(&prefix).is_empty(),
        "namespaces left: {:?}",
        support::namespaces(&prefix)
    );
}

#[test]
fn ctrl_c_in_the_middle_still_tears_everything_down() {
    if !support::require_root(
        "ctrl_c_in_the_middle_still_tears_everything_down",
        &["ip", "ethtool"],
    ) {
        return;
    }
    let name = "dmi";
    let prefix = format!("st-{name}-");
    let dir = support::scratch_dir("demo-int");
    let file = topology_copy(name, &dir);
    let _down = Down(file.clone());
    // The most requests allowed (seconds of traffic): the interrupt lands in the first phase.
    let (child, lines) = start_demo(&file, &dir, 10_000);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let up = line.contains("backends up");
                seen.push(line);
                if up {
                    break;
                }
            }
            Err(_) => {
                let (code, stderr) = finish(child, Duration::from_secs(1));
                panic!(
                    "no backends-up line; exit {code:?}:\n{}\n{stderr}",
                    seen.join("\n")
                );
            }
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(!support::namespaces(&prefix).is_empty(), "topology not up");
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let (code, stderr) = finish(child, Duration::from_secs(30));
    seen.extend(lines.try_iter());
    assert_eq!(
        code,
        Some(130),
        "exit after SIGINT:\n{}\n{stderr}",
        seen.join("\n")
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        seen.iter().any(|l| l.contains("topology dmi torn down")),
        "{}",
        seen.join("\n")
    );
    assert!(
        support::namespaces(&prefix).is_empty(),
        "namespaces left: {:?}",
        support::namespaces(&prefix)
    );
}

#[test]
fn without_the_default_topology_the_demo_says_where_to_run_it() {
    let dir = support::scratch_dir("demo-cwd");
    let out: Output = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["sim", "run", "demo"])
        .current_dir(&dir)
        .output()
        .expect("run strait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("topology/examples/topologies/story.toml not found")
            && stderr.contains("run from the repository root or pass --topology FILE"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout when nothing ran");
}
