//! Starting and stopping the processes of a topology: each host's `run` commands are started
//! inside its namespace (`ip netns exec`), detached in their own process group, stdout and
//! stderr to one log file per command; stopping sends SIGTERM to every process in the
//! topology's namespaces, waits (bounded), and then the teardown kills what is left.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::netns::{self, Error};
use crate::spec::{RunCommand, Topology};

/// How long `stop` waits for processes to exit after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// One started command.
#[derive(Debug, Clone)]
pub struct Started {
    pub host: String,
    pub pid: u32,
    pub argv: Vec<String>,
    pub log: PathBuf,
}

/// The argv of a run command. A `Line` is split on whitespace (no shell, no quoting: use the
/// list form for arguments with spaces); a leading `strait` becomes `self_exe`, so a topology
/// runs the same build that started it.
pub fn argv(cmd: &RunCommand, self_exe: &Path) -> Vec<String> {
    let mut v: Vec<String> = match cmd {
        RunCommand::Line(line) => line.split_whitespace().map(str::to_owned).collect(),
        RunCommand::Argv(v) => v.clone(),
    };
    if v.first().is_some_and(|p| p == "strait") {
        v[0] = self_exe.to_string_lossy().into_owned();
    }
    v
}

/// Start every host's commands (hosts in file order); logs go to `log_dir/<host>-<i>.log`.
pub fn start(topology: &Topology, log_dir: &Path, self_exe: &Path) -> Result<Vec<Started>, Error> {
    std::fs::create_dir_all(log_dir).map_err(|source| Error::Spawn {
        command: format!("mkdir {}", log_dir.display()),
        source,
    })?;
    let mut started = Vec::new();
    for host in &topology.hosts {
        let ns = topology.host_netns(host);
        for (i, cmd) in host.run.iter().enumerate() {
            let argv = argv(cmd, self_exe);
            let Some((program, args)) = argv.split_first() else {
                continue;
            };
            let log = log_dir.join(format!("{}-{i}.log", host.name));
            let spawn_err = |source| Error::Spawn {
                command: argv.join(" "),
                source,
            };
            let out = File::create(&log).map_err(spawn_err)?;
            let err = out.try_clone().map_err(spawn_err)?;
            let child = netns::exec(&ns, program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .process_group(0)
                .spawn()
                .map_err(spawn_err)?;
            tracing::info!(host = %host.name, pid = child.id(), command = %argv.join(" "), "started");
            started.push(Started {
                host: host.name.clone(),
                pid: child.id(),
                argv,
                log,
            });
        }
    }
    Ok(started)
}

/// SIGTERM every process in the topology's namespaces and wait up to `STOP_GRACE` for them to
/// go; returns how many were still running (the teardown then kills them).
pub fn stop(prefix: &str) -> Result<usize, Error> {
    let namespaces: Vec<String> = netns::list()?
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect();
    let pids = |ns: &[String]| -> Vec<u32> {
        ns.iter()
            .filter_map(|n| {
                let argv = ["ip", "netns", "pids", n.as_str()].map(str::to_owned);
                netns::run(&argv).ok()
            })
            .flat_map(|o| netns::parse_pids(&String::from_utf8_lossy(&o.stdout)))
            .collect()
    };
    let running = pids(&namespaces);
    if running.is_empty() {
        return Ok(0);
    }
    let mut kill = vec!["kill".to_owned(), "-TERM".to_owned()];
    kill.extend(running.iter().map(u32::to_string));
    let _ = netns::run(&kill);
    let deadline = Instant::now() + STOP_GRACE;
    loop {
        let left = pids(&namespaces).len();
        if left == 0 || Instant::now() >= deadline {
            return Ok(left);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_lines_split_and_strait_becomes_this_binary() {
        let exe = Path::new("/opt/strait");
        assert_eq!(
            argv(
                &RunCommand::Line("strait  node --config n.toml".into()),
                exe
            ),
            ["/opt/strait", "node", "--config", "n.toml"]
        );
        assert_eq!(
            argv(
                &RunCommand::Argv(vec!["sh".into(), "-c".into(), "a b".into()]),
                exe
            ),
            ["sh", "-c", "a b"]
        );
        assert!(argv(&RunCommand::Line("   ".into()), exe).is_empty());
    }
}
