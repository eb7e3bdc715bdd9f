//! The interleaved ns/packet table of the XDP benchmark (`benches/xdp.rs`): the established
//! and the SYN sections.
//!
//! Contract: [`interleave`] runs every [`Case`] `runs` times with `BPF_PROG_TEST_RUN` at
//! `repeat`, case after case within each run (so all cases share the machine's disturbances),
//! checks each run's action and output bytes against the case's, calls `after` after each run
//! (the section's own checks: counters) and records the kernel's ns per repetition; a case runs
//! its program directly, or behind `bench_restore` (the harness) with the director, the
//! reference program or the trivial program as its target ([`Target`]). [`print`] shows each
//! case's median (raw), its net figure (behind the harness: raw − (harness+trivial −
//! trivial)), the ratio to the trivial median, the minimum and every run; it returns the net
//! figures in table order (the first is the trivial program's median, at least 1). The table
//! must start with the trivial case and hold one `harness + trivial` case (the trivial program
//! behind the harness).

use super::harness::{median, BoxError, Controls};
use super::reference::Reference;
use strait_lb::xdp::{test_run_timed, XdpDirector};

/// The program a case measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `bench_xdp_tx`.
    Trivial,
    /// The director.
    Director,
    /// The reference program (`ebpf/bench/xdp_lru.bpf.c`).
    Reference,
}

/// One case of a table.
pub struct Case {
    pub name: &'static str,
    /// Behind the harness (else run directly).
    pub harness: bool,
    pub target: Target,
    pub frame: Vec<u8>,
    pub expect: Vec<u8>,
    pub action: u32,
    pub runs: Vec<u64>,
}

/// A case of the director (`harness`: behind the harness), input and expected output `io`.
pub fn case(name: &'static str, harness: bool, io: &(Vec<u8>, Vec<u8>), action: u32) -> Case {
    Case {
        name,
        harness,
        target: Target::Director,
        frame: io.0.clone(),
        expect: io.1.clone(),
        action,
        runs: Vec::new(),
    }
}

/// A case of the reference program behind the harness, input and expected output `io`
/// (XDP_TX).
pub fn reference(name: &'static str, io: &(Vec<u8>, Vec<u8>)) -> Case {
    Case {
        target: Target::Reference,
        ..case(name, true, io, 3)
    }
}

/// The trivial program on `frame` (`harness`: behind the harness); XDP_TX, output = input.
pub fn trivial(name: &'static str, harness: bool, frame: &[u8]) -> Case {
    Case {
        name,
        harness,
        target: Target::Trivial,
        frame: frame.to_vec(),
        expect: frame.to_vec(),
        action: 3,
        runs: Vec::new(),
    }
}

/// Runs the table (see the module doc); `reference` is needed by reference cases only.
pub fn interleave(
    director: &XdpDirector,
    reference: Option<&Reference>,
    controls: &mut Controls,
    table: &mut [Case],
    runs: usize,
    repeat: u32,
    mut after: impl FnMut(&Case) -> Result<(), BoxError>,
) -> Result<(), BoxError> {
    let reference = || reference.ok_or("no reference program loaded");
    for _ in 0..runs {
        for c in table.iter_mut() {
            let r = if c.harness {
                let target = match c.target {
                    Target::Director => director.program()?.fd()?.try_clone()?,
                    Target::Reference => reference()?.fd()?,
                    Target::Trivial => controls.trivial_fd()?,
                };
                controls.arm(&target, &c.frame, None)?;
                test_run_timed(controls.harness()?, &c.frame, repeat)?
            } else {
                match c.target {
                    Target::Director => test_run_timed(director.program()?, &c.frame, repeat)?,
                    Target::Reference => test_run_timed(reference()?.program()?, &c.frame, repeat)?,
                    Target::Trivial => test_run_timed(controls.trivial()?, &c.frame, repeat)?,
                }
            };
            if r.action != c.action || r.frame != c.expect {
                return Err(format!("{}: action {} or output differs", c.name, r.action).into());
            }
            c.runs.push(r.ns_per_run);
            after(c)?;
        }
    }
    Ok(())
}

/// Prints the table (see the module doc); returns the net figures (the trivial one first).
pub fn print(table: &[Case]) -> Vec<u64> {
    let m: Vec<u64> = table.iter().map(|c| median(&c.runs)).collect();
    let trivial = m.first().copied().unwrap_or(1).max(1);
    let harness_trivial = table
        .iter()
        .zip(&m)
        .find(|(c, _)| c.harness && c.target == Target::Trivial);
    let harness_cost = harness_trivial.map_or(trivial, |(_, raw)| *raw);
    let harness_cost = harness_cost.saturating_sub(trivial);
    println!(
        "{:<32} {:>6} {:>6} {:>8} {:>5}  runs",
        "case", "raw", "net", "x triv", "min"
    );
    let mut nets = Vec::new();
    for (c, raw) in table.iter().zip(&m) {
        let net = if c.harness {
            raw.saturating_sub(harness_cost)
        } else {
            *raw
        };
        nets.push(net);
        println!(
            "{:<32} {:>6} {:>6} {:>7.2}x {:>5}  {:?}",
            c.name,
            raw,
            net,
            net as f64 / trivial as f64,
            c.runs.iter().min().copied().unwrap_or(0),
            c.runs
        );
    }
    if let Some(first) = nets.first_mut() {
        *first = trivial;
    }
    println!(
        "net = raw, or raw - {harness_cost} ns behind the restore harness (harness cost = \
         harness+trivial - trivial)."
    );
    nets
}
