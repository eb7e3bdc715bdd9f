//! Executes [`plan`] steps with the `ip` command (iproute2), and tears topologies down.
//!
//! Contract:
//! * [`up`] first removes whatever a previous run of the same topology left (by prefix), writes
//!   the bridge ports' pass-all XDP object ([`crate::xdp_pass::write_object`]), then runs
//!   [`plan::up`] step by step; if a step fails it tears down what it built and returns
//!   the failing command with its exit status and stderr.
//! * [`down`] is idempotent and needs no spec: it lists `ip netns list`, kills the processes
//!   still running in each namespace whose name starts with the prefix (`ip netns pids`, then
//!   `kill -KILL`), and deletes those namespaces (which deletes their veths and bridges). It is
//!   what `sim down` runs, also after a crash.
//! * All of this needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); [`missing_tools`] tells which
//!   programs a plan needs that are not on `PATH` (`ethtool` comes from the `ethtool` package).

use std::env;
use std::io;
use std::path::Path;
use std::process::{Command, ExitStatus, Output};

use crate::plan::{self, Step};
use crate::spec::Topology;

/// Why running a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The program could not be started (not installed, not executable).
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The program ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// Its stderr, trimmed.
        stderr: String,
    },
}

/// Runs `argv` and returns its output; a non-zero exit is an [`Error::Failed`].
pub fn run(argv: &[String]) -> Result<Output, Error> {
    let command = argv.join(" ");
    let Some((program, args)) = argv.split_first() else {
        return Err(Error::Spawn {
            command,
            source: io::Error::new(io::ErrorKind::InvalidInput, "empty command line"),
        });
    };
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(Error::Failed {
            command,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(output)
}

/// Runs `steps` in order, stopping at the first failure.
pub fn apply(steps: &[Step]) -> Result<(), Error> {
    for step in steps {
        tracing::debug!(command = %step.argv().join(" "), "topology step");
        run(&step.argv())?;
    }
    Ok(())
}

/// Builds `topology`: removes leftovers with its prefix, then applies [`plan::up`]. On a
/// failure, tears down what was built and returns the failure.
pub fn up(topology: &Topology) -> Result<(), Error> {
    let prefix = topology.prefix();
    let stale = down(&prefix)?;
    if !stale.is_empty() {
        tracing::info!(?stale, "removed namespaces left by a previous run");
    }
    let object = Path::new(crate::xdp_pass::OBJECT_PATH);
    crate::xdp_pass::write_object(object).map_err(|source| Error::Spawn {
        command: format!("write {}", object.display()),
        source,
    })?;
    if let Err(e) = apply(&plan::up(topology)) {
        if let Err(cleanup) = down(&prefix) {
            tracing::warn!(error = %cleanup, "teardown after a failed build also failed");
        }
        return Err(e);
    }
    tracing::info!(topology = %topology.name, hosts = topology.hosts.len(), "topology up");
    Ok(())
}

/// Removes every namespace whose name starts with `prefix` (see [`plan::down`]) after killing
/// the processes inside; returns the names removed. Removing nothing is not an error.
pub fn down(prefix: &str) -> Result<Vec<String>, Error> {
    let steps = plan::down(prefix, &list()?);
    let mut removed = Vec::with_capacity(steps.len());
    for step in &steps {
        if let Step::DeleteNetns { netns } = step {
            kill_processes(netns);
            run(&step.argv())?;
            removed.push(netns.clone());
        }
    }
    if !removed.is_empty() {
        tracing::info!(prefix, ?removed, "namespaces removed");
    }
    Ok(removed)
}

/// Names of the existing network namespaces (`ip netns list`).
pub fn list() -> Result<Vec<String>, Error> {
    let output = run(&["ip".to_owned(), "netns".to_owned(), "list".to_owned()])?;
    Ok(parse_list(&String::from_utf8_lossy(&output.stdout)))
}

/// Parses `ip netns list` output: one namespace per line, `name` or `name (id: N)`.
pub fn parse_list(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Parses `ip netns pids` output: one process id per line; anything else is skipped.
pub fn parse_pids(stdout: &str) -> Vec<u32> {
    stdout
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

/// Best effort: SIGKILL every process in `netns`, so that deleting it frees it for real.
fn kill_processes(netns: &str) {
    let argv = ["ip", "netns", "pids", netns].map(str::to_owned);
    let pids = match run(&argv) {
        Ok(out) => parse_pids(&String::from_utf8_lossy(&out.stdout)),
        Err(e) => {
            tracing::warn!(netns, error = %e, "cannot list processes in namespace");
            return;
        }
    };
    if pids.is_empty() {
        return;
    }
    let mut kill = vec!["kill".to_owned(), "-KILL".to_owned()];
    kill.extend(pids.iter().map(u32::to_string));
    match run(&kill) {
        Ok(_) => tracing::info!(netns, ?pids, "killed processes left in namespace"),
        Err(e) => tracing::warn!(netns, error = %e, "cannot kill processes in namespace"),
    }
}

/// A [`Command`] that runs `program` inside `netns` (`ip netns exec <netns> <program>`).
pub fn exec(netns: &str, program: &str) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", netns, program]);
    command
}

/// Programs that `steps` need (plus `ip`) that are not found on `PATH`, in first-use order.
pub fn missing_tools(steps: &[Step]) -> Vec<&'static str> {
    let mut missing = Vec::new();
    let needed = std::iter::once("ip").chain(steps.iter().filter_map(Step::tool));
    for tool in needed {
        if !missing.contains(&tool) && !on_path(tool) {
            missing.push(tool);
        }
    }
    missing
}

/// Whether an executable file called `program` is in a directory of `PATH`.
pub fn on_path(program: &str) -> bool {
    let Some(path) = env::var_os("PATH") else {
        return false;
    };
    env::split_paths(&path).any(|dir| is_executable(&dir.join(program)))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_netns_list_with_and_without_ids() {
        let out = "st-demo-sw (id: 2)\nst-demo-client\n\nother (id: 0)\n";
        assert_eq!(parse_list(out), ["st-demo-sw", "st-demo-client", "other"]);
        assert!(parse_list("").is_empty());
    }

    #[test]
    fn parses_pids_and_skips_noise() {
        assert_eq!(parse_pids("12\n 345 \nnot-a-pid\n\n7\n"), [12, 345, 7]);
    }

    #[test]
    fn missing_tools_names_each_absent_program_once() {
        let steps = [
            Step::SetSysctl {
                netns: "n".to_owned(),
                key: "k".to_owned(),
                value: "v".to_owned(),
            },
            Step::DisableTxChecksum {
                netns: "n".to_owned(),
                dev: "eth0".to_owned(),
            },
        ];
        let mut expected = Vec::new();
        for tool in ["ip", "sysctl", "ethtool"] {
            if !on_path(tool) {
                expected.push(tool);
            }
        }
        assert_eq!(missing_tools(&steps), expected);
        assert!(!on_path("strait-no-such-program-7f3a"));
        assert!(on_path("sh"));
    }

    #[test]
    fn run_reports_failures_with_command_and_stderr() {
        let argv = ["sh", "-c", "echo oops >&2; exit 3"].map(str::to_owned);
        match run(&argv) {
            Err(Error::Failed {
                command,
                status,
                stderr,
            }) => {
                assert_eq!(command, "sh -c echo oops >&2; exit 3");
                assert_eq!(status.code(), Some(3));
                assert_eq!(stderr, "oops");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        let missing = ["strait-no-such-program-7f3a".to_owned()];
        assert!(matches!(run(&missing), Err(Error::Spawn { .. })));
        assert!(matches!(run(&[]), Err(Error::Spawn { .. })));
        match run(&["sh", "-c", "printf hi"].map(str::to_owned)) {
            Ok(out) => assert_eq!(out.stdout, b"hi"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn exec_wraps_ip_netns_exec() {
        let mut command = exec("st-demo-a", "ping");
        command.arg("-c1");
        let args: Vec<_> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(command.get_program(), "ip");
        assert_eq!(args, ["netns", "exec", "st-demo-a", "ping", "-c1"]);
    }
}
