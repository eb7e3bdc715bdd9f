//! Next hops of NAT frames: where a rewritten frame goes on its egress interface, as the
//! XDP program asks the kernel with `bpf_fib_lookup` (`ebpf/lib/fib.h`).
//!
//! Contract:
//! * A lookup names the egress ([`Egress::Nat`]: NAT forwards towards the backends;
//!   [`Egress::Client`]: NAT replies towards the clients) and the rewritten frame's source and
//!   destination addresses. The XDP program asks with `BPF_FIB_LOOKUP_OUTPUT` and the egress
//!   interface as output interface: the longest matching route *through that interface*; the
//!   kernel answers only when IPv4 forwarding is on for that interface (otherwise "forwarding
//!   disabled": no route here); TOS, ports and the MTU are not part of the lookup (the MTU is
//!   checked by `packet::icmp`). It also
//!   sets `BPF_FIB_LOOKUP_DIRECT`: only the main table (or the interface's VRF table) is
//!   searched and **ip rules are ignored** (no policy routing for NAT frames; routes only in
//!   another table are not seen), as the userspace datapath, which reads the main table from
//!   `/proc/net/route`.
//! * [`NextHop::Found`]: the route's gateway (or the destination itself when on-link) has a
//!   valid neighbour entry; the frame leaves with `dmac` = its MAC, `smac` = the egress MAC.
//!   [`NextHop::NoNeighbour`]: a route, but no valid neighbour entry for the next hop.
//!   [`NextHop::NoRoute`]: anything else (no route through the interface, a local, broadcast,
//!   blackhole or unreachable route, an unknown interface).
//! * What the datapath does with each answer is `packet::process`'s contract.
//! * [`StaticNextHops`] is a table model of the kernel's answer for tests: unicast routes
//!   (prefix, egress, optional gateway) and neighbour entries per egress.

use std::collections::HashMap;

/// Which way a NAT frame leaves (`STRAIT_EGRESS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Egress {
    /// Towards the backends (NAT forwards).
    Nat,
    /// Towards the clients (NAT replies).
    Client,
}

/// The answer of a next-hop lookup (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHop {
    /// Send with these MACs.
    Found {
        /// The next hop's MAC.
        dmac: [u8; 6],
        /// The egress interface's MAC.
        smac: [u8; 6],
    },
    /// A route, but the next hop's MAC is unknown.
    NoNeighbour {
        /// The egress interface's MAC.
        smac: [u8; 6],
    },
    /// No usable route through the egress interface.
    NoRoute,
}

/// Resolves next hops (the kernel's FIB and neighbour tables, or a model of them).
pub trait NextHops {
    /// The next hop of a frame `src` → `dst` leaving by `egress`.
    fn resolve(&self, egress: Egress, src: [u8; 4], dst: [u8; 4]) -> NextHop;
}

/// One unicast route of [`StaticNextHops`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Network address.
    pub prefix: [u8; 4],
    /// Prefix length (0..=32).
    pub len: u8,
    /// Interface it leaves by.
    pub egress: Egress,
    /// Gateway; `None` when on-link.
    pub via: Option<[u8; 4]>,
}

impl Route {
    fn contains(&self, ip: [u8; 4]) -> bool {
        let mask = if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.len.min(32)))
        };
        u32::from_be_bytes(ip) & mask == u32::from_be_bytes(self.prefix) & mask
    }
}

/// A fixed routing and neighbour table (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticNextHops {
    /// Unicast routes.
    pub routes: Vec<Route>,
    /// Valid neighbour entries, per egress.
    pub neighbours: HashMap<(Egress, [u8; 4]), [u8; 6]>,
    /// MAC of each egress interface.
    pub macs: HashMap<Egress, [u8; 6]>,
}

impl NextHops for StaticNextHops {
    fn resolve(&self, egress: Egress, _src: [u8; 4], dst: [u8; 4]) -> NextHop {
        let Some(smac) = self.macs.get(&egress).copied() else {
            return NextHop::NoRoute;
        };
        let best = self
            .routes
            .iter()
            .filter(|r| r.egress == egress && r.contains(dst))
            .max_by_key(|r| r.len);
        let Some(route) = best else {
            return NextHop::NoRoute;
        };
        let hop = route.via.unwrap_or(dst);
        match self.neighbours.get(&(egress, hop)) {
            Some(&dmac) => NextHop::Found { dmac, smac },
            None => NextHop::NoNeighbour { smac },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_through_the_egress_then_its_neighbour() {
        let mut t = StaticNextHops::default();
        t.macs.insert(Egress::Nat, [2, 0, 0, 0, 0, 0xaa]);
        t.macs.insert(Egress::Client, [2, 0, 0, 0, 0, 0xbb]);
        t.routes.push(Route {
            prefix: [10, 0, 1, 0],
            len: 24,
            egress: Egress::Nat,
            via: None,
        });
        t.routes.push(Route {
            prefix: [10, 0, 1, 128],
            len: 25,
            egress: Egress::Nat,
            via: Some([10, 0, 1, 1]),
        });
        t.routes.push(Route {
            prefix: [0, 0, 0, 0],
            len: 0,
            egress: Egress::Client,
            via: Some([192, 168, 0, 1]),
        });
        t.neighbours
            .insert((Egress::Nat, [10, 0, 1, 1]), [2, 0, 0, 0, 1, 1]);
        t.neighbours
            .insert((Egress::Client, [192, 168, 0, 1]), [2, 0, 0, 0, 2, 1]);
        let src = [1, 2, 3, 4];
        let found = |d| NextHop::Found {
            dmac: d,
            smac: [2, 0, 0, 0, 0, 0xaa],
        };
        assert_eq!(
            t.resolve(Egress::Nat, src, [10, 0, 1, 1]),
            found([2, 0, 0, 0, 1, 1])
        );
        // /25 through the gateway wins over the on-link /24.
        assert_eq!(
            t.resolve(Egress::Nat, src, [10, 0, 1, 200]),
            found([2, 0, 0, 0, 1, 1])
        );
        assert_eq!(
            t.resolve(Egress::Nat, src, [10, 0, 1, 7]),
            NextHop::NoNeighbour {
                smac: [2, 0, 0, 0, 0, 0xaa]
            }
        );
        // Routes of the other egress do not count.
        assert_eq!(t.resolve(Egress::Nat, src, [8, 8, 8, 8]), NextHop::NoRoute);
        assert_eq!(
            t.resolve(Egress::Client, src, [8, 8, 8, 8]),
            NextHop::Found {
                dmac: [2, 0, 0, 0, 2, 1],
                smac: [2, 0, 0, 0, 0, 0xbb]
            }
        );
        t.macs.clear();
        assert_eq!(
            t.resolve(Egress::Client, src, [8, 8, 8, 8]),
            NextHop::NoRoute
        );
    }
}
