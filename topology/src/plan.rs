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
//!   pair, bridge port, the pass-all XDP program on the bridge port (hosts with `port_xdp`
//!   only, see below), addresses (the
//!   membership's, then its `extra` ones), link up, and transmit checksum offload off (a veth
//!   otherwise leaves locally sent TCP/UDP checksums partial, which native XDP peers drop);
//!   then sysctls (after the interfaces, so per-interface keys exist), then routes.
//! * native XDP on veths: a host's XDP program (the director's `XDP_TX`, a decapsulation
//!   program) runs on its `eth<i>`; the frames it sends back reach the bridge only if the
//!   bridge port (the veth peer) runs an XDP program itself, so the bridge ports of a host
//!   with [`crate::spec::Host::port_xdp`] (by default: a host that runs `strait director`)
//!   get [`crate::xdp_pass`]'s program (`xdpdrv`, loaded by `ip` from
//!   [`crate::xdp_pass::OBJECT_PATH`], which `netns::up` writes first). Other hosts' ports go
//!   without: a port with a program makes the veth copy every frame sent into it (an skb a
//!   TCP sender still holds is cloned, and XDP needs a private one), which cost the
//!   namespace benchmark's direct path 22% of its connections/s. Frames sent *to* a host's
//!   own XDP program (a TUN node's decapsulation) need nothing on the port. GRO on the port
//!   (`ethtool -K <port> gro on`) is not enough on kernel 6.18: it gives the port a NAPI
//!   context, so the frames are queued, but the sender flushes the port's XDP ring only when
//!   the port has a program, so they wait for unrelated traffic (tried: 0 of 20 UDP echoes
//!   bounced by an `XDP_TX` program came back within 1 s with GRO, 20 of 20 with the
//!   program). `tests/netns_topology_xdp.rs` checks both directions end to end.
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
    /// `ip -n <netns> link set dev <dev> xdpdrv obj <object> sec xdp`: the pass-all program
    /// on a bridge port (see the module doc).
    AttachXdpPass {
        netns: String,
        dev: String,
        object: String,
    },
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
            Self::AttachXdpPass { netns, dev, object } => strings(&[
                "ip",
                "-n",
                netns,
                "link",
                "set",
                "dev",
                dev,
                "xdpdrv",
                "obj",
                object,
                "sec",
                crate::xdp_pass::SECTION,
            ]),
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
                    dev: peer.clone(),
                },
            ]);
            if host.port_xdp {
                steps.push(Step::AttachXdpPass {
                    netns: switch.clone(),
                    dev: peer,
                    object: crate::xdp_pass::OBJECT_PATH.to_owned(),
                });
            }
            for addr in std::iter::once(m.addr).chain(m.extra.iter().copied()) {
                steps.push(Step::AddAddress {
                    netns: netns.clone(),
                    dev: dev.clone(),
                    addr,
                });
            }
            steps.extend([
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
mod tests;
