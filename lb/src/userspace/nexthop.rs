//! Next hops of redirected (NAT) frames: the route's gateway and its MAC.
//!
//! Contract:
//! * [`parse_routes`] reads the text of `/proc/net/route` (the main IPv4 table; pure) and
//!   [`next_hop`] picks, among the routes that are up on one interface, the longest prefix
//!   containing the destination (lowest metric on a tie): its gateway, or the destination
//!   itself when the route is direct or no route on that interface matches (on-link).
//! * [`NeighbourCache`] answers "MAC of this next hop on this interface" from the kernel's
//!   neighbour table ([`neigh::lookup`]), remembering answers for [`NEIGH_TTL`]. An unknown
//!   address is handed to the resolver thread ([`neigh::resolve`] of its next hop, off the
//!   hot path, through a queue of [`RESOLVE_QUEUE`] requests; a full queue drops the request)
//!   and answered `None` (the caller drops the frame) for [`NEIGH_MISS_TTL`] before it is
//!   looked up again.
//!
//! The kernel files are read through `/proc/thread-self/`, the namespace of the calling
//! thread (`/proc/net` follows the process's main thread instead).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::neigh;

/// How long a known MAC is reused before the kernel table is read again.
pub(super) const NEIGH_TTL: Duration = Duration::from_secs(1);
/// How long an unknown next hop is answered `None` before the table is read again.
pub(super) const NEIGH_MISS_TTL: Duration = Duration::from_millis(100);
/// Bound of the queue of resolution requests.
pub(super) const RESOLVE_QUEUE: usize = 64;
/// How long the resolver waits for one answer: not at all. Asking is enough (the kernel
/// completes the resolution, with its own retries, and the caches find the answer in its
/// table), and a resolver that does not wait keeps shutdown prompt.
pub(super) const RESOLVE_WAIT: Duration = Duration::ZERO;

/// `RTF_UP` and `RTF_GATEWAY` of `/proc/net/route`.
const RTF_UP: u32 = 0x1;
const RTF_GATEWAY: u32 = 0x2;

/// One route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Route {
    /// Output interface.
    pub(crate) device: String,
    /// Destination network.
    pub(crate) dest: Ipv4Addr,
    /// Gateway, if the route has one.
    pub gateway: Option<Ipv4Addr>,
    /// Network mask.
    pub mask: Ipv4Addr,
    /// Metric.
    pub metric: u32,
}

/// An address as `/proc/net/route` prints it: the in-memory (network order) bytes as a
/// native-endian hex integer.
fn route_addr(hex: &str) -> Option<Ipv4Addr> {
    u32::from_str_radix(hex, 16)
        .ok()
        .map(|v| Ipv4Addr::from(v.to_ne_bytes()))
}

/// Routes that are up, from a `/proc/net/route` text; malformed lines are skipped.
pub(super) fn parse_routes(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let flags = u32::from_str_radix(f[3], 16).ok()?;
            if flags & RTF_UP == 0 {
                return None;
            }
            let gateway = route_addr(f[2])?;
            Some(Route {
                device: f[0].to_owned(),
                dest: route_addr(f[1])?,
                gateway: (flags & RTF_GATEWAY != 0).then_some(gateway),
                mask: route_addr(f[7])?,
                metric: f[6].parse().ok()?,
            })
        })
        .collect()
}

/// The next hop towards `dst` out of `device` (see the module doc).
pub(super) fn next_hop(routes: &[Route], dst: Ipv4Addr, device: &str) -> Ipv4Addr {
    let d = u32::from(dst);
    routes
        .iter()
        .filter(|r| r.device == device && d & u32::from(r.mask) == u32::from(r.dest))
        .min_by_key(|r| (std::cmp::Reverse(u32::from(r.mask).count_ones()), r.metric))
        .and_then(|r| r.gateway)
        .unwrap_or(dst)
}

/// The routes of the calling thread's namespace (empty if unreadable: all on-link).
pub(super) fn current_routes() -> Vec<Route> {
    std::fs::read_to_string("/proc/thread-self/net/route")
        .map(|t| parse_routes(&t))
        .unwrap_or_default()
}

/// A request to resolve `ip` on `device`.
pub(super) type ResolveRequest = (Ipv4Addr, String);

/// A cached answer: the MAC (`None`: unknown) and when it was read.
type Answer = (Option<[u8; 6]>, Instant);

/// Per-thread cache of next-hop MACs (see the module doc).
#[derive(Debug)]
pub(super) struct NeighbourCache {
    entries: HashMap<(Ipv4Addr, String), Answer>,
    resolver: SyncSender<ResolveRequest>,
}

impl NeighbourCache {
    /// A cache that sends its misses to `resolver`.
    pub(super) fn new(resolver: SyncSender<ResolveRequest>) -> NeighbourCache {
        NeighbourCache {
            entries: HashMap::new(),
            resolver,
        }
    }

    /// The MAC of `ip` on `device` at `now`, or `None` (resolution asked for).
    pub(super) fn mac(&mut self, ip: Ipv4Addr, device: &str, now: Instant) -> Option<[u8; 6]> {
        let key = (ip, device.to_owned());
        if let Some((mac, at)) = self.entries.get(&key) {
            let ttl = if mac.is_some() {
                NEIGH_TTL
            } else {
                NEIGH_MISS_TTL
            };
            if now.duration_since(*at) < ttl {
                return *mac;
            }
        }
        let mac = neigh::lookup(ip, device).ok().flatten();
        if mac.is_none() {
            self.request(ip, device);
        }
        self.entries.insert(key, (mac, now));
        mac
    }

    /// Asks the resolver for `ip` on `device` without waiting (dropped if the queue is full).
    pub(super) fn request(&self, ip: Ipv4Addr, device: &str) {
        match self.resolver.try_send((ip, device.to_owned())) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// The resolver thread's loop: resolves requests until `stop` is set.
pub(super) fn run_resolver(requests: Receiver<ResolveRequest>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match requests.recv_timeout(crate::userspace::socket::RECV_TIMEOUT) {
            // The answer lands in the kernel's table, where the caches find it. The next hop
            // is recomputed here: `apply` asks for backends, whose next hop may be a gateway.
            Ok((ip, device)) => {
                let hop = next_hop(&current_routes(), ip, &device);
                let _ = neigh::resolve(hop, &device, RESOLVE_WAIT);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(a: [u8; 4]) -> String {
        format!("{:08X}", u32::from_ne_bytes(a))
    }

    fn sample() -> String {
        let line =
            |dev: &str, dest: [u8; 4], gw: [u8; 4], flags: u32, metric: u32, mask: [u8; 4]| {
                format!(
                    "{dev}\t{}\t{}\t{flags:04X}\t0\t0\t{metric}\t{}\t0\t0\t0\n",
                    hex(dest),
                    hex(gw),
                    hex(mask)
                )
            };
        let mut s = String::from(
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n",
        );
        s += &line("eth0", [0; 4], [10, 0, 0, 1], 3, 0, [0; 4]);
        s += &line("eth0", [10, 0, 0, 0], [0; 4], 1, 0, [255, 255, 255, 0]);
        s += &line("eth1", [10, 0, 1, 0], [0; 4], 1, 0, [255, 255, 255, 0]);
        s += &line(
            "eth1",
            [10, 9, 0, 0],
            [10, 0, 1, 254],
            3,
            5,
            [255, 255, 0, 0],
        );
        s += &line(
            "eth1",
            [10, 9, 0, 0],
            [10, 0, 1, 253],
            3,
            1,
            [255, 255, 0, 0],
        );
        s += &line(
            "eth1",
            [10, 8, 0, 0],
            [10, 0, 1, 252],
            2,
            0,
            [255, 255, 0, 0],
        );
        s += "garbage\n";
        s
    }

    #[test]
    fn routes_are_read_in_network_order_and_down_ones_skipped() {
        let r = parse_routes(&sample());
        assert_eq!(r.len(), 5);
        assert_eq!(r[0].gateway, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(r[1].dest, Ipv4Addr::new(10, 0, 0, 0));
        assert_eq!(r[1].mask, Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(r[1].gateway, None);
        assert!(parse_routes("").is_empty());
    }

    #[test]
    fn next_hop_is_the_longest_prefix_gateway_or_the_address() {
        let r = parse_routes(&sample());
        let a = Ipv4Addr::new;
        assert_eq!(next_hop(&r, a(10, 0, 0, 7), "eth0"), a(10, 0, 0, 7));
        assert_eq!(next_hop(&r, a(192, 0, 2, 1), "eth0"), a(10, 0, 0, 1));
        assert_eq!(next_hop(&r, a(10, 0, 1, 11), "eth1"), a(10, 0, 1, 11));
        // Same prefix twice: the lower metric wins.
        assert_eq!(next_hop(&r, a(10, 9, 3, 3), "eth1"), a(10, 0, 1, 253));
        // A route that is down is ignored; no route on the interface: on-link.
        assert_eq!(next_hop(&r, a(10, 8, 3, 3), "eth1"), a(10, 8, 3, 3));
        assert_eq!(next_hop(&r, a(192, 0, 2, 1), "eth1"), a(192, 0, 2, 1));
    }

    #[test]
    fn unknown_neighbours_are_requested_once_per_miss_period() {
        let (tx, rx) = std::sync::mpsc::sync_channel(RESOLVE_QUEUE);
        let mut c = NeighbourCache::new(tx);
        let ip = Ipv4Addr::new(192, 0, 2, 1);
        let t0 = Instant::now();
        assert_eq!(c.mac(ip, "nonexistent0", t0), None);
        assert_eq!(c.mac(ip, "nonexistent0", t0 + NEIGH_MISS_TTL / 2), None);
        assert_eq!(rx.try_iter().count(), 1);
        assert_eq!(c.mac(ip, "nonexistent0", t0 + NEIGH_MISS_TTL), None);
        assert_eq!(
            rx.try_iter().collect::<Vec<_>>(),
            vec![(ip, "nonexistent0".into())]
        );
    }
}
