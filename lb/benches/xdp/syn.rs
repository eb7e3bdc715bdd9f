//! The SYN section of the XDP benchmark (`benches/xdp.rs`): new flows the way.
//!
//! Contract: one 64-byte opening SYN per mode (`frames::syn_frame`), repeated `repeat` times;
//! an opening SYN never follows the connection table, so every repetition is a new flow:
//! Maglev pick, a table record of the same key (its way rewritten under the set's lock),
//! NAT's reply entry, per-backend counters and one flow event. All three run behind the
//! restore harness, as in the established table. Before timing, one run of each
//! frame is compared with the reference model (action and bytes); every timed run must give
//! the model's output and move the service's `flows` by exactly `repeat` (trivial runs: 0).
//! The flow events are read while the director runs, as in production: a thread runs the
//! control plane's reader (`xdp::FlowEvents::next`) on the director's ring (production size),
//! and after each run every event must be accounted for, read or lost (`event_lost`), within 2 s
//! ([`settle`]; [`reader`] and [`settle`] serve the distinct-flow section too). Returns the
//! net figures for the closing summary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::frames::{self, Fixture};
use super::harness::{BoxError, Controls};
use super::table::{self, case, trivial, Target};
use strait_lb::abi::{self, Counter};
use strait_lb::packet::csum::frame_ok;
use strait_lb::xdp::{FlowEvents, XdpDirector};

/// The mode's 64-byte opening SYN from `src` to `port` (`frames::syn_frame`), checksums
/// checked, run once through `director` and compared with the model; returns the frame and
/// the model's output.
pub fn checked_syn(
    fx: &mut Fixture,
    director: &mut XdpDirector,
    src: [u8; 4],
    port: u16,
    mode: &str,
) -> Result<(Vec<u8>, Vec<u8>), BoxError> {
    let frame = frames::syn_frame(src, 40_000, port);
    if frame.len() != 64 || frame_ok(&frame).is_err() {
        return Err(format!("{mode}: bad SYN frame").into());
    }
    let expected = fx.model(&frame);
    let got = director.test_run(&frame)?;
    if (got.action, &got.frame) != (expected.0, &expected.1) {
        return Err(format!("{mode} SYN: director and model disagree").into());
    }
    Ok((frame, expected.1))
}

/// The reader thread: counts the events `FlowEvents::next` returns until `stop` is sent.
pub fn reader(
    mut events: FlowEvents,
    read: Arc<AtomicU64>,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> std::thread::JoinHandle<Result<(), String>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    e = events.next() => {
                        e.map_err(|e| e.to_string())?;
                        read.fetch_add(1, Ordering::Relaxed);
                    }
                    _ = &mut stop => return Ok(()),
                }
            }
        })
    })
}

/// Waits (2 s at most) until the events read (`read`) and lost (`event_lost`) add up to
/// `sent`; an error when they do not, or exceed it.
pub fn settle(
    director: &XdpDirector,
    read: &AtomicU64,
    sent: u64,
    name: &str,
) -> Result<(), BoxError> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let seen = read.load(Ordering::Relaxed) + director.counter(Counter::EventLost)?;
        if seen == sent {
            return Ok(());
        }
        if seen > sent || Instant::now() > deadline {
            return Err(format!("{name}: {seen} events read or lost, {sent} sent").into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The section (see the module doc); `modes` as in the benchmark: (name, port, action).
/// Returns the net ns/packet of each mode.
pub fn run(
    fx: &mut Fixture,
    controls: &mut Controls,
    modes: &[(&str, u16, u32)],
    runs: usize,
    repeat: u32,
) -> Result<SynFigures, BoxError> {
    let mut director = fx.director()?;
    let backends = 3 * fx.services_list().len() as u32;
    let mut io = Vec::new();
    for &(mode, port, _) in modes {
        let (frame, expected) = checked_syn(fx, &mut director, [10, 9, 0, 2], port, mode)?;
        io.push((frame, expected));
    }
    let [dr, tun, nat] = &io[..] else {
        return Err("three modes expected".into());
    };
    let [(_, _, dr_a), (_, _, tun_a), (_, _, nat_a)] = modes else {
        return Err("three modes expected".into());
    };
    let mut cases = vec![
        trivial("trivial (return XDP_TX)", false, &dr.0),
        trivial("harness + trivial", true, &dr.0),
        case("harness + DR SYN", true, dr, *dr_a),
        case("harness + NAT SYN", true, nat, *nat_a),
        case("harness + TUN SYN", true, tun, *tun_a),
    ];
    let events = director.take_flow_events().ok_or("no flow event ring")?;
    let read = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let thread = reader(events, read.clone(), stopped);
    let flows = |d: &XdpDirector| -> Result<u64, BoxError> {
        Ok(d.stats(0, backends)?.iter().map(|s| s.flows).sum())
    };
    // Events of the model checks above: one per mode.
    let mut accounted = modes.len() as u64;
    let mut last_flows = flows(&director)?;
    let result = table::interleave(&director, None, controls, &mut cases, runs, repeat, |c| {
        let now = flows(&director)?;
        let want = if c.target == Target::Director {
            u64::from(repeat)
        } else {
            0
        };
        if now - last_flows != want {
            return Err(format!(
                "{}: {} new flows, {want} expected",
                c.name,
                now - last_flows
            )
            .into());
        }
        last_flows = now;
        accounted += want;
        settle(&director, &read, accounted, c.name)
    });
    let _ = stop.send(());
    thread.join().map_err(|_| "reader thread panicked")??;
    result?;
    let lost = director.counter(Counter::EventLost)?;
    println!();
    println!(
        "New flows, SYN (the issue's method): one opening SYN per mode, repeat = {repeat}, \
         every repetition a new flow (a record of one key), median of {runs} interleaved runs \
         (ns/pkt)"
    );
    let nets = table::print(&cases);
    println!(
        "flow events: {} read by FlowEvents::next while the runs went on, {lost} lost (ring of \
         {} KiB). Target: new flow <= 8x trivial.",
        read.load(Ordering::Relaxed),
        abi::FLOW_EVENTS_BYTES >> 10
    );
    Ok(SynFigures {
        dr: nets[2],
        nat: nets[3],
        tun: nets[4],
    })
}

/// The section's net figures (ns/packet).
pub struct SynFigures {
    pub dr: u64,
    pub nat: u64,
    pub tun: u64,
}
