//! The soak's processes: who runs where, killing a host's processes (SIGKILL) and starting
//! its `run` commands again, their RSS, the ones that exited on their own, and the panics in
//! their logs.
//!
//! Contract: a process the soak started is reaped once it has exited (a day of restarts
//! leaves no zombies); a restarted host's output is appended to `<logs>/<host>-restarts.log`;
//! a tracked process found exited while its host is not down is reported once, then no longer
//! tracked.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use strait_topology::netns;
use strait_topology::spec::{Host, Topology};
use strait_topology::supervisor::{self, Started};

use super::super::process::{exited, pids};

/// Bound on waiting for a killed host's processes to be gone.
const KILL_WAIT: Duration = Duration::from_secs(3);

/// One process the soak watches.
struct Tracked {
    host: String,
    /// What runs: `node`, `origin`, `director`.
    what: &'static str,
    pid: u32,
}

/// The processes of the topology and their largest RSS.
pub struct Hosts {
    exe: PathBuf,
    logs: PathBuf,
    tracked: Vec<Tracked>,
    /// Largest RSS seen per `"<host> <what>"`, bytes.
    pub max_rss: BTreeMap<String, u64>,
    /// Processes that exited without being killed.
    pub exits: Vec<String>,
}

/// What a run line starts: `node`, `director`, `origin` (or `other`).
pub fn what(argv: &[String]) -> &'static str {
    match argv.get(1).map(String::as_str) {
        Some("node") => "node",
        Some("director") => "director",
        Some("sim") if argv.get(2).map(String::as_str) == Some("origin") => "origin",
        _ => "other",
    }
}

impl Hosts {
    /// Tracks what `supervisor::start` started.
    pub fn new(started: &[Started], exe: PathBuf, logs: PathBuf) -> Hosts {
        let tracked = started
            .iter()
            .map(|s| Tracked {
                host: s.host.clone(),
                what: what(&s.argv),
                pid: s.pid,
            })
            .collect();
        Hosts {
            exe,
            logs,
            tracked,
            max_rss: BTreeMap::new(),
            exits: Vec::new(),
        }
    }

    /// SIGKILL to every process on `host`; waits (bounded) until they are gone and reaps ours.
    pub fn kill(&mut self, topology: &Topology, host: &Host) -> anyhow::Result<()> {
        let ns = topology.host_netns(host);
        super::super::process::signal_host(&ns, libc::SIGKILL)?;
        let deadline = Instant::now() + KILL_WAIT;
        while !pids(&ns)?.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let (gone, kept): (Vec<Tracked>, Vec<Tracked>) = std::mem::take(&mut self.tracked)
            .into_iter()
            .partition(|t| t.host == host.name);
        self.tracked = kept;
        for t in gone {
            reap(t.pid);
        }
        Ok(())
    }

    /// Starts `host`'s run commands again.
    pub fn restart(&mut self, topology: &Topology, host: &Host) -> anyhow::Result<()> {
        let ns = topology.host_netns(host);
        let log_path = self.logs.join(format!("{}-restarts.log", host.name));
        for cmd in &host.run {
            let argv = supervisor::argv(cmd, &self.exe);
            let (program, args) = argv
                .split_first()
                .ok_or_else(|| anyhow!("empty run line"))?;
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .with_context(|| format!("cannot open {}", log_path.display()))?;
            let child = netns::exec(&ns, program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(log.try_clone().context("restart log")?)
                .stderr(log)
                .process_group(0)
                .spawn()
                .with_context(|| format!("cannot restart {} on {}", argv.join(" "), host.name))?;
            self.tracked.push(Tracked {
                host: host.name.clone(),
                what: what(&argv),
                pid: child.id(),
            });
        }
        Ok(())
    }

    /// Reads every tracked process's RSS; reports (once) and reaps those that exited.
    pub fn sample(&mut self) {
        let mut still = Vec::with_capacity(self.tracked.len());
        for t in std::mem::take(&mut self.tracked) {
            if exited(t.pid) {
                reap(t.pid);
                self.exits.push(format!(
                    "{}'s {} (pid {}) exited on its own",
                    t.host, t.what, t.pid
                ));
                continue;
            }
            if let Some(rss) = rss(t.pid) {
                let max = self
                    .max_rss
                    .entry(format!("{} {}", t.host, t.what))
                    .or_default();
                *max = (*max).max(rss);
            }
            still.push(t);
        }
        self.tracked = still;
    }
}

/// Reaps `pid` if it is our exited child (no wait when it is not).
fn reap(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    for _ in 0..50 {
        let mut status = 0;
        // SAFETY: waitpid on one pid with WNOHANG; `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r != 0 {
            return; // reaped, or not our child
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `VmRSS` of `pid` in bytes.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    rss_of(&status)
}

/// `VmRSS` in bytes from the text of `/proc/<pid>/status`.
pub fn rss_of(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Every log file under `dir` (recursively bounded to one level), and the panics in them
/// (`file: line`).
pub fn panics(dir: &Path) -> (usize, Vec<String>) {
    let mut files = 0;
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, found);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        files += 1;
        let text = std::fs::read(&path).unwrap_or_default();
        for line in String::from_utf8_lossy(&text).lines() {
            if line.contains("panicked at") {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                found.push(format!("{}: {}", name.unwrap_or_default(), line.trim()));
            }
        }
    }
    (files, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_from_proc_status() {
        assert_eq!(rss_of("Name:\tx\nVmRSS:\t   2048 kB\n"), Some(2048 * 1024));
        assert_eq!(rss_of("Name:\tx\n"), None);
        assert!(rss(std::process::id()).is_some_and(|b| b > 0));
    }

    #[test]
    fn run_lines_are_told_apart() {
        let v = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(what(&v("/x/strait node --config n.toml")), "node");
        assert_eq!(what(&v("/x/strait sim origin --listen a")), "origin");
        assert_eq!(what(&v("/x/strait director --config d")), "director");
        assert_eq!(what(&v("sh -c true")), "other");
    }

    /// A directory removed with its contents on drop, also when the test fails.
    struct RemovedOnDrop(std::path::PathBuf);

    impl Drop for RemovedOnDrop {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn panics_are_found_in_log_files() {
        let dir = std::env::temp_dir().join(format!("strait-soak-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _cleanup = RemovedOnDrop(dir.clone());
        std::fs::write(
            dir.join("b1-0.log"),
            "ok\nthread 'main' panicked at src/x.rs:1:2:\n",
        )
        .unwrap();
        std::fs::write(dir.join("b2-0.log"), "fine\n").unwrap();
        std::fs::write(dir.join("notes.txt"), "panicked at\n").unwrap();
        let (files, found) = panics(&dir);
        assert_eq!(files, 2);
        assert_eq!(
            found,
            vec!["b1-0.log: thread 'main' panicked at src/x.rs:1:2:".to_owned()]
        );
    }
}
