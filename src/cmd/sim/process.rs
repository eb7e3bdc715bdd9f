//! The scenarios' own processes: whether one has exited, killing a backend's `strait node`
//! (only after checking, in `/proc`, that the pid is one), and the processes of a host.

use std::path::Path;

use anyhow::{bail, Context};

/// Whether process `pid` has exited (gone, or a zombie waiting for us to reap it).
pub fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) S ...`: the state follows the last `)` (comm may hold one).
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_none_or(|state| state == 'Z' || state == 'X'),
        Err(_) => true,
    }
}

/// SIGKILL to `pid`, after checking it is a `strait node` (a pid the supervisor started).
pub fn kill_node(pid: u32) -> anyhow::Result<()> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .with_context(|| format!("process {pid} is gone"))?;
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let is_strait = args
        .first()
        .is_some_and(|a| Path::new(&*String::from_utf8_lossy(a)).ends_with("strait"));
    if !is_strait || args.get(1) != Some(&&b"node"[..]) {
        bail!("process {pid} is not a `strait node`");
    }
    let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
    // SAFETY: kill has no memory preconditions; the pid is our own child, checked above.
    if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot kill the node");
    }
    Ok(())
}

/// The processes in namespace `netns`, newest first.
pub fn pids(netns: &str) -> anyhow::Result<Vec<libc::pid_t>> {
    let out = std::process::Command::new("ip")
        .args(["netns", "pids", netns])
        .output()
        .context("ip netns pids")?;
    let mut pids: Vec<libc::pid_t> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    pids.sort_unstable_by(|a, b| b.cmp(a));
    Ok(pids)
}

/// `signal` to every process in namespace `netns` (one the scenario created), newest first: a
/// child (keepalived's VRRP process) dies before the parent it watches, so nothing gets to
/// resign or clean up, as when the host dies.
pub fn signal_host(netns: &str, signal: libc::c_int) -> anyhow::Result<()> {
    for pid in pids(netns)? {
        // SAFETY: kill has no memory preconditions; the pids are those of a namespace the
        // scenario created.
        unsafe { libc::kill(pid, signal) };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn a_running_process_has_not_exited_a_zombie_or_unknown_pid_has() {
        assert!(!exited(std::process::id()));
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        // Not reaped yet: a zombie once it has finished.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !exited(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(exited(pid), "a finished child counts as exited");
        child.wait().expect("reap");
        assert!(exited(pid));
        assert!(exited(u32::MAX));
    }

    #[test]
    fn only_a_strait_node_is_killed() {
        let err = kill_node(std::process::id()).expect_err("the test binary is no node");
        assert!(err.to_string().contains("is not a `strait node`"), "{err}");
        assert!(kill_node(u32::MAX).is_err());
    }
}
