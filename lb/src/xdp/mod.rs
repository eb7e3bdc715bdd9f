//! The XDP datapath's userspace half: load the embedded director object with aya, fill its
//! maps, and run it on bytes with `BPF_PROG_TEST_RUN`.
//!
//! Contract:
//! * `object` is `ebpf/director.bpf.o` as built by `build.rs`, 8-byte aligned.
//! * [`XdpDirector::load`] sets the `STRAIT_DIRECTOR` global (MAC, IP, NAT egress
//!   interfaces, the connection table's masks), sizes the `conns` table
//!   (`packet::conntable::sets_for(max_conns)` sets; the caller's `conn_seed` keys its hash)
//!   and the per-CPU `conn_cache` (`cache_entries_for`), loads the maps and verifies the
//!   program (needs `CAP_BPF`/root) and fills the egress devmap with the non-zero NAT egress interfaces,
//!   and maps `conns` into the process (module `mmap`, unmapped on drop); nothing is attached
//!   to an interface ([`XdpDatapath`] attaches).
//! * [`XdpDirector::install_service`] writes a model service (`packet::service::Service`):
//!   backends first, then its Maglev table into a *free* slot, then the service entry that
//!   points at both — one map update, so the program sees the old service or the new one,
//!   never half a table. Callers alternate slots between updates of a service, and give each
//!   service its own slot pair (`2p`, `2p + 1`): `p` is the service's id in `service_gen`.
//!   Every install gets a new generation, written to `service_gen[p]` before the entry, so
//!   connection entries of older versions leave the program's fast path.
//!   A backend that is not `alive` is written with `abi::BACKEND_DEAD`: the program then
//!   reschedules its recorded flows (fast path included) as the model does.
//! * [`XdpDirector::test_run`] runs the program once on a frame and returns its action and
//!   the output frame (`BPF_PROG_TEST_RUN`; frames shorter than 14 bytes are refused by the
//!   kernel), as received on `lo` (the kernel's default); [`XdpDirector::test_run_on`] as
//!   received on the interface of the index given (an `xdp_md` context with that
//!   `ingress_ifindex`: the ARP responder answers only on the client-facing interface).
//! * [`XdpDirector::install_synced`] writes flows synced from the peer director into the
//!   connection table through its mapping (module `install`), by the program's rules; the
//!   services must have been installed with [`XdpDirector::install_service`].
//! * [`XdpDirector::set_egress_entry`] fills or empties an entry of the egress devmap
//!   (module `egress`).
//! * [`XdpDirector::set_owned`] makes the `owned` map hold exactly the VIPs given: the new
//!   ones inserted first, then the others deleted.
//! * [`test_run_timed`] runs any loaded XDP program `repeat` times on one frame and returns
//!   the last action, the output frame and the kernel-measured average duration per
//!   repetition (the benchmark's primitive; [`XdpDirector::program`] exposes the director).

mod attach;
mod batch;
mod datapath;
mod egress;
mod events;
mod install;
mod jiffies;
mod layout;
mod maps;
mod mmap;

pub use datapath::XdpDatapath;
pub use events::{FlowEvent, FlowEvents, EVENT_POLL_INTERVAL};

use aya::maps::{Array, HashMap, IterableMap, MapError, PerCpuArray};
use aya::programs::{ProgramError, TestRun, TestRunOptions, Xdp};
use aya::{Ebpf, EbpfError, EbpfLoader};
use std::os::fd::AsFd;

use crate::abi;
use crate::packet::conntable;
use crate::packet::service::{FlowHash, Service, ServiceKey};

/// Extra room in the output buffer for a frame grown at its head (TUN adds 20 bytes).
const OUTPUT_HEADROOM: usize = 256;

/// The compiled director object.
pub(crate) fn object() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/director.bpf.o"))
}

/// Errors of the XDP datapath.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object could not be loaded (maps created, relocations applied).
    #[error("loading the XDP director object")]
    Load(#[source] Box<EbpfError>),
    /// The program was rejected (verifier) or could not be run.
    #[error("XDP program {what}")]
    Program {
        /// What was attempted.
        what: &'static str,
        /// The cause.
        #[source]
        source: Box<ProgramError>,
    },
    /// A map operation failed.
    #[error("BPF map {map}")]
    Map {
        /// The map's name.
        map: &'static str,
        /// The cause.
        #[source]
        source: Box<MapError>,
    },
    /// The object lacks a map or program this code expects.
    #[error("the XDP object has no {0}")]
    Missing(&'static str),
    /// A service does not fit the maps' bounds.
    #[error("service does not fit the BPF maps: {0}")]
    OutOfBounds(String),
    /// A batch read of a map failed.
    #[error("BPF map {0}: batch lookup")]
    Batch(&'static str, #[source] std::io::Error),
    /// Removing a map entry failed.
    #[error("BPF map {0}: delete")]
    Delete(&'static str, #[source] std::io::Error),
    /// The connection table could not be mapped into the process.
    #[error("BPF map conns: mmap")]
    Mmap(#[source] std::io::Error),
    /// The kernel's jiffies could not be read (`/proc/timer_list`).
    #[error("reading the kernel's jiffies")]
    Jiffies(#[source] std::io::Error),
}

fn map_err(map: &'static str) -> impl Fn(MapError) -> Error {
    move |e| Error::Map {
        map,
        source: Box::new(e),
    }
}

/// What one test run returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRunOutput {
    /// The XDP action (`XDP_DROP` = 1, `XDP_PASS` = 2, `XDP_TX` = 3, `XDP_REDIRECT` = 4).
    pub action: u32,
    /// The frame after the program.
    pub frame: Vec<u8>,
}

/// The loaded (not attached) director program and its maps.
pub struct XdpDirector {
    ebpf: Ebpf,
    /// Backend statistics wiped by `zero_stats` (kept in the derived tx counters).
    wiped: abi::Stats,
    /// The generation of the next install (never 0, never reused).
    next_gen: u32,
    /// The connection table, mapped (`install`).
    conns_map: mmap::ConnsMap,
    /// The connection table's set hash seed and set mask, as the loader set them.
    conn_seed: u64,
    conn_mask: u32,
    /// What synced flows need of each installed service (`install`).
    sync_targets: install::SyncTargets,
    /// The jiffies as `install_synced` reads them (`jiffies::Anchor`).
    jiffies: jiffies::Anchor,
    /// Forward entries gained by userspace writes (`install`), added to the program's gauge.
    forward_delta: i64,
}

impl std::fmt::Debug for XdpDirector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpDirector").finish_non_exhaustive()
    }
}

impl XdpDirector {
    /// Loads the object with the director's addresses and a `conns` bound (see module doc).
    pub fn load(mut director: abi::Director, max_conns: u32) -> Result<XdpDirector, Error> {
        let sets = conntable::sets_for(max_conns as usize) as u32;
        let cache =
            conntable::cache_entries_for(max_conns as usize, abi::CONN_CACHE_MAX as usize) as u32;
        director.conn_mask = sets - 1;
        director.conn_cache_mask = cache - 1;
        let mut ebpf = EbpfLoader::new()
            .override_global(abi::names::DIRECTOR, &director, true)
            .map_max_entries(abi::names::CONNS, sets)
            .map_max_entries(abi::names::CONN_CACHE, cache)
            .load(object())
            .map_err(|e| Error::Load(Box::new(e)))?;
        let program: &mut Xdp = ebpf
            .program_mut(abi::names::PROGRAM)
            .ok_or(Error::Missing("program strait_director"))?
            .try_into()
            .map_err(|e| Error::Program {
                what: "type",
                source: Box::new(e),
            })?;
        program.load().map_err(|e| Error::Program {
            what: "load",
            source: Box::new(e),
        })?;
        let conns_map = {
            let m = abi::names::CONNS;
            let map: Array<_, abi::ConnSet> =
                Array::try_from(ebpf.map(m).ok_or(Error::Missing(m))?).map_err(map_err(m))?;
            mmap::ConnsMap::new(map.map().fd().as_fd(), sets).map_err(Error::Mmap)?
        };
        let mut loaded = XdpDirector {
            ebpf,
            wiped: abi::Stats::default(),
            next_gen: 1,
            conns_map,
            conn_seed: director.conn_seed,
            conn_mask: director.conn_mask,
            sync_targets: install::SyncTargets::new(),
            jiffies: jiffies::Anchor::default(),
            forward_delta: 0,
        };
        for (slot, ifindex) in [
            (abi::EGRESS_NAT, director.nat_ifindex),
            (abi::EGRESS_CLIENT, director.client_ifindex),
        ] {
            if ifindex != 0 {
                loaded.set_egress(slot, ifindex)?;
            }
        }
        Ok(loaded)
    }

    /// Writes a service of the model (see the module doc for the order).
    pub fn install_service(
        &mut self,
        key: &ServiceKey,
        service: &Service,
        slot: u32,
        backend_base: u32,
    ) -> Result<(), Error> {
        let count = u32::try_from(service.backends.len())
            .map_err(|_| Error::OutOfBounds("too many backends".into()))?;
        let fits = matches!(backend_base.checked_add(count), Some(end) if end <= abi::MAX_BACKENDS);
        if !fits {
            return Err(Error::OutOfBounds(format!(
                "backends {backend_base}+{count} beyond {}",
                abi::MAX_BACKENDS
            )));
        }
        if slot >= abi::MAGLEV_SLOTS {
            return Err(Error::OutOfBounds(format!("maglev slot {slot}")));
        }
        {
            let m = abi::names::BACKENDS;
            let mut backends: Array<_, abi::Backend> =
                Array::try_from(self.ebpf.map_mut(m).ok_or(Error::Missing(m))?)
                    .map_err(map_err(m))?;
            for (i, b) in (backend_base..).zip(&service.backends) {
                let value = abi::Backend {
                    ip: b.ip,
                    mac: b.mac,
                    port: b.port.to_be_bytes(),
                    flags: if b.alive { 0 } else { abi::BACKEND_DEAD },
                    pad: [0; 3],
                };
                backends.set(i, value, 0).map_err(map_err(m))?;
            }
        }
        let table_size = match &service.table {
            Some(table) => {
                if table.size() > abi::MAGLEV_MAX {
                    return Err(Error::OutOfBounds(format!("table size {}", table.size())));
                }
                let m = abi::names::MAGLEV;
                let mut maglev: Array<_, u32> =
                    Array::try_from(self.ebpf.map_mut(m).ok_or(Error::Missing(m))?)
                        .map_err(map_err(m))?;
                let base = slot * abi::MAGLEV_MAX;
                for (i, entry) in (base..).zip(table.entries()) {
                    maglev.set(i, entry, 0).map_err(map_err(m))?;
                }
                table.size()
            }
            None => 0,
        };
        let value = abi::Service {
            table_slot: slot,
            table_size,
            backend_base,
            backend_count: count,
            mode: install::mode_byte(service.mode),
            hash: match service.hash {
                FlowHash::FiveTuple => abi::HASH_FIVE_TUPLE,
                FlowHash::Source => abi::HASH_SOURCE,
            },
            id: (slot / 2) as u8,
            pad: 0,
            gen: self.next_gen,
        };
        self.next_gen = self.next_gen.checked_add(1).unwrap_or(1);
        self.set_service_gen(slot / 2, value.gen)?;
        let k = maps::abi_key(key);
        let m = abi::names::SERVICES;
        let mut services: HashMap<_, abi::ServiceKey, abi::Service> =
            HashMap::try_from(self.ebpf.map_mut(m).ok_or(Error::Missing(m))?)
                .map_err(map_err(m))?;
        services.insert(k, value, 0).map_err(map_err(m))?;
        let target = install::SyncTarget::of(service, value.id, value.mode);
        self.sync_targets.insert(*key, target);
        Ok(())
    }

    /// Runs the program once on `frame` (see the module doc).
    pub fn test_run(&mut self, frame: &[u8]) -> Result<TestRunOutput, Error> {
        let run = test_run_timed(self.program()?, frame, 1)?;
        Ok(TestRunOutput {
            action: run.action,
            frame: run.frame,
        })
    }

    /// Runs the program once on `frame` received on interface `ingress_ifindex` (an
    /// interface of the calling thread's namespace; see the module doc).
    pub fn test_run_on(
        &mut self,
        frame: &[u8],
        ingress_ifindex: u32,
    ) -> Result<TestRunOutput, Error> {
        let run = run_timed(self.program()?, frame, 1, Some(ingress_ifindex))?;
        Ok(TestRunOutput {
            action: run.action,
            frame: run.frame,
        })
    }

    /// The loaded director program (to time it, or to place it in a program array).
    pub fn program(&self) -> Result<&Xdp, Error> {
        self.ebpf
            .program(abi::names::PROGRAM)
            .ok_or(Error::Missing("program strait_director"))?
            .try_into()
            .map_err(|e| Error::Program {
                what: "type",
                source: Box::new(e),
            })
    }

    /// The loaded director program, to attach it.
    pub fn program_mut(&mut self) -> Result<&mut Xdp, Error> {
        self.ebpf
            .program_mut(abi::names::PROGRAM)
            .ok_or(Error::Missing("program strait_director"))?
            .try_into()
            .map_err(|e| Error::Program {
                what: "type",
                source: Box::new(e),
            })
    }

    /// A counter summed over CPUs.
    ///
    /// `TxNew` and `TxEstablished` are derived from every backend's statistics (flows, and
    /// packets − flows), including those wiped since load: the program does not count them.
    pub fn counter(&self, counter: abi::Counter) -> Result<u64, Error> {
        if matches!(counter, abi::Counter::TxNew | abi::Counter::TxEstablished) {
            let all = self.stats(0, abi::MAX_BACKENDS)?;
            let (packets, flows) = all
                .iter()
                .fold((self.wiped.packets, self.wiped.flows), |a, s| {
                    (a.0 + s.packets, a.1 + s.flows)
                });
            return Ok(match counter {
                abi::Counter::TxNew => flows,
                _ => packets.saturating_sub(flows),
            });
        }
        let m = abi::names::COUNTERS;
        let map: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.ebpf.map(m).ok_or(Error::Missing(m))?)
                .map_err(map_err(m))?;
        let values = map.get(&(counter as u32), 0).map_err(map_err(m))?;
        Ok(values.iter().sum())
    }
}

/// What a timed test run returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedRun {
    /// The XDP action of the last repetition.
    pub action: u32,
    /// The frame after the last repetition.
    pub frame: Vec<u8>,
    /// The kernel's average duration of one repetition, in nanoseconds (whole ns).
    pub ns_per_run: u64,
}

/// Runs `program` `repeat` times (at least once) on `frame` with `BPF_PROG_TEST_RUN`.
///
/// The kernel reuses one buffer for all repetitions: from the second on, the program sees its
/// own output.
pub fn test_run_timed(program: &Xdp, frame: &[u8], repeat: u32) -> Result<TimedRun, Error> {
    run_timed(program, frame, repeat, None)
}

/// [`test_run_timed`], as received on interface `ingress` when given (else `lo`).
fn run_timed(
    program: &Xdp,
    frame: &[u8],
    repeat: u32,
    ingress: Option<u32>,
) -> Result<TimedRun, Error> {
    let mut out = vec![0u8; frame.len() + OUTPUT_HEADROOM];
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
    // egress_ifindex. The kernel wants data 0 and data_end the frame's length.
    let ctx: Option<Vec<u8>> = ingress.map(|ifindex| {
        let words = [0, frame.len() as u32, 0, ifindex, 0, 0];
        words.iter().flat_map(|w| w.to_ne_bytes()).collect()
    });
    let result = program
        .test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: ctx.as_deref(),
            repeat: repeat.max(1),
            ..TestRunOptions::new()
        })
        .map_err(|e| Error::Program {
            what: "test run",
            source: Box::new(e),
        })?;
    out.truncate(result.data_size_out as usize);
    Ok(TimedRun {
        action: result.return_value,
        frame: out,
        ns_per_run: u64::try_from(result.duration.as_nanos()).unwrap_or(u64::MAX),
    })
}

#[cfg(test)]
mod tests {
    /// The datapath and the event reader move into tasks and threads.
    #[test]
    fn datapath_and_events_are_send() {
        fn send<T: Send>() {}
        send::<super::XdpDatapath>();
        send::<super::FlowEvents>();
        send::<super::XdpDirector>();
    }
}
