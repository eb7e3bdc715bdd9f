//! The userspace datapath (`datapath = "userspace"`): the director's decisions made in Rust
//! over AF_PACKET sockets, for hosts without XDP.
//!
//! Contract (beyond the [`Datapath`] trait's):
//! * [`UserspaceDatapath::open`] must run in the network namespace of the interfaces (a
//!   thread that `setns`-ed is enough: everything it needs is captured there). It opens one
//!   packet socket per interface (`interface`, and `inner_interface` when it is another one),
//!   one receive thread per socket and one neighbour-resolver thread, and creates the
//!   nftables table `ip strait_us_<pid>` (module `nft`: why the kernel must be kept out of
//!   balanced traffic), deleting any such table whose process is gone. It fails with a
//!   clear error when `nft` is missing, when an interface index does not match its name in
//!   this namespace, when `max_conns` is 0, or when a datapath of this process already runs
//!   in this namespace.
//! * Decisions are `packet::process` against one shared service table and one connection
//!   table bounded at `max_conns` entries, both directions (`packet::conntable`; module
//!   `worker` has the per-frame rules).
//! * [`Datapath::set_owned`] swaps the owned VIPs whole; the receive thread of the
//!   client-facing interface answers ARP requests for them, broadcast or addressed to it
//!   (module `worker`). The socket is bound to every protocol, so ARP reaches it; the kernel
//!   sees the request too and stays silent, the VIP being none of its addresses.
//! * The new-flow stream ([`Datapath::take_new_flows`]) carries every flow the receive threads
//!   record; [`Datapath::install_synced`] places synced flows in the shared connection table
//!   by the XDP table's rule (`packet::conntable::place`), against the services installed.
//! * [`Datapath::apply`] first replaces the nftables rules (refusing protocols other than
//!   TCP and UDP), then swaps the service table whole, then asks for the MACs of the NAT
//!   backends so the first frames of their flows are not dropped for want of one.
//! * The host's GRO/LRO should be off on the director's interfaces: merged frames exceed
//!   the MTU and cannot be sent as they are (they are counted as `tx_error`).
//! * Known limit: the kernel strips 802.1Q tags before a packet socket sees the frame on a
//!   device with VLAN offload, so tagged traffic is balanced without its tag.

mod conns;
mod nexthop;
mod nft;
mod socket;
mod stats;
mod worker;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use arc_swap::ArcSwap;

use crate::abi::Counter;
use crate::datapath::{
    BackendStats, ConnEntry, Counters, Datapath, DatapathError, DatapathOptions, Installed,
    NewFlow, NewFlowStream, SyncedFlow, SYNC_EVENTS_LOST,
};
use crate::iface::Interface;
use crate::packet::arp::OwnedVips;
use crate::packet::service::{Mode, Service, ServiceKey, Services};
use conns::Conns;
use nexthop::{NeighbourCache, ResolveRequest, RESOLVE_QUEUE};
use socket::PacketSocket;
use stats::{BackendCounters, DatapathCounters};
use worker::{lock, Budget, Egress, Shared, Worker};

pub use nft::table_name;

/// The userspace datapath (see the module doc).
#[derive(Debug)]
pub struct UserspaceDatapath {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// `None` once shut down.
    nft: Option<nft::Nft>,
    resolve: SyncSender<ResolveRequest>,
    inner_name: String,
}

/// Checks that `iface` describes the interface of that name in the current namespace.
fn check_interface(iface: &Interface) -> Result<(), DatapathError> {
    let what = format!("userspace datapath on {}", iface.name);
    let name = std::ffi::CString::new(iface.name.as_str())
        .map_err(|_| DatapathError::msg(what.clone(), "interface name contains NUL"))?;
    // SAFETY: name is a valid NUL-terminated string.
    let here = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if here == 0 {
        return Err(DatapathError::msg(
            what,
            "no such interface in this network namespace",
        ));
    }
    if here != iface.ifindex {
        return Err(DatapathError::msg(
            what,
            format!(
                "interface index is {here} here but {} in the options (described in another \
                 network namespace?)",
                iface.ifindex
            ),
        ));
    }
    Ok(())
}

fn open_socket(iface: &Interface) -> Result<Arc<PacketSocket>, DatapathError> {
    PacketSocket::open(iface.ifindex)
        .map(Arc::new)
        .map_err(|e| DatapathError::new(format!("open a packet socket on {}", iface.name), &e))
}

impl UserspaceDatapath {
    /// Opens the datapath (see the module doc).
    pub fn open(opts: &DatapathOptions) -> Result<UserspaceDatapath, DatapathError> {
        if opts.max_conns == 0 {
            return Err(DatapathError::msg(
                "userspace datapath",
                "max_conns must be at least 1",
            ));
        }
        let outer_iface = opts.interface.clone();
        let inner_iface = opts
            .inner_interface
            .clone()
            .unwrap_or_else(|| outer_iface.clone());
        check_interface(&outer_iface)?;
        check_interface(&inner_iface)?;
        let nft = nft::Nft::create(table_name())?;
        match nft.sweep_stale() {
            Ok(gone) if !gone.is_empty() => {
                tracing::info!(tables = ?gone, "removed nftables tables of dead userspace datapaths");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not look for stale nftables tables"),
        }
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            services: ArcSwap::from_pointee(Services::new()),
            owned: ArcSwap::from_pointee(OwnedVips::NONE),
            conns: Mutex::new(Conns::with_timeouts(
                opts.max_conns as usize,
                opts.conn_timeouts,
            )),
            backends: Mutex::new(BackendCounters::default()),
            counters: DatapathCounters::default(),
            new_flows: NewFlowStream::default(),
            stop: stop.clone(),
        });
        let (resolve, requests) = sync_channel(RESOLVE_QUEUE);
        // From here on, dropping `dp` (on any error) stops what was started and deletes the
        // table.
        let mut dp = UserspaceDatapath {
            shared: shared.clone(),
            threads: Vec::new(),
            nft: Some(nft),
            resolve: resolve.clone(),
            inner_name: inner_iface.name.clone(),
        };
        dp.nft_ref()?.install(&[])?;
        let outer = Egress {
            socket: open_socket(&outer_iface)?,
            iface: outer_iface,
        };
        let inner = if inner_iface.ifindex == outer.iface.ifindex {
            outer.clone()
        } else {
            Egress {
                socket: open_socket(&inner_iface)?,
                iface: inner_iface,
            }
        };
        let resolver = std::thread::Builder::new()
            .name("strait-us-arp".into())
            .spawn(move || nexthop::run_resolver(requests, stop))
            .map_err(|e| DatapathError::new("spawn the neighbour resolver", &e))?;
        dp.threads.push(resolver);
        let mut readers = vec![outer.clone()];
        if inner.iface.ifindex != outer.iface.ifindex {
            readers.push(inner.clone());
        }
        for rx in readers {
            let name = format!("strait-us-{}", rx.iface.name);
            let w = Worker {
                shared: shared.clone(),
                rx,
                outer: outer.clone(),
                inner: inner.clone(),
                neighbours: NeighbourCache::new(resolve.clone()),
                icmp: Budget::new(opts.icmp),
                new_flow: Budget::new(opts.new_flow),
            };
            let t = std::thread::Builder::new()
                .name(name)
                .spawn(move || w.run())
                .map_err(|e| DatapathError::new("spawn a receive thread", &e))?;
            dp.threads.push(t);
        }
        tracing::info!(
            interface = %outer.iface.name,
            inner = %inner.iface.name,
            table = %table_name(),
            "userspace datapath open"
        );
        Ok(dp)
    }

    fn nft_ref(&self) -> Result<&nft::Nft, DatapathError> {
        self.nft
            .as_ref()
            .ok_or_else(|| DatapathError::msg("userspace datapath", "already shut down"))
    }
}

impl Datapath for UserspaceDatapath {
    fn name(&self) -> String {
        "userspace".into()
    }

    fn apply(&mut self, services: &[(ServiceKey, Service)]) -> Result<(), DatapathError> {
        self.nft_ref()?.install(services)?;
        let mut table = Services::new();
        let mut nat_backends = HashSet::new();
        for (key, service) in services {
            table.insert(*key, service.clone());
            if service.mode == Mode::Nat {
                nat_backends.extend(service.backends.iter().map(|b| Ipv4Addr::from(b.ip)));
            }
        }
        self.shared.services.store(Arc::new(table));
        for ip in nat_backends {
            // A full queue only delays that backend's first flow by a retransmission.
            let _ = self.resolve.try_send((ip, self.inner_name.clone()));
        }
        Ok(())
    }

    fn set_owned(&mut self, vips: &[Ipv4Addr]) -> Result<(), DatapathError> {
        self.nft_ref()?;
        let owned =
            OwnedVips::new(vips).map_err(|e| DatapathError::new("set the owned VIPs", &e))?;
        self.shared.owned.store(Arc::new(owned));
        tracing::info!(vips = ?vips, "answering ARP for the owned VIPs");
        Ok(())
    }

    fn backend_stats(&self, key: &ServiceKey) -> Result<Vec<BackendStats>, DatapathError> {
        let services = self.shared.services.load();
        let Some(service) = services.get(key) else {
            return Err(DatapathError::msg(
                "backend stats",
                format!(
                    "no service {}:{} (protocol {})",
                    Ipv4Addr::from(key.vip),
                    key.port,
                    key.proto
                ),
            ));
        };
        Ok(lock(&self.shared.backends).get(key, service.backends.len()))
    }

    fn conns(&self, limit: usize) -> Result<Vec<ConnEntry>, DatapathError> {
        Ok(lock(&self.shared.conns).entries(limit, std::time::Instant::now()))
    }

    fn conn_count(&self) -> Result<u64, DatapathError> {
        Ok(lock(&self.shared.conns).len() as u64)
    }

    fn counters(&self) -> Result<Counters, DatapathError> {
        let mut out = self.shared.counters.snapshot();
        // The table's own counts, as the program's counters.
        let (evicted, half_open, expired) = {
            let conns = lock(&self.shared.conns);
            (conns.evicted(), conns.evicted_half_open(), conns.expired())
        };
        for (name, value) in &mut out {
            if *name == Counter::ConnEvicted.as_str() {
                *value = evicted;
            } else if *name == Counter::ConnEvictedHalfOpen.as_str() {
                *value = half_open;
            } else if *name == Counter::ConnExpired.as_str() {
                *value = expired;
            }
        }
        out.push((SYNC_EVENTS_LOST, self.shared.new_flows.lost()));
        Ok(out)
    }

    fn take_new_flows(&mut self) -> Option<tokio::sync::mpsc::Receiver<NewFlow>> {
        self.shared.new_flows.take()
    }

    fn install_synced(&mut self, flows: &[SyncedFlow]) -> Result<Installed, DatapathError> {
        let services = self.shared.services.load();
        let at = std::time::Instant::now();
        Ok(lock(&self.shared.conns).install(flows, &services, at))
    }

    fn shutdown(&mut self) -> Result<(), DatapathError> {
        self.shared.stop.store(true, Ordering::Relaxed);
        let mut panicked = 0;
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                panicked += 1;
            }
        }
        if let Some(nft) = self.nft.take() {
            nft.delete()?;
            tracing::info!(table = %nft.table(), "userspace datapath shut down");
        }
        if panicked > 0 {
            return Err(DatapathError::msg(
                "userspace datapath shutdown",
                format!("{panicked} thread(s) had panicked"),
            ));
        }
        Ok(())
    }
}

impl Drop for UserspaceDatapath {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "userspace datapath shutdown on drop");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::XdpMode;

    fn options(name: &str, ifindex: u32, max_conns: u32) -> DatapathOptions {
        DatapathOptions {
            interface: Interface {
                name: name.into(),
                ifindex,
                mac: [0; 6],
                ip: Ipv4Addr::LOCALHOST,
                mtu: 1500,
            },
            inner_interface: None,
            xdp_mode: XdpMode::Auto,
            max_conns,
            icmp: crate::packet::ratelimit::IcmpLimit::NONE,
            conn_timeouts: crate::datapath::ConnTimeouts::default(),
            new_flow: crate::packet::ratelimit::IcmpLimit::NONE,
        }
    }

    #[test]
    fn bad_options_are_refused_before_anything_is_opened() {
        let e = UserspaceDatapath::open(&options("lo", 1, 0)).unwrap_err();
        assert!(
            e.to_string().contains("max_conns must be at least 1"),
            "{e}"
        );
        let e = UserspaceDatapath::open(&options("nonexistent0", 1, 16)).unwrap_err();
        assert!(e.to_string().contains("no such interface"), "{e}");
        let e = UserspaceDatapath::open(&options("lo", 4_000_000, 16)).unwrap_err();
        assert!(e.to_string().contains("index is 1 here but 4000000"), "{e}");
        let e = UserspaceDatapath::open(&options("a\0b", 1, 16)).unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
    }
}
