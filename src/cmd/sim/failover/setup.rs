//! What `sim run failover` reads and writes before anything runs: the arguments, the two
//! directors' configs (copied into the log directory, `--advert-interval` applied, without
//! `[ha]` for `--vrrp keepalived`, and without the last backend for `--add-backend`), the
//! run lines pointed at the copies, and keepalived's configuration from the same `[ha]`.

use std::net::SocketAddrV4;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use strait_lb::config::{DirectorConfig, HaConfig};
use strait_topology::failover::{self, PairRoles};
use strait_topology::netns;
use strait_topology::spec::{RunCommand, Topology};

/// How the master dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// SIGKILL to every process of its host.
    Sigkill,
    /// SIGTERM to every process of its host (a graceful stop).
    Sigterm,
    /// Its client interface goes down; its processes run on.
    Link,
}

/// Which VRRP moves the VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vrrp {
    /// strait's own `[ha]`.
    Strait,
    /// keepalived, with strait directors without `[ha]`.
    Keepalived,
}

/// What `sim run failover` was asked for.
pub struct FailoverArgs {
    pub topology: Option<PathBuf>,
    pub logs: Option<PathBuf>,
    pub kill: Kill,
    pub vrrp: Vrrp,
    /// Long-lived connections.
    pub long: u16,
    /// Traffic after the kill.
    pub after: Duration,
    /// Overrides both directors' `[ha] advert_interval`.
    pub advert_interval: Option<Duration>,
    /// Start without the first service's last backend and add it (both directors reload)
    /// halfway through the warm-up, after the long connections opened.
    pub add_backend: bool,
    /// Connection sync as the configs say (false: `sync = false` written into the copies).
    pub sync: bool,
    /// Percentage of sync datagrams dropped on their way into the backup.
    pub sync_loss: Option<u8>,
    /// Restart the killed master this long after the kill.
    pub restart_after: Option<Duration>,
}

/// Everything read before anything is built.
pub(super) struct Setup {
    pub(super) path: PathBuf,
    pub(super) topology: Topology,
    pub(super) roles: PairRoles,
    pub(super) configs: [DirectorConfig; 2],
    pub(super) ha: [HaConfig; 2],
    pub(super) vip: SocketAddrV4,
    pub(super) logs: PathBuf,
    /// `--vrrp keepalived`: each director host's keepalived command, started once both
    /// directors run (attaching XDP to a veth bounces its link, which keepalived would take
    /// for a failure).
    pub(super) keepalived: Option<[Vec<String>; 2]>,
}

pub(super) fn prepare(args: &FailoverArgs) -> anyhow::Result<Setup> {
    let path = args
        .topology
        .clone()
        .unwrap_or_else(|| PathBuf::from(failover::DEFAULT_TOPOLOGY));
    if !path.is_file() {
        bail!(
            "{} not found: run from the repository root or pass --topology FILE",
            path.display()
        );
    }
    let mut topology = super::super::load(&path)?;
    let roles = failover::pair_roles(&topology)
        .with_context(|| format!("{}: cannot run the failover scenario", path.display()))?;
    let logs = args
        .logs
        .clone()
        .unwrap_or_else(|| PathBuf::from("/tmp/strait-sim").join(&topology.name));
    std::fs::create_dir_all(&logs).context("log directory")?;
    let mut configs = Vec::new();
    let mut has = Vec::new();
    let mut keepalived = Vec::new();
    for role in &roles.directors {
        let (config, ha, argv) = director_copy(&mut topology, role, args, &logs)?;
        configs.push(config);
        has.push(ha);
        keepalived.push(argv);
    }
    let configs: [DirectorConfig; 2] = configs.try_into().map_err(|_| anyhow!("two directors"))?;
    let ha: [HaConfig; 2] = has.try_into().map_err(|_| anyhow!("two directors"))?;
    if ha[0].vrid != ha[1].vrid {
        bail!(
            "the two directors' [ha] vrid differ ({} and {})",
            ha[0].vrid,
            ha[1].vrid
        );
    }
    let vip = configs[0]
        .services
        .first()
        .map(|s| s.vip)
        .ok_or_else(|| anyhow!("the first director has no service"))?;
    let keepalived = match args.vrrp {
        Vrrp::Strait => None,
        Vrrp::Keepalived => Some(
            keepalived
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .try_into()
                .map_err(|_| anyhow!("two keepalived commands"))?,
        ),
    };
    Ok(Setup {
        path,
        topology,
        roles,
        configs,
        ha,
        vip,
        logs,
        keepalived,
    })
}

/// The config a director host runs in the scenario, written to the log directory: its own
/// with `--advert-interval` applied, or for `--vrrp keepalived` the same without `[ha]`
/// (with keepalived's configuration beside it and its command returned). Its host's run line
/// is pointed at the copy.
fn director_copy(
    topology: &mut Topology,
    role: &strait_topology::demo::Role,
    args: &FailoverArgs,
    logs: &Path,
) -> anyhow::Result<(DirectorConfig, HaConfig, Option<Vec<String>>)> {
    let named = || {
        format!(
            "director config {} (host {})",
            role.config.display(),
            role.host
        )
    };
    let text = std::fs::read_to_string(&role.config)
        .with_context(|| format!("cannot read {}", named()))?;
    let mut doc: toml::Table = text.parse().with_context(named)?;
    if let Some(interval) = args.advert_interval {
        let ha = doc
            .get_mut("ha")
            .and_then(toml::Value::as_table_mut)
            .ok_or_else(|| anyhow!("{}: no [ha]", named()))?;
        ha.insert(
            "advert_interval".into(),
            toml::Value::String(format!("{}ms", interval.as_millis())),
        );
    }
    if !args.sync {
        let ha = doc
            .get_mut("ha")
            .and_then(toml::Value::as_table_mut)
            .ok_or_else(|| anyhow!("{}: no [ha]", named()))?;
        ha.retain(|k, _| k != "secret_file" && !k.starts_with("sync"));
        ha.insert("sync".into(), toml::Value::Boolean(false));
    }
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let copy = logs.join(format!("{}.toml", role.host));
    std::fs::write(&copy, toml::to_string(&doc)?).context("director config copy")?;
    let config = strait_lb::config::load(&copy).map_err(|e| anyhow!("{}: {e}", named()))?;
    if args.add_backend && config.services.first().map_or(0, |s| s.backends.len()) < 2 {
        bail!(
            "{}: --add-backend needs two backends or more in the first service",
            named()
        );
    }
    let ha = config
        .ha
        .clone()
        .ok_or_else(|| anyhow!("{}: no [ha]", named()))?;
    let (run, keepalived) = match args.vrrp {
        Vrrp::Strait => (copy, None),
        Vrrp::Keepalived => {
            doc.remove("ha");
            let bare = logs.join(format!("{}-no-ha.toml", role.host));
            std::fs::write(&bare, toml::to_string(&doc)?).context("director config copy")?;
            let conf = logs.join(format!("{}-keepalived.conf", role.host));
            std::fs::write(&conf, keepalived_conf(&config, &ha)).context("keepalived.conf")?;
            let argv = ["keepalived", "-n", "-l", "-D", "-P", "-f"]
                .iter()
                .map(|s| (*s).to_owned())
                .chain([
                    path(&conf),
                    "-p".into(),
                    path(&logs.join(format!("{}-keepalived.pid", role.host))),
                    "-r".into(),
                    path(&logs.join(format!("{}-vrrp.pid", role.host))),
                ])
                .collect();
            (bare, Some(argv))
        }
    };
    if args.add_backend {
        // The run file starts without the last backend; `<run>.full` has it.
        let full = std::fs::read_to_string(&run).context("director config copy")?;
        std::fs::write(full_path(&run), &full).context("director config copy")?;
        let mut first: toml::Table = full.parse().context("director config copy")?;
        let backends = first
            .get_mut("service")
            .and_then(toml::Value::as_array_mut)
            .and_then(|s| s.first_mut())
            .and_then(|s| s.get_mut("backends"))
            .and_then(toml::Value::as_array_mut)
            .ok_or_else(|| anyhow!("{}: the first service lists no backends", named()))?;
        backends.pop();
        std::fs::write(&run, toml::to_string(&first)?).context("director config copy")?;
    }
    let host = topology
        .hosts
        .iter_mut()
        .find(|h| h.name == role.host)
        .ok_or_else(|| anyhow!("host {} vanished", role.host))?;
    let command = host
        .run
        .get_mut(role.command)
        .ok_or_else(|| anyhow!("host {}: no command {}", role.host, role.command))?;
    *command = RunCommand::Argv(vec![
        "strait".into(),
        "director".into(),
        "--config".into(),
        path(&run),
    ]);
    Ok((config, ha, keepalived))
}

/// Where `--add-backend` keeps a director's full config.
pub(super) fn full_path(run: &Path) -> PathBuf {
    let mut p = run.as_os_str().to_owned();
    p.push(".full");
    PathBuf::from(p)
}

/// Starts keepalived on both director hosts (`--vrrp keepalived`), logging beside the
/// topology's processes.
pub(super) fn start_keepalived(s: &Setup, argvs: &[Vec<String>; 2]) -> anyhow::Result<()> {
    for (role, argv) in s.roles.directors.iter().zip(argvs) {
        let (program, args) = argv.split_first().ok_or_else(|| anyhow!("empty command"))?;
        let log = std::fs::File::create(s.logs.join(format!("{}-keepalived.log", role.host)))
            .context("keepalived log")?;
        netns::exec(&(s.topology.prefix() + &role.host), program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().context("keepalived log")?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("cannot start keepalived")?;
    }
    Ok(())
}

/// keepalived's configuration for the same virtual router as `[ha]`.
pub fn keepalived_conf(config: &DirectorConfig, ha: &HaConfig) -> String {
    let interface = config.ha_interface().unwrap_or(&config.interface);
    let vips: String = config
        .vips()
        .iter()
        .map(|v| format!("    {v}/32\n"))
        .collect();
    let peers = if ha.peers.is_empty() {
        String::new()
    } else {
        let list: String = ha.peers.iter().map(|p| format!("    {p}\n")).collect();
        format!("  unicast_peer {{\n{list}  }}\n")
    };
    let preempt = if ha.preempt {
        format!("  preempt_delay {}\n", ha.preempt_delay.as_secs())
    } else {
        "  nopreempt\n".to_owned()
    };
    format!(
        "global_defs {{\n  router_id strait_sim\n  vrrp_version 3\n  enable_script_security\n}}\n\
         vrrp_instance strait {{\n  state BACKUP\n  interface {interface}\n  virtual_router_id {vrid}\n\
         \x20 priority {priority}\n  advert_int {interval}\n{preempt}{peers}  virtual_ipaddress {{\n{vips}  }}\n}}\n",
        vrid = ha.vrid,
        priority = ha.priority,
        interval = ha.advert_interval.as_secs_f64(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_gets_the_same_virtual_router() {
        let c = strait_lb::config::parse(
            "[director]\nid = \"a\"\ninterface = \"eth0\"\n[[service]]\nvip = \"10.80.0.100:80\"\n\
             mode = \"dr\"\nbackends = [{ addr = \"10.80.0.11\" }]\n\
             [ha]\nvrid = 80\npriority = 150\nadvert_interval = \"100ms\"\npeers = [\"10.80.0.4\"]\n\
             sync = false\n",
        )
        .expect("config");
        let conf = keepalived_conf(&c, c.ha.as_ref().unwrap());
        for want in [
            "vrrp_version 3",
            "interface eth0",
            "virtual_router_id 80",
            "priority 150",
            "advert_int 0.1",
            "preempt_delay 0",
            "unicast_peer {\n    10.80.0.4\n  }",
            "virtual_ipaddress {\n    10.80.0.100/32\n  }",
        ] {
            assert!(conf.contains(want), "{want:?} in\n{conf}");
        }
    }
}
