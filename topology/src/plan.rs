//! Plan: a validated [`Topology`] to the ordered [`Step`]s that build it and tear it down.
//!
//! Pure: no command runs here; [`Step::argv`] gives each step's exact command line, which
//! [`crate::netns`] executes. Layout built by [`up`]:
//! * one namespace per host, `st-<topology>-<host>`, and one switch namespace
//!   `st-<topology>-sw` holding a bridge `br-<lan>` per LAN. Nothing is created in, or routed
//!   through, the root namespace: veth pairs are created inside the host namespace with their
//!   peer placed directly in the switch namespace (`ip link add … peer name … netns …`).
//! * membership `i` of a host is `eth<i>` in the host and `<host>-<i>` (a bridge port) in the
//!   switch namespace.
//! * order: namespaces; `lo` and bridges up; per host `lo` up, then per membership the veth
//!   pair, bridge port, address, link up, and transmit checksum offload off (a veth otherwise
//!   leaves locally sent TCP/UDP checksums partial, which native XDP peers drop); then sysctls
//!   (after the interfaces, so per-interface keys exist), then routes.
//!
//! [`down`] deletes namespaces by prefix, from a list of the existing ones, hosts before the
//! switch: deleting a namespace deletes its veths and their peers, so no other step is needed.

use std::net::Ipv4Addr;

use crate::spec::{self, Destination, Ipv4Cidr, Topology, SWITCH_HOST};

/// One action of a plan, executable as one `ip` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `ip netns add <netns>`.
    AddNetns { netns: String },
    /// `ip netns delete <netns>`.
    DeleteNetns { netns: String },
    /// `ip -n <netns> link add <bridge> type bridge`.
    AddBridge { netns: String, bridge: String },
    /// `ip -n <netns> link add <dev> type veth peer name <peer> netns <peer_netns>`.
    AddVethPair {
        netns: String,
        dev: String,
        peer_netns: String,
        peer: String,
    },
    /// `ip -n <netns> link set <dev> master <master>`.
    SetMaster {
        netns: String,
        dev: String,
        master: String,
    },
    /// `ip -n <netns> address add <addr> dev <dev>`.
    AddAddress {
        netns: String,
        dev: String,
        addr: Ipv4Cidr,
    },
    /// `ip -n <netns> link set <dev> up`.
    LinkUp { netns: String, dev: String },
    /// `ip netns exec <netns> ethtool -K <dev> tx off`: full checksums on sent packets.
    DisableTxChecksum { netns: String, dev: String },
    /// `ip -n <netns> route add <to> via <via>`.
    AddRoute {
        netns: String,
        to: Destination,
        via: Ipv4Addr,
    },
    /// `ip netns exec <netns> sysctl -q -w <key>=<value>`.
    SetSysctl {
        netns: String,
        key: String,
        value: String,
    },
}

fn strings(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

impl Step {
    /// The exact command line of this step (`argv[0]` is `ip`).
    pub fn argv(&self) -> Vec<String> {
        match self {
            Self::AddNetns { netns } => strings(&["ip", "netns", "add", netns]),
            Self::DeleteNetns { netns } => strings(&["ip", "netns", "delete", netns]),
            Self::AddBridge { netns, bridge } => {
                strings(&["ip", "-n", netns, "link", "add", bridge, "type", "bridge"])
            }
            Self::AddVethPair {
                netns,
                dev,
                peer_netns,
                peer,
            } => strings(&[
                "ip", "-n", netns, "link", "add", dev, "type", "veth", "peer", "name", peer,
                "netns", peer_netns,
            ]),
            Self::SetMaster { netns, dev, master } => {
                strings(&["ip", "-n", netns, "link", "set", dev, "master", master])
            }
            Self::AddAddress { netns, dev, addr } => {
                let addr = addr.to_string();
                strings(&["ip", "-n", netns, "address", "add", &addr, "dev", dev])
            }
            Self::LinkUp { netns, dev } => strings(&["ip", "-n", netns, "link", "set", dev, "up"]),
            Self::DisableTxChecksum { netns, dev } => strings(&[
                "ip", "netns", "exec", netns, "ethtool", "-K", dev, "tx", "off",
            ]),
            Self::AddRoute { netns, to, via } => {
                let (to, via) = (to.to_string(), via.to_string());
                strings(&["ip", "-n", netns, "route", "add", &to, "via", &via])
            }
            Self::SetSysctl { netns, key, value } => {
                let kv = format!("{key}={value}");
                strings(&["ip", "netns", "exec", netns, "sysctl", "-q", "-w", &kv])
            }
        }
    }

    /// Whether this step runs a program other than `ip` inside a namespace, and which.
    pub fn tool(&self) -> Option<&'static str> {
        match self {
            Self::DisableTxChecksum { .. } => Some("ethtool"),
            Self::SetSysctl { .. } => Some("sysctl"),
            _ => None,
        }
    }
}

/// Steps that build `topology` from nothing (see the module doc for the order).
pub fn up(topology: &Topology) -> Vec<Step> {
    let switch = topology.switch_netns();
    let mut steps = vec![Step::AddNetns {
        netns: switch.clone(),
    }];
    for host in &topology.hosts {
        steps.push(Step::AddNetns {
            netns: topology.host_netns(host),
        });
    }
    steps.push(Step::LinkUp {
        netns: switch.clone(),
        dev: "lo".to_owned(),
    });
    for lan in &topology.lans {
        let bridge = spec::bridge_name(lan);
        steps.push(Step::AddBridge {
            netns: switch.clone(),
            bridge: bridge.clone(),
        });
        steps.push(Step::LinkUp {
            netns: switch.clone(),
            dev: bridge,
        });
    }
    for host in &topology.hosts {
        let netns = topology.host_netns(host);
        steps.push(Step::LinkUp {
            netns: netns.clone(),
            dev: "lo".to_owned(),
        });
        for (i, m) in host.lans.iter().enumerate() {
            let (dev, peer) = (spec::host_dev(i), spec::switch_dev(host, i));
            steps.extend([
                Step::AddVethPair {
                    netns: netns.clone(),
                    dev: dev.clone(),
                    peer_netns: switch.clone(),
                    peer: peer.clone(),
                },
                Step::SetMaster {
                    netns: switch.clone(),
                    dev: peer.clone(),
                    master: spec::bridge_name(&topology.lans[m.lan]),
                },
                Step::LinkUp {
                    netns: switch.clone(),
                    dev: peer,
                },
                Step::AddAddress {
                    netns: netns.clone(),
                    dev: dev.clone(),
                    addr: m.addr,
                },
                Step::LinkUp {
                    netns: netns.clone(),
                    dev: dev.clone(),
                },
                Step::DisableTxChecksum {
                    netns: netns.clone(),
                    dev,
                },
            ]);
        }
        for (key, value) in &host.sysctls {
            steps.push(Step::SetSysctl {
                netns: netns.clone(),
                key: key.clone(),
                value: value.clone(),
            });
        }
        for r in &host.routes {
            steps.push(Step::AddRoute {
                netns: netns.clone(),
                to: r.to,
                via: r.via,
            });
        }
    }
    steps
}

/// Steps that delete every namespace in `existing` whose name starts with `prefix`
/// (e.g. [`Topology::prefix`] or [`spec::prefix_of`]), the switch namespace last.
/// An empty prefix, or one not starting with [`spec::NAME_PREFIX`], deletes nothing.
pub fn down(prefix: &str, existing: &[String]) -> Vec<Step> {
    if !prefix.starts_with(spec::NAME_PREFIX) || prefix.len() <= spec::NAME_PREFIX.len() {
        return Vec::new();
    }
    let switch = format!("{prefix}{SWITCH_HOST}");
    let mut names: Vec<&String> = existing.iter().filter(|n| n.starts_with(prefix)).collect();
    names.sort_by_key(|n| (**n == switch, n.as_str()));
    names.dedup();
    names
        .into_iter()
        .map(|n| Step::DeleteNetns { netns: n.clone() })
        .collect()
}

/// Every namespace `topology` creates, in creation order.
pub fn namespaces(topology: &Topology) -> Vec<String> {
    let mut all = vec![topology.switch_netns()];
    all.extend(topology.hosts.iter().map(|h| topology.host_netns(h)));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_HOSTS: &str = r#"
name = "demo"
[[lan]]
name = "front"
subnet = "10.0.0.0/24"
[[host]]
name = "client"
lan = [{ lan = "front", addr = "10.0.0.2/24" }]
routes = [{ to = "10.1.0.0/24", via = "10.0.0.3" }]
sysctls = { "net.ipv4.ip_forward" = "1" }
[[host]]
name = "server"
lan = [{ lan = "front", addr = "10.0.0.3" }]
routes = [{ to = "default", via = "10.0.0.2" }]
"#;

    fn topology() -> Topology {
        match Topology::from_toml(TWO_HOSTS) {
            Ok(t) => t,
            Err(e) => panic!("fixture must parse: {e}"),
        }
    }

    fn lines(steps: &[Step]) -> Vec<String> {
        steps.iter().map(|s| s.argv().join(" ")).collect()
    }

    #[test]
    fn up_of_two_hosts_on_one_lan_is_the_exact_command_sequence() {
        let expected = [
            "ip netns add st-demo-sw",
            "ip netns add st-demo-client",
            "ip netns add st-demo-server",
            "ip -n st-demo-sw link set lo up",
            "ip -n st-demo-sw link add br-front type bridge",
            "ip -n st-demo-sw link set br-front up",
            "ip -n st-demo-client link set lo up",
            "ip -n st-demo-client link add eth0 type veth peer name client-0 netns st-demo-sw",
            "ip -n st-demo-sw link set client-0 master br-front",
            "ip -n st-demo-sw link set client-0 up",
            "ip -n st-demo-client address add 10.0.0.2/24 dev eth0",
            "ip -n st-demo-client link set eth0 up",
            "ip netns exec st-demo-client ethtool -K eth0 tx off",
            "ip netns exec st-demo-client sysctl -q -w net.ipv4.ip_forward=1",
            "ip -n st-demo-client route add 10.1.0.0/24 via 10.0.0.3",
            "ip -n st-demo-server link set lo up",
            "ip -n st-demo-server link add eth0 type veth peer name server-0 netns st-demo-sw",
            "ip -n st-demo-sw link set server-0 master br-front",
            "ip -n st-demo-sw link set server-0 up",
            "ip -n st-demo-server address add 10.0.0.3/24 dev eth0",
            "ip -n st-demo-server link set eth0 up",
            "ip netns exec st-demo-server ethtool -K eth0 tx off",
            "ip -n st-demo-server route add default via 10.0.0.2",
        ];
        assert_eq!(lines(&up(&topology())), expected);
    }

    #[test]
    fn argv_keeps_each_argument_separate() {
        let step = Step::AddVethPair {
            netns: "st-a-h".to_owned(),
            dev: "eth1".to_owned(),
            peer_netns: "st-a-sw".to_owned(),
            peer: "h-1".to_owned(),
        };
        let expected = [
            "ip", "-n", "st-a-h", "link", "add", "eth1", "type", "veth", "peer", "name", "h-1",
            "netns", "st-a-sw",
        ];
        assert_eq!(step.argv(), expected);
        assert_eq!(step.tool(), None);
        let tx = Step::DisableTxChecksum {
            netns: "n".to_owned(),
            dev: "eth0".to_owned(),
        };
        assert_eq!(tx.tool(), Some("ethtool"));
    }

    #[test]
    fn every_generated_name_fits_ifnamsiz() {
        let text = r#"
name = "abcdefgh"
[[lan]]
name = "lan-name-12c"
subnet = "10.0.0.0/16"
[[host]]
name = "abc"
lan = [{ lan = "lan-name-12c", addr = "10.0.9.9/16" }]
"#;
        let topology = match Topology::from_toml(text) {
            Ok(t) => t,
            Err(e) => panic!("must parse: {e}"),
        };
        let mut longest = 0;
        for step in up(&topology).iter().chain(up(&self::topology()).iter()) {
            let argv = step.argv();
            // Every name follows `-n`, `add`, `name`, `netns`, `set`, `master` or `dev`.
            for pair in argv.windows(2) {
                if ["-n", "name", "netns", "set", "master", "dev"].contains(&pair[0].as_str())
                    || (pair[0] == "add" && argv[1] != "address" && argv[3] != "route")
                {
                    assert!(
                        pair[1].len() <= spec::MAX_NAME_LEN,
                        "{} in {argv:?}",
                        pair[1]
                    );
                    longest = longest.max(pair[1].len());
                }
            }
        }
        // `st-abcdefgh-abc` and `br-lan-name-12c` are exactly 15 bytes.
        assert_eq!(longest, 15);
    }

    #[test]
    fn down_deletes_only_the_prefix_hosts_first_switch_last() {
        let existing: Vec<String> = [
            "st-demo-sw",
            "st-demo-server",
            "other",
            "st-demox-a",
            "st-demo-client",
            "st-demo-client",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(
            lines(&down("st-demo-", &existing)),
            [
                "ip netns delete st-demo-client",
                "ip netns delete st-demo-server",
                "ip netns delete st-demo-sw",
            ]
        );
        assert_eq!(
            lines(&down(&topology().prefix(), &[])),
            Vec::<String>::new()
        );
    }

    #[test]
    fn down_refuses_prefixes_that_are_not_ours() {
        let existing = ["st-demo-sw".to_owned(), "mine".to_owned()];
        assert!(down("", &existing).is_empty());
        assert!(down("st-", &existing).is_empty());
        assert!(down("mi", &existing).is_empty());
    }

    #[test]
    fn namespaces_lists_switch_then_hosts() {
        assert_eq!(
            namespaces(&topology()),
            ["st-demo-sw", "st-demo-client", "st-demo-server"]
        );
    }
}
