//! What `strait sim run demo` reads before it builds anything: the topology (the default one
//! only from the repository root), its roles, the director's config (VIP and health of its
//! first service, admin address) and the backends' node ids. Nothing here has side effects,
//! so every mistake in the files is reported before a namespace exists.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use strait_lb::config::{CheckKind, DirectorConfig, Proto, ServiceConfig};
use strait_topology::demo::{self, Roles, DEFAULT_TOPOLOGY};
use strait_topology::spec::Topology;

use super::demo::MAX_REQUESTS;

/// What `sim run demo` was asked for.
pub struct DemoArgs {
    /// The topology file (`None`: [`DEFAULT_TOPOLOGY`] under the current directory).
    pub topology: Option<PathBuf>,
    /// Log directory (`None`: `/tmp/strait-sim/<name>`).
    pub logs: Option<PathBuf>,
    /// GETs per traffic phase (at most `demo::MAX_REQUESTS`).
    pub requests: u16,
}

/// Everything read before anything is built.
pub struct Setup {
    /// The topology file.
    pub path: PathBuf,
    pub topology: Topology,
    pub roles: Roles,
    /// The director's config (as named in its run line).
    pub director: DirectorConfig,
    /// Its first service: the one the demo drives.
    pub service: ServiceConfig,
    /// Where the director's admin answers, inside its namespace.
    pub admin: SocketAddr,
    /// Node id of each backend, in `roles.backends` order.
    pub node_ids: Vec<String>,
    /// Log directory of the topology's processes.
    pub logs: PathBuf,
    /// GETs per traffic phase (at most `demo::MAX_REQUESTS`).
    pub requests: u16,
}

/// The topology file asked for, or [`DEFAULT_TOPOLOGY`] when it is there.
pub fn topology_path(asked: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = asked {
        return Ok(p);
    }
    let p = PathBuf::from(DEFAULT_TOPOLOGY);
    if !p.is_file() {
        bail!(
            "{DEFAULT_TOPOLOGY} not found in {}: run from the repository root or pass \
             --topology FILE",
            std::env::current_dir().map_or("?".into(), |d| d.display().to_string())
        );
    }
    Ok(p)
}

/// Finds the roles of `topology` (read from `path`), reads the director's and the nodes'
/// configs.
pub fn prepare(args: DemoArgs, path: PathBuf, topology: Topology) -> anyhow::Result<Setup> {
    if !(1..=MAX_REQUESTS).contains(&args.requests) {
        bail!("--requests must be 1 to {MAX_REQUESTS}");
    }
    let roles = demo::roles(&topology)
        .with_context(|| format!("{}: cannot run the demo", path.display()))?;
    let named_in = |host: &str| {
        format!("named in host {host}'s run line; paths are relative to the current directory")
    };
    let director = strait_lb::config::load(&roles.director.config).map_err(|e| {
        anyhow!(
            "director config {} ({}): {e}",
            roles.director.config.display(),
            named_in(&roles.director.host)
        )
    })?;
    let service = director
        .services
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("director config has no [[service]]"))?;
    if service.proto != Proto::Tcp {
        bail!("the demo drives HTTP: the director's first service must be tcp");
    }
    if service.health.kind == CheckKind::None {
        bail!("the director's first service has no health check: a killed backend would never be marked down");
    }
    let mut admin = director.admin;
    if admin.ip().is_unspecified() {
        admin.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let mut node_ids = Vec::with_capacity(roles.backends.len());
    for b in &roles.backends {
        let node = strait_cache::config::load(&b.config).map_err(|e| {
            anyhow!(
                "node config {} ({}): {e}",
                b.config.display(),
                named_in(&b.host)
            )
        })?;
        node_ids.push(node.node.id.get_ref().clone());
    }
    let logs = args
        .logs
        .unwrap_or_else(|| PathBuf::from("/tmp/strait-sim").join(&topology.name));
    Ok(Setup {
        path,
        topology,
        roles,
        director,
        service,
        admin,
        node_ids,
        logs,
        requests: args.requests,
    })
}
