//! The soak's roles, read from the topology's run lines: the client (host `client`, else the
//! first host without run lines), the director (and its config), and the hosts the soak kills
//! and restarts — those running `strait node` or `strait sim origin` (and where the origins
//! listen).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};
use strait_topology::spec::Topology;
use strait_topology::supervisor;

use super::hosts;

/// The soak's roles, read from the topology's run lines.
pub struct Roles {
    pub client: String,
    pub director: String,
    pub director_config: PathBuf,
    /// Hosts killed and restarted, with what runs there (`node`, `origin`).
    pub targets: Vec<(String, &'static str)>,
    /// Where the origins listen.
    pub origins: Vec<SocketAddr>,
}

/// Client (a host without run lines, `client` first), director, nodes and origins.
pub fn roles(topology: &Topology) -> anyhow::Result<Roles> {
    let exe = Path::new("strait");
    let mut director = None;
    let mut targets = Vec::new();
    let mut origins = Vec::new();
    for host in &topology.hosts {
        for cmd in &host.run {
            let argv = supervisor::argv(cmd, exe);
            let after = |flag: &str| {
                argv.iter()
                    .position(|a| a == flag)
                    .and_then(|i| argv.get(i + 1))
                    .cloned()
            };
            match hosts::what(&argv) {
                "director" => {
                    let config = after("--config").or_else(|| after("-c"));
                    let config = config
                        .ok_or_else(|| anyhow!("{}: director without --config", host.name))?;
                    director = Some((host.name.clone(), PathBuf::from(config)));
                }
                w @ ("node" | "origin") => {
                    if w == "origin" {
                        let listen = after("--listen").and_then(|a| a.parse().ok());
                        origins.push(listen.ok_or_else(|| {
                            anyhow!("{}: origin without --listen ADDR", host.name)
                        })?);
                    }
                    if !targets.iter().any(|(h, _)| h == &host.name) {
                        targets.push((host.name.clone(), w));
                    }
                }
                _ => {}
            }
        }
    }
    let client = topology
        .host("client")
        .or_else(|| topology.hosts.iter().find(|h| h.run.is_empty()))
        .ok_or_else(|| anyhow!("no client host (one without run lines)"))?;
    let (director, director_config) =
        director.ok_or_else(|| anyhow!("no host runs `strait director`"))?;
    if !targets.iter().any(|(_, w)| *w == "node") {
        bail!("no host runs `strait node`");
    }
    Ok(Roles {
        client: client.name.clone(),
        director,
        director_config,
        targets,
        origins,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soak_topology_has_a_client_a_director_three_nodes_and_two_origins() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/topology/examples/topologies/soak.toml"
        ))
        .expect("soak.toml");
        let topology = Topology::from_toml(&text).expect("valid");
        assert_eq!(topology.prefix(), "st-soak-");
        let r = roles(&topology).expect("roles");
        assert_eq!((r.client.as_str(), r.director.as_str()), ("client", "dir"));
        assert_eq!(
            r.director_config,
            PathBuf::from("topology/examples/director/soak/director.toml")
        );
        let targets: Vec<String> = r.targets.iter().map(|(h, w)| format!("{h} {w}")).collect();
        assert_eq!(
            targets,
            [
                "b1 node",
                "b2 node",
                "b3 node",
                "static origin",
                "api origin"
            ]
        );
        assert_eq!(r.origins.len(), 2);
    }
}
