//! Connections between nodes for the peer protocol (`frame`): the handshake, and a pool of
//! idle connections per peer.
//!
//! Contract:
//! * A connection starts with one `Hello` each way (the dialling side first). With a cluster
//!   secret both sides then authenticate every frame (`PeerCodec::enable_auth`); a peer that
//!   does not know the secret fails at its first tagged frame.
//! * A connection carries one exchange at a time. [`Pool::get`] hands out an idle connection
//!   to the address (or dials one: connect and handshake bounded by the dial timeout, the
//!   smaller of the connect timeout and `peer_timeout`); [`Pool::put`] takes back a
//!   connection whose exchange ended cleanly. Idle connections older than [`IDLE_FOR`] are
//!   dropped instead of reused; at most [`MAX_IDLE`] are kept per peer.
//! * Every wait on a peer is bounded: [`PeerConn::recv`] takes the time it may wait.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::frame::{Frame, FrameError, Limits, PeerCodec};

/// Protocol version sent in `Hello`.
pub use super::frame::VERSION;
/// Idle connections kept per peer.
pub const MAX_IDLE: usize = 256;
/// An idle connection older than this is closed rather than reused (the peer may have closed
/// it: its server drops connections idle for [`SERVER_IDLE`]).
pub const IDLE_FOR: Duration = Duration::from_secs(20);
/// The owner's side closes a connection idle this long.
pub const SERVER_IDLE: Duration = Duration::from_secs(30);
/// Time the accepting side gives a dialling peer's `Hello` (the dialling side bounds its
/// whole dial by its own timeout).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

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

/// One connection to a peer (either side), after the handshake.
pub struct PeerConn {
    io: Framed<TcpStream, PeerCodec>,
    /// The other side's address.
    pub addr: SocketAddr,
    /// The other side's node id (from its `Hello`).
    pub node: String,
    last_used: Instant,
}

impl PeerConn {
    /// Dials `addr` and shakes hands as `self_id`, both within `timeout` (a stopped process's
    /// kernel still completes the TCP handshake, so the `Hello` exchange is bounded too; a
    /// handshake that runs out of time is [`PeerError::Hung`]).
    pub async fn dial(
        addr: SocketAddr,
        self_id: &str,
        secret: Option<&[u8]>,
        limits: Limits,
        timeout: Duration,
    ) -> Result<PeerConn, PeerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let stream = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
            .await
            .map_err(|_| PeerError::ConnectTimeout(addr))?
            .map_err(|e| PeerError::Connect(addr, e))?;
        tokio::time::timeout_at(deadline, Self::shake(stream, addr, self_id, secret, limits))
            .await
            .map_err(|_| PeerError::Hung(addr, timeout))?
    }

    async fn shake(
        stream: TcpStream,
        addr: SocketAddr,
        self_id: &str,
        secret: Option<&[u8]>,
        limits: Limits,
    ) -> Result<PeerConn, PeerError> {
        let _ = stream.set_nodelay(true);
        let mut io = Framed::new(stream, PeerCodec::new(limits));
        let nonce = send_hello(&mut io, addr, self_id).await?;
        let (node, theirs) = read_hello(&mut io, addr).await?;
        if let Some(s) = secret {
            io.codec_mut().enable_auth(s, &nonce, &theirs, true);
        }
        Ok(PeerConn {
            io,
            addr,
            node,
            last_used: Instant::now(),
        })
    }

    /// Answers a dialling peer's handshake on an accepted stream.
    pub async fn accept(
        stream: TcpStream,
        addr: SocketAddr,
        self_id: &str,
        secret: Option<&[u8]>,
        limits: Limits,
    ) -> Result<PeerConn, PeerError> {
        let _ = stream.set_nodelay(true);
        let mut io = Framed::new(stream, PeerCodec::new(limits));
        let (node, theirs) = read_hello(&mut io, addr).await?;
        let nonce = send_hello(&mut io, addr, self_id).await?;
        if let Some(s) = secret {
            io.codec_mut().enable_auth(s, &theirs, &nonce, false);
        }
        Ok(PeerConn {
            io,
            addr,
            node,
            last_used: Instant::now(),
        })
    }

    /// Sends one frame.
    pub async fn send(&mut self, f: Frame) -> Result<(), PeerError> {
        let addr = self.addr;
        self.io.send(f).await.map_err(|e| frame_err(addr, e))
    }

    /// Queues one frame without flushing (a body's chunks; `send` or `flush` flushes).
    pub async fn feed(&mut self, f: Frame) -> Result<(), PeerError> {
        let addr = self.addr;
        self.io.feed(f).await.map_err(|e| frame_err(addr, e))
    }

    /// Flushes queued frames.
    pub async fn flush(&mut self) -> Result<(), PeerError> {
        let addr = self.addr;
        SinkExt::<Frame>::flush(&mut self.io)
            .await
            .map_err(|e| frame_err(addr, e))
    }

    /// The next frame, waiting at most `within`; a peer `Error` frame is returned as
    /// [`PeerError::Remote`].
    pub async fn recv(&mut self, within: Duration) -> Result<Frame, PeerError> {
        let addr = self.addr;
        match tokio::time::timeout(within, self.io.next()).await {
            Err(_) => Err(PeerError::Timeout(addr, within)),
            Ok(None) => Err(PeerError::Closed(addr)),
            Ok(Some(Err(e))) => Err(frame_err(addr, e)),
            Ok(Some(Ok(Frame::Error { code, message }))) => {
                Err(PeerError::Remote(addr, code, message))
            }
            Ok(Some(Ok(f))) => Ok(f),
        }
    }

    /// The next frame with no deadline but the server's idle bound; None when the peer closed
    /// the connection between exchanges.
    pub async fn next_request(&mut self) -> Result<Option<Frame>, PeerError> {
        let addr = self.addr;
        match tokio::time::timeout(SERVER_IDLE, self.io.next()).await {
            Err(_) | Ok(None) => Ok(None),
            Ok(Some(Err(e))) => Err(frame_err(addr, e)),
            Ok(Some(Ok(f))) => Ok(Some(f)),
        }
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

/// Idle connections to peers, by address (see the module doc).
pub struct Pool {
    self_id: String,
    secret: Option<Arc<[u8]>>,
    limits: Limits,
    connect_timeout: Duration,
    idle: Mutex<HashMap<SocketAddr, Vec<PeerConn>>>,
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
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// An idle connection to `addr` (`true`: it was pooled, so it may turn out closed), or a
    /// new one (`false`).
    pub async fn get(&self, addr: SocketAddr) -> Result<(PeerConn, bool), PeerError> {
        while let Some(c) = self.idle.lock().get_mut(&addr).and_then(Vec::pop) {
            if c.last_used.elapsed() < IDLE_FOR {
                return Ok((c, true));
            }
        }
        Ok((self.dial(addr).await?, false))
    }

    /// A fresh connection to `addr`, never a pooled one.
    pub async fn dial(&self, addr: SocketAddr) -> Result<PeerConn, PeerError> {
        PeerConn::dial(
            addr,
            &self.self_id,
            self.secret.as_deref(),
            self.limits,
            self.connect_timeout,
        )
        .await
    }

    /// Takes back a connection whose exchange ended cleanly.
    pub fn put(&self, mut c: PeerConn) {
        c.last_used = Instant::now();
        let mut idle = self.idle.lock();
        let list = idle.entry(c.addr).or_default();
        if list.len() < MAX_IDLE {
            list.push(c);
        }
    }
}
