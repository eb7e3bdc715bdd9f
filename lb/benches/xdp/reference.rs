//! The XDP benchmark's reference program (`ebpf/bench/xdp_lru.bpf.c`, built by `build.rs` into
//! `$OUT_DIR/xdp_lru.bpf.o`): a per-CPU kernel LRU hash of the 5-tuple and a MAC rewrite, the
//! design most XDP balancers use, measured behind the same harness as the director.
//!
//! Contract: [`Reference::load`] loads a fresh copy (its `ref_flows` LRU sized to the
//! director's default table, `abi::MAX_CONNS` entries, empty) with the given backend MACs;
//! [`Reference::fd`] is a harness target; [`Reference::stats`] sums its per-CPU counters
//! (misses, i.e. inserts; hits; failed inserts); [`Reference::expect`] runs a frame once and
//! checks the output is the input with the source MAC set to the old destination and the
//! destination set to one of the backends, returning that output; [`Reference::establish`]
//! does the same on an empty `ref_flows`, then copies the one entry it inserted (recorded by the
//! CPU that ran it) to every CPU's value, so later runs hit with the same backend whichever CPU
//! they run on (a per-CPU design's flows stay on one CPU under RSS; the bench does not pin).

use aya::maps::{Array, PerCpuArray, PerCpuHashMap, PerCpuValues};
use aya::programs::{ProgramFd, Xdp};
use aya::{Ebpf, EbpfLoader};

use super::harness::BoxError;
use strait_lb::abi;
use strait_lb::xdp::test_run_timed;

/// The reference's counters (`ref_stats`), summed over CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RefStats {
    pub miss: u64,
    pub hit: u64,
    pub insert_failed: u64,
}

impl std::ops::Sub for RefStats {
    type Output = RefStats;
    fn sub(self, before: RefStats) -> RefStats {
        RefStats {
            miss: self.miss - before.miss,
            hit: self.hit - before.hit,
            insert_failed: self.insert_failed - before.insert_failed,
        }
    }
}

/// The value of `ref_backends` (`struct ref_backend`).
#[repr(C)]
#[derive(Clone, Copy)]
struct RefBackend {
    mac: [u8; 6],
    pad: u16,
}

// SAFETY: plain bytes without padding (8 bytes); every bit pattern is valid.
unsafe impl aya::Pod for RefBackend {}

fn object() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xdp_lru.bpf.o"))
}

const PROGRAM: &str = "ref_lru";
const XDP_TX: u32 = 3;

/// A loaded reference program and its maps.
pub struct Reference {
    ebpf: Ebpf,
    backends: Vec<[u8; 6]>,
}

impl Reference {
    /// Loads a fresh reference program (see the module doc; needs root).
    pub fn load(backends: &[[u8; 6]]) -> Result<Reference, BoxError> {
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("ref_flows", abi::MAX_CONNS)
            .load(object())?;
        let p: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .ok_or("no program ref_lru")?
            .try_into()?;
        p.load()?;
        let mut map: Array<_, RefBackend> =
            Array::try_from(ebpf.map_mut("ref_backends").ok_or("no map ref_backends")?)?;
        for (i, mac) in (0u32..).zip(backends) {
            map.set(i, RefBackend { mac: *mac, pad: 0 }, 0)?;
        }
        Ok(Reference {
            ebpf,
            backends: backends.to_vec(),
        })
    }

    /// The program.
    pub fn program(&self) -> Result<&Xdp, BoxError> {
        let p = self.ebpf.program(PROGRAM).ok_or("no program ref_lru")?;
        Ok(p.try_into()?)
    }

    /// A duplicate of the program's fd (a harness target).
    pub fn fd(&self) -> Result<ProgramFd, BoxError> {
        Ok(self.program()?.fd()?.try_clone()?)
    }

    /// The counters, summed over CPUs.
    pub fn stats(&self) -> Result<RefStats, BoxError> {
        let map: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.ebpf.map("ref_stats").ok_or("no map ref_stats")?)?;
        let sum = |i: u32| -> Result<u64, BoxError> { Ok(map.get(&i, 0)?.iter().sum()) };
        Ok(RefStats {
            miss: sum(0)?,
            hit: sum(1)?,
            insert_failed: sum(2)?,
        })
    }

    /// Runs `frame` once on an empty table and gives its entry to every CPU (see the module
    /// doc); returns the output.
    pub fn establish(&mut self, frame: &[u8]) -> Result<Vec<u8>, BoxError> {
        let out = self.expect(frame)?;
        let mut flows: PerCpuHashMap<_, [u8; 16], [u8; 16]> =
            PerCpuHashMap::try_from(self.ebpf.map_mut("ref_flows").ok_or("no map ref_flows")?)?;
        let keys = flows.keys().collect::<Result<Vec<_>, _>>()?;
        let [key] = keys[..] else {
            return Err(format!("reference: {} flows, 1 expected", keys.len()).into());
        };
        let values = flows.get(&key, 0)?;
        let recorded = values
            .iter()
            .find(|v| v.iter().any(|&b| b != 0))
            .copied()
            .ok_or("reference: the flow has no CPU's value")?;
        let all = PerCpuValues::try_from(vec![recorded; values.len()])?;
        flows.insert(key, all, 0)?;
        Ok(out)
    }

    /// Runs `frame` once and checks the output (see the module doc); returns it.
    pub fn expect(&self, frame: &[u8]) -> Result<Vec<u8>, BoxError> {
        let out = test_run_timed(self.program()?, frame, 1)?;
        let ok = out.action == XDP_TX
            && out.frame.len() == frame.len()
            && out.frame[6..12] == frame[0..6]
            && self.backends.iter().any(|m| out.frame[0..6] == m[..])
            && out.frame[12..] == frame[12..];
        if !ok {
            return Err(format!("reference: action {} or output wrong", out.action).into());
        }
        Ok(out.frame)
    }
}
