//! Topology specification: the TOML file behind `strait sim up|down --topology FILE`.
//!
//! A topology has a short `name`, LANs (`[[lan]]`, each one bridge with an IPv4 `subnet`) and
//! hosts (`[[host]]`, each one network namespace with one veth per LAN membership, static
//! `routes`, `sysctls`, and `run` commands that the supervisor starts later).
//!
//! Contract of [`Topology::from_toml`]: unknown keys are rejected; every name is lowercase
//! `[a-z0-9-]` (the topology name without `-`, so that no topology's prefix is the prefix of
//! another's); every generated namespace and interface name fits IFNAMSIZ (at most 15 bytes);
//! LAN and host names are unique; a subnet has no host bits set; a host address lies inside
//! its LAN's subnet, is neither its network nor its broadcast address, and is unique on the
//! LAN (`extra` addresses of a membership follow the same rules); a route's gateway is on one
//! of the host's LANs. All names of a topology start with
//! [`Topology::prefix`] (`st-<name>-`), which is how `sim down` finds leftovers.

mod cidr;
mod validate;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::Deserialize;

pub use cidr::{Destination, Ipv4Cidr};

/// Longest interface or namespace name we generate (IFNAMSIZ is 16 including the NUL).
pub const MAX_NAME_LEN: usize = 15;
/// Start of every name the simulator creates.
pub const NAME_PREFIX: &str = "st-";
/// Host name reserved for the namespace holding the LAN bridges.
pub const SWITCH_HOST: &str = "sw";
/// Most LAN memberships per host (interfaces `eth0`..`eth9`).
pub const MAX_MEMBERSHIPS: usize = 10;

/// Why a topology file was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not TOML, or keys and types do not match the schema (unknown keys included).
    #[error("topology file: {0}")]
    Parse(#[from] toml::de::Error),
    /// The file parsed but a value is invalid; `at` says where (e.g. `host "client" lan[0]`).
    #[error("topology {at}: {message}")]
    Invalid {
        /// Where in the topology the problem is.
        at: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(at: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Invalid {
        at: at.into(),
        message: message.into(),
    }
}

/// A command for the supervisor to start in a host: a shell-like line or an argv array.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RunCommand {
    /// `"strait node --config node.toml"`.
    Line(String),
    /// `["strait", "node", "--config", "node.toml"]`.
    Argv(Vec<String>),
}

/// A validated topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Short name; all generated names start with [`Topology::prefix`].
    pub name: String,
    /// LANs in file order.
    pub lans: Vec<Lan>,
    /// Hosts in file order.
    pub hosts: Vec<Host>,
}

/// One LAN: a bridge in the switch namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lan {
    /// Name, unique among LANs.
    pub name: String,
    /// The subnet (network address and prefix length).
    pub subnet: Ipv4Cidr,
}

/// One host: a network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Name, unique among hosts.
    pub name: String,
    /// LAN memberships in file order; membership `i` is interface `eth<i>`.
    pub lans: Vec<Membership>,
    /// Static routes, in file order.
    pub routes: Vec<Route>,
    /// Commands to start later (carried, not run, by the builder).
    pub run: Vec<RunCommand>,
    /// `sysctl` keys and values set in the host's namespace.
    pub sysctls: BTreeMap<String, String>,
    /// Whether the host's bridge ports run the pass-all XDP program (`port_xdp`; default:
    /// true when one of its `run` commands is `strait director --config FILE`). Native
    /// `XDP_TX`/redirect from a host reaches the bridge only through a port with a program;
    /// a port with one copies every frame sent into it, so hosts that do not forward with XDP
    /// go without.
    pub port_xdp: bool,
}

/// A host's interface on a LAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Index of the LAN in [`Topology::lans`].
    pub lan: usize,
    /// The address, with the LAN's prefix length.
    pub addr: Ipv4Cidr,
    /// More addresses on the same interface (`extra = [...]`, e.g. a director's VIP), each
    /// with the LAN's prefix length, added after `addr` (so they are secondary addresses).
    pub extra: Vec<Ipv4Cidr>,
}

/// A static route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Destination.
    pub to: Destination,
    /// Gateway, on one of the host's LANs.
    pub via: Ipv4Addr,
}

impl Topology {
    /// Parses and validates a topology file's text.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let raw: validate::RawTopology = toml::from_str(text)?;
        validate::validate(raw)
    }

    /// `st-<name>-`: the start of every namespace name of this topology.
    pub fn prefix(&self) -> String {
        prefix_of(&self.name)
    }

    /// Namespace holding the LAN bridges.
    pub fn switch_netns(&self) -> String {
        format!("{}{SWITCH_HOST}", self.prefix())
    }

    /// Namespace of `host`.
    pub fn host_netns(&self, host: &Host) -> String {
        format!("{}{}", self.prefix(), host.name)
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

/// `st-<name>-` for a topology name.
pub fn prefix_of(topology: &str) -> String {
    format!("{NAME_PREFIX}{topology}-")
}

/// Bridge of `lan` inside the switch namespace.
pub fn bridge_name(lan: &Lan) -> String {
    format!("br-{}", lan.name)
}

/// Host-side interface of membership `index`.
pub fn host_dev(index: usize) -> String {
    format!("eth{index}")
}

/// Switch-side interface of `host`'s membership `index`.
pub fn switch_dev(host: &Host, index: usize) -> String {
    format!("{}-{index}", host.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
name = "demo"
[[lan]]
name = "front"
subnet = "10.0.0.0/24"
[[lan]]
name = "back"
subnet = "10.1.0.0/24"
"#;

    /// BASE (two LANs) followed by `hosts`, parsed (shared with `validate`'s tests).
    pub(super) fn parse(hosts: &str) -> Result<Topology, Error> {
        Topology::from_toml(&format!("{BASE}{hosts}"))
    }

    /// The `Invalid` error's text, or a panic.
    pub(super) fn invalid_message(hosts: &str) -> String {
        match parse(hosts) {
            Err(e @ Error::Invalid { .. }) => e.to_string(),
            Err(e) => panic!("expected a validation error, got {e}"),
            Ok(t) => panic!("expected an error, got {t:?}"),
        }
    }

    #[test]
    fn a_full_host_is_carried_over() {
        let t = match parse(
            r#"
[[host]]
name = "router"
lan = [{ lan = "front", addr = "10.0.0.1/24" }, { lan = "back", addr = "10.1.0.1" }]
routes = [{ to = "10.2.0.0/16", via = "10.1.0.9" }]
run = ["strait node --config n.toml", ["sleep", "1"]]
sysctls = { "net.ipv4.ip_forward" = "1" }
"#,
        ) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(t.prefix(), "st-demo-");
        assert_eq!(t.switch_netns(), "st-demo-sw");
        let h = &t.hosts[0];
        assert_eq!(t.host_netns(h), "st-demo-router");
        assert_eq!(h.lans.len(), 2);
        assert_eq!(
            (h.lans[1].lan, h.lans[1].addr.to_string()),
            (1, "10.1.0.1/24".to_owned())
        );
        assert_eq!(h.routes[0].to.to_string(), "10.2.0.0/16");
        assert_eq!(h.routes[0].via, Ipv4Addr::new(10, 1, 0, 9));
        assert_eq!(
            h.run,
            [
                RunCommand::Line("strait node --config n.toml".to_owned()),
                RunCommand::Argv(vec!["sleep".to_owned(), "1".to_owned()]),
            ]
        );
        assert_eq!(
            h.sysctls.get("net.ipv4.ip_forward").map(String::as_str),
            Some("1")
        );
        assert_eq!(t.host("router").map(|h| h.name.as_str()), Some("router"));
    }

    #[test]
    fn names_are_checked() {
        assert!(invalid_message("[[host]]\nname = \"sw\"\n").contains("reserved"));
        assert!(invalid_message("[[host]]\nname = \"Big\"\n").contains("must be [a-z0-9-]"));
        assert!(invalid_message("[[host]]\nname = \"-a\"\n").contains("must be [a-z0-9-]"));
        assert_eq!(
            invalid_message("[[host]]\nname = \"abcdefghijkl\"\n"),
            "topology host \"abcdefghijkl\": generated name `st-demo-abcdefghijkl` is 20 bytes, \
             more than 15 (IFNAMSIZ); shorten the names"
        );
        let dashed = Topology::from_toml("name = \"de-mo\"\n");
        assert!(matches!(dashed, Err(Error::Invalid { ref at, .. }) if at == "name"));
        let long = Topology::from_toml("name = \"abcdefghijk\"\n");
        assert!(matches!(long, Err(Error::Invalid { ref at, .. }) if at == "name"));
        assert!(
            invalid_message("[[host]]\nname = \"a\"\nsysctls = { \"a b\" = \"1\" }\n")
                .contains("bad sysctl key")
        );
        assert!(
            invalid_message("[[host]]\nname = \"a\"\nsysctls = { \"a.b\" = \"1 2\" }\n")
                .contains("bad value")
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        for text in [
            "name = \"x\"\ncolour = 1\n",
            "name = \"x\"\n[[lan]]\nname = \"l\"\nsubnet = \"10.0.0.0/8\"\nmtu = 9000\n",
            "name = \"x\"\n[[host]]\nname = \"h\"\nrole = \"node\"\n",
        ] {
            match Topology::from_toml(text) {
                Err(e @ Error::Parse(_)) => {
                    assert!(e.to_string().contains("unknown field"), "{e}");
                }
                other => panic!("expected a parse error, got {other:?}"),
            }
        }
    }
}
