//! The interleaved ns/packet table of the XDP benchmark (`benches/xdp.rs`): the established
//! and the SYN sections.
//!
//! Contract: [`interleave`] runs every [`Case`] `runs` times with `BPF_PROG_TEST_RUN` at
//! `repeat`, case after case within each run (so all cases share the machine's disturbances),
//! checks each run's action and output bytes against the case's, calls `after` after each run
//! (the section's own checks: counters) and records the kernel's ns per repetition; a case runs
//! its program directly, or behind `bench_restore` (the harness) with the director or the
//! trivial program as its target. [`print`] shows each case's median (raw), its net figure
//! (behind the harness: raw − (harness+trivial − trivial)), the ratio to the trivial median,
//! the minimum and every run; it returns the trivial program's median. The table must start
//! with the trivial case and hold one `harness + trivial` case (the trivial program behind the
//! harness).

use super::harness::{median, BoxError, Controls};
use strait_lb::xdp::{test_run_timed, XdpDirector};

/// One case of a table.
pub struct Case {
    pub name: &'static str,
    /// `None`: the program runs directly; `Some(director?)`: behind the harness.
    pub harness: Option<bool>,
    /// The director (else the trivial program) when run directly.
    pub director: bool,
    pub frame: Vec<u8>,
    pub expect: Vec<u8>,
    pub action: u32,
    pub runs: Vec<u64>,
}

/// A case of the director (`harness`: behind the harness), input and expected output `io`.
pub fn case(name: &'static str, harness: bool, io: &(Vec<u8>, Vec<u8>), action: u32) -> Case {
    Case {
        name,
        harness: harness.then_some(true),
        director: true,
        frame: io.0.clone(),
        expect: io.1.clone(),
        action,
        runs: Vec::new(),
    }
}

/// The trivial program on `frame` (`harness`: behind the harness); XDP_TX, output = input.
pub fn trivial(name: &'static str, harness: bool, frame: &[u8]) -> Case {
    Case {
        name,
        harness: harness.then_some(false),
        director: false,
        frame: frame.to_vec(),
        expect: frame.to_vec(),
        action: 3,
        runs: Vec::new(),
    }
}

/// Runs the table (see the module doc).
pub fn interleave(
    director: &XdpDirector,
    controls: &mut Controls,
    table: &mut [Case],
    runs: usize,
    repeat: u32,
    mut after: impl FnMut(&Case) -> Result<(), BoxError>,
) -> Result<(), BoxError> {
    for _ in 0..runs {
        for c in table.iter_mut() {
            let r = match c.harness {
                None if c.director => test_run_timed(director.program()?, &c.frame, repeat)?,
                None => test_run_timed(controls.trivial()?, &c.frame, repeat)?,
                Some(to_director) => {
                    let target = if to_director {
                        director.program()?.fd()?.try_clone()?
                    } else {
                        controls.trivial_fd()?
                    };
                    controls.arm(&target, &c.frame, None)?;
                    test_run_timed(controls.harness()?, &c.frame, repeat)?
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

/// Prints the table (see the module doc); returns the trivial median (at least 1).
pub fn print(table: &[Case]) -> u64 {
    let m: Vec<u64> = table.iter().map(|c| median(&c.runs)).collect();
    let trivial = m.first().copied().unwrap_or(1).max(1);
    let harness_trivial = table.iter().zip(&m).find(|(c, _)| c.harness == Some(false));
    let harness_cost = harness_trivial.map_or(trivial, |(_, raw)| *raw);
    let harness_cost = harness_cost.saturating_sub(trivial);
    println!(
        "{:<28} {:>6} {:>6} {:>8} {:>5}  runs",
        "case", "raw", "net", "x triv", "min"
    );
    for (c, raw) in table.iter().zip(&m) {
        let net = match c.harness {
            Some(_) => raw.saturating_sub(harness_cost),
            None => *raw,
        };
        println!(
            "{:<28} {:>6} {:>6} {:>7.2}x {:>5}  {:?}",
            c.name,
            raw,
            net,
            net as f64 / trivial as f64,
            c.runs.iter().min().copied().unwrap_or(0),
            c.runs
        );
    }
    println!(
        "net = raw, or raw - {harness_cost} ns behind the restore harness (harness cost = \
         harness+trivial - trivial)."
    );
    trivial
}
