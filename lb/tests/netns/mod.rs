//! Private network namespaces for the XDP tests, and running a test inside one.
//!
//! Contract: [`Netns::new`] creates `<prefix><pid>-<n>` with `ip netns add` (the prefix is
//! unique per test file) and deletes it on drop, also when the test panics; nothing is added
//! to the root namespace. [`Netns::run_test`] re-runs one test of the current test binary
//! under `ip netns exec` (so `/sys/class/net` and netlink see the namespace) with
//! `STRAIT_NETNS_CHILD` set, and panics with the child's output when it fails;
//! [`in_child`] tells the test body it is that child ([`Netns::run_self`]: the same for a
//! whole executable). [`require_root`] prints `SKIP` and
//! returns false when not root, or panics under `CI=true`.
#![allow(dead_code)]

pub mod nexthops;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

const CHILD_ENV: &str = "STRAIT_NETNS_CHILD";

/// Whether this process is the re-run test inside a namespace.
pub fn in_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Root check with the project's SKIP / CI rule.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} needs root, and CI=true forbids skipping");
    }
    eprintln!("SKIP {test}: needs root (network namespaces, BPF)");
    false
}

/// The stand-in test of a build without the XDP object (clang was missing): `SKIP <what>`,
/// or a failure under `CI=true`.
pub fn skip_without_bpf(what: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "built without clang in CI"
    );
    eprintln!("SKIP {what}: built without clang");
}

/// Runs `cmd` through `sh -c`, panicking with its output on failure; returns stdout.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A namespace deleted on drop.
pub struct Netns {
    /// Its name.
    pub name: String,
}

impl Netns {
    /// Creates `<prefix><pid>-<n>`.
    pub fn new(prefix: &str) -> Netns {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        sh(&format!("ip netns add {name}"));
        let ns = Netns { name };
        ns.exec("ip link set lo up");
        ns
    }

    /// Runs `cmd` (through `sh -c`) inside the namespace; returns stdout.
    pub fn exec(&self, cmd: &str) -> String {
        sh(&format!("ip netns exec {} sh -c '{cmd}'", self.name))
    }

    /// Re-runs test `test` of this binary inside the namespace (see the module doc).
    pub fn run_test(&self, test: &str) {
        let exe = std::env::current_exe().unwrap();
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(exe)
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &self.name)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{test} in {}:\n{text}", self.name);
        assert!(text.contains("1 passed"), "{test} did not run:\n{text}");
        print!("{text}");
    }
}

impl Netns {
    /// Runs this executable again inside the namespace with `args` and `STRAIT_NETNS_CHILD`
    /// set, its output going to ours; returns whether it succeeded (for `harness = false`
    /// benchmarks).
    pub fn run_self(&self, args: &[String]) -> bool {
        let exe = std::env::current_exe().unwrap();
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(exe)
            .args(args)
            .env(CHILD_ENV, &self.name)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
