//! The receiving side: datagrams from the peers, the records they carry, the catch-up.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{send, Link, ACK_DELAY, ASIDE_FOR, CATCHUP_RETRY, MAX_ASIDE};
use crate::datapath::SyncedFlow;
use crate::sync::host::SyncHost;
use crate::sync::record::Record;
use crate::sync::replay::Window;
use crate::sync::status::{Catchup, NOT_A_PEER};
use crate::sync::wire::{Body, Message};

/// The catch-up in progress: our request and what its dump brought so far.
struct CatchingUp {
    request: u32,
    started: Instant,
    records: u64,
    deadline: tokio::time::Instant,
}

/// The receive loop (see the runner's doc).
pub(super) async fn run(
    link: Arc<Link>,
    host: Arc<dyn SyncHost>,
    caught_up: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut windows: Vec<Window> = link.peers.iter().map(|_| Window::new()).collect();
    let mut dumps: Vec<Option<JoinHandle<()>>> = link.peers.iter().map(|_| None).collect();
    let mut aside: VecDeque<(Record, Instant)> = VecDeque::new();
    let mut retry = tokio::time::interval(std::time::Duration::from_secs(1));
    // Sequence numbers of accepted `Records` datagrams to acknowledge, per peer.
    let mut acks: Vec<Vec<u64>> = link.peers.iter().map(|_| Vec::new()).collect();
    let mut ack_tick = tokio::time::interval(ACK_DELAY);
    ack_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ask = tokio::time::interval(CATCHUP_RETRY);
    let mut catching = Some(CatchingUp {
        // Any value: it only has to differ from a previous run's (a late dump's end).
        request: std::process::id()
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos()),
        started: Instant::now(),
        records: 0,
        deadline: tokio::time::Instant::now() + link.config.catchup_timeout,
    });
    // The first request leaves at once, even with a zero timeout (the dump is still
    // installed when it comes; only the wait is skipped).
    ask.tick().await;
    if let Some(c) = &catching {
        ask_for_dump(&link, c.request).await;
    }
    let mut buf = vec![0u8; 65_536];
    loop {
        let deadline = catching.as_ref().map(|c| c.deadline);
        tokio::select! {
            got = link.socket.recv_from(&mut buf) => {
                let Ok((n, from)) = got else { continue };
                let Some(peer) = peer_of(&link, from) else {
                    link.status.lock().dropped(NOT_A_PEER);
                    continue;
                };
                let message = crate::sync::open(
                    link.peers[peer].recv.as_ref(),
                    &mut windows[peer],
                    &buf[..n],
                );
                let message = match message {
                    Ok(m) => m,
                    Err(why) => {
                        link.status.lock().dropped(why.as_str());
                        continue;
                    }
                };
                link.status.lock().datagrams_received += 1;
                if matches!(message.body, Body::Records(_)) {
                    acks[peer].push(message.stamp.seq);
                }
                handle(&link, &host, peer, message, &mut dumps, &mut aside, &mut catching, &caught_up);
            }
            _ = ack_tick.tick() => acknowledge(&link, &mut acks).await,
            _ = ask.tick(), if catching.is_some() => {
                if let Some(c) = &catching {
                    ask_for_dump(&link, c.request).await;
                }
            }
            _ = sleep_until(deadline) => {
                if let Some(c) = catching.take() {
                    tracing::warn!(records = c.records, "sync: no peer's dump within sync_catchup_timeout; going on");
                    link.status.lock().catchup = Catchup::TimedOut { records: c.records };
                    let _ = caught_up.send(true);
                }
            }
            _ = retry.tick() => retry_aside(&link, &host, &mut aside),
            _ = link.backends_changed.notified() => retry_aside(&link, &host, &mut aside),
            _ = stop.changed() => break,
        }
    }
    for d in dumps.into_iter().flatten() {
        d.abort();
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The peer a datagram came from: its address and our port, else none.
fn peer_of(link: &Link, from: SocketAddr) -> Option<usize> {
    let SocketAddr::V4(from) = from else {
        return None;
    };
    link.peers.iter().position(|p| p.addr == from)
}

/// Sends each peer the sequence numbers gathered for it.
async fn acknowledge(link: &Link, acks: &mut [Vec<u64>]) {
    for (peer, seqs) in link.peers.iter().zip(acks.iter_mut()) {
        while !seqs.is_empty() {
            let n = seqs.len().min(crate::sync::runner::MAX_ACKS);
            let message = Message {
                stamp: link.seq.lock().next_stamp(),
                body: Body::Ack(seqs.drain(..n).collect()),
            };
            link.send_to(peer, &message.encode(), 0).await;
        }
    }
}

/// Sends our bulk request to every peer.
async fn ask_for_dump(link: &Link, request: u32) {
    let message = Message {
        stamp: link.seq.lock().next_stamp(),
        body: Body::BulkRequest { request },
    };
    let payload = message.encode();
    link.send_all(&payload, 0).await;
    link.status.lock().bulk_requests_sent += 1;
}

/// One accepted message.
#[allow(clippy::too_many_arguments)]
fn handle(
    link: &Arc<Link>,
    host: &Arc<dyn SyncHost>,
    peer: usize,
    message: Message,
    dumps: &mut [Option<JoinHandle<()>>],
    aside: &mut VecDeque<(Record, Instant)>,
    catching: &mut Option<CatchingUp>,
    caught_up: &watch::Sender<bool>,
) {
    match message.body {
        Body::Records(records) => install(link, host, &records, aside),
        Body::BulkRecords {
            request, records, ..
        } => {
            if let Some(c) = catching.as_mut().filter(|c| c.request == request) {
                c.records += records.len() as u64;
            }
            install(link, host, &records, aside);
        }
        Body::BulkRequest { request } => {
            link.status.lock().bulk_requests_received += 1;
            if let Some(old) = dumps[peer].take() {
                old.abort();
            }
            dumps[peer] = Some(tokio::spawn(send::dump(
                Arc::clone(link),
                Arc::clone(host),
                peer,
                request,
            )));
        }
        Body::Ack(seqs) => link.acked(peer, &seqs),
        Body::BulkEnd { request, total } => {
            let ours = catching.as_ref().is_some_and(|c| c.request == request);
            if let (true, Some(c)) = (ours, catching.take()) {
                let took = c.started.elapsed();
                tracing::info!(
                    records = c.records,
                    expected = total,
                    took_ms = took.as_millis() as u64,
                    "sync: caught up with the peer's dump"
                );
                link.status.lock().catchup = Catchup::Done {
                    records: c.records,
                    expected: u64::from(total),
                    took,
                };
                let _ = caught_up.send(true);
            }
        }
    }
}

/// Resolves and installs `records`; those the host cannot resolve wait aside.
fn install(
    link: &Link,
    host: &Arc<dyn SyncHost>,
    records: &[Record],
    aside: &mut VecDeque<(Record, Instant)>,
) {
    link.status.lock().records_received += records.len() as u64;
    let now = Instant::now();
    let flows = resolve(link, host, records.iter().map(|r| (*r, now)), aside, true);
    if !flows.is_empty() {
        let done = host.install(&flows);
        link.status.lock().installed(done);
    }
}

/// The records the host resolves; the others go aside (kept with when they first came;
/// counted by reason when they first come, not on every retry).
fn resolve(
    link: &Link,
    host: &Arc<dyn SyncHost>,
    records: impl Iterator<Item = (Record, Instant)>,
    aside: &mut VecDeque<(Record, Instant)>,
    first: bool,
) -> Vec<SyncedFlow> {
    let mut flows = Vec::new();
    let mut status = link.status.lock();
    for (record, since) in records {
        match host.resolve(&record) {
            Ok(mut f) => {
                // Its age grew while it waited aside.
                f.idle += since.elapsed();
                flows.push(f);
            }
            Err(why) => {
                if first {
                    status.set_aside(why);
                }
                if aside.len() >= MAX_ASIDE {
                    aside.pop_front();
                    status.aside_expired += 1;
                }
                aside.push_back((record, since));
            }
        }
    }
    status.aside_pending = aside.len() as u64;
    flows
}

/// Retries the records waiting aside; drops those waiting longer than [`ASIDE_FOR`].
fn retry_aside(link: &Link, host: &Arc<dyn SyncHost>, aside: &mut VecDeque<(Record, Instant)>) {
    if aside.is_empty() {
        return;
    }
    let before = aside.len();
    let waiting: Vec<(Record, Instant)> = aside
        .drain(..)
        .filter(|(_, since)| since.elapsed() < ASIDE_FOR)
        .collect();
    link.status.lock().aside_expired += (before - waiting.len()) as u64;
    let flows = resolve(link, host, waiting.into_iter(), aside, false);
    if !flows.is_empty() {
        let done = host.install(&flows);
        link.status.lock().installed(done);
    }
}
