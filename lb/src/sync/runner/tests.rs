//! The runner between real sockets on loopback (127.0.0.0/8), with hosts made of plain maps.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::{Settings, SyncRunner};
use crate::config::{SyncConfig, SyncSecret};
use crate::datapath::{Installed, NewFlow, SyncedFlow};
use crate::packet::service::{Mode, ServiceKey};
use crate::sync::host::{Aside, SyncHost};
use crate::sync::status::Catchup;
use crate::sync::testutil::record;
use crate::sync::wire::{Body, Message, Sequencer, Stamp};
use crate::sync::{seal, Key, Record};

const SECRET: &[u8] = b"0123456789abcdef-runner";

/// A director made of maps: backends by (service, index) and by address, its table of
/// live records, what it installed.
#[derive(Default)]
struct Host {
    /// (service, backend address) → (index, alive).
    backends: Mutex<HashMap<(ServiceKey, SocketAddrV4), (u32, bool)>>,
    live: Mutex<Vec<Record>>,
    installed: Mutex<Vec<SyncedFlow>>,
    master: Mutex<bool>,
    /// Calls of `resolve` so far.
    resolves: std::sync::atomic::AtomicUsize,
}

impl Host {
    fn knows(&self, r: &Record, index: u32, alive: bool) {
        self.backends
            .lock()
            .insert((r.service, r.backend), (index, alive));
    }

    fn installed(&self) -> Vec<SyncedFlow> {
        self.installed.lock().clone()
    }
}

impl SyncHost for Host {
    fn describe(&self, flow: &NewFlow) -> Option<(Mode, SocketAddrV4)> {
        let b = self.backends.lock();
        b.iter()
            .find(|((s, _), (i, _))| *s == flow.service && *i == flow.backend)
            .map(|((_, addr), _)| (Mode::Dr, *addr))
    }

    fn resolve(&self, r: &Record) -> Result<SyncedFlow, Aside> {
        self.resolves
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match self.backends.lock().get(&(r.service, r.backend)) {
            None => Err(Aside::UnknownBackend),
            Some((_, false)) => Err(Aside::DeadBackend),
            Some((index, true)) => Ok(SyncedFlow {
                tuple: r.tuple,
                service: r.service,
                backend: *index,
                state: r.state,
                idle: r.age,
            }),
        }
    }

    fn install(&self, flows: &[SyncedFlow]) -> Installed {
        self.installed.lock().extend_from_slice(flows);
        Installed {
            installed: flows.len() as u64,
            ..Installed::default()
        }
    }

    fn live(&self, limit: usize) -> Vec<Record> {
        self.live.lock().iter().take(limit).copied().collect()
    }

    fn is_master(&self) -> bool {
        *self.master.lock()
    }
}

fn config(port: u16, catchup: Duration) -> SyncConfig {
    SyncConfig {
        port,
        secret: Some(SyncSecret(Arc::from(SECRET))),
        delay: Duration::from_millis(5),
        refresh: Duration::from_secs(3600),
        rate: 1_000_000,
        catchup_timeout: catchup,
    }
}

/// A free UDP port on loopback (bound and released).
fn free_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

async fn runner(
    local: Ipv4Addr,
    peers: Vec<Ipv4Addr>,
    config: SyncConfig,
    host: &Arc<Host>,
    flows: Option<mpsc::Receiver<NewFlow>>,
) -> SyncRunner {
    let opened = SyncRunner::open(Settings {
        config,
        local,
        peers,
    })
    .await
    .unwrap();
    SyncRunner::start(opened, Arc::clone(host) as Arc<dyn SyncHost>, flows)
}

/// Polls `f` every 10 ms for up to 5 s.
async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 5 s: {what}");
}

const A: Ipv4Addr = Ipv4Addr::new(127, 0, 77, 1);
const B: Ipv4Addr = Ipv4Addr::new(127, 0, 77, 2);
const C: Ipv4Addr = Ipv4Addr::new(127, 0, 77, 3);

#[tokio::test]
async fn new_flows_reach_the_peer_batched_and_the_catch_up_carries_the_table() {
    let port = free_port();
    // B is up with 300 live flows; A starts, catches up from B's dump, then sends its own.
    let (ha, hb) = (Arc::new(Host::default()), Arc::new(Host::default()));
    let live: Vec<Record> = (0..300).map(record).collect();
    for r in &live {
        ha.knows(r, 1, true);
    }
    *hb.live.lock() = live.clone();
    let b = runner(B, vec![A], config(port, Duration::from_secs(5)), &hb, None).await;
    let (tx, rx) = mpsc::channel(1024);
    let a = runner(
        A,
        vec![B],
        config(port, Duration::from_secs(5)),
        &ha,
        Some(rx),
    )
    .await;
    tokio::time::timeout(Duration::from_secs(5), a.caught_up())
        .await
        .expect("caught up");
    let status = a.status();
    assert!(
        matches!(
            status.catchup,
            Catchup::Done {
                records: 300,
                expected: 300,
                ..
            }
        ),
        "{:?}",
        status.catchup
    );
    assert_eq!(ha.installed().len(), 300);
    assert_eq!(b.status().bulk_dumps_sent, 1);
    // 100 new flows on A: at B, whose host knows their backends.
    let fresh: Vec<Record> = (1000..1100).map(record).collect();
    for r in &fresh {
        ha.knows(r, 2, true);
        hb.knows(r, 5, true);
    }
    for r in &fresh {
        tx.send(NewFlow {
            tuple: r.tuple,
            service: r.service,
            backend: 2,
        })
        .await
        .unwrap();
    }
    until("100 flows installed at B", || hb.installed().len() == 100).await;
    let got = hb.installed();
    assert!(got
        .iter()
        .all(|f| f.backend == 5 && f.idle < Duration::from_millis(500)));
    let (sa, sb) = (a.status(), b.status());
    // 39 records a datagram: 3 datagrams (the last one after sync_delay).
    assert_eq!((sa.records_sent, sb.records_received), (100, 100));
    assert!(sa.datagrams_sent >= 3, "{sa:?}");
    assert!(sa.batch_wait_max_us < 1_000_000, "{sa:?}");
    assert_eq!(sb.outcome.installed, 100);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn no_peer_means_a_catch_up_that_times_out() {
    let host = Arc::new(Host::default());
    let a = runner(
        A,
        vec![B],
        config(free_port(), Duration::from_millis(300)),
        &host,
        None,
    )
    .await;
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(5), a.caught_up())
        .await
        .expect("timed out in time");
    assert!(started.elapsed() >= Duration::from_millis(250));
    let s = a.status();
    assert_eq!(s.catchup, Catchup::TimedOut { records: 0 });
    assert!(s.bulk_requests_sent >= 1);
    a.stop().await;
}

/// A datagram of records from `from` to `to` under `secret`, stamped `stamp`.
fn datagram(from: Ipv4Addr, to: Ipv4Addr, secret: &[u8], stamp: Stamp, rs: &[Record]) -> Vec<u8> {
    let payload = Message {
        stamp,
        body: Body::Records(rs.to_vec()),
    }
    .encode();
    seal(Key::derive(secret, from, to).as_ref(), payload)
}

#[tokio::test]
async fn forged_replayed_and_foreign_datagrams_are_dropped_and_counted() {
    let port = free_port();
    let host = Arc::new(Host::default());
    let r = record(7);
    host.knows(&r, 3, true);
    // B's peer is C: the test plays C with a plain socket.
    let b = runner(B, vec![C], config(port, Duration::ZERO), &host, None).await;
    let c = UdpSocket::bind(SocketAddrV4::new(C, port)).await.unwrap();
    let to = SocketAddrV4::new(B, port);
    let mut seq = Sequencer::new(42);
    let good = datagram(C, B, SECRET, seq.next_stamp(), &[r]);
    c.send_to(&good, to).await.unwrap();
    until("the good one installed", || host.installed().len() == 1).await;
    // The same datagram again: replayed.
    c.send_to(&good, to).await.unwrap();
    // Another key (a wrong secret; B's own direction, reflected): unauthenticated.
    let wrong = datagram(C, B, b"another-secret-of-16+", seq.next_stamp(), &[r]);
    c.send_to(&wrong, to).await.unwrap();
    let reflected = datagram(B, C, SECRET, seq.next_stamp(), &[r]);
    c.send_to(&reflected, to).await.unwrap();
    // A bit flipped in a good one.
    let mut flipped = datagram(C, B, SECRET, seq.next_stamp(), &[r]);
    flipped[30] ^= 0x10;
    c.send_to(&flipped, to).await.unwrap();
    // Truncated below a header (and its tag).
    c.send_to(&good[..10], to).await.unwrap();
    // From a stranger (A is not B's peer), validly sealed for that direction.
    let a = UdpSocket::bind(SocketAddrV4::new(A, port)).await.unwrap();
    let foreign = datagram(A, B, SECRET, seq.next_stamp(), &[r]);
    a.send_to(&foreign, to).await.unwrap();
    until("six drops counted", || {
        b.status().drops.iter().map(|(_, n)| n).sum::<u64>() == 6
    })
    .await;
    let s = b.status();
    let drop = |reason: &str| {
        s.drops
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |d| d.1)
    };
    assert_eq!(drop("replayed"), 1, "{s:?}");
    assert_eq!(drop("unauthenticated"), 4, "{s:?}");
    assert_eq!(drop("not_a_peer"), 1, "{s:?}");
    assert_eq!(host.installed().len(), 1, "nothing forged installed");
    assert_eq!(s.datagrams_received, 1);
    b.stop().await;
}

#[tokio::test]
async fn unknown_and_dead_backends_wait_aside_until_they_can_be_installed() {
    let port = free_port();
    let host = Arc::new(Host::default());
    let (r1, r2) = (record(1), record(2));
    host.knows(&r2, 4, false);
    let b = runner(B, vec![C], config(port, Duration::ZERO), &host, None).await;
    let c = UdpSocket::bind(SocketAddrV4::new(C, port)).await.unwrap();
    let mut seq = Sequencer::new(1);
    let d = datagram(C, B, SECRET, seq.next_stamp(), &[r1, r2]);
    c.send_to(&d, SocketAddrV4::new(B, port)).await.unwrap();
    until("both aside", || b.status().aside_pending == 2).await;
    assert!(host.installed().is_empty(), "nothing installed wrong");
    let s = b.status();
    assert_eq!(
        s.aside,
        [0, 1, 1],
        "unknown service, unknown backend, dead backend"
    );
    // The backends become known and alive: the retry (every second) installs both, aged.
    host.knows(&r1, 0, true);
    host.knows(&r2, 4, true);
    until("installed after the retry", || host.installed().len() == 2).await;
    assert_eq!(b.status().aside_pending, 0);
    let got = host.installed();
    let r2_in = got.iter().find(|f| f.tuple == r2.tuple).unwrap();
    assert_eq!(r2_in.backend, 4);
    assert!(r2_in.idle > r2.age, "the wait adds to the age");
    b.stop().await;
}

#[tokio::test]
async fn records_aside_are_retried_as_soon_as_the_hosts_backends_change() {
    use std::sync::atomic::Ordering;
    let port = free_port();
    let host = Arc::new(Host::default());
    let r = record(7);
    host.knows(&r, 3, false);
    let b = runner(B, vec![C], config(port, Duration::ZERO), &host, None).await;
    let c = UdpSocket::bind(SocketAddrV4::new(C, port)).await.unwrap();
    let d = datagram(C, B, SECRET, Sequencer::new(1).next_stamp(), &[r]);
    c.send_to(&d, SocketAddrV4::new(B, port)).await.unwrap();
    until("aside", || b.status().aside_pending == 1).await;
    // Just after a periodic retry (the record resolved once more, still dead) ...
    let seen = host.resolves.load(Ordering::SeqCst);
    until("a periodic retry", || {
        host.resolves.load(Ordering::SeqCst) > seen
    })
    .await;
    // ... the backend comes up and the host says so: installed long before the next one.
    host.knows(&r, 3, true);
    let poked = std::time::Instant::now();
    b.backends_changed();
    until("installed", || host.installed().len() == 1).await;
    assert!(
        poked.elapsed() < Duration::from_millis(500),
        "installed {:?} after the poke: it waited for the periodic retry",
        poked.elapsed()
    );
    assert_eq!(b.status().aside_pending, 0);
    b.stop().await;
}

#[tokio::test]
async fn the_master_refreshes_its_live_flows_and_a_backup_does_not() {
    let port = free_port();
    let (ha, hb) = (Arc::new(Host::default()), Arc::new(Host::default()));
    let live: Vec<Record> = (0..50).map(record).collect();
    for r in &live {
        hb.knows(r, 0, true);
    }
    *ha.live.lock() = live;
    let mut cfg = config(port, Duration::ZERO);
    cfg.refresh = Duration::from_secs(1);
    let b = runner(B, vec![A], cfg.clone(), &hb, None).await;
    let a = runner(A, vec![B], cfg, &ha, None).await;
    // B's catch-up asks A for a dump, which A answers whatever its state: 50 at B.
    until("B's catch-up", || hb.installed().len() == 50).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(hb.installed().len(), 50, "a backup does not refresh");
    assert_eq!(a.status().refreshes, 0);
    *ha.master.lock() = true;
    until("a refresh at B", || hb.installed().len() >= 100).await;
    assert!(a.status().refreshes >= 1);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn over_sync_rate_new_flows_are_counted_not_sent() {
    let port = free_port();
    let host = Arc::new(Host::default());
    let mut cfg = config(port, Duration::ZERO);
    cfg.rate = 1000; // a burst of 100
    let (tx, rx) = mpsc::channel(4096);
    let a = runner(A, vec![B], cfg, &host, Some(rx)).await;
    for i in 0..2000 {
        let r = record(i);
        host.knows(&r, 0, true);
        tx.send(NewFlow {
            tuple: r.tuple,
            service: r.service,
            backend: 0,
        })
        .await
        .unwrap();
    }
    until("every flow accounted", || {
        let s = a.status();
        s.records_sent + s.rate_limited == 2000
    })
    .await;
    let s = a.status();
    assert!(s.rate_limited >= 1500, "{s:?}");
    assert!(s.records_sent >= 100, "{s:?}");
    a.stop().await;
}

/// The next `Records` message from the peer keyed `key` on `c` (anything else skipped).
async fn next_records(c: &UdpSocket, key: Option<&Key>, buf: &mut [u8]) -> Message {
    loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), c.recv_from(buf))
            .await
            .expect("a datagram from A")
            .unwrap();
        let payload = crate::sync::auth::open(key, &buf[..n]).unwrap();
        let m = crate::sync::decode(payload).unwrap();
        if matches!(m.body, Body::Records(_)) {
            return m;
        }
    }
}

#[tokio::test]
async fn an_unacknowledged_datagram_is_sent_again_until_acknowledged_or_given_up() {
    let port = free_port();
    let host = Arc::new(Host::default());
    let (tx, rx) = mpsc::channel(64);
    // A's peer is C: the test plays C, acknowledging only what it chooses.
    let a = runner(A, vec![C], config(port, Duration::ZERO), &host, Some(rx)).await;
    let c = UdpSocket::bind(SocketAddrV4::new(C, port)).await.unwrap();
    let (from_a, to_a) = (Key::derive(SECRET, A, C), Key::derive(SECRET, C, A));
    let mut buf = vec![0u8; 2048];
    let r = record(3);
    host.knows(&r, 0, true);
    for _ in 0..3 {
        tx.send(NewFlow {
            tuple: r.tuple,
            service: r.service,
            backend: 0,
        })
        .await
        .unwrap();
    }
    let first = next_records(&c, from_a.as_ref(), &mut buf).await;
    assert_eq!(first.body.records().len(), 3);
    // Not acknowledged: the same records again, under a new sequence number.
    let again = next_records(&c, from_a.as_ref(), &mut buf).await;
    assert_eq!(again.body.records(), first.body.records());
    assert!(again.stamp.seq > first.stamp.seq);
    let ack = Message {
        stamp: Sequencer::new(9).next_stamp(),
        body: Body::Ack(vec![again.stamp.seq]),
    };
    c.send_to(
        &seal(to_a.as_ref(), ack.encode()),
        SocketAddrV4::new(A, port),
    )
    .await
    .unwrap();
    until("acknowledged", || a.status().acked == 1).await;
    let s = a.status();
    assert_eq!((s.resent, s.unacked), (3, 0), "{s:?}");
    // Nothing more comes once acknowledged.
    assert!(
        tokio::time::timeout(
            Duration::from_millis(300),
            next_records(&c, from_a.as_ref(), &mut buf)
        )
        .await
        .is_err(),
        "resent after its acknowledgement"
    );
    // Never acknowledged: five sends in all, then given up.
    tx.send(NewFlow {
        tuple: r.tuple,
        service: r.service,
        backend: 0,
    })
    .await
    .unwrap();
    for _ in 0..5 {
        next_records(&c, from_a.as_ref(), &mut buf).await;
    }
    until("given up", || a.status().unacked == 1).await;
    assert_eq!(a.status().resent, 3 + 4);
    a.stop().await;
}
