//! Runs the connection sync of one director: a UDP socket on the `[ha]` interface's address
//! and port `sync_port`, talking to the configured peers only.
//!
//! Contract:
//! * [`SyncRunner::open`] binds the socket (an error is returned, nothing runs);
//!   [`SyncRunner::start`] starts the tasks with the director ([`SyncHost`]) and its
//!   datapath's new-flow stream.
//! * Sending (`send.rs`): every new flow from its first packet, as a half-open record aged 0,
//!   batched (a datagram leaves when full, or `sync_delay` after its first record) to every
//!   peer; at most `sync_rate` records a second (over it a new flow is not sent, counted
//!   `rate_limited`: the next refresh carries it). Each peer acknowledges the `Records`
//!   datagrams it accepts (their sequence numbers, gathered for [`ACK_DELAY`]); one not
//!   acknowledged within [`RESEND_AFTER`] has its records sent again in a new datagram to that
//!   peer (`resent`), at most [`MAX_SENDS`] times in all (then `unacked`), at most
//!   [`MAX_OUTSTANDING`] datagrams waiting: a lost datagram costs a few tens of milliseconds,
//!   not a refresh period. Refreshes and dumps are not acknowledged (they repeat). While VRRP master, every `sync_refresh`
//!   every live flow of the table is sent again at that rate (a lost datagram, a flow that
//!   became established or closing, an idle flow's age: all covered by the next refresh).
//! * Receiving (`recv.rs`): only from a peer's address and `sync_port` (else `not_a_peer`),
//!   authenticated, decoded and checked against the peer's replay window (`super::open`;
//!   each refusal counted by reason); records are resolved by the host to this director's
//!   backend indices and installed in one call per datagram; a record the host cannot
//!   resolve (unknown service or backend, dead backend) waits aside (at most
//!   [`MAX_ASIDE`], the oldest dropped first) and is retried every second for
//!   [`ASIDE_FOR`], then dropped (`aside_expired`); also at once when the host says its
//!   backends changed ([`SyncRunner::backends_changed`]).
//! * Catch-up: at start the runner asks every peer for a bulk dump (again every
//!   [`CATCHUP_RETRY`]) until one peer's dump ends or `sync_catchup_timeout` passes;
//!   [`SyncRunner::caught_up`] resolves then, and the director starts its VRRP router only
//!   after it (so a restarted director neither becomes master nor preempts with an empty
//!   table). A peer's request is answered with a dump of every live flow, paced at
//!   `sync_rate`, ended by a `BulkEnd` giving the count; a new request from the same peer
//!   replaces a dump still running.
//! * [`SyncRunner::stop`] stops every task.

mod recv;
mod send;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::auth::{self, Key};
use super::host::SyncHost;
use super::status::SyncStatus;
use super::wire::{epoch_at, Sequencer};
use crate::config::SyncConfig;
use crate::datapath::NewFlow;

/// Largest datagram sent, tag included: a 1500-byte MTU less the IPv4 and UDP headers.
pub const MAX_DATAGRAM: usize = 1472;
/// Records kept aside at most.
pub const MAX_ASIDE: usize = 65_536;
/// How long a record waits aside before it is dropped.
pub const ASIDE_FOR: Duration = Duration::from_secs(60);
/// Time between two bulk requests while catching up.
pub const CATCHUP_RETRY: Duration = Duration::from_millis(500);
/// A `Records` datagram not acknowledged this long is sent again (its records, in a new
/// datagram: the replay window refuses a sequence number twice).
pub const RESEND_AFTER: Duration = Duration::from_millis(50);
/// Sends of a record before it is given up (`unacked`; the refresh carries it later).
pub const MAX_SENDS: u8 = 5;
/// Datagrams awaiting acknowledgement at most (the oldest given up first).
pub const MAX_OUTSTANDING: usize = 8192;
/// Sequence numbers per `Ack` datagram at most (a 1472-byte datagram, tag included).
pub const MAX_ACKS: usize = 150;
/// How long a receiver gathers sequence numbers before acknowledging them.
pub const ACK_DELAY: Duration = Duration::from_millis(5);

/// Where the sync runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `[ha]`'s sync keys.
    pub config: SyncConfig,
    /// This director's address on the `[ha]` interface.
    pub local: Ipv4Addr,
    /// The peers (`[ha] peers`).
    pub peers: Vec<Ipv4Addr>,
}

/// A peer and its keys (one per direction).
#[derive(Debug)]
struct Peer {
    addr: SocketAddrV4,
    send: Option<Key>,
    recv: Option<Key>,
}

/// A `Records` datagram sent to a peer and not acknowledged yet.
struct Outstanding {
    peer: usize,
    seq: u64,
    sent: std::time::Instant,
    payload: Vec<u8>,
    sends: u8,
}

/// What the tasks share.
struct Link {
    /// `Records` datagrams awaiting their peer's acknowledgement, oldest first.
    outstanding: Mutex<std::collections::VecDeque<Outstanding>>,
    socket: UdpSocket,
    peers: Vec<Peer>,
    seq: Mutex<Sequencer>,
    status: Arc<Mutex<SyncStatus>>,
    config: SyncConfig,
    /// Tag bytes per datagram (the same for every peer).
    tag_len: usize,
    /// Poked when the host's backends change: the records aside are retried at once.
    backends_changed: tokio::sync::Notify,
}

impl Link {
    /// Seals `payload` for `peer` and sends it; a failure is counted.
    async fn send_to(&self, peer: &Peer, payload: &[u8], records: usize) {
        let datagram = auth::seal(peer.send.as_ref(), payload.to_vec());
        let sent = self
            .socket
            .send_to(&datagram, SocketAddr::V4(peer.addr))
            .await;
        let mut s = self.status.lock();
        match sent {
            Ok(_) => {
                s.datagrams_sent += 1;
                s.records_sent += records as u64;
            }
            Err(e) => {
                s.send_errors += 1;
                tracing::debug!(peer = %peer.addr, error = %e, "sync datagram not sent");
            }
        }
    }

    /// Sends `payload` to every peer.
    async fn send_all(&self, payload: &[u8], records: usize) {
        for peer in &self.peers {
            self.send_to(peer, payload, records).await;
        }
    }

    /// Notes a `Records` payload sent to `peer` for the `sends`-th time, to resend unless
    /// acknowledged.
    fn track(&self, peer: usize, payload: Vec<u8>, sends: u8) {
        let seq = super::wire::payload_seq(&payload);
        let mut out = self.outstanding.lock();
        if out.len() >= MAX_OUTSTANDING {
            if let Some(old) = out.pop_front() {
                self.status.lock().unacked += super::wire::record_count(&old.payload) as u64;
            }
        }
        out.push_back(Outstanding {
            peer,
            seq,
            sent: std::time::Instant::now(),
            payload,
            sends,
        });
    }

    /// `peer` acknowledged datagrams `seqs`.
    fn acked(&self, peer: usize, seqs: &[u64]) {
        let mut out = self.outstanding.lock();
        let before = out.len();
        out.retain(|o| o.peer != peer || !seqs.contains(&o.seq));
        self.status.lock().acked += (before - out.len()) as u64;
    }
}

/// A bound socket, not running yet.
pub struct Opened {
    link: Link,
}

/// The running sync (see the module doc).
pub struct SyncRunner {
    link: Arc<Link>,
    caught_up: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl SyncRunner {
    /// Binds `local:port` (see the module doc).
    pub async fn open(settings: Settings) -> std::io::Result<Opened> {
        let Settings {
            config,
            local,
            peers,
        } = settings;
        let socket = UdpSocket::bind(SocketAddrV4::new(local, config.port)).await?;
        let secret = config.secret.as_ref().map(|s| Arc::clone(&s.0));
        let key =
            |from: Ipv4Addr, to: Ipv4Addr| secret.as_ref().and_then(|s| Key::derive(s, from, to));
        let peers: Vec<Peer> = peers
            .iter()
            .map(|&p| Peer {
                addr: SocketAddrV4::new(p, config.port),
                send: key(local, p),
                recv: key(p, local),
            })
            .collect();
        let tag_len = auth::tag_len(peers.first().and_then(|p| p.send.as_ref()));
        let status = SyncStatus::new(
            local,
            config.port,
            peers.iter().map(|p| *p.addr.ip()).collect(),
            secret.is_some(),
        );
        Ok(Opened {
            link: Link {
                outstanding: Mutex::new(std::collections::VecDeque::new()),
                socket,
                peers,
                seq: Mutex::new(Sequencer::new(epoch_at(SystemTime::now()))),
                status: Arc::new(Mutex::new(status)),
                config,
                tag_len,
                backends_changed: tokio::sync::Notify::new(),
            },
        })
    }

    /// Starts the tasks (see the module doc).
    pub fn start(
        opened: Opened,
        host: Arc<dyn SyncHost>,
        new_flows: Option<mpsc::Receiver<NewFlow>>,
    ) -> SyncRunner {
        let link = Arc::new(opened.link);
        let (stop, stop_rx) = watch::channel(false);
        let (caught_tx, caught_up) = watch::channel(false);
        let mut tasks = vec![
            tokio::spawn(recv::run(
                Arc::clone(&link),
                Arc::clone(&host),
                caught_tx,
                stop_rx.clone(),
            )),
            tokio::spawn(send::refresh(
                Arc::clone(&link),
                Arc::clone(&host),
                stop_rx.clone(),
            )),
        ];
        if let Some(rx) = new_flows {
            tasks.push(tokio::spawn(send::new_flows(
                Arc::clone(&link),
                host,
                rx,
                stop_rx,
            )));
        }
        SyncRunner {
            link,
            caught_up,
            stop,
            tasks,
        }
    }

    /// True once the catch-up ended (see [`SyncRunner::caught_up`]), to wait on without
    /// holding the runner.
    pub fn caught_up_signal(&self) -> watch::Receiver<bool> {
        self.caught_up.clone()
    }

    /// Resolves once the catch-up ended: a peer's dump came in, or the timeout passed.
    pub async fn caught_up(&self) {
        let mut rx = self.caught_up.clone();
        let _ = rx.wait_for(|done| *done).await;
    }

    /// The host's backends changed (one joined, came up, got its MAC): the records waiting
    /// aside are retried now rather than at the next second's retry. Cheap; calls coalesce.
    pub fn backends_changed(&self) {
        self.link.backends_changed.notify_one();
    }

    /// The state and counters now.
    pub fn status(&self) -> SyncStatus {
        self.link.status.lock().clone()
    }

    /// Stops every task.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for SyncRunner {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests;
