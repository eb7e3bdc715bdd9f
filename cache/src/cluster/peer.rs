//! Connections between nodes for the peer protocol (`frame`): the handshake, streams
//! multiplexed on each connection, and a pool of connections per peer.
//!
//! Contract:
//! * A connection ([`Link`]) starts with one `Hello` each way (the dialling side first). With
//!   a cluster secret both sides then authenticate every frame (`PeerCodec::enable_auth`), in
//!   the order frames are written and read on the connection; a peer that does not know the
//!   secret fails at its first tagged frame.
//! * A connection carries many exchanges at once, one per stream: a [`PeerConn`] is one
//!   stream. The dialling side opens streams (ids 1, 2, … on that connection, their first
//!   frames not necessarily written in that order); the accepting side gets a new stream
//!   with a frame that starts an exchange (`Lookup`, `Purge`, `Ban`, `BanAll`, `ConfigGet`)
//!   for an id not open, and hands it to its server loop ([`Link::accept`]); any other frame
//!   of an id not open (a stream it closed) is dropped. With a quick path ([`Quick`],
//!   `reply`) a first `Lookup` is offered to it on the reader task before the stream opens:
//!   answered there, the stream never opens (later frames of its id are dropped as a closed
//!   stream's); declined, it opens as without one.
//! * Per connection one writer task takes every frame queued by any stream (encoded and
//!   checked against the limits by the sending task: `feed` encodes, `send`/`flush` queue
//!   what was fed as one item) and writes all of them, tagged in write order, with one
//!   write: under load many lookups and answers share a syscall. Senders wait once
//!   [`WRITE_WINDOW`] bytes are queued. One reader task decodes frames and routes them to
//!   their streams' queues.
//! * One stream does not hold up the others: flow control per stream (credit). Each side may
//!   have at most [`STREAM_WINDOW`] bytes of `Data` payload of a stream sent and not yet
//!   granted back; a `Data` sender (`feed`, `send`) waits while the stream's credit is used
//!   up (queueing what it fed before first), so a slow reader paces its sender, and neither
//!   the writer nor the reader task ever waits on one stream. The receiving side grants
//!   bytes back with a `Credit` frame as its reader takes `Data` out of the stream's queue
//!   (`recv`), once a quarter of the window has been taken; frames other than `Data` take
//!   no credit. A peer that sends `Data` beyond its credit (or queues more than the window's
//!   worth of other frames the reader did not take) breaks the protocol: the stream is reset
//!   (`Reset` to the other side, counted in [`stream_resets`]) and its reader sees the frames
//!   queued until then and then [`PeerError::Closed`]. A stream reset or closed wakes its
//!   sender waiting for credit with [`PeerError::Closed`]; a caller that bounds its send
//!   with a timeout bounds that wait too. A stream dropped before its exchange ended
//!   ([`Pool::put`] or [`PeerConn::end`] end it cleanly) is reset on both sides. A
//!   [`PeerConn::recv`] that times out leaves the connection and the stream as they are. A
//!   connection that breaks (a read or write error, a bad frame or tag, the peer closed it)
//!   closes every stream on it at once: their `recv` returns [`PeerError::Closed`] once the
//!   frames already queued are read.
//! * [`Pool::get`] opens a stream on a live connection to the address with fewer than
//!   [`MAX_STREAMS`] open streams, or dials one (connect and handshake bounded by the dial
//!   timeout, the smaller of the connect timeout and `peer_timeout`); [`Pool::put`] ends a
//!   stream whose exchange ended cleanly. At most [`MAX_CONNS`] connections are kept per
//!   peer; one idle (no stream open) longer than [`IDLE_FOR`] is closed rather than reused,
//!   and a dialled connection the pool does not keep is closed when its last stream ends.
//! * Every wait on a peer is bounded: [`PeerConn::recv`] takes the time it may wait; a
//!   sender waiting for credit waits as long as its caller lets it, or until the stream or
//!   connection closes.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use foldhash::fast::RandomState as FastState;
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::Framed;

use super::frame::{Frame, FrameError, Kind, Limits, LookupOut, ObjectHead, PeerCodec};
use batch::{Batch, Output};
pub use reply::{Quick, Reply};

/// Protocol version sent in `Hello`.
pub use super::frame::VERSION;
/// Connections kept per peer.
pub const MAX_CONNS: usize = 4;
/// Streams open at once on one connection; [`Pool::get`] uses (or dials) another beyond it.
pub const MAX_STREAMS: usize = 1024;
/// A stream's flow-control window: `Data` payload bytes a side may have sent and not yet
/// granted back by the other side (the receiver resets a stream whose peer sends more).
pub const STREAM_WINDOW: usize = 4 * 1024 * 1024;
/// Bytes queued to a connection's writer before senders wait.
pub const WRITE_WINDOW: usize = 4 * 1024 * 1024;
/// Bytes encoded into one write, at most (one frame may be longer).
const WRITE_BATCH: usize = 256 * 1024;
/// Frames up to this long are copied out of the read buffer (longer ones share it): a frame
/// held for long (a body written to a slow client) holds at most ~2x its size. Splitting off
/// frames from 4 KiB up saved the copy but let a slow client hold 64 KiB for a 5 KiB body.
/// A stream whose reader writes payloads out at once ([`PeerConn::share_payloads`]) takes
/// them shared from [`SHARE_MIN`] up instead.
const COPY_MAX: usize = 32 * 1024;
/// `Data` frames from this long up are split off the read buffer rather than copied in a run
/// with their neighbours; a payload under [`COPY_MAX`] is then copied on its own, unless its
/// stream takes payloads shared.
const SHARE_MIN: usize = 4 * 1024;
/// Room a connection's reads start with, and the least they shrink back to.
const READ_ROOM: usize = 64 * 1024;
/// The most room a read is given: a connection whose reads fill what they were given grows
/// its room to this ([`next_room`]). Fewer reads under load (16 KiB remote hits: from 0.29
/// to 0.10 peer reads per request, fewer page faults too), while a quiet connection keeps
/// 64 KiB.
const READ_ROOM_MAX: usize = 256 * 1024;

/// The room for a connection's next read, from the room it had (`room`) and what its last
/// read took of what it was offered: doubled (up to [`READ_ROOM_MAX`]) when the read filled
/// the buffer (the peer had more to send), halved (down to [`READ_ROOM`]) when it took under
/// an eighth of the room, else the same.
fn next_room(room: usize, read: usize, offered: usize) -> usize {
    if read >= offered {
        (room * 2).min(READ_ROOM_MAX)
    } else if read < room / 8 {
        (room / 2).max(READ_ROOM)
    } else {
        room
    }
}
/// A connection with no stream open for this long is closed rather than used (the peer may
/// have closed it: its server drops connections idle for [`SERVER_IDLE`]).
pub const IDLE_FOR: Duration = Duration::from_secs(20);
/// The owner's side closes a connection idle this long.
pub const SERVER_IDLE: Duration = Duration::from_secs(30);
/// Time the accepting side gives a dialling peer's `Hello` (the dialling side bounds its
/// whole dial by its own timeout).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

static STREAM_RESETS: AtomicU64 = AtomicU64::new(0);

/// Streams this process reset because the peer sent `Data` beyond its credit
/// ([`STREAM_WINDOW`]) or queued more than that of other frames.
pub fn stream_resets() -> u64 {
    STREAM_RESETS.load(Ordering::Relaxed)
}

/// Why an exchange with a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("connect to {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("connect to {0}: timed out")]
    ConnectTimeout(SocketAddr),
    #[error("peer {0}: {1}")]
    Io(SocketAddr, std::io::Error),
    #[error("peer {0}: {1}")]
    Frame(SocketAddr, FrameError),
    #[error("peer {0} closed the connection")]
    Closed(SocketAddr),
    #[error("peer {0}: no answer within {1:?}")]
    Timeout(SocketAddr, Duration),
    /// No handshake, or no first frame of an answer, within `peer_timeout`: the peer hangs.
    #[error("peer {0}: no answer within peer_timeout ({1:?})")]
    Hung(SocketAddr, Duration),
    #[error("peer {0}: unexpected {1}")]
    Unexpected(SocketAddr, &'static str),
    #[error("peer {0}: error {1}: {2}")]
    Remote(SocketAddr, u16, String),
}

/// What a frame other than `Data` counts against its stream's bound of control frames, at
/// least (`Data` counts its payload against the stream's credit): see [`control_cost`].
const CONTROL_COST: usize = 256;

/// What a frame other than `Data` counts against its stream's bound of control frames:
/// [`CONTROL_COST`] plus the bytes of its variable fields, so a peer that sends frame after
/// frame on a stream whose reader does not take them (large heads, inline bodies) is reset
/// once they hold about the window, not 256 bytes a frame whatever their size.
fn control_cost(f: &Frame) -> usize {
    fn fields(h: &[(Bytes, Bytes)]) -> usize {
        h.iter().map(|(n, v)| n.len() + v.len()).sum()
    }
    fn head(h: &ObjectHead) -> usize {
        fields(&h.headers) + h.vary.iter().map(String::len).sum::<usize>() + h.variant_id.len()
    }
    CONTROL_COST
        + match f {
            Frame::Lookup(l) => l.key.len() + l.uri.len() + fields(&l.headers),
            Frame::Hit(h) => head(h),
            Frame::WireHit(h) => h.wire.len() + body_len(f),
            Frame::Push(p) => p.key.len() + head(&p.head),
            Frame::Answer(a) => fields(&a.headers),
            Frame::Config { text, .. } => text.len(),
            Frame::Error { message, .. } => message.len(),
            Frame::Purge { url } => url.len(),
            Frame::Ban { prefix } => prefix.len(),
            _ => 0,
        }
}

/// The body bytes a frame sends, which take the stream's credit: a `Data` payload or a
/// `WireHit`'s inline body (0 for anything else).
fn body_len(f: &Frame) -> usize {
    match f {
        Frame::Data(b) => b.len(),
        Frame::WireHit(h) => h.body.as_ref().map_or(0, Bytes::len),
        _ => 0,
    }
}

/// One stream end's state, shared by the router and the stream's handle: its incoming queue
/// and flow control both ways (a plain queue: a channel per stream cost an allocation of a
/// block of slots per exchange).
///
/// Flow control (credit): each side may have at most `window` bytes of `Data` payload of a
/// stream sent and not yet granted back by the other side. The receiving side grants bytes
/// back (`Credit`) as its reader takes `Data` out of the queue, in batches of at least
/// `window / 4`; the sending side waits while its credit is used up. A `Data` frame beyond
/// the credit the receiver gave is a protocol violation: the stream is reset.
#[derive(Debug)]
struct StreamState {
    /// Receiving side: `Data` payload bytes received and not yet granted back (at most the
    /// window from a peer that keeps to its credit).
    unacked: AtomicUsize,
    /// Receiving side: what frames other than `Data` in the queue count ([`CONTROL_COST`]
    /// each), bounded by the window too.
    control: AtomicUsize,
    /// The stream was reset (by either side) or its connection closed.
    closed: AtomicBool,
    /// Bytes the reader must take before they are granted back at once.
    batch: usize,
    /// `Data` payloads may stay in the connection's read buffer
    /// ([`PeerConn::share_payloads`]).
    shares: AtomicBool,
    inbox: Mutex<Inbox>,
    /// Sending side: the credit left and who waits for more.
    send: Mutex<SendWindow>,
}

#[derive(Debug, Default)]
struct Inbox {
    frames: VecDeque<Frame>,
    /// No frame comes after those queued.
    ended: bool,
    waker: Option<Waker>,
    /// `Data` payload bytes the reader took and not yet granted back.
    taken: usize,
}

/// The sending side's credit on one stream.
#[derive(Debug, Default)]
struct SendWindow {
    /// `Data` payload bytes this side may still send.
    credit: usize,
    /// The sender waiting for credit.
    waker: Option<Waker>,
}

impl StreamState {
    fn new(window: usize) -> StreamState {
        StreamState {
            unacked: AtomicUsize::new(0),
            control: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            batch: (window / 4).max(1),
            shares: AtomicBool::new(false),
            inbox: Mutex::new(Inbox::default()),
            send: Mutex::new(SendWindow {
                credit: window,
                waker: None,
            }),
        }
    }

    /// [`PeerConn::share_payloads`]: turned off, what is queued is copied out (the queue is
    /// looked at only when it was on).
    fn share(&self, on: bool) {
        if self.shares.swap(on, Ordering::AcqRel) && !on {
            self.inbox.lock().frames.iter_mut().for_each(copy_out);
        }
    }

    fn push(&self, f: Frame) {
        let mut inbox = self.inbox.lock();
        inbox.frames.push_back(f);
        let waker = inbox.waker.take();
        drop(inbox);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Closes the stream: its reader gets what is queued, then the end; a sender waiting for
    /// credit fails.
    fn end(&self) {
        self.closed.store(true, Ordering::Release);
        let mut inbox = self.inbox.lock();
        inbox.ended = true;
        let waker = inbox.waker.take();
        drop(inbox);
        if let Some(w) = waker {
            w.wake();
        }
        let waker = self.send.lock().waker.take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The next frame, and the `Data` bytes to grant back now (0: none yet).
    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<(Frame, usize)>> {
        let mut inbox = self.inbox.lock();
        if let Some(f) = inbox.frames.pop_front() {
            let grant = self.took(&mut inbox, &f);
            return Poll::Ready(Some((f, grant)));
        }
        if inbox.ended {
            return Poll::Ready(None);
        }
        if !inbox
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            inbox.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Accounts for frame `f` taken out of the queue; the bytes to grant back now.
    fn took(&self, inbox: &mut Inbox, f: &Frame) -> usize {
        let Frame::Data(b) = f else {
            self.control.fetch_sub(control_cost(f), Ordering::AcqRel);
            return 0;
        };
        inbox.taken += b.len();
        if inbox.taken < self.batch {
            return 0;
        }
        let grant = std::mem::take(&mut inbox.taken);
        // Granted from here on: the peer may send these bytes again.
        self.unacked.fetch_sub(grant, Ordering::AcqRel);
        grant
    }

    /// Takes `n` bytes of credit if there are as many.
    fn try_credit(&self, n: usize) -> bool {
        let mut send = self.send.lock();
        if send.credit >= n {
            send.credit -= n;
            return true;
        }
        false
    }

    /// Takes `n` bytes of credit once there are as many; an error once the stream is closed.
    fn poll_credit(&self, cx: &mut Context<'_>, n: usize) -> Poll<Result<(), ()>> {
        let mut send = self.send.lock();
        if self.closed.load(Ordering::Acquire) {
            return Poll::Ready(Err(()));
        }
        if send.credit >= n {
            send.credit -= n;
            return Poll::Ready(Ok(()));
        }
        if !send.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            send.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// The other side granted `n` more bytes.
    fn credit(&self, n: usize) {
        let mut send = self.send.lock();
        send.credit = send.credit.saturating_add(n);
        let waker = send.waker.take();
        drop(send);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The credit left (tests).
    #[cfg(test)]
    fn credit_left(&self) -> usize {
        self.send.lock().credit
    }

    /// The next frame queued now, if any, and the bytes to grant back.
    fn try_next_granting(&self) -> Option<(Frame, usize)> {
        let mut inbox = self.inbox.lock();
        let f = inbox.frames.pop_front()?;
        let grant = self.took(&mut inbox, &f);
        Some((f, grant))
    }

    /// The next frame queued now, if any (tests).
    #[cfg(test)]
    fn try_next(&self) -> Option<Frame> {
        self.try_next_granting().map(|(f, _)| f)
    }
}

/// What the router did with a frame.
#[derive(Debug)]
enum Route {
    /// Queued for its stream.
    Queued,
    /// The first frame of a new stream (accepting side): its queue and state.
    New(Arc<StreamState>),
    /// The other side granted credit to this side's sender.
    Credited,
    /// The other side sent `Data` beyond its credit (or too many other frames the reader
    /// did not take): the stream is closed here, the other side must be told (`Reset`).
    Overflow,
    /// The other side reset the stream: closed here.
    Reset,
    /// A frame of a stream closed here (or never opened): dropped.
    Dropped,
    /// A new stream over [`MAX_STREAMS`] open at once: reset without being opened.
    Refused,
    /// The first frame of a new stream, a `Lookup`, on a connection with a quick path
    /// (`reply`): not opened yet, for the reader to answer at once or open
    /// ([`Routes::open_with`]).
    First(Frame),
}

/// Whether `f` starts an exchange: the only frames that open a stream (accepting side).
fn opens_exchange(f: &Frame) -> bool {
    matches!(
        f,
        Frame::Lookup(_)
            | Frame::Purge { .. }
            | Frame::Ban { .. }
            | Frame::BanAll
            | Frame::ConfigGet { .. }
    )
}

/// Streams of one connection by id, and where frames go (pure: no I/O).
struct Routes {
    /// foldhash, seeded per process: ids are this side's counter or an authenticated
    /// peer's, looked up several times per exchange (SipHash costs ~110 instructions a
    /// lookup here, foldhash a tenth of that).
    streams: HashMap<u32, Arc<StreamState>, FastState>,
    /// Whether the other side opens streams (this is the accepting side).
    accepting: bool,
    window: usize,
    /// A stream's first `Lookup` is offered to the quick path before the stream opens.
    quick: bool,
}

impl Routes {
    fn new(accepting: bool, window: usize) -> Routes {
        Routes {
            streams: HashMap::default(),
            accepting,
            window,
            quick: false,
        }
    }

    /// Registers stream `id` (opened by this side).
    fn open(&mut self, id: u32) -> Arc<StreamState> {
        let state = Arc::new(StreamState::new(self.window));
        self.streams.insert(id, Arc::clone(&state));
        state
    }

    /// Takes one frame read for stream `id`; `in_read_buffer`: its payload shares the
    /// connection's read buffer (a `Data` payload under [`COPY_MAX`] is copied out, unless
    /// its stream takes payloads shared).
    fn route(&mut self, id: u32, f: Frame, in_read_buffer: bool) -> Route {
        if matches!(f, Frame::Reset) {
            return match self.streams.remove(&id) {
                Some(state) => {
                    state.end();
                    Route::Reset
                }
                None => Route::Dropped,
            };
        }
        if let Frame::Credit(n) = f {
            return match self.streams.get(&id) {
                Some(state) => {
                    state.credit(n as usize);
                    Route::Credited
                }
                None => Route::Dropped,
            };
        }
        if !self.streams.contains_key(&id) {
            // Only a frame that starts an exchange opens a stream; anything else for an id
            // not open (a `Credit`, `Data` or `Reset` after the exchange ended here) is
            // dropped. Ids are not required to arrive in order: the dialling side numbers
            // its streams when it opens them, but their first frames reach the writer in
            // the order their tasks run.
            if !self.accepting || !opens_exchange(&f) {
                return Route::Dropped;
            }
            if self.quick && matches!(f, Frame::Lookup(_)) {
                return Route::First(f);
            }
            return self.open_with(id, f, in_read_buffer);
        }
        self.queue(id, f, in_read_buffer, None)
    }

    /// Opens stream `id` (accepting side, its id already seen) with its first frame `f`.
    fn open_with(&mut self, id: u32, f: Frame, in_read_buffer: bool) -> Route {
        if self.streams.len() >= MAX_STREAMS {
            // A dialling side keeps under it (`Pool::get`): one that does not is refused
            // the stream, so a peer cannot make this node hold unbounded exchanges.
            return Route::Refused;
        }
        let state = self.open(id);
        self.queue(id, f, in_read_buffer, Some(state))
    }

    /// Queues `f` for open stream `id` (`new`: it was opened for this frame).
    fn queue(
        &mut self,
        id: u32,
        f: Frame,
        in_read_buffer: bool,
        new: Option<Arc<StreamState>>,
    ) -> Route {
        let Some(state) = self.streams.get(&id) else {
            return Route::Dropped;
        };
        let (count, c) = match &f {
            Frame::Data(b) => (&state.unacked, b.len()),
            f => (&state.control, control_cost(f)),
        };
        if count.load(Ordering::Acquire) + c > self.window {
            if let Some(state) = self.streams.remove(&id) {
                state.end();
            }
            return Route::Overflow;
        }
        count.fetch_add(c, Ordering::AcqRel);
        let mut f = f;
        if in_read_buffer && !state.shares.load(Ordering::Acquire) {
            copy_out(&mut f);
        }
        state.push(f);
        match new {
            Some(state) => Route::New(state),
            None => Route::Queued,
        }
    }

    /// Forgets stream `id`; whether it was still open.
    fn close(&mut self, id: u32) -> bool {
        self.streams.remove(&id).is_some()
    }

    /// Closes every stream (the connection is gone).
    fn close_all(&mut self) {
        for (_, state) in self.streams.drain() {
            state.end();
        }
    }
}

/// A `Data` payload, or a `WireHit`'s wire head and inline body, under [`COPY_MAX`] together
/// replaced by a copy of its own (a larger one keeps sharing the read buffer, as it always
/// has).
fn copy_out(f: &mut Frame) {
    let body = body_len(f);
    match f {
        Frame::Data(b) if b.len() < COPY_MAX => *b = Bytes::copy_from_slice(b),
        Frame::WireHit(h) if h.wire.len() + body < COPY_MAX => {
            h.wire = Bytes::copy_from_slice(&h.wire);
            if let Some(b) = &mut h.body {
                *b = Bytes::copy_from_slice(b);
            }
        }
        _ => {}
    }
}

/// What a connection's writer takes.
enum Out {
    /// Whole untagged frames (`PeerCodec::encode_untagged`, large payloads kept as they
    /// are), and the room they hold.
    Frames(Batch, Option<OwnedSemaphorePermit>),
    /// Write what is queued, then close the connection.
    Close,
}

/// One connection to a peer (either side), after the handshake: its streams, its writer and
/// reader tasks (see the module doc).
pub struct Link {
    /// The other side's address.
    pub addr: SocketAddr,
    /// The other side's node id (from its `Hello`).
    pub node: Arc<str>,
    limits: PeerCodec,
    out: mpsc::UnboundedSender<Out>,
    room: Arc<Semaphore>,
    routes: Mutex<Routes>,
    next_id: AtomicU32,
    open: AtomicUsize,
    dead: AtomicBool,
    /// Closed once no stream is open (a dialled connection the pool does not keep).
    close_when_idle: AtomicBool,
    idle_since: Mutex<Instant>,
    incoming: Mutex<Option<mpsc::UnboundedSender<PeerConn>>>,
    /// The accepting side's quick path for a stream's first `Lookup` (`reply`).
    quick: Option<Quick>,
    reader: Mutex<Option<tokio::task::AbortHandle>>,
    failure: Mutex<Option<PeerError>>,
}

impl Link {
    /// Dials `addr` and shakes hands as `self_id`, both within `timeout` (a stopped process's
    /// kernel still completes the TCP handshake, so the `Hello` exchange is bounded too; a
    /// handshake that runs out of time is [`PeerError::Hung`]).
    pub async fn dial(
        addr: SocketAddr,
        self_id: &str,
        secret: Option<&[u8]>,
        limits: Limits,
        timeout: Duration,
    ) -> Result<Arc<Link>, PeerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let stream = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
            .await
            .map_err(|_| PeerError::ConnectTimeout(addr))?
            .map_err(|e| PeerError::Connect(addr, e))?;
        let shake = async {
            let _ = stream.set_nodelay(true);
            let mut io = Framed::new(stream, PeerCodec::new(limits));
            let nonce = send_hello(&mut io, addr, self_id).await?;
            let (node, theirs) = read_hello(&mut io, addr).await?;
            if let Some(s) = secret {
                io.codec_mut().enable_auth(s, &nonce, &theirs, true);
            }
            Ok::<_, PeerError>((io, node))
        };
        let (io, node) = tokio::time::timeout_at(deadline, shake)
            .await
            .map_err(|_| PeerError::Hung(addr, timeout))??;
        Ok(Link::start(io, addr, node, false, None).0)
    }

    /// Answers a dialling peer's handshake on an accepted stream; the streams the peer opens
    /// come out of the receiver, which ends when the connection does.
    pub async fn accept(
        stream: TcpStream,
        addr: SocketAddr,
        self_id: &str,
        secret: Option<&[u8]>,
        limits: Limits,
        quick: Option<Quick>,
    ) -> Result<(Arc<Link>, mpsc::UnboundedReceiver<PeerConn>), PeerError> {
        let _ = stream.set_nodelay(true);
        let mut io = Framed::new(stream, PeerCodec::new(limits));
        let (node, theirs) = read_hello(&mut io, addr).await?;
        let nonce = send_hello(&mut io, addr, self_id).await?;
        if let Some(s) = secret {
            io.codec_mut().enable_auth(s, &theirs, &nonce, false);
        }
        let (link, rx) = Link::start(io, addr, node, true, quick);
        Ok((link, rx))
    }

    fn start(
        io: Framed<TcpStream, PeerCodec>,
        addr: SocketAddr,
        node: String,
        accepting: bool,
        quick: Option<Quick>,
    ) -> (Arc<Link>, mpsc::UnboundedReceiver<PeerConn>) {
        let parts = io.into_parts();
        let codec = parts.codec;
        let (r, w) = parts.io.into_split();
        let (out, out_rx) = mpsc::unbounded_channel();
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let link = Arc::new(Link {
            addr,
            node: node.into(),
            limits: PeerCodec::new(*codec.limits()),
            out,
            room: Arc::new(Semaphore::new(WRITE_WINDOW)),
            routes: Mutex::new(Routes {
                quick: quick.is_some(),
                ..Routes::new(accepting, STREAM_WINDOW)
            }),
            next_id: AtomicU32::new(1),
            open: AtomicUsize::new(0),
            dead: AtomicBool::new(false),
            close_when_idle: AtomicBool::new(false),
            idle_since: Mutex::new(Instant::now()),
            incoming: Mutex::new(accepting.then_some(in_tx)),
            quick,
            reader: Mutex::new(None),
            failure: Mutex::new(None),
        });
        tokio::spawn(write_loop(Arc::clone(&link), out_rx, w, codec.clone()));
        let reader = tokio::spawn(read_loop(Arc::clone(&link), r, codec, parts.read_buf));
        *link.reader.lock() = Some(reader.abort_handle());
        if link.dead.load(Ordering::Acquire) {
            reader.abort();
        }
        (link, in_rx)
    }

    /// Opens a stream (dialling side); None when the connection is closed or out of ids.
    pub fn open_stream(self: &Arc<Self>) -> Option<PeerConn> {
        let mut routes = self.routes.lock();
        if self.dead.load(Ordering::Acquire) {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::AcqRel);
        if id == u32::MAX {
            return None;
        }
        let state = routes.open(id);
        self.open.fetch_add(1, Ordering::AcqRel);
        drop(routes);
        Some(self.stream(id, state))
    }

    fn stream(self: &Arc<Self>, id: u32, state: Arc<StreamState>) -> PeerConn {
        PeerConn {
            link: Arc::clone(self),
            id,
            state,
            pending: Batch::default(),
            addr: self.addr,
            node: Arc::clone(&self.node),
            done: false,
        }
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Whether the connection is closed (broken, or closed by either side).
    pub fn is_closed(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Why the connection broke, once (None: closed cleanly, or asked already).
    pub fn take_failure(&self) -> Option<PeerError> {
        self.failure.lock().take()
    }

    /// Whether the pool may open a stream on it now.
    fn usable(&self) -> bool {
        !self.is_closed()
            && self.next_id.load(Ordering::Acquire) < u32::MAX
            && (self.open_streams() > 0 || self.idle_since.lock().elapsed() < IDLE_FOR)
    }

    /// Closes the connection: every stream on it is closed, what is queued is written.
    pub fn close(&self) {
        self.fail(None);
    }

    fn fail(&self, why: Option<PeerError>) {
        if self.dead.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(e) = why {
            *self.failure.lock() = Some(e);
        }
        self.routes.lock().close_all();
        self.incoming.lock().take();
        let _ = self.out.send(Out::Close);
        if let Some(r) = self.reader.lock().take() {
            r.abort();
        }
    }

    /// Takes one frame read for stream `id` (`in_read_buffer`: see [`Routes::route`]).
    fn route(self: &Arc<Self>, id: u32, f: Frame, in_read_buffer: bool) {
        let routed = self.routes.lock().route(id, f, in_read_buffer);
        let routed = match routed {
            Route::First(f) => match self.answer_now(id, f) {
                None => return,
                Some(f) => self.routes.lock().open_with(id, f, in_read_buffer),
            },
            routed => routed,
        };
        match routed {
            Route::Queued | Route::Credited | Route::Reset | Route::Dropped | Route::First(_) => {}
            Route::Overflow => {
                STREAM_RESETS.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    peer = %self.addr,
                    stream = id,
                    resets = stream_resets(),
                    "peer stream reset: the peer sent beyond its credit"
                );
                self.send_reset(id);
            }
            Route::Refused => {
                STREAM_RESETS.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    peer = %self.addr,
                    stream = id,
                    resets = stream_resets(),
                    "peer stream refused: the peer has too many streams open on this connection"
                );
                self.send_reset(id);
            }
            Route::New(state) => {
                self.open.fetch_add(1, Ordering::AcqRel);
                let c = self.stream(id, state);
                let incoming = self.incoming.lock().clone();
                // Without a server loop any more, the stream is dropped (and reset).
                if let Some(tx) = incoming {
                    let _ = tx.send(c);
                }
            }
        }
    }

    fn send_reset(&self, id: u32) {
        self.send_control(id, &Frame::Reset);
    }

    /// Queues a control frame for the writer at once (never waits for room).
    fn send_control(&self, id: u32, f: &Frame) {
        let mut buf = BytesMut::new();
        if self.limits.encode_untagged(id, f, &mut buf).is_ok() {
            let _ = self.out.send(Out::Frames(Batch::from(buf), None));
        }
    }

    /// A stream handle is gone.
    fn release(&self, id: u32, reset: bool) {
        let was_open = self.routes.lock().close(id);
        if reset && was_open && !self.is_closed() {
            self.send_reset(id);
        }
        if self.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.idle_since.lock() = Instant::now();
            if self.close_when_idle.load(Ordering::Acquire) && self.open_streams() == 0 {
                self.close();
            }
        }
    }
}

/// Writes what the streams queue, every frame queued so far in one write.
async fn write_loop(
    link: Arc<Link>,
    mut rx: mpsc::UnboundedReceiver<Out>,
    mut w: OwnedWriteHalf,
    mut codec: PeerCodec,
) {
    let mut out = Output::with_capacity(64 * 1024);
    let mut permits = Vec::new();
    let mut closing = false;
    while !closing {
        let Some(first) = rx.recv().await else { break };
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Out::Frames(frames, permit) => {
                    out.seal(&mut codec, &frames);
                    permits.extend(permit);
                }
                Out::Close => closing = true,
            }
            if !closing && out.len() < WRITE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !out.is_empty() {
            if let Err(e) = out.write_to(&mut w).await {
                link.fail(Some(PeerError::Io(link.addr, e)));
                break;
            }
        }
        out.clear();
        permits.clear();
    }
    link.fail(None);
    let _ = w.shutdown().await;
}

/// The bytes of the whole frames at the front of `buf` that are copied out together: as many
/// as fit in [`COPY_MAX`], no `Data` frame from [`SHARE_MIN`] up among them (0 when the first
/// is not whole yet, or not that small). Other frames (heads, lookups) are copied up to
/// `COPY_MAX` as before: their fields would hold the read buffer while an exchange waits.
fn small_run(codec: &PeerCodec, buf: &[u8]) -> usize {
    let mut run = 0;
    while let Some(n) = codec.wire_len(&buf[run..]) {
        let end = run.saturating_add(n);
        // A `WireHit` that long carries its body inline: split off as a `Data` frame is.
        let shared_data = n >= SHARE_MIN
            && matches!(buf.get(run + 4), Some(&t) if t == Kind::Data as u8 || t == Kind::WireHit as u8);
        if shared_data || end > buf.len() || end > COPY_MAX {
            break;
        }
        run = end;
    }
    run
}

/// Reads frames and routes them to their streams until the connection ends.
async fn read_loop(link: Arc<Link>, mut r: OwnedReadHalf, mut codec: PeerCodec, buf: BytesMut) {
    let mut buf = buf;
    let mut read_room = READ_ROOM;
    let accepting = link.incoming.lock().is_some();
    let why = loop {
        loop {
            // Small frames are copied out of the read buffer, so the buffer is not shared (its
            // space is reused, and no frame a slow client holds keeps all of it): the whole
            // frames at its front, up to `COPY_MAX` bytes together, in one copy (one
            // allocation for a batch of answers, not one per frame; a frame held keeps at most
            // `COPY_MAX` bytes, as a frame of that size would). A frame from `SHARE_MIN` up is
            // split off without a copy; `route` copies its payload when it is under
            // `COPY_MAX` and its stream does not take payloads shared. The codec checks every
            // frame either way.
            let run = small_run(&codec, &buf);
            if run > 0 {
                let mut frames = BytesMut::from(&buf[..run]);
                buf.advance(run);
                while !frames.is_empty() {
                    match codec.decode_on(&mut frames) {
                        Ok(Some((id, f))) => link.route(id, f, false),
                        // `small_run` saw whole frames: the codec disagrees on a length.
                        Ok(None) => {
                            let n = frames.len();
                            return link.fail(Some(PeerError::Frame(
                                link.addr,
                                FrameError::ClosedMidFrame(n),
                            )));
                        }
                        Err(e) => return link.fail(Some(frame_err(link.addr, e))),
                    }
                }
                continue;
            }
            match codec.decode_on(&mut buf) {
                Ok(Some((id, f))) => link.route(id, f, true),
                Ok(None) => break,
                Err(e) => return link.fail(Some(frame_err(link.addr, e))),
            }
        }
        // Room for the next read, and for the whole of a frame begun: the space of frames
        // gone is reused when none of them is held any more, else a fresh buffer takes the
        // frame begun (the old one is freed with the last frame split off it).
        let want = codec.still_needed(&buf);
        let room = want.max(read_room / 4);
        if buf.capacity() - buf.len() < room && !buf.try_reclaim(room.max(read_room)) {
            let mut fresh = BytesMut::with_capacity(buf.len() + room.max(read_room));
            fresh.extend_from_slice(&buf);
            buf = fresh;
        }
        let offered = buf.capacity() - buf.len();
        let read = if accepting {
            match tokio::time::timeout(SERVER_IDLE, r.read_buf(&mut buf)).await {
                Ok(read) => read,
                Err(_) if link.open_streams() == 0 => break None,
                Err(_) => continue,
            }
        } else {
            r.read_buf(&mut buf).await
        };
        match read {
            Ok(0) if buf.is_empty() => break None,
            Ok(0) => {
                break Some(PeerError::Frame(
                    link.addr,
                    FrameError::ClosedMidFrame(buf.len()),
                ))
            }
            Ok(n) => read_room = next_room(read_room, n, offered),
            Err(e) => break Some(PeerError::Io(link.addr, e)),
        }
    };
    link.fail(why);
}

/// One stream (one exchange) on a connection to a peer (either side).
pub struct PeerConn {
    link: Arc<Link>,
    id: u32,
    state: Arc<StreamState>,
    /// Frames fed, not yet queued for the writer (untagged).
    pending: Batch,
    /// The other side's address.
    pub addr: SocketAddr,
    /// The other side's node id (from its `Hello`).
    pub node: Arc<str>,
    /// Ended cleanly: dropped without a `Reset`.
    done: bool,
}

impl PeerConn {
    fn closed(&self) -> bool {
        self.state.closed.load(Ordering::Acquire) || self.link.is_closed()
    }

    /// Sends one frame, after those fed before it (queues them for the connection's writer,
    /// as one item; waits while the writer has [`WRITE_WINDOW`] bytes queued, and for `Data`
    /// while the stream's credit is used up).
    pub async fn send(&mut self, f: Frame) -> Result<(), PeerError> {
        self.send_ref(&f).await
    }

    /// [`PeerConn::send`] of a frame the caller keeps (to send it again on another stream).
    pub async fn send_ref(&mut self, f: &Frame) -> Result<(), PeerError> {
        self.feed_ref(f).await?;
        self.flush().await
    }

    /// Adds one frame to those the next `send` or `flush` queues (a head and its body's
    /// chunks go to the writer together). A `Data` frame takes its payload's length from
    /// the stream's credit: when there is not enough, what was fed before it is queued and
    /// it waits until the other side grants more (or the stream or connection closes:
    /// [`PeerError::Closed`]).
    pub async fn feed(&mut self, f: Frame) -> Result<(), PeerError> {
        self.feed_ref(&f).await
    }

    async fn feed_ref(&mut self, f: &Frame) -> Result<(), PeerError> {
        let at = self.pending.mark();
        self.encode(f)?;
        let n = body_len(f);
        if n == 0 || self.state.try_credit(n) {
            return Ok(());
        }
        if n > STREAM_WINDOW {
            self.pending.truncate(at);
            return Err(PeerError::Unexpected(
                self.addr,
                "Data frame larger than the stream window",
            ));
        }
        // The frames fed before this one go now (they may be what the other side must read
        // to grant more); this one once there is credit for it.
        let this = self.pending.split_off(at);
        let waited = self.wait_credit(n).await;
        self.pending.unsplit(this);
        waited
    }

    /// [`PeerConn::send`] of a `Lookup` whose fields are borrowed (nothing copied into a
    /// `Frame` first).
    pub async fn send_lookup(&mut self, lookup: &LookupOut<'_>) -> Result<(), PeerError> {
        if self.closed() {
            return Err(PeerError::Closed(self.addr));
        }
        let bytes = self.pending.bytes_mut();
        if bytes.capacity() == 0 {
            bytes.reserve(512);
        }
        self.link
            .limits
            .encode_lookup(self.id, lookup, bytes)
            .map_err(|e| frame_err(self.addr, e))?;
        self.flush().await
    }

    async fn wait_credit(&mut self, n: usize) -> Result<(), PeerError> {
        self.flush().await?;
        let state = Arc::clone(&self.state);
        std::future::poll_fn(|cx| state.poll_credit(cx, n))
            .await
            .map_err(|()| PeerError::Closed(self.addr))
    }

    fn encode(&mut self, f: &Frame) -> Result<(), PeerError> {
        if self.closed() {
            return Err(PeerError::Closed(self.addr));
        }
        let limits = &self.link.limits;
        let bytes = self.pending.bytes_mut();
        // Room for a few frames at once, unless the buffer has room already.
        if bytes.capacity() == 0 && !matches!(f, Frame::Data(_)) {
            bytes.reserve(512);
        }
        self.pending
            .encode(limits, self.id, f)
            .map_err(|e| frame_err(self.addr, e))
    }

    /// Queues the frames fed so far for the connection's writer.
    pub async fn flush(&mut self) -> Result<(), PeerError> {
        if self.closed() {
            return Err(PeerError::Closed(self.addr));
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.pending);
        let want = buf.len().clamp(1, WRITE_WINDOW) as u32;
        let permit = Arc::clone(&self.link.room)
            .acquire_many_owned(want)
            .await
            .map_err(|_| PeerError::Closed(self.addr))?;
        if self.closed() {
            return Err(PeerError::Closed(self.addr));
        }
        self.link
            .out
            .send(Out::Frames(buf, Some(permit)))
            .map_err(|_| PeerError::Closed(self.addr))
    }

    /// The next frame; grants the other side credit for the `Data` taken, in batches.
    async fn next(&mut self) -> Option<Frame> {
        let (f, grant) = std::future::poll_fn(|cx| self.state.poll_next(cx)).await?;
        if grant > 0 && !self.closed() {
            // A grant is at most the window, which fits a u32.
            let n = u32::try_from(grant).unwrap_or(u32::MAX);
            self.link.send_control(self.id, &Frame::Credit(n));
        }
        Some(f)
    }

    /// The next frame, waiting at most `within`; a peer `Error` frame is returned as
    /// [`PeerError::Remote`]. A timeout leaves the stream open.
    pub async fn recv(&mut self, within: Duration) -> Result<Frame, PeerError> {
        let addr = self.addr;
        match tokio::time::timeout(within, self.next()).await {
            Err(_) => Err(PeerError::Timeout(addr, within)),
            Ok(None) => Err(PeerError::Closed(addr)),
            Ok(Some(Frame::Error { code, message })) => Err(PeerError::Remote(addr, code, message)),
            Ok(Some(f)) => Ok(f),
        }
    }

    /// The next frame, with no time bound of its own (the caller bounds the whole exchange);
    /// a peer `Error` frame is returned as [`PeerError::Remote`].
    pub async fn recv_untimed(&mut self) -> Result<Frame, PeerError> {
        match self.next().await {
            None => Err(PeerError::Closed(self.addr)),
            Some(Frame::Error { code, message }) => {
                Err(PeerError::Remote(self.addr, code, message))
            }
            Some(f) => Ok(f),
        }
    }

    /// Whether `Data` payloads from [`SHARE_MIN`] up may stay in the connection's read buffer
    /// instead of being copied out for this stream: only for a reader that writes each one out
    /// at once and copies what a stall would hold (the lean remote hit), or a slow client
    /// would hold a whole read buffer for a few KiB. Turned off, the payloads queued are
    /// copied out.
    pub fn share_payloads(&mut self, on: bool) {
        self.state.share(on);
    }

    /// The next frame if one is queued now (no waiting); credit is granted as by `recv`.
    pub fn try_recv_now(&mut self) -> Option<Frame> {
        let (f, grant) = self.state.try_next_granting()?;
        if grant > 0 && !self.closed() {
            let n = u32::try_from(grant).unwrap_or(u32::MAX);
            self.link.send_control(self.id, &Frame::Credit(n));
        }
        Some(f)
    }

    /// The stream's first frame (accepting side), within the server's idle bound; None when
    /// the stream closed first.
    pub async fn next_request(&mut self) -> Result<Option<Frame>, PeerError> {
        match tokio::time::timeout(SERVER_IDLE, self.next()).await {
            Err(_) | Ok(None) => Ok(None),
            Ok(Some(f)) => Ok(Some(f)),
        }
    }

    /// The exchange ended cleanly: the stream is closed without a `Reset`.
    pub fn end(mut self) {
        self.done = true;
    }
}

impl Drop for PeerConn {
    fn drop(&mut self) {
        let reset = !self.done && !self.state.closed.load(Ordering::Acquire);
        self.link.release(self.id, reset);
    }
}

fn frame_err(addr: SocketAddr, e: FrameError) -> PeerError {
    match e {
        FrameError::Io(io) => PeerError::Io(addr, io),
        other => PeerError::Frame(addr, other),
    }
}

/// Sends this node's `Hello` with a fresh nonce, and returns the nonce.
async fn send_hello(
    io: &mut Framed<TcpStream, PeerCodec>,
    addr: SocketAddr,
    self_id: &str,
) -> Result<[u8; 16], PeerError> {
    let nonce = super::auth::random_nonce().map_err(|e| PeerError::Io(addr, e))?;
    let hello = Frame::Hello {
        version: VERSION,
        node: self_id.to_owned(),
        nonce,
    };
    io.send(hello).await.map_err(|e| frame_err(addr, e))?;
    Ok(nonce)
}

async fn read_hello(
    io: &mut Framed<TcpStream, PeerCodec>,
    addr: SocketAddr,
) -> Result<(String, [u8; 16]), PeerError> {
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, io.next())
        .await
        .map_err(|_| PeerError::Timeout(addr, HANDSHAKE_TIMEOUT))?;
    match first {
        None => Err(PeerError::Closed(addr)),
        Some(Err(e)) => Err(frame_err(addr, e)),
        Some(Ok(Frame::Hello {
            version,
            node,
            nonce,
        })) => {
            if version != VERSION {
                return Err(PeerError::Unexpected(addr, "protocol version"));
            }
            Ok((node, nonce))
        }
        Some(Ok(_)) => Err(PeerError::Unexpected(addr, "frame before Hello")),
    }
}

/// Connections to peers, by address (see the module doc).
pub struct Pool {
    self_id: String,
    secret: Option<Arc<[u8]>>,
    limits: Limits,
    connect_timeout: Duration,
    links: Mutex<HashMap<SocketAddr, Vec<Arc<Link>>, FastState>>,
}

impl Pool {
    pub fn new(
        self_id: &str,
        secret: Option<Arc<[u8]>>,
        limits: Limits,
        connect_timeout: Duration,
    ) -> Pool {
        Pool {
            self_id: self_id.to_owned(),
            secret,
            limits,
            connect_timeout,
            links: Mutex::new(HashMap::default()),
        }
    }

    /// A stream on a pooled connection to `addr` (`true`: the connection was in use before,
    /// so it may turn out closed), or on a new one (`false`).
    pub async fn get(&self, addr: SocketAddr) -> Result<(PeerConn, bool), PeerError> {
        {
            let mut links = self.links.lock();
            if let Some(list) = links.get_mut(&addr) {
                list.retain(|l| {
                    let keep = l.usable();
                    if !keep {
                        l.close_when_idle.store(true, Ordering::Release);
                        if l.open_streams() == 0 {
                            l.close();
                        }
                    }
                    keep
                });
                for l in list.iter() {
                    if l.open_streams() < MAX_STREAMS {
                        if let Some(c) = l.open_stream() {
                            return Ok((c, true));
                        }
                    }
                }
            }
        }
        Ok((self.dial(addr).await?, false))
    }

    /// A stream on a fresh connection to `addr`, never a pooled one (the connection is
    /// pooled for later streams when there is room).
    pub async fn dial(&self, addr: SocketAddr) -> Result<PeerConn, PeerError> {
        // Boxed: the handshake's future (a `Framed` and its codec) is over a KiB, and inline
        // it would make every exchange's future that big, copied whole at each `await` that
        // moves it — though a pooled connection, the common case, never dials.
        let link = Box::pin(Link::dial(
            addr,
            &self.self_id,
            self.secret.as_deref(),
            self.limits,
            self.connect_timeout,
        ))
        .await?;
        let c = link.open_stream().ok_or(PeerError::Closed(addr))?;
        let mut links = self.links.lock();
        let list = links.entry(addr).or_default();
        list.retain(|l| !l.is_closed());
        if list.len() < MAX_CONNS {
            list.push(link);
        } else {
            link.close_when_idle.store(true, Ordering::Release);
        }
        Ok(c)
    }

    /// Ends a stream whose exchange ended cleanly.
    pub fn put(&self, c: PeerConn) {
        c.end();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for (_, list) in self.links.lock().drain() {
            for l in list {
                l.close();
            }
        }
    }
}

mod batch;
mod reply;
#[cfg(test)]
mod tests;
