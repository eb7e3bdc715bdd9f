//! Who does what in a topology, for `strait sim run demo` with one director (pure: reads the
//! spec, runs nothing); two directors are the story's (`story`).
//!
//! Contract of [`roles`]:
//! * the **director** is the one host with a run command `strait director --config FILE`
//!   (`-c FILE` and `--config=FILE` work too); none, or more than one, is an error;
//! * the **backends** are the hosts with a `strait node --config FILE` command, in file order;
//!   none is an error;
//! * the **client** is the host called [`CLIENT_HOST`] if there is one, else the first host
//!   that runs no command at all; neither is an error.
//!
//! Config paths are returned as written in the run line: the supervisor starts the commands in
//! the current directory, so they are relative to it (the repository root for the examples).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::spec::{Host, Topology};
use crate::supervisor;

/// The topology `sim run demo` uses without `--topology` (relative to the repository root).
pub const DEFAULT_TOPOLOGY: &str = "topology/examples/topologies/story.toml";
/// Name of the host preferred as the client.
pub const CLIENT_HOST: &str = "client";

/// Why a topology cannot run the demo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolesError {
    /// No host runs `strait director --config FILE`.
    #[error("no host runs `strait director --config FILE`")]
    NoDirector,
    /// Several hosts run a director (the demo drives one).
    #[error("several hosts run a director ({0}); the demo drives exactly one")]
    SeveralDirectors(String),
    /// No host runs `strait node --config FILE`.
    #[error("no host runs `strait node --config FILE` (the demo needs backends)")]
    NoBackends,
    /// No host to send requests from.
    #[error("no client host: name one `{CLIENT_HOST}`, or leave one host without run commands")]
    NoClient,
}

/// A host running one strait role, with that role's config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Host name (namespace `st-<topology>-<host>`).
    pub host: String,
    /// The `--config` argument of the run command, as written.
    pub config: PathBuf,
    /// Index of that command in the host's `run` list (its log is `<host>-<index>.log`).
    pub command: usize,
    /// The host's addresses (every membership's address and extras).
    pub addrs: Vec<Ipv4Addr>,
}

/// The demo's cast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    /// Host the requests are sent from.
    pub client: String,
    /// The director.
    pub director: Role,
    /// The backends (hosts running `strait node`), in file order.
    pub backends: Vec<Role>,
}

/// Finds the client, the director and the backends of `topology` (see the module contract).
pub fn roles(topology: &Topology) -> Result<Roles, RolesError> {
    let directors = directors(topology);
    let director = match directors.as_slice() {
        [] => return Err(RolesError::NoDirector),
        [one] => one.clone(),
        several => {
            let names: Vec<&str> = several.iter().map(|r| r.host.as_str()).collect();
            return Err(RolesError::SeveralDirectors(names.join(", ")));
        }
    };
    let backends: Vec<Role> = topology
        .hosts
        .iter()
        .filter_map(|h| role(h, "node"))
        .collect();
    if backends.is_empty() {
        return Err(RolesError::NoBackends);
    }
    let client = topology
        .host(CLIENT_HOST)
        .or_else(|| topology.hosts.iter().find(|h| h.run.is_empty()))
        .ok_or(RolesError::NoClient)?;
    Ok(Roles {
        client: client.name.clone(),
        director,
        backends,
    })
}

/// The hosts that run `strait director --config FILE`, in file order: one for the demo, two
/// for the story and the failover scenario.
pub fn directors(topology: &Topology) -> Vec<Role> {
    topology
        .hosts
        .iter()
        .filter_map(|h| role(h, "director"))
        .collect()
}

/// The host's first command `strait <subcommand> --config FILE`, as a [`Role`].
pub(crate) fn role(host: &Host, subcommand: &str) -> Option<Role> {
    host.run.iter().enumerate().find_map(|(i, cmd)| {
        let argv = supervisor::argv(cmd, Path::new("strait"));
        config_of(&argv, subcommand).map(|config| Role {
            host: host.name.clone(),
            config,
            command: i,
            addrs: host
                .lans
                .iter()
                .flat_map(|m| std::iter::once(m.addr.addr).chain(m.extra.iter().map(|e| e.addr)))
                .collect(),
        })
    })
}

/// `FILE` if `argv` is `strait <subcommand> … --config FILE …` (or `-c FILE`, `--config=FILE`);
/// the program counts as strait when its file name is `strait`.
pub fn config_of(argv: &[String], subcommand: &str) -> Option<PathBuf> {
    let (program, args) = argv.split_first()?;
    if Path::new(program).file_name()? != "strait" || args.first()? != subcommand {
        return None;
    }
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        if let Some(value) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(value));
        }
        if arg == "--config" || arg == "-c" {
            return rest.next().map(PathBuf::from);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAN: &str = "name = \"t\"\n[[lan]]\nname = \"lan\"\nsubnet = \"10.9.0.0/24\"\n";

    fn topo(hosts: &str) -> Topology {
        Topology::from_toml(&format!("{LAN}{hosts}")).expect("valid topology")
    }

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn config_argument_in_every_spelling() {
        let want = Some(PathBuf::from("d.toml"));
        assert_eq!(
            config_of(&args("strait director --config d.toml"), "director"),
            want
        );
        assert_eq!(
            config_of(&args("/opt/bin/strait director -c d.toml"), "director"),
            want
        );
        assert_eq!(
            config_of(&args("strait director --config=d.toml"), "director"),
            want
        );
        assert_eq!(
            config_of(&args("strait node --config d.toml"), "director"),
            None
        );
        assert_eq!(
            config_of(&args("strait director --config"), "director"),
            None
        );
        assert_eq!(config_of(&args("strait director"), "director"), None);
        assert_eq!(
            config_of(&args("mystrait director -c d.toml"), "director"),
            None
        );
        assert_eq!(config_of(&[], "director"), None);
    }

    #[test]
    fn example_shape_gives_client_director_and_backends() {
        let t = topo(
            r#"
[[host]]
name = "client"
lan = [{ lan = "lan", addr = "10.9.0.2/24" }]
[[host]]
name = "director"
lan = [{ lan = "lan", addr = "10.9.0.3/24", extra = ["10.9.0.100"] }]
run = ["strait director --config d.toml"]
[[host]]
name = "b1"
lan = [{ lan = "lan", addr = "10.9.0.11/24" }]
run = ["strait sim origin --listen 127.0.0.1:8080", "strait node --config n1.toml"]
[[host]]
name = "b2"
lan = [{ lan = "lan", addr = "10.9.0.12/24" }]
run = [["strait", "node", "-c", "n2.toml"]]
"#,
        );
        let r = roles(&t).expect("roles");
        assert_eq!(r.client, "client");
        assert_eq!(r.director.host, "director");
        assert_eq!(r.director.config, PathBuf::from("d.toml"));
        assert_eq!(
            r.director.addrs,
            [Ipv4Addr::new(10, 9, 0, 3), Ipv4Addr::new(10, 9, 0, 100)]
        );
        let backends: Vec<(&str, &Path, usize)> = r
            .backends
            .iter()
            .map(|b| (b.host.as_str(), b.config.as_path(), b.command))
            .collect();
        assert_eq!(
            backends,
            [
                ("b1", Path::new("n1.toml"), 1),
                ("b2", Path::new("n2.toml"), 0)
            ]
        );
        assert_eq!(r.backends[1].addrs, [Ipv4Addr::new(10, 9, 0, 12)]);
    }

    #[test]
    fn client_falls_back_to_a_host_without_commands() {
        let t = topo(
            r#"
[[host]]
name = "d"
lan = [{ lan = "lan", addr = "10.9.0.3/24" }]
run = ["strait director --config d.toml"]
[[host]]
name = "n"
lan = [{ lan = "lan", addr = "10.9.0.4/24" }]
run = ["strait node --config n.toml"]
[[host]]
name = "user"
lan = [{ lan = "lan", addr = "10.9.0.5/24" }]
"#,
        );
        assert_eq!(roles(&t).expect("roles").client, "user");
    }

    #[test]
    fn missing_or_ambiguous_roles_are_errors() {
        let director =
            "[[host]]\nname = \"d\"\nlan = [{ lan = \"lan\", addr = \"10.9.0.3/24\" }]\n\
                        run = [\"strait director --config d.toml\"]\n";
        let node = "[[host]]\nname = \"n\"\nlan = [{ lan = \"lan\", addr = \"10.9.0.4/24\" }]\n\
                    run = [\"strait node --config n.toml\"]\n";
        let client = "[[host]]\nname = \"c\"\nlan = [{ lan = \"lan\", addr = \"10.9.0.5/24\" }]\n";
        let second = "[[host]]\nname = \"d2\"\nlan = [{ lan = \"lan\", addr = \"10.9.0.6/24\" }]\n\
                      run = [\"strait director -c e.toml\"]\n";
        assert_eq!(
            roles(&topo(&format!("{node}{client}"))),
            Err(RolesError::NoDirector)
        );
        assert_eq!(
            roles(&topo(&format!("{director}{client}"))),
            Err(RolesError::NoBackends)
        );
        assert_eq!(
            roles(&topo(&format!("{director}{node}"))),
            Err(RolesError::NoClient)
        );
        assert_eq!(
            roles(&topo(&format!("{director}{second}{node}{client}"))),
            Err(RolesError::SeveralDirectors("d, d2".into()))
        );
    }
}
