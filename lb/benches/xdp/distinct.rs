//! The distinct-flow section of the XDP benchmark (`benches/xdp.rs`): the new-flow cost of
//! real traffic, every repetition a new 5-tuple, against the reference program.
//!
//! Contract: per mode (DR, TUN, NAT), a freshly loaded director (connection table of the
//! default production size, `abi::MAX_CONNS` entries, empty) and a freshly loaded reference
//! program (`ebpf/bench/xdp_lru.bpf.c`: per-CPU kernel LRU of the same size, empty), so every
//! mode starts from the same state and the tables fill the same way. The input is the mode's
//! 64-byte opening SYN (`frames::syn_frame`, checked once against the model; the reference's
//! output once against its own rule); behind the restore harness with `vary`, repetition `k`
//! of a run gets source address `seq + k` (32 bits, so every repetition of every run is a new
//! 5-tuple). Each of `runs` runs of `repeat` repetitions runs harness+trivial, harness+reference
//! and harness+director in turn on the same address range, then the next run moves on to the
//! next range: `runs × repeat` distinct flows per program and mode. Checks after every run:
//! XDP_TX (NAT: XDP_REDIRECT); the director's `tx_new` and its backends' `flows` moved by
//! exactly `repeat`; the reference counted exactly `repeat` misses, no hit and no failed
//! insert; every flow event was read by the production reader (`syn::reader`, a thread running
//! `FlowEvents::next` on the director's ring during the runs) or counted lost, within 2 s.
//! Figures: medians of the runs; net = raw − (harness+trivial − `trivial`), `trivial` being the
//! established table's bare trivial median (repeat 1e6), as in the other sections. Returns
//! each mode's net director and reference figures for the closing summary. Beside them, a
//! director loaded with a new-flow guard of one flow per second (burst 1, spent before the
//! runs), so every repetition is over it (a SYN flood past the guard): DR/TUN must stay
//! XDP_TX with `new_flow_unrecorded` moving by `repeat` (less at most the two flows the
//! bucket's refill of one a second may allow in a run), NAT XDP_DROP with
//! `drop_new_flow_limit` likewise; it shows what a flooded SYN costs.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::frames::{self, Fixture};
use super::harness::{median, BoxError, Controls};
use super::reference::{RefStats, Reference};
use super::syn;
use strait_lb::abi::{self, Counter};
use strait_lb::xdp::{test_run_timed, XdpDirector};

/// The first source address of every mode's sequence (12.0.0.0): far from the fixed clients.
const FIRST_SOURCE: u32 = 0x0c00_0000;
const XDP_TX: u32 = 3;
const XDP_DROP: u32 = 1;

/// One mode's net figures (ns/packet).
#[derive(Debug, Clone, Copy)]
pub struct Distinct {
    pub director: u64,
    pub reference: u64,
    /// The director with a new-flow guard every flow is over (a SYN flood past the guard).
    pub guarded: u64,
}

/// The section (see the module doc); `modes` as in the benchmark: (name, port, action).
/// Returns the figures in `modes` order.
pub fn run(
    fx: &mut Fixture,
    controls: &mut Controls,
    modes: &[(&str, u16, u32)],
    runs: usize,
    repeat: u32,
    trivial: u64,
) -> Result<Vec<Distinct>, BoxError> {
    println!();
    println!(
        "New flows, distinct: opening SYNs, a new source address every repetition (harness \
         vary), repeat = {repeat}, {runs} runs = {} distinct flows per program and mode into a \
         fresh table of {} entries, flow events read meanwhile; harness+trivial, \
         harness+reference and harness+director interleaved on the same tuples (ns/pkt)",
        runs as u64 * u64::from(repeat),
        abi::MAX_CONNS
    );
    println!(
        "{:<4} {:>9} {:>9} {:>9} {:>9} {:>6} {:>6} {:>6} {:>7} {:>7} {:>8}  director runs / reference runs",
        "mode", "h+triv", "h+ref", "h+dir", "h+guard", "ref", "dir", "guard", "x ref", "x triv", "evicted"
    );
    let mut out = Vec::new();
    for &(mode, port, action) in modes {
        let mut director = fx.director()?;
        let mut guarded = fx.director_guarded()?;
        let reference = Reference::load(&frames::backend_macs())?;
        let (frame, _) = syn::checked_syn(fx, &mut director, [10, 9, 0, 3], port, mode)?;
        reference.expect(&frame)?;
        // The guarded director's first new flow spends its burst: every later one is over.
        guarded.test_run(&frame)?;
        let mut events = events_of(&mut director)?;
        let timed = timed(
            (&director, &guarded),
            &reference,
            controls,
            &mut events,
            (&frame, mode, action),
            runs,
            repeat,
        );
        events.stop()?;
        let (figures, runs_of) = timed?;
        let [h_triv, h_ref, h_dir, h_guard] = figures;
        let harness_cost = h_triv.saturating_sub(trivial);
        let d = Distinct {
            director: h_dir.saturating_sub(harness_cost),
            reference: h_ref.saturating_sub(harness_cost),
            guarded: h_guard.saturating_sub(harness_cost),
        };
        println!(
            "{:<4} {:>9} {:>9} {:>9} {:>9} {:>6} {:>6} {:>6} {:>6.2}x {:>6.2}x {:>8}  {:?} / {:?}",
            mode,
            h_triv,
            h_ref,
            h_dir,
            h_guard,
            d.reference,
            d.director,
            d.guarded,
            d.director as f64 / d.reference.max(1) as f64,
            d.director as f64 / trivial.max(1) as f64,
            director.counter(Counter::ConnEvicted)?,
            runs_of[2],
            runs_of[1]
        );
        out.push(d);
    }
    println!(
        "ref, dir = net ns/pkt (h+X - (h+triv - trivial), trivial = {trivial} ns); x ref = \
         dir / ref; x triv = dir / trivial; guard = the director with a new-flow guard every \
         flow is over (DR/TUN forwarded unrecorded, NAT dropped: a SYN flood past the guard); \
         evicted = the director's conn_evicted at the end \
         (NAT records two entries per flow)."
    );
    Ok(out)
}

/// The interleaved runs of one mode: medians of harness+trivial, +reference, +director, and
/// every run of each.
fn timed(
    (director, guarded): (&XdpDirector, &XdpDirector),
    reference: &Reference,
    controls: &mut Controls,
    events: &mut Events,
    (frame, mode, action): (&[u8], &str, u32),
    runs: usize,
    repeat: u32,
) -> Result<([u64; 4], [Vec<u64>; 4]), BoxError> {
    let backends = 3 * frames::backend_macs().len() as u32;
    let flows = |d: &XdpDirector| -> Result<u64, BoxError> {
        Ok(d.stats(0, backends)?.iter().map(|s| s.flows).sum())
    };
    let mut times: [Vec<u64>; 4] = Default::default();
    for run in 0..runs {
        let seq = FIRST_SOURCE + (run as u32) * repeat;
        let trivial = controls.trivial_fd()?;
        controls.arm(&trivial, frame, Some(seq))?;
        let t = test_run_timed(controls.harness()?, frame, repeat)?;
        if t.action != XDP_TX {
            return Err(format!("{mode} distinct trivial: action {}", t.action).into());
        }
        times[0].push(t.ns_per_run);

        let before = reference.stats()?;
        controls.arm(&reference.fd()?, frame, Some(seq))?;
        let r = test_run_timed(controls.harness()?, frame, repeat)?;
        let moved = reference.stats()? - before;
        let want = RefStats {
            miss: u64::from(repeat),
            ..RefStats::default()
        };
        if r.action != XDP_TX || moved != want {
            return Err(
                format!("{mode} distinct reference: action {}, {moved:?}", r.action).into(),
            );
        }
        times[1].push(r.ns_per_run);

        let (new_before, flows_before) = (director.counter(Counter::TxNew)?, flows(director)?);
        let target = director.program()?.fd()?.try_clone()?;
        controls.arm(&target, frame, Some(seq))?;
        let d = test_run_timed(controls.harness()?, frame, repeat)?;
        let new = director.counter(Counter::TxNew)? - new_before;
        let recorded = flows(director)? - flows_before;
        if d.action != action || new != u64::from(repeat) || recorded != u64::from(repeat) {
            return Err(format!(
                "{mode} distinct director: action {}, tx_new +{new}, flows +{recorded}",
                d.action
            )
            .into());
        }
        times[2].push(d.ns_per_run);
        events.sent += u64::from(repeat);
        syn::settle(director, &events.read, events.sent, mode)?;

        // Over the guard: DR/TUN forwarded without a record, NAT dropped; nothing recorded.
        let over = if action == XDP_TX {
            Counter::NewFlowUnrecorded
        } else {
            Counter::DropNewFlowLimit
        };
        let over_before = guarded.counter(over)?;
        let target = guarded.program()?.fd()?.try_clone()?;
        controls.arm(&target, frame, Some(seq))?;
        let g = test_run_timed(controls.harness()?, frame, repeat)?;
        let moved = guarded.counter(over)? - over_before;
        let want_action = if action == XDP_TX { XDP_TX } else { XDP_DROP };
        // One token a second refills: a run may record a flow or two.
        if g.action != want_action || moved > u64::from(repeat) || moved + 2 < u64::from(repeat) {
            return Err(format!(
                "{mode} distinct guarded: action {}, {over:?} +{moved}",
                g.action
            )
            .into());
        }
        times[3].push(g.ns_per_run);
    }
    Ok(([0, 1, 2, 3].map(|i| median(&times[i])), times))
}

/// The production event reader on a director's ring, and the events it must account for.
struct Events {
    read: Arc<AtomicU64>,
    sent: u64,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Events {
    /// Stops the reader and returns its error, if any.
    fn stop(&mut self) -> Result<(), BoxError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(t) => Ok(t.join().map_err(|_| "reader thread panicked")??),
            None => Ok(()),
        }
    }
}

/// Starts the reader on `director`'s ring (its one model-check event already sent).
fn events_of(director: &mut XdpDirector) -> Result<Events, BoxError> {
    let ring = director.take_flow_events().ok_or("no flow event ring")?;
    let read = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let thread = syn::reader(ring, read.clone(), stopped);
    Ok(Events {
        read,
        sent: 1,
        stop: Some(stop),
        thread: Some(thread),
    })
}
