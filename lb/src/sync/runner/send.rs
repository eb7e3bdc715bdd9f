//! The sending side: new flows as they come, the periodic refresh, a peer's bulk dump.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::{Link, Peer, MAX_DATAGRAM, MAX_SENDS, RESEND_AFTER};
use crate::datapath::NewFlow;
use crate::packet::ratelimit::{Bucket, IcmpLimit};
use crate::sync::batch::{Batch, Batcher};
use crate::sync::host::SyncHost;
use crate::sync::record::{FlowState, Record};

/// Live flows read from the table per call (a refresh or a dump reads the table in chunks).
const LIVE_CHUNK: usize = 1 << 20;

/// A token bucket of `rate` records a second holding at most a tenth of a second of them.
pub(super) struct Pace {
    limit: IcmpLimit,
    bucket: Bucket,
    start: Instant,
}

impl Pace {
    pub(super) fn new(rate: u32) -> Pace {
        Pace {
            limit: IcmpLimit::new(rate, (rate / 10).max(1)),
            bucket: Bucket::default(),
            start: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        // Never 0: the bucket reads 0 as "never used".
        (self.start.elapsed().as_nanos() as u64).max(1)
    }

    /// Takes one record's credit now, or says no.
    pub(super) fn allow(&mut self) -> bool {
        let now = self.now();
        self.bucket.allow(self.limit, now)
    }

    /// Takes one record's credit, waiting for it.
    pub(super) async fn wait(&mut self) {
        while !self.allow() {
            tokio::time::sleep(Duration::from_nanos(self.limit.cost_ns.max(1_000_000))).await;
        }
    }
}

/// A record batcher for `batch` sized for the link's datagrams.
fn batcher(link: &Link, batch: Batch) -> Batcher {
    Batcher::new(batch, MAX_DATAGRAM, link.tag_len).expect("a datagram holds a record")
}

/// The new flows of the datapath, as they come (see the runner's doc).
pub(super) async fn new_flows(
    link: Arc<Link>,
    host: Arc<dyn SyncHost>,
    mut flows: mpsc::Receiver<NewFlow>,
    mut stop: watch::Receiver<bool>,
) {
    let mut batch = batcher(&link, Batch::Records);
    let mut pace = Pace::new(link.config.rate);
    // When the batch's first record came in.
    let mut first: Option<Instant> = None;
    let mut resend = tokio::time::interval(RESEND_AFTER / 5);
    resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let deadline = first.map(|t| tokio::time::Instant::from_std(t + link.config.delay));
        tokio::select! {
            flow = flows.recv() => {
                let Some(flow) = flow else { break };
                let Some((mode, backend)) = host.describe(&flow) else {
                    link.status.lock().gone += 1;
                    continue;
                };
                if !pace.allow() {
                    link.status.lock().rate_limited += 1;
                    continue;
                }
                let record = Record {
                    tuple: flow.tuple,
                    service: flow.service,
                    backend,
                    mode,
                    state: FlowState::HalfOpen,
                    age: Duration::ZERO,
                };
                first.get_or_insert_with(Instant::now);
                let full = batch.push(&record, &mut link.seq.lock());
                if let Some(payload) = full {
                    sent_after(&link, first.take());
                    send_tracked(&link, payload).await;
                }
            }
            _ = sleep_until(deadline) => {
                let payload = batch.flush(&mut link.seq.lock());
                if let Some(payload) = payload {
                    sent_after(&link, first.take());
                    send_tracked(&link, payload).await;
                }
                first = None;
            }
            _ = resend.tick() => resend_unacked(&link).await,
            _ = stop.changed() => break,
        }
    }
}

/// Sends a `Records` payload to every peer, each copy awaiting its acknowledgement.
async fn send_tracked(link: &Link, payload: Vec<u8>) {
    let n = payload_records(&payload);
    for (i, peer) in link.peers.iter().enumerate() {
        link.send_to(peer, &payload, n).await;
        link.track(i, payload.clone(), 1);
    }
}

/// Sends again, in new datagrams to their peer, the records of the datagrams unacknowledged
/// for [`RESEND_AFTER`]; gives up after [`MAX_SENDS`] sends (see the runner's doc).
async fn resend_unacked(link: &Link) {
    let due: Vec<super::Outstanding> = {
        let mut out = link.outstanding.lock();
        let n = out
            .iter()
            .take_while(|o| o.sent.elapsed() >= RESEND_AFTER)
            .count();
        out.drain(..n).collect()
    };
    for o in due {
        let records = payload_records(&o.payload) as u64;
        if o.sends >= MAX_SENDS {
            link.status.lock().unacked += records;
            continue;
        }
        let Ok(message) = crate::sync::wire::decode(&o.payload) else {
            continue;
        };
        let Some(peer) = link.peers.get(o.peer) else {
            continue;
        };
        let mut batch = batcher(link, Batch::Records);
        let mut payloads = Vec::new();
        for r in message.body.records() {
            payloads.extend(batch.push(r, &mut link.seq.lock()));
        }
        payloads.extend(batch.flush(&mut link.seq.lock()));
        for payload in payloads {
            let n = payload_records(&payload);
            link.send_to(peer, &payload, n).await;
            link.status.lock().resent += n as u64;
            link.track(o.peer, payload, o.sends + 1);
        }
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Notes how long a batch's first record waited.
fn sent_after(link: &Link, first: Option<Instant>) {
    if let Some(t) = first {
        let us = t.elapsed().as_micros() as u64;
        let mut s = link.status.lock();
        s.batch_wait_max_us = s.batch_wait_max_us.max(us);
    }
}

/// Records in a payload built by a batcher (its header's count).
fn payload_records(payload: &[u8]) -> usize {
    crate::sync::wire::record_count(payload)
}

/// Every `sync_refresh`, while master, every live flow again (see the runner's doc).
pub(super) async fn refresh(
    link: Arc<Link>,
    host: Arc<dyn SyncHost>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(link.config.refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut pace = Pace::new(link.config.rate);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if !host.is_master() || link.peers.is_empty() {
            continue;
        }
        let live = host.live(LIVE_CHUNK);
        let mut batch = batcher(&link, Batch::Records);
        for record in &live {
            pace.wait().await;
            let full = batch.push(record, &mut link.seq.lock());
            if let Some(payload) = full {
                link.send_all(&payload, payload_records(&payload)).await;
            }
        }
        let rest = batch.flush(&mut link.seq.lock());
        if let Some(payload) = rest {
            link.send_all(&payload, payload_records(&payload)).await;
        }
        link.status.lock().refreshes += 1;
    }
}

/// The bulk dump a peer asked for with `request`: every live flow, paced, then the end.
pub(super) async fn dump(link: Arc<Link>, host: Arc<dyn SyncHost>, peer: usize, request: u32) {
    let Some(peer) = link.peers.get(peer) else {
        return;
    };
    let live = host.live(LIVE_CHUNK);
    let mut batch = batcher(&link, Batch::Bulk { request });
    let mut pace = Pace::new(link.config.rate);
    for record in &live {
        pace.wait().await;
        let full = batch.push(record, &mut link.seq.lock());
        if let Some(payload) = full {
            bulk_send(&link, peer, &payload).await;
        }
    }
    let rest = batch.flush(&mut link.seq.lock());
    if let Some(payload) = rest {
        bulk_send(&link, peer, &payload).await;
    }
    let end = crate::sync::wire::Message {
        stamp: link.seq.lock().next_stamp(),
        body: crate::sync::wire::Body::BulkEnd {
            request,
            total: batch.sent(),
        },
    };
    link.send_to(peer, &end.encode(), 0).await;
    let mut s = link.status.lock();
    s.bulk_dumps_sent += 1;
}

async fn bulk_send(link: &Link, peer: &Peer, payload: &[u8]) {
    let n = payload_records(payload);
    link.send_to(peer, payload, n).await;
    link.status.lock().bulk_records_sent += n as u64;
}
