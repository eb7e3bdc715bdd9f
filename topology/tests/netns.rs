//! Namespace tests of the topology builder (root only): a 2-host topology is built, one host
//! pings the other, nothing is added to the root namespace, and teardown by prefix leaves no
//! namespace behind, also after a simulated crash with a process still running inside.
//!
//! Without root or a needed tool they print `SKIP <test>: <reason>` and pass; with `CI=true`
//! they fail instead.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use strait_topology::netns;
use strait_topology::plan;
use strait_topology::spec::Topology;

/// Whether the test can run; prints SKIP (or panics under `CI=true`) when it cannot.
fn require_root_and_tools(test: &str, topology: &Topology) -> bool {
    let reason = if !is_root() {
        Some("needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN)".to_owned())
    } else {
        let mut missing = netns::missing_tools(&plan::up(topology));
        if !netns::on_path("ping") {
            missing.push("ping");
        }
        (!missing.is_empty()).then(|| format!("missing programs: {}", missing.join(", ")))
    };
    match reason {
        None => true,
        Some(reason) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: {reason} (required when CI=true)")
        }
        Some(reason) => {
            println!("SKIP {test}: {reason}");
            false
        }
    }
}

/// Effective uid 0, read from `/proc/self/status`.
fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .is_some_and(|euid| euid == "0")
}

/// A 2-host, 1-LAN topology whose name is unique to this process and `tag`.
fn two_hosts(tag: char) -> Topology {
    let text = format!(
        r#"
name = "{tag}{pid}"
[[lan]]
name = "front"
subnet = "10.77.0.0/24"
[[host]]
name = "a"
lan = [{{ lan = "front", addr = "10.77.0.2/24" }}]
sysctls = {{ "net.ipv4.conf.all.arp_ignore" = "1" }}
[[host]]
name = "b"
lan = [{{ lan = "front", addr = "10.77.0.3/24" }}]
"#,
        pid = std::process::id() % 100_000
    );
    match Topology::from_toml(&text) {
        Ok(t) => t,
        Err(e) => panic!("fixture must parse: {e}"),
    }
}

/// Tears the prefix down when dropped, so a failed assertion leaves nothing behind.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Err(e) = netns::down(&self.0) {
            eprintln!("cleanup of {} failed: {e}", self.0);
        }
    }
}

fn ours(prefix: &str) -> Vec<String> {
    match netns::list() {
        Ok(all) => all.into_iter().filter(|n| n.starts_with(prefix)).collect(),
        Err(e) => panic!("ip netns list: {e}"),
    }
}

fn root_links() -> String {
    match netns::run(&["ip", "-o", "link", "show"].map(str::to_owned)) {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(|name| name.trim().to_owned())
            .collect::<Vec<_>>()
            .join(","),
        Err(e) => panic!("ip link show: {e}"),
    }
}

fn ping(from: &str, to: &str) -> bool {
    let status = netns::exec(from, "ping")
        .args(["-c1", "-W1", to])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    matches!(status, Ok(s) if s.success())
}

#[test]
fn two_hosts_ping_each_other_and_teardown_leaves_nothing() {
    let topology = two_hosts('p');
    if !require_root_and_tools(
        "two_hosts_ping_each_other_and_teardown_leaves_nothing",
        &topology,
    ) {
        return;
    }
    let prefix = topology.prefix();
    let _cleanup = Cleanup(prefix.clone());
    let links_before = root_links();
    if let Err(e) = netns::up(&topology) {
        panic!("up: {e}");
    }
    let mut names = ours(&prefix);
    names.sort();
    assert_eq!(
        names,
        [
            format!("{prefix}a"),
            format!("{prefix}b"),
            format!("{prefix}sw")
        ]
    );
    assert_eq!(
        root_links(),
        links_before,
        "nothing may be added to the root namespace"
    );

    let (a, b) = (format!("{prefix}a"), format!("{prefix}b"));
    assert!(ping(&a, "10.77.0.3"), "a cannot ping b");
    assert!(ping(&b, "10.77.0.2"), "b cannot ping a");
    assert!(!ping(&a, "10.77.0.9"), "a pinged an address nobody holds");

    let features = match netns::exec(&a, "ethtool").args(["-k", "eth0"]).output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(e) => panic!("ethtool -k: {e}"),
    };
    assert!(features.contains("tx-checksumming: off"), "{features}");
    let sysctl = netns::exec(&a, "sysctl")
        .args(["-n", "net.ipv4.conf.all.arp_ignore"])
        .output();
    assert!(
        matches!(sysctl, Ok(ref out) if out.stdout == b"1\n"),
        "{sysctl:?}"
    );

    let removed = match netns::down(&prefix) {
        Ok(r) => r,
        Err(e) => panic!("down: {e}"),
    };
    assert_eq!(removed, [a, b, format!("{prefix}sw")]);
    assert_eq!(ours(&prefix), Vec::<String>::new());
    assert_eq!(root_links(), links_before);
}

#[test]
fn down_by_prefix_after_a_crash_removes_namespaces_and_processes() {
    let topology = two_hosts('c');
    if !require_root_and_tools(
        "down_by_prefix_after_a_crash_removes_namespaces_and_processes",
        &topology,
    ) {
        return;
    }
    let prefix = topology.prefix();
    let _cleanup = Cleanup(prefix.clone());
    if let Err(e) = netns::up(&topology) {
        panic!("up: {e}");
    }
    // Building again over the leftovers works: `up` removes them first.
    if let Err(e) = netns::up(&topology) {
        panic!("second up: {e}");
    }
    let mut orphan = match netns::exec(&format!("{prefix}b"), "sleep")
        .arg("600")
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!("spawn sleep: {e}"),
    };
    // The crash: the spec is gone, only the prefix is known.
    drop(topology);
    let removed = match netns::down(&prefix) {
        Ok(r) => r,
        Err(e) => panic!("down: {e}"),
    };
    assert_eq!(removed.len(), 3, "{removed:?}");
    assert_eq!(ours(&prefix), Vec::<String>::new());
    match orphan.wait() {
        Ok(status) => assert_eq!(status.signal(), Some(9), "{status:?}"),
        Err(e) => panic!("wait: {e}"),
    }
    // Idempotent: nothing left to remove.
    assert!(matches!(netns::down(&prefix), Ok(ref r) if r.is_empty()));
}

#[test]
fn a_failed_build_is_torn_down_and_reports_the_command() {
    let text = format!(
        "name = \"f{}\"\n[[lan]]\nname = \"l\"\nsubnet = \"10.78.0.0/24\"\n[[host]]\nname = \"a\"\n\
         lan = [{{ lan = \"l\", addr = \"10.78.0.2\" }}]\n\
         sysctls = {{ \"net.ipv4.strait_no_such_key\" = \"1\" }}\n",
        std::process::id() % 100_000
    );
    let topology = match Topology::from_toml(&text) {
        Ok(t) => t,
        Err(e) => panic!("fixture must parse: {e}"),
    };
    if !require_root_and_tools(
        "a_failed_build_is_torn_down_and_reports_the_command",
        &topology,
    ) {
        return;
    }
    let prefix = topology.prefix();
    let _cleanup = Cleanup(prefix.clone());
    match netns::up(&topology) {
        Err(netns::Error::Failed { command, .. }) => assert_eq!(
            command,
            format!("ip netns exec {prefix}a sysctl -q -w net.ipv4.strait_no_such_key=1")
        ),
        other => panic!("expected the sysctl step to fail, got {other:?}"),
    }
    assert_eq!(ours(&prefix), Vec::<String>::new());
}
