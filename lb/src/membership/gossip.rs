//! Membership over UDP gossip: the [`Membership`] handle and the task that runs the protocol.
//!
//! The protocol is SWIM with suspicion and infection-style dissemination, from the `foca`
//! crate: it is a sans-I/O state machine (datagrams in, datagrams and timer requests out),
//! so this file only moves bytes and time, and it is well kept, small and tested against the
//! SWIM paper's behaviour; writing our own failure detector would buy nothing.
//!
//! Contract:
//! * One tokio UDP socket on `gossip_listen`; one task owns foca, the socket and the timers,
//!   and ends when the [`Membership`] (all its clones) is dropped or after [`Membership::leave`].
//! * Seeds (except our own address) are announced to at start and every
//!   [`REANNOUNCE_INTERVAL`] while no other member is known, so start order does not matter.
//! * Every datagram's payload starts with the sender's stamp: its boot epoch and a sequence
//!   number (`crate::sync::Sequencer`, 16 bytes), then foca's bytes. With a key, every
//!   datagram is sealed (`super::seal`, the stamp under the tag); one that does not
//!   authenticate is dropped and counted in `gossip_rejected`, never handed to foca; one
//!   whose stamp its sender's replay window already saw (or older than it,
//!   `crate::sync::Window`: the same epoch/sequence rules as the director's sync) is dropped
//!   and counted in `gossip_replayed`: a captured datagram sent again (an old "alive" or
//!   "dead" claim) changes nothing. Windows are kept per sender address, at most
//!   [`MAX_WINDOWS`] (a new sender beyond that replaces the least recently heard). Without a
//!   key there is no replay check (anyone could forge a fresh stamp; a forged large epoch
//!   would only lock a real sender out). A datagram foca cannot decode is dropped and counted
//!   in `gossip_malformed`. None of these ever stops the task.
//! * After every event the member list is rebuilt; readers see it through an `ArcSwap`, and
//!   the counter of [`Membership::subscribe`] grows when the live set changes.

use std::io;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU8, NonZeroUsize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use foca::{AccumulatingRuntime, Foca, OwnedNotification, PostcardCodec};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::identity::{state_of, NodeIdentity};
use super::members::{self, Member, MemberState};
use super::notes::{self, Book, Item, Note, NoteHandler};
use super::seal;
use super::section::ClusterSection;
use super::timers::Timers;

/// How often seeds are announced to while this node knows no other member.
pub(super) const REANNOUNCE_INTERVAL: Duration = Duration::from_secs(1);
/// How long a dead member stays listed before it is forgotten.
pub(super) const DEAD_RETENTION: Duration = Duration::from_secs(60);
/// Largest foca payload produced and accepted (below a 1500-byte MTU with the tag).
pub(super) const MAX_PAYLOAD: usize = 1400;
/// How long [`Membership::leave`] waits for the goodbye to be sent.
pub(super) const LEAVE_TIMEOUT: Duration = Duration::from_secs(1);
/// Bytes of the stamp before foca's payload: epoch and sequence number.
pub(super) const STAMP_LEN: usize = 16;
/// Receive buffer: anything longer than a sealed payload is malformed.
const RECV_BUFFER: usize = STAMP_LEN + MAX_PAYLOAD + seal::TAG_LEN + 1;
/// Senders whose replay window is kept at most.
pub(super) const MAX_WINDOWS: usize = 4096;

type Swim = Foca<NodeIdentity, PostcardCodec, StdRng, NoteHandler>;

/// What the gossip task shares with readers.
struct Shared {
    members: ArcSwap<Vec<Member>>,
    changes: watch::Sender<u64>,
    rejected: AtomicU64,
    malformed: AtomicU64,
    replayed: AtomicU64,
    /// Every member's note (`super::notes`), by member id.
    notes: ArcSwap<std::collections::BTreeMap<String, Note>>,
    /// Grows whenever a note is added or replaced.
    note_changes: watch::Sender<u64>,
}

/// Owns the gossip task: dropping the last handle stops it.
struct Inner {
    self_id: String,
    settings: ClusterSection,
    shared: Arc<Shared>,
    leave: mpsc::Sender<oneshot::Sender<()>>,
    /// This node's new note data, to the task.
    note: mpsc::UnboundedSender<Vec<u8>>,
    left: AtomicBool,
    task: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A cheap, cloneable handle on this node's view of the cluster.
#[derive(Clone)]
pub struct Membership {
    inner: Arc<Inner>,
}

impl Membership {
    /// Bind `gossip_listen`, announce to the seeds and run the protocol in a task.
    pub async fn start(
        cfg: &ClusterSection,
        self_id: &str,
        secret: Option<Arc<[u8]>>,
    ) -> io::Result<Membership> {
        let socket = UdpSocket::bind(*cfg.gossip_listen.get_ref()).await?;
        let identity = NodeIdentity {
            id: self_id.to_owned(),
            peer: *cfg.peer_listen.get_ref(),
            gossip: *cfg.gossip_listen.get_ref(),
            weight: *cfg.weight.get_ref(),
            // Larger on every restart, so the new identity wins the address.
            bump: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        };
        let seeds: Vec<SocketAddr> = cfg
            .seeds
            .get_ref()
            .iter()
            .map(|s| *s.get_ref())
            .filter(|s| *s != identity.gossip)
            .collect();
        let book = Arc::new(Mutex::new(Book::default()));
        let foca = Foca::with_custom_broadcast(
            identity.clone(),
            swim_config(cfg.probe_interval, cfg.suspect_timeout),
            StdRng::from_os_rng(),
            PostcardCodec,
            NoteHandler {
                book: Arc::clone(&book),
                self_id: self_id.to_owned(),
            },
        );
        let first = vec![identity.member(MemberState::Alive)];
        let (changes, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            members: ArcSwap::from_pointee(first),
            changes,
            rejected: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            notes: ArcSwap::from_pointee(Default::default()),
            note_changes: watch::channel(0).0,
        });
        let (leave, leave_rx) = mpsc::channel(1);
        let (note, note_rx) = mpsc::unbounded_channel();
        let note_epoch = identity.bump;
        let task = Gossip {
            foca,
            rt: AccumulatingRuntime::new(),
            timers: Timers::default(),
            socket,
            key: secret,
            seeds,
            identity,
            shared: Arc::clone(&shared),
            leaving: false,
            stamps: crate::sync::Sequencer::new(crate::sync::epoch_at(SystemTime::now())),
            windows: std::collections::HashMap::new(),
            book,
            note_epoch,
            own_note: None,
        };
        tracing::info!(
            gossip = %cfg.gossip_listen.get_ref(),
            seeds = cfg.seeds.get_ref().len(),
            authenticated = task.key.is_some(),
            "cluster membership started"
        );
        let task = tokio::spawn(task.run(leave_rx, note_rx));
        Ok(Membership {
            inner: Arc::new(Inner {
                self_id: self_id.to_owned(),
                settings: cfg.clone(),
                shared,
                leave,
                note,
                left: AtomicBool::new(false),
                task,
            }),
        })
    }

    /// Every known member, this node included, sorted by id; a lock-free read.
    pub fn members(&self) -> Arc<Vec<Member>> {
        self.inner.shared.members.load_full()
    }

    /// Whether `list` is the member list now (what [`Membership::members`] would return),
    /// compared by pointer without taking a reference to it: for a caller that keeps what it
    /// made of a list and checks it on every request (no shared count touched by every
    /// worker thread).
    pub fn is_current(&self, list: &Arc<Vec<Member>>) -> bool {
        Arc::ptr_eq(&self.inner.shared.members.load(), list)
    }

    /// The members that count for ownership: alive and suspect (see `super::members`).
    pub fn live(&self) -> Vec<Member> {
        members::live(&self.members())
    }

    /// A counter that grows on every change of the live set.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.shared.changes.subscribe()
    }

    /// This node's id.
    pub fn self_id(&self) -> &str {
        &self.inner.self_id
    }

    /// The `[cluster]` section this membership started with.
    pub fn settings(&self) -> &ClusterSection {
        &self.inner.settings
    }

    /// Datagrams dropped because they did not authenticate.
    pub fn gossip_rejected(&self) -> u64 {
        self.inner.shared.rejected.load(Ordering::Relaxed)
    }

    /// Authenticated (or unkeyed) datagrams that were not valid gossip.
    pub fn gossip_malformed(&self) -> u64 {
        self.inner.shared.malformed.load(Ordering::Relaxed)
    }

    /// Authenticated datagrams dropped as replays (see the module doc).
    pub fn gossip_replayed(&self) -> u64 {
        self.inner.shared.replayed.load(Ordering::Relaxed)
    }

    /// Publish `data` as this node's note (`super::notes`): it replaces the previous one and
    /// reaches every member by gossip. Data over [`notes::MAX_NOTE_DATA`] bytes is refused.
    pub fn set_note(&self, data: Vec<u8>) -> Result<(), NoteTooLong> {
        if data.len() > notes::MAX_NOTE_DATA {
            return Err(NoteTooLong(data.len()));
        }
        // The task is gone only once the node leaves: nothing to tell then.
        let _ = self.inner.note.send(data);
        Ok(())
    }

    /// Every member's latest note this node holds (its own included), by member id; a
    /// lock-free read. Notes of members that left stay until [`notes::MAX_NOTES`] forces
    /// them out; join with [`Membership::members`] by id.
    pub fn notes(&self) -> Arc<std::collections::BTreeMap<String, Note>> {
        self.inner.shared.notes.load_full()
    }

    /// A counter that grows whenever a member's note is added or replaced.
    pub fn subscribe_notes(&self) -> watch::Receiver<u64> {
        self.inner.shared.note_changes.subscribe()
    }

    /// Leave the cluster: tell a few members this node is going, then stop gossiping. Waits
    /// at most `LEAVE_TIMEOUT`; a second call returns at once.
    pub async fn leave(&self) {
        if self.inner.left.swap(true, Ordering::SeqCst) {
            return;
        }
        let (done, wait) = oneshot::channel();
        if self.inner.leave.send(done).await.is_ok() {
            let _ = tokio::time::timeout(LEAVE_TIMEOUT, wait).await;
        }
    }
}

/// foca's settings for a LAN cluster with our probe period and suspicion timeout.
pub(super) fn swim_config(probe: Duration, suspect: Duration) -> foca::Config {
    let mut c = foca::Config::new_lan(NonZeroU32::MIN.saturating_add(15));
    c.probe_period = probe;
    c.probe_rtt = probe / 2;
    c.suspect_to_down_after = suspect;
    c.remove_down_after = DEAD_RETENTION;
    c.max_transmissions = NonZeroU8::MIN.saturating_add(7);
    c.max_packet_size = NonZeroUsize::MIN.saturating_add(MAX_PAYLOAD - 1);
    c.notify_down_members = true;
    c.periodic_gossip = Some(foca::PeriodicParams {
        frequency: probe.min(Duration::from_millis(200)),
        num_members: NonZeroUsize::MIN.saturating_add(2),
    });
    c.periodic_announce = Some(foca::PeriodicParams {
        frequency: Duration::from_secs(10),
        num_members: NonZeroUsize::MIN,
    });
    c.periodic_announce_to_down_members = Some(foca::PeriodicParams {
        frequency: Duration::from_secs(5),
        num_members: NonZeroUsize::MIN.saturating_add(1),
    });
    c
}

/// The gossip task's state.
struct Gossip {
    foca: Swim,
    rt: AccumulatingRuntime<NodeIdentity>,
    timers: Timers,
    socket: UdpSocket,
    key: Option<Arc<[u8]>>,
    seeds: Vec<SocketAddr>,
    identity: NodeIdentity,
    shared: Arc<Shared>,
    /// Set once [`Membership::leave`] was asked for.
    leaving: bool,
    /// Our datagrams' stamps.
    stamps: crate::sync::Sequencer,
    /// Each sender's replay window and when it was last heard (with a key).
    windows: std::collections::HashMap<SocketAddr, (crate::sync::Window, Instant)>,
    /// The notes foca's broadcast handler keeps.
    book: Arc<Mutex<Book>>,
    /// This process's note epoch (its start, ms since the UNIX epoch).
    note_epoch: u64,
    /// This node's note as last published (encoded), re-added every `NOTE_REFRESH`.
    own_note: Option<(u64, Vec<u8>)>,
}

/// A note larger than [`notes::MAX_NOTE_DATA`] (its length).
#[derive(Debug, thiserror::Error)]
#[error("member note of {0} bytes is over the {max} byte limit", max = notes::MAX_NOTE_DATA)]
pub struct NoteTooLong(pub usize);

impl Gossip {
    async fn run(
        mut self,
        mut leave: mpsc::Receiver<oneshot::Sender<()>>,
        mut note: mpsc::UnboundedReceiver<Vec<u8>>,
    ) {
        self.announce_to_seeds();
        self.flush().await;
        let mut buf = vec![0u8; RECV_BUFFER];
        let mut reannounce = tokio::time::interval(REANNOUNCE_INTERVAL);
        reannounce.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut refresh = tokio::time::interval(notes::NOTE_REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = self.timers.next_deadline();
            tokio::select! {
                got = self.socket.recv_from(&mut buf) => match got {
                    Ok((n, from)) => self.receive(&buf[..n], from),
                    Err(e) => tracing::debug!(error = %e, "gossip receive failed"),
                },
                _ = sleep_until(next) => {
                    let now = Instant::now();
                    while let Some(t) = self.timers.pop_due(now) {
                        if let Err(e) = self.foca.handle_timer(t, &mut self.rt) {
                            tracing::debug!(error = %e, "gossip timer");
                        }
                    }
                }
                _ = reannounce.tick() => {
                    if self.foca.num_members() == 0 {
                        self.announce_to_seeds();
                    }
                }
                Some(data) = note.recv() => self.publish_note(data),
                _ = refresh.tick() => {
                    if let Some((_, own)) = &self.own_note {
                        if let Err(e) = self.foca.add_broadcast(own) {
                            tracing::debug!(error = %e, "member note refresh");
                        }
                    }
                }
                done = leave.recv() => {
                    // Leaving declares ourselves dead: no warning for that.
                    self.leaving = true;
                    if let Err(e) = self.foca.leave_cluster(&mut self.rt) {
                        tracing::warn!(error = %e, "leaving the cluster");
                    }
                    self.flush().await;
                    self.publish(MemberState::Dead);
                    tracing::info!("left the cluster");
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    return;
                }
            }
            self.flush().await;
            self.publish(MemberState::Alive);
            self.publish_notes();
        }
    }

    /// This node's new note: the next sequence number, into foca's backlog.
    fn publish_note(&mut self, data: Vec<u8>) {
        let seq = self.own_note.as_ref().map_or(1, |(s, _)| s + 1);
        let item = Item {
            id: self.identity.id.clone(),
            note: Note {
                epoch: self.note_epoch,
                seq,
                data: Arc::from(data),
            },
        };
        let encoded = item.encode();
        if let Err(e) = self.foca.add_broadcast(&encoded) {
            tracing::warn!(error = %e, "member note not published");
        }
        self.own_note = Some((seq, encoded));
    }

    /// Share the notes if one changed.
    fn publish_notes(&mut self) {
        let snapshot = {
            let mut book = self.book.lock();
            if !book.take_changed() {
                return;
            }
            book.snapshot()
        };
        self.shared.notes.store(Arc::new(snapshot));
        self.shared.note_changes.send_modify(|n| *n += 1);
    }

    fn announce_to_seeds(&mut self) {
        for seed in &self.seeds {
            if let Err(e) = self.foca.announce(NodeIdentity::seed(*seed), &mut self.rt) {
                tracing::debug!(error = %e, %seed, "announce");
            }
        }
    }

    /// One datagram: authenticate, then hand it to foca.
    fn receive(&mut self, datagram: &[u8], from: SocketAddr) {
        let payload = match seal::open(self.key.as_deref(), datagram) {
            Ok(p) => p,
            Err(why) => {
                self.shared.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%from, ?why, "gossip datagram rejected");
                return;
            }
        };
        let Some((stamp, payload)) = payload.split_first_chunk::<STAMP_LEN>() else {
            self.shared.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if payload.len() > MAX_PAYLOAD {
            self.shared.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.key.is_some() && !self.fresh(from, stamp) {
            self.shared.replayed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%from, "gossip datagram replayed");
            return;
        }
        match self.foca.handle_data(payload, &mut self.rt) {
            Ok(()) => {}
            Err(
                e @ (foca::Error::MalformedPacket
                | foca::Error::Decode(_)
                | foca::Error::DataTooBig),
            ) => {
                self.shared.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%from, error = %e, "gossip datagram malformed");
            }
            Err(e) => tracing::debug!(%from, error = %e, "gossip datagram ignored"),
        }
    }

    /// Whether `stamp` is new from `from` (and now seen); see the module doc.
    fn fresh(&mut self, from: SocketAddr, stamp: &[u8; STAMP_LEN]) -> bool {
        let (epoch, seq) = stamp.split_at(8);
        let stamp = crate::sync::Stamp {
            epoch: u64::from_be_bytes(epoch.try_into().unwrap_or_default()),
            seq: u64::from_be_bytes(seq.try_into().unwrap_or_default()),
        };
        if !self.windows.contains_key(&from) && self.windows.len() >= MAX_WINDOWS {
            let oldest = self
                .windows
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(a, _)| *a);
            if let Some(a) = oldest {
                self.windows.remove(&a);
            }
        }
        let (window, heard) = self
            .windows
            .entry(from)
            .or_insert_with(|| (crate::sync::Window::new(), Instant::now()));
        *heard = Instant::now();
        window.accept(stamp).is_ok()
    }

    /// Send what foca queued, schedule its timers, log its notifications.
    async fn flush(&mut self) {
        let now = Instant::now();
        while let Some((after, timer)) = self.rt.to_schedule() {
            if !self.timers.push(now, after, timer) {
                tracing::warn!("gossip timer dropped: too many pending");
            }
        }
        while let Some(n) = self.rt.to_notify() {
            if !(self.leaving && n == OwnedNotification::Defunct) {
                log_notification(&n);
            }
        }
        while let Some((to, data)) = self.rt.to_send() {
            if self.spurious_turn_undead(&to, &data) {
                continue;
            }
            let stamp = self.stamps.next_stamp();
            let mut payload = Vec::with_capacity(STAMP_LEN + data.len());
            payload.extend_from_slice(&stamp.epoch.to_be_bytes());
            payload.extend_from_slice(&stamp.seq.to_be_bytes());
            payload.extend_from_slice(&data);
            let datagram = seal::seal(self.key.as_deref(), &payload);
            if let Err(e) = self.socket.send_to(&datagram, to.gossip).await {
                tracing::debug!(to = %to.gossip, error = %e, "gossip send failed");
            }
        }
    }

    /// Whether `data` to `to` is a `TurnUndead` ("you are down") to a member this node holds
    /// live. foca 1.0 sends one whenever a suspicion's timer runs out, also when the suspect
    /// refuted the suspicion meanwhile and is not declared down (the member is still alive
    /// here); the suspect would take it for a death notice and rejoin under a new identity,
    /// so a node that resumed from a pause (or a slow moment) would be dropped from every
    /// member list and come back. The genuine ones go to a member held down here.
    fn spurious_turn_undead(&self, to: &NodeIdentity, data: &[u8]) -> bool {
        let Ok(header) = foca::Codec::<NodeIdentity>::decode_header(&mut PostcardCodec, data)
        else {
            return false;
        };
        header.message == foca::Message::TurnUndead
            && self
                .foca
                .iter_membership_state()
                .any(|m| m.id() == to && m.state() != foca::State::Down)
    }

    /// Rebuild the member list; bump the change counter if the live set changed.
    fn publish(&mut self, self_state: MemberState) {
        let identity = self.foca.identity().clone();
        if identity != self.identity {
            tracing::info!(bump = identity.bump, "gossip identity renewed");
            self.identity = identity;
        }
        let mut list = vec![self.identity.member(self_state)];
        list.extend(
            self.foca
                .iter_membership_state()
                .map(|m| m.id().member(state_of(m.state()))),
        );
        members::sort(&mut list);
        let current = self.shared.members.load();
        if **current == list {
            return;
        }
        let changed = members::live_set_changed(&current, &list);
        self.shared.members.store(Arc::new(list));
        if changed {
            self.shared.changes.send_modify(|n| *n += 1);
        }
    }
}

fn log_notification(n: &OwnedNotification<NodeIdentity>) {
    match n {
        OwnedNotification::MemberUp(m) => {
            tracing::info!(member = %m.id, gossip = %m.gossip, "cluster member up")
        }
        OwnedNotification::MemberDown(m) => {
            tracing::info!(member = %m.id, gossip = %m.gossip, "cluster member down")
        }
        OwnedNotification::Rename(old, new) => {
            tracing::info!(member = %new.id, previous = %old.id, gossip = %new.gossip,
                "cluster member restarted")
        }
        OwnedNotification::Rejoin(me) => {
            tracing::warn!(bump = me.bump, "declared dead by the cluster; rejoined")
        }
        OwnedNotification::Defunct => tracing::warn!("declared dead by the cluster"),
        OwnedNotification::Active => tracing::info!("joined the cluster"),
        OwnedNotification::Idle => tracing::info!("no other cluster member is alive"),
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "gossip_tests.rs"]
mod tests;
