//! The benchmark's control programs (`ebpf/bench/xdp_tx.bpf.c`, built by `build.rs` into
//! `$OUT_DIR/xdp_tx.bpf.o`) and small statistics helpers.
//!
//! Contract: [`Controls::load`] loads `bench_xdp_tx` (returns `XDP_TX`) and `bench_restore`
//! (restores the input frame every repetition, optionally with a new source address each
//! time, then tail-calls its target); [`Controls::arm`] sets the harness's target program and
//! input frame (64 bytes) and resets its sequence of source addresses to `vary`'s start.

use aya::maps::{Array, ProgramArray};
use aya::programs::{ProgramFd, Xdp};
use aya::{Ebpf, EbpfLoader};

/// Errors of the benchmark.
pub type BoxError = Box<dyn std::error::Error>;

/// The value of `bench_input` (`struct bench_input` in `ebpf/bench/xdp_tx.bpf.c`).
#[repr(C)]
#[derive(Clone, Copy)]
struct BenchInput {
    frame: [u64; 8],
    len: u32,
    vary: u32,
    seq: u32,
    pad: u32,
}

// SAFETY: plain integers without padding (80 bytes, 8-aligned); every bit pattern is valid.
unsafe impl aya::Pod for BenchInput {}

fn object() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xdp_tx.bpf.o"))
}

/// The loaded control object.
pub struct Controls {
    ebpf: Ebpf,
}

impl Controls {
    /// Loads both control programs (needs root).
    pub fn load() -> Result<Controls, BoxError> {
        let mut ebpf = EbpfLoader::new().load(object())?;
        for name in ["bench_xdp_tx", "bench_restore"] {
            let p: &mut Xdp = ebpf
                .program_mut(name)
                .ok_or(format!("no program {name}"))?
                .try_into()?;
            p.load()?;
        }
        Ok(Controls { ebpf })
    }

    fn program(&self, name: &str) -> Result<&Xdp, BoxError> {
        let p = self
            .ebpf
            .program(name)
            .ok_or(format!("no program {name}"))?;
        Ok(p.try_into()?)
    }

    /// `bench_xdp_tx`.
    pub fn trivial(&self) -> Result<&Xdp, BoxError> {
        self.program("bench_xdp_tx")
    }

    /// `bench_restore`.
    pub fn harness(&self) -> Result<&Xdp, BoxError> {
        self.program("bench_restore")
    }

    /// A duplicate of `bench_xdp_tx`'s fd (a harness target).
    pub fn trivial_fd(&self) -> Result<ProgramFd, BoxError> {
        Ok(self.trivial()?.fd()?.try_clone()?)
    }

    /// Points the harness at `target` with `frame` as its input; `vary = Some(start)` makes
    /// repetition `k` use source address `start + k`.
    pub fn arm(
        &mut self,
        target: &ProgramFd,
        frame: &[u8],
        vary: Option<u32>,
    ) -> Result<(), BoxError> {
        let bytes: [u8; 64] = frame.try_into().map_err(|_| "frame is not 64 bytes")?;
        let mut words = [0u64; 8];
        for (w, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *w = u64::from_ne_bytes(b);
        }
        let input = BenchInput {
            frame: words,
            len: 64,
            vary: u32::from(vary.is_some()),
            seq: vary.unwrap_or(0),
            pad: 0,
        };
        let ebpf = &mut self.ebpf;
        let mut inputs: Array<_, BenchInput> =
            Array::try_from(ebpf.map_mut("bench_input").ok_or("no map bench_input")?)?;
        inputs.set(0, input, 0)?;
        let mut targets =
            ProgramArray::try_from(ebpf.map_mut("bench_target").ok_or("no map bench_target")?)?;
        targets.set(0, target, 0)?;
        Ok(())
    }
}

/// The median (upper one for an even count); 0 when empty.
pub fn median(values: &[u64]) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// The median of signed values; 0 when empty.
pub fn median_i(values: &[i64]) -> i64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// The mean; 0 when empty.
pub fn mean(values: &[i64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64
}
