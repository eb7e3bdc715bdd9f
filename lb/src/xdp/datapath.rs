//! [`XdpDatapath`]: the director program attached to the interfaces, behind the
//! [`Datapath`] seam.
//!
//! Contract (beyond `crate::datapath`):
//! * [`XdpDatapath::open`] loads the director with the MAC and IPv4 address of
//!   `opts.interface`; NAT forwards leave by `inner_interface` (or `interface` when there is
//!   none), NAT replies by `interface` (the egress devmap). It attaches to `interface`, and to
//!   `inner_interface` when that is another interface (so NAT replies are seen), in the mode
//!   asked (`xdp::attach_plan`); [`Datapath::name`] reports the modes really used. A failure
//!   detaches whatever was attached before it.
//! * [`Datapath::apply`] places every service with `xdp::Layout` (its own slot pair,
//!   alternating; a stable region of the backends array that moves only when the backend
//!   count outgrows it), fills the backends and the free table slot, then switches the service
//!   entry in one map update; a service identical to the installed one is not rewritten.
//!   Services absent from the set are deleted afterwards, then retired regions released.
//! * Per-backend statistics survive a region move: the old region's totals are carried and
//!   added; a fresh region is zeroed before use.
//! * [`Datapath::set_owned`] fills the `owned` map (`XdpDirector::set_owned`); the program
//!   answers ARP for those VIPs on frames whose ingress is `interface` (not `inner_interface`).
//! * Idle timeouts (`opts.conn_timeouts`) are given to the program in jiffies, at the tick
//!   rate measured at open (`xdp::jiffies`; 250 Hz assumed, with a warning, when it cannot be
//!   measured). [`Datapath::conns`] lists the forward entries not idle past their timeout,
//!   with their idle time (jiffies read from `/proc/timer_list`; when unreadable, every held
//!   entry, without idle time), each with its half-open and synced marks.
//! * The new-flow stream ([`Datapath::take_new_flows`]) is fed by the task that reads the
//!   program's `flow_events` ring (started by `drain_flow_events`, or by the take); a flow
//!   the ring lost (`event_lost`) is not in it. [`Datapath::install_synced`] writes into the
//!   program's table from userspace (`XdpDirector::install_synced`), idle times converted at
//!   the measured tick rate.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aya::programs::xdp::XdpLinkId;

use super::attach::{self, AttachMode};
use super::layout::Layout;
use super::XdpDirector;
use crate::abi;
use crate::datapath::{
    BackendStats, ConnEntry, Counters, Datapath, DatapathError, DatapathOptions, Installed,
    NewFlow, NewFlowStream, SyncedFlow, SYNC_EVENTS_LOST,
};
use crate::packet::arp::OwnedVips;
use crate::packet::conntable;
use crate::packet::service::{IdleTimeouts, Service, ServiceKey};

/// One attachment of the program.
#[derive(Debug)]
struct Attachment {
    interface: String,
    link: XdpLinkId,
    mode: AttachMode,
}

/// The XDP datapath (see the module doc).
pub struct XdpDatapath {
    director: XdpDirector,
    /// The kernel's tick rate, and the idle timeouts in its ticks.
    hz: u32,
    idle: IdleTimeouts,
    layout: Layout,
    installed: HashMap<ServiceKey, Service>,
    /// Statistics of regions a service moved away from, by backend index.
    carried: HashMap<ServiceKey, Vec<BackendStats>>,
    attachments: Vec<Attachment>,
    /// New-flow events read by [`XdpDatapath::drain_flow_events`]'s task.
    events_read: Arc<AtomicU64>,
    /// Where that task sends them once taken ([`Datapath::take_new_flows`]).
    new_flows: Arc<NewFlowStream>,
    drain: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for XdpDatapath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpDatapath")
            .field("attachments", &self.attachments)
            .field("services", &self.installed.len())
            .finish_non_exhaustive()
    }
}

fn err(what: impl Into<String>) -> impl FnOnce(super::Error) -> DatapathError {
    let what = what.into();
    move |e| DatapathError::new(what, &e)
}

fn add(a: BackendStats, s: abi::Stats) -> BackendStats {
    BackendStats {
        packets: a.packets + s.packets,
        bytes: a.bytes + s.bytes,
        flows: a.flows + s.flows,
    }
}

impl XdpDatapath {
    /// Loads and attaches the director (see the module doc).
    pub fn open(opts: &DatapathOptions) -> Result<XdpDatapath, DatapathError> {
        let outer = &opts.interface;
        let inner = opts.inner_interface.as_ref().unwrap_or(outer);
        let hz = super::jiffies::kernel_hz().unwrap_or_else(|e| {
            tracing::warn!(
                error = %e,
                "cannot measure the kernel's tick rate; idle timeouts assume 250 Hz"
            );
            250
        });
        let idle = opts.conn_timeouts.ticks(hz);
        let settings = abi::Director {
            mac: outer.mac,
            pad: [0; 2],
            ip: outer.ip.octets(),
            nat_ifindex: inner.ifindex,
            client_ifindex: outer.ifindex,
            nat_mac: inner.mac,
            pad2: [0; 2],
            mtu: outer.mtu,
            nat_ip: inner.ip.octets(),
            conn_mask: 0, // conn_mask and conn_cache_mask: set by load from max_conns
            conn_seed: crate::packet::conntable::random_seed(),
            conn_cache_mask: 0,
            nat_mtu: inner.mtu,
            icmp_cost: opts.icmp.cost_ns,
            icmp_cap: opts.icmp.cap_ns,
            tcp_idle: idle.tcp,
            udp_idle: idle.udp,
            tcp_fin_idle: idle.tcp_fin,
            pad4: 0,
            new_flow_cost: opts.new_flow.cost_ns,
            new_flow_cap: opts.new_flow.cap_ns,
        };
        let director =
            XdpDirector::load(settings, opts.max_conns).map_err(err("load the XDP director"))?;
        let mut dp = XdpDatapath {
            director,
            hz,
            idle,
            layout: Layout::new(abi::MAX_SERVICES, abi::MAX_BACKENDS),
            installed: HashMap::new(),
            carried: HashMap::new(),
            attachments: Vec::new(),
            events_read: Arc::new(AtomicU64::new(0)),
            new_flows: Arc::new(NewFlowStream::default()),
            drain: None,
        };
        let mut names = vec![outer.name.as_str()];
        if inner.name != outer.name {
            names.push(inner.name.as_str());
        }
        for name in names {
            let program = dp
                .director
                .program_mut()
                .map_err(err("find the XDP program"))?;
            let (link, mode) = attach::attach(program, name, opts.xdp_mode)?;
            tracing::info!(
                interface = name,
                mode = mode.as_str(),
                "XDP director attached"
            );
            dp.attachments.push(Attachment {
                interface: name.to_owned(),
                link,
                mode,
            });
        }
        Ok(dp)
    }

    /// Reads the new-flow events on a task of the current tokio runtime, counts them
    /// (`flow_events_read`) and passes them on to the new-flow stream once taken
    /// ([`Datapath::take_new_flows`]), until [`Datapath::shutdown`]. The running director
    /// reads them from open on: a ring nobody reads is full after a few thousand flows, and
    /// `event_lost` would then count every new flow instead of what a burst really
    /// overflowed. Events already queued are counted, not passed on. Does nothing outside a
    /// runtime or once the events are taken.
    pub(crate) fn drain_flow_events(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(mut events) = self.director.take_flow_events() else {
            return;
        };
        // Events queued before now (a take that starts the reading) are counted, not sent.
        while events.try_next().is_some() {
            self.events_read.fetch_add(1, Ordering::Relaxed);
        }
        let read = Arc::clone(&self.events_read);
        let stream = Arc::clone(&self.new_flows);
        self.drain = Some(runtime.spawn(async move {
            loop {
                match events.next().await {
                    Ok(e) => {
                        read.fetch_add(1, Ordering::Relaxed);
                        stream.send(e.into());
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reading new-flow events failed; stopped");
                        return;
                    }
                }
            }
        }));
    }

    /// The reader of new-flow events (`xdp::FlowEvents`); `None` once taken.
    pub fn flow_events(&mut self) -> Option<super::FlowEvents> {
        self.director.take_flow_events()
    }

    /// The loaded director, to run frames through it (`XdpDirector::test_run`) in tests and
    /// benchmarks; changing its maps directly bypasses the layout.
    pub fn director_mut(&mut self) -> &mut XdpDirector {
        &mut self.director
    }

    fn install(&mut self, key: &ServiceKey, svc: &Service) -> Result<(), DatapathError> {
        if self.installed.get(key) == Some(svc) {
            return Ok(());
        }
        let what = || format!("install service {}", describe(key));
        let count = u32::try_from(svc.backends.len())
            .map_err(|_| DatapathError::msg(what(), "too many backends"))?;
        let placed = self
            .layout
            .place(*key, count)
            .map_err(|e| DatapathError::new(what(), &e))?;
        if let Some(old) = placed.moved_from {
            let before = self
                .installed
                .get(key)
                .map_or(0, |s| s.backends.len() as u32);
            let stats = self
                .director
                .stats(old.base, before.min(old.capacity))
                .map_err(err(what()))?;
            let carried = self.carried.entry(*key).or_default();
            if carried.len() < stats.len() {
                carried.resize(stats.len(), BackendStats::default());
            }
            for (c, s) in carried.iter_mut().zip(stats) {
                *c = add(*c, s);
            }
        }
        if placed.fresh {
            let r = placed.region;
            self.director
                .zero_stats(r.base, r.capacity)
                .map_err(err(what()))?;
        }
        self.director
            .install_service(key, svc, placed.slot, placed.region.base)
            .map_err(err(what()))?;
        self.installed.insert(*key, svc.clone());
        Ok(())
    }
}

/// Refuses a set that cannot fit the maps, before anything is written.
fn validate(services: &[(ServiceKey, Service)]) -> Result<(), DatapathError> {
    let what = "apply services";
    if services.len() > abi::MAX_SERVICES as usize {
        return Err(DatapathError::msg(
            what,
            format!("{} services, at most {}", services.len(), abi::MAX_SERVICES),
        ));
    }
    let mut total = 0usize;
    for (i, (key, svc)) in services.iter().enumerate() {
        if services[..i].iter().any(|(k, _)| k == key) {
            return Err(DatapathError::msg(what, format!("{} twice", describe(key))));
        }
        if let Some(t) = &svc.table {
            if t.size() > abi::MAGLEV_MAX {
                return Err(DatapathError::msg(
                    what,
                    format!(
                        "{}: table size {} above {}",
                        describe(key),
                        t.size(),
                        abi::MAGLEV_MAX
                    ),
                ));
            }
        }
        total += svc.backends.len().max(1);
    }
    if total > abi::MAX_BACKENDS as usize {
        return Err(DatapathError::msg(
            what,
            format!("{total} backends in all, at most {}", abi::MAX_BACKENDS),
        ));
    }
    Ok(())
}

/// `vip:port/proto` for messages.
fn describe(key: &ServiceKey) -> String {
    format!("{}:{}/{}", Ipv4Addr::from(key.vip), key.port, key.proto)
}

impl Datapath for XdpDatapath {
    fn name(&self) -> String {
        let mut modes: Vec<&str> = Vec::new();
        for a in &self.attachments {
            if !modes.contains(&a.mode.as_str()) {
                modes.push(a.mode.as_str());
            }
        }
        if modes.is_empty() {
            return "xdp/detached".to_owned();
        }
        format!("xdp/{}", modes.join("+"))
    }

    fn apply(&mut self, services: &[(ServiceKey, Service)]) -> Result<(), DatapathError> {
        validate(services)?;
        for (key, svc) in services {
            self.install(key, svc)?;
        }
        let gone: Vec<ServiceKey> = self
            .layout
            .keys()
            .filter(|k| !services.iter().any(|(key, _)| key == *k))
            .copied()
            .collect();
        for key in gone {
            self.director
                .remove_service(&key)
                .map_err(err(format!("remove service {}", describe(&key))))?;
            self.layout.remove(&key);
            self.installed.remove(&key);
            self.carried.remove(&key);
        }
        self.layout.release();
        Ok(())
    }

    fn set_owned(&mut self, vips: &[Ipv4Addr]) -> Result<(), DatapathError> {
        let what = "set the owned VIPs";
        let owned = OwnedVips::new(vips).map_err(|e| DatapathError::new(what, &e))?;
        self.director.set_owned(&owned).map_err(err(what))?;
        tracing::info!(vips = ?vips, "answering ARP for the owned VIPs");
        Ok(())
    }

    fn backend_stats(&self, key: &ServiceKey) -> Result<Vec<BackendStats>, DatapathError> {
        let what = || format!("backend stats of {}", describe(key));
        let (Some(svc), Some(region)) = (self.installed.get(key), self.layout.region_of(key))
        else {
            return Err(DatapathError::msg(what(), "no such service"));
        };
        let stats = self
            .director
            .stats(region.base, svc.backends.len() as u32)
            .map_err(err(what()))?;
        let carried = self.carried.get(key);
        Ok(stats
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let base = carried.and_then(|c| c.get(i)).copied().unwrap_or_default();
                add(base, s)
            })
            .collect())
    }

    fn conns(&self, limit: usize) -> Result<Vec<ConnEntry>, DatapathError> {
        // The jiffies' low 32 bits, as the program stores them.
        let now = super::jiffies::now().ok().map(|j| j as u32);
        let idle = self.idle;
        let entries = self
            .director
            .conns_where(limit, |k, seen| {
                now.is_none_or(|now| !conntable::expired(seen, now, idle.of(k.proto, k.dir)))
            })
            .map_err(err("read the connection table"))?;
        let hz = u64::from(self.hz);
        Ok(entries
            .into_iter()
            .map(|e| ConnEntry {
                client: (Ipv4Addr::from(e.key.src), u16::from_be_bytes(e.key.sport)),
                vip: (Ipv4Addr::from(e.key.dst), u16::from_be_bytes(e.key.dport)),
                proto: e.key.proto,
                backend: u32::from(e.value.backend),
                idle: now.map(|now| {
                    let ticks = u64::from(conntable::idle_ticks(e.seen, now));
                    std::time::Duration::from_millis(ticks * 1000 / hz)
                }),
                closing: e.seen & conntable::SEEN_CLOSING != 0,
                half_open: e.half_open,
                synced: e.value.synced(),
            })
            .collect())
    }

    fn conn_count(&self) -> Result<u64, DatapathError> {
        self.director
            .conn_forward()
            .map_err(err("read the connection count"))
    }

    fn counters(&self) -> Result<Counters, DatapathError> {
        let c = self.director.counters().map_err(err("read the counters"))?;
        let mut out: Counters = c.into_iter().map(|(k, v)| (k.as_str(), v)).collect();
        out.push(("flow_events_read", self.events_read.load(Ordering::Relaxed)));
        out.push((SYNC_EVENTS_LOST, self.new_flows.lost()));
        Ok(out)
    }

    /// Starts reading the events first if nothing does (`XdpDatapath::drain_flow_events`);
    /// `None` also when they cannot be read: outside a tokio runtime, or taken by
    /// [`XdpDatapath::flow_events`].
    fn take_new_flows(&mut self) -> Option<tokio::sync::mpsc::Receiver<NewFlow>> {
        if self.drain.is_none() {
            self.drain_flow_events();
        }
        self.drain.as_ref()?;
        self.new_flows.take()
    }

    fn install_synced(&mut self, flows: &[SyncedFlow]) -> Result<Installed, DatapathError> {
        let (idle, hz) = (self.idle, self.hz);
        let live: Vec<SyncedFlow> = flows
            .iter()
            .filter(|f| !idle.past(f, hz))
            .copied()
            .collect();
        let mut done = self
            .director
            .install_synced(&live, hz)
            .map_err(err("install synced flows"))?;
        done.refused += (flows.len() - live.len()) as u64;
        Ok(done)
    }

    fn shutdown(&mut self) -> Result<(), DatapathError> {
        if let Some(task) = self.drain.take() {
            task.abort();
        }
        let mut first_error = None;
        while let Some(a) = self.attachments.pop() {
            let program = self
                .director
                .program_mut()
                .map_err(err("find the XDP program"))?;
            match attach::detach(program, a.link, &a.interface) {
                Ok(()) => tracing::info!(interface = %a.interface, "XDP director detached"),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for XdpDatapath {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "XDP detach on drop failed");
        }
    }
}
