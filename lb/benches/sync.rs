//! How many new flows a second the connection sync keeps up with: a sending runner and a
//! receiving runner on loopback (127.0.78.1 → 127.0.78.2), each on its own thread with its
//! own single-threaded tokio runtime, authenticated (a 32-byte secret), `sync_rate` out of the
//! way. The sender is fed `FLOWS` distinct new flows through its new-flow channel as fast as
//! the channel takes them, in `rounds` rounds at rising offered rates (paced by the feeder:
//! 100k, 250k, 500k, 1M flows/s, then unpaced); per round: flows/s delivered (installed at the
//! receiver), records per datagram, flows lost (UDP drops when the receiver lags), and each
//! side's CPU time (its thread's `RUSAGE_THREAD`, user + system) per 1000 flows and as a share
//! of one core. `cargo bench -p strait-lb --bench sync`.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strait_lb::config::{SyncConfig, SyncSecret};
use strait_lb::datapath::{Installed, NewFlow, SyncedFlow};
use strait_lb::packet::parse::FiveTuple;
use strait_lb::packet::service::{Mode, ServiceKey};
use strait_lb::sync::host::{Aside, SyncHost};
use strait_lb::sync::runner::{Settings, SyncRunner};
use strait_lb::sync::Record;

const FLOWS: u64 = 400_000;
const A: Ipv4Addr = Ipv4Addr::new(127, 0, 78, 1);
const B: Ipv4Addr = Ipv4Addr::new(127, 0, 78, 2);
const BACKEND: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 11), 80);

/// Both sides' host: every flow's backend is [`BACKEND`]; installs are counted.
#[derive(Default)]
struct Host {
    installed: AtomicU64,
}

impl SyncHost for Host {
    fn describe(&self, _flow: &NewFlow) -> Option<(Mode, SocketAddrV4)> {
        Some((Mode::Dr, BACKEND))
    }
    fn resolve(&self, r: &Record) -> Result<SyncedFlow, Aside> {
        Ok(SyncedFlow {
            tuple: r.tuple,
            service: r.service,
            backend: 0,
            state: r.state,
            idle: r.age,
        })
    }
    fn install(&self, flows: &[SyncedFlow]) -> Installed {
        self.installed
            .fetch_add(flows.len() as u64, Ordering::Relaxed);
        Installed {
            installed: flows.len() as u64,
            ..Installed::default()
        }
    }
    fn live(&self, _limit: usize) -> Vec<Record> {
        Vec::new()
    }
    fn is_master(&self) -> bool {
        false
    }
}

/// This thread's CPU time (user + system).
fn thread_cpu() -> Duration {
    // SAFETY: getrusage writes the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn config(port: u16) -> SyncConfig {
    SyncConfig {
        port,
        secret: Some(SyncSecret(Arc::from(
            &b"a-32-byte-secret-for-the-sync-bench"[..],
        ))),
        delay: Duration::from_millis(5),
        refresh: Duration::from_secs(3600),
        rate: 10_000_000,
        catchup_timeout: Duration::ZERO,
    }
}

fn flow(i: u64) -> NewFlow {
    let [_, _, _, _, a, b, c, d] = i.to_be_bytes();
    NewFlow {
        tuple: FiveTuple {
            src: [a | 16, b, c, d],
            dst: [10, 0, 0, 100],
            sport: 1024 + (i % 60_000) as u16,
            dport: 80,
            proto: 6,
        },
        service: ServiceKey {
            vip: [10, 0, 0, 100],
            port: 80,
            proto: 6,
        },
        backend: 0,
    }
}

/// A runner on its own thread; returns the stats and the thread's CPU when `done` is set.
fn side(
    local: Ipv4Addr,
    peer: Ipv4Addr,
    port: u16,
    host: Arc<Host>,
    flows: Option<tokio::sync::mpsc::Receiver<NewFlow>>,
    done: Arc<std::sync::atomic::AtomicBool>,
    cpu: Arc<AtomicU64>,
) -> std::thread::JoinHandle<strait_lb::sync::status::SyncStatus> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let opened = SyncRunner::open(Settings {
                config: config(port),
                local,
                peers: vec![peer],
            })
            .await
            .unwrap();
            let runner = SyncRunner::start(opened, host, flows);
            while !done.load(Ordering::Relaxed) {
                cpu.store(thread_cpu().as_nanos() as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let status = runner.status();
            runner.stop().await;
            status
        })
    })
}

fn main() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let offered: [Option<u64>; 5] = [
        Some(100_000),
        Some(250_000),
        Some(500_000),
        Some(1_000_000),
        None,
    ];
    println!(
        "connection sync on loopback, {FLOWS} new flows a round, authenticated, one core per side"
    );
    println!(
        "{:>10} {:>12} {:>8} {:>10} {:>14} {:>14} {:>10} {:>10}",
        "offered/s",
        "delivered/s",
        "lost",
        "rec/dgram",
        "send cpu/1k",
        "recv cpu/1k",
        "send core",
        "recv core"
    );
    for (round, rate) in offered.iter().enumerate() {
        let (sender, receiver) = (Arc::new(Host::default()), Arc::new(Host::default()));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (cpu_a, cpu_b) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (tx, rx) = tokio::sync::mpsc::channel(65_536);
        let port = port + round as u16;
        let b = side(
            B,
            A,
            port,
            Arc::clone(&receiver),
            None,
            Arc::clone(&done),
            Arc::clone(&cpu_b),
        );
        let a = side(
            A,
            B,
            port,
            sender,
            Some(rx),
            Arc::clone(&done),
            Arc::clone(&cpu_a),
        );
        std::thread::sleep(Duration::from_millis(200));
        let (a0, b0) = (cpu_a.load(Ordering::Relaxed), cpu_b.load(Ordering::Relaxed));
        let start = Instant::now();
        for i in 0..FLOWS {
            if let Some(rate) = rate {
                let due = Duration::from_nanos(i * 1_000_000_000 / rate);
                while start.elapsed() < due {
                    std::hint::spin_loop();
                }
            }
            tx.blocking_send(flow(i)).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = (0, Instant::now());
        while Instant::now() < deadline {
            let n = receiver.installed.load(Ordering::Relaxed);
            if n != last.0 {
                last = (n, Instant::now());
            }
            if n >= FLOWS || last.1.elapsed() > Duration::from_millis(300) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let took = last.1.duration_since(start).max(Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(50));
        let (a1, b1) = (cpu_a.load(Ordering::Relaxed), cpu_b.load(Ordering::Relaxed));
        done.store(true, Ordering::Relaxed);
        let sa = a.join().unwrap();
        let _ = b.join().unwrap();
        let got = receiver.installed.load(Ordering::Relaxed);
        let per_k = |ns: u64| Duration::from_nanos(ns * 1000 / got.max(1));
        let core = |ns: u64| ns as f64 / took.as_nanos() as f64;
        println!(
            "{:>10} {:>12.0} {:>8} {:>10.1} {:>14?} {:>14?} {:>10.2} {:>10.2}",
            rate.map_or_else(|| "unpaced".to_owned(), |r| r.to_string()),
            got as f64 / took.as_secs_f64(),
            FLOWS - got,
            sa.records_sent as f64 / sa.datagrams_sent.max(1) as f64,
            per_k(a1 - a0),
            per_k(b1 - b0),
            core(a1 - a0),
            core(b1 - b0),
        );
    }
}
