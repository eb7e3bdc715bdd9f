//! What the story reads before it builds anything: the cast (`strait_topology::story`), both
//! directors' configs (each with `[ha]`, its first service following the cache cluster), every
//! node's id, admin and cluster address, and the origins behind the pools named `static` and
//! `dynamic` of the first node. Nothing here has side effects.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use strait_lb::config::{DirectorConfig, HaConfig, ServiceConfig};
use strait_topology::demo::Role;
use strait_topology::spec::Topology;
use strait_topology::story::{story_roles, StoryRoles};

/// A cache node of the story.
pub(super) struct Node {
    pub(super) host: String,
    pub(super) id: String,
    /// Its admin address, inside its namespace.
    pub(super) admin: SocketAddr,
    /// Its cluster address: the backend address the directors give it.
    pub(super) ip: Ipv4Addr,
    /// Index of its `strait node` command in the host's run list.
    pub(super) command: usize,
}

/// A director of the story.
pub(super) struct Director {
    pub(super) host: String,
    pub(super) config: DirectorConfig,
    pub(super) ha: HaConfig,
    /// Its admin address, inside its namespace.
    pub(super) admin: SocketAddr,
    /// Index of its `strait director` command in the host's run list.
    pub(super) command: usize,
}

/// Everything read before anything is built.
pub(super) struct Setup {
    pub(super) path: PathBuf,
    pub(super) topology: Topology,
    pub(super) roles: StoryRoles,
    /// The expected master (the higher priority) first.
    pub(super) directors: [Director; 2],
    /// The first service of the master's config: the one the story drives.
    pub(super) service: ServiceConfig,
    /// Started at once, in file order.
    pub(super) nodes: Vec<Node>,
    pub(super) joiner: Node,
    /// The first server of the first node's pool `static` (cached objects).
    pub(super) static_origin: SocketAddr,
    /// ... and of its pool `dynamic` (never cached).
    pub(super) dynamic_origin: SocketAddr,
    pub(super) logs: PathBuf,
}

impl Setup {
    /// Namespace of `host`.
    pub(super) fn ns(&self, host: &str) -> String {
        self.topology.prefix() + host
    }

    /// The VIP of the driven service.
    pub(super) fn vip(&self) -> SocketAddrV4 {
        self.service.vip
    }
}

fn loopback(mut admin: SocketAddr) -> SocketAddr {
    if admin.ip().is_unspecified() {
        admin.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    admin
}

fn named_in(role: &Role) -> String {
    format!(
        "{} (host {}; paths are relative to the current directory)",
        role.config.display(),
        role.host
    )
}

fn director(role: &Role) -> anyhow::Result<Director> {
    let config = strait_lb::config::load(&role.config)
        .map_err(|e| anyhow!("director config {}: {e}", named_in(role)))?;
    let ha = config
        .ha
        .clone()
        .ok_or_else(|| anyhow!("director config {}: no [ha]", named_in(role)))?;
    match config.services.first() {
        Some(s) if s.cluster => {}
        _ => bail!(
            "director config {}: the story's first service follows the cache cluster \
             (backends = \"cluster\")",
            named_in(role)
        ),
    }
    Ok(Director {
        host: role.host.clone(),
        admin: loopback(config.admin),
        command: role.command,
        config,
        ha,
    })
}

fn node(role: &Role) -> anyhow::Result<(Node, strait_cache::config::NodeConfig)> {
    let config = strait_cache::config::load(&role.config)
        .map_err(|e| anyhow!("node config {}: {e}", named_in(role)))?;
    let cluster = config
        .cluster
        .as_ref()
        .ok_or_else(|| anyhow!("node config {}: no [cluster]", named_in(role)))?;
    let IpAddr::V4(ip) = cluster.peer_listen.get_ref().ip() else {
        bail!("node config {}: an IPv4 peer_listen", named_in(role));
    };
    let node = Node {
        host: role.host.clone(),
        id: config.node.id.get_ref().clone(),
        admin: loopback(config.node.admin),
        ip,
        command: role.command,
    };
    Ok((node, config))
}

/// The first server of pool `name` in `config`.
fn origin(config: &strait_cache::config::NodeConfig, name: &str) -> anyhow::Result<SocketAddr> {
    config
        .pools
        .iter()
        .find(|p| p.get_ref().name.get_ref() == name)
        .and_then(|p| p.get_ref().servers.get_ref().first())
        .map(|s| s.get_ref().addr)
        .ok_or_else(|| anyhow!("the story's nodes need a pool named `{name}` with a server"))
}

/// Reads the topology's cast and configs (see the module doc).
pub(super) fn prepare(
    path: PathBuf,
    topology: Topology,
    logs: Option<PathBuf>,
) -> anyhow::Result<Setup> {
    let roles = story_roles(&topology)
        .with_context(|| format!("{}: cannot run the story", path.display()))?;
    let [a, b] = [
        director(&roles.directors[0])?,
        director(&roles.directors[1])?,
    ];
    let directors = match a.ha.priority.cmp(&b.ha.priority) {
        std::cmp::Ordering::Greater => [a, b],
        std::cmp::Ordering::Less => [b, a],
        std::cmp::Ordering::Equal => {
            bail!("the story's two directors need different [ha] priorities")
        }
    };
    let service = directors[0].config.services[0].clone();
    let mut nodes = Vec::new();
    let mut first = None;
    for role in &roles.nodes {
        let (n, config) = node(role)?;
        first.get_or_insert(config);
        nodes.push(n);
    }
    let first = first.ok_or_else(|| anyhow!("no node"))?;
    let (joiner, _) = node(&roles.joiner)?;
    let logs = logs.unwrap_or_else(|| PathBuf::from("/tmp/strait-sim").join(&topology.name));
    Ok(Setup {
        static_origin: origin(&first, "static")?,
        dynamic_origin: origin(&first, "dynamic")?,
        path,
        topology,
        roles,
        directors,
        service,
        nodes,
        joiner,
        logs,
    })
}

/// `topology` with only the host `name` (to start its commands alone).
pub(super) fn only(topology: &Topology, name: &str) -> Topology {
    let mut t = topology.clone();
    t.hosts.retain(|h| h.name == name);
    t
}

/// `topology` without the commands of host `name` (held back until it joins).
pub(super) fn held_back(topology: &Topology, name: &str) -> Topology {
    let mut t = topology.clone();
    for h in t.hosts.iter_mut().filter(|h| h.name == name) {
        h.run.clear();
    }
    t
}
