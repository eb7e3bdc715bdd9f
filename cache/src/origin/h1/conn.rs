//! Connections to one origin server: the idle ones kept for reuse (newest first, each for at
//! most `idle_timeout`, at most `max` of them), and one exchange: write a request's head (and
//! its body: `upload`), read the response head. The exchange runs in the caller's task: no connection task,
//! no channel between the request and its socket.
//!
//! A kept connection the server has closed meanwhile is found out when the exchange on it
//! fails before any byte of the response arrived; a request written whole that may go again (an
//! idempotent one: [`Idle::exchange_as`]'s `resend`) is then sent once more on a new
//! connection, and the server is not blamed. A request with a streamed body is sent again
//! only on the terms of [`Idle::exchange_with_body_as`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::body::LeanBody;
use super::head::{parse_response, parse_response_raw, Head, HeadError};
use super::upload::{BodyFraming, LengthError};
use crate::interim::InterimSink;

/// Interim (1xx) responses read (and handed to the request's sink) before the final one.
pub const MAX_INTERIM: usize = 16;
/// Read buffer a connection starts a response with.
const READ_START: usize = 8 * 1024;
/// A kept connection's buffer larger than this is given back, not kept with it.
const KEEP_BUFFER_MAX: usize = 16 * 1024;

/// One connection to an origin server and what it has read but not yet used.
pub struct Conn {
    pub(super) io: TcpStream,
    pub(super) buf: BytesMut,
}

/// The idle connections to one server, and how new ones are made.
pub struct Idle {
    addr: SocketAddr,
    connect_timeout: Duration,
    idle_timeout: Duration,
    max: usize,
    conns: Mutex<VecDeque<(Conn, Instant)>>,
}

/// How an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("connect: no connection within {0:?}")]
    ConnectTimeout(Duration),
    #[error("{0}")]
    Io(std::io::Error),
    #[error("{0}")]
    Head(HeadError),
    #[error("server closed the connection before a response")]
    Closed,
    #[error("more than {MAX_INTERIM} interim responses")]
    TooManyInterim,
    /// The client's body failed (its fault is on the upload's watch).
    #[error("{0}")]
    Upload(String),
    /// The body's frames did not fit its `Content-Length` (the node's fault).
    #[error("{0}")]
    Length(LengthError),
}

impl ExchangeError {
    /// No connection could be made (the server is unreachable, not broken).
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            ExchangeError::Connect(_) | ExchangeError::ConnectTimeout(_)
        )
    }
}

impl Idle {
    pub fn new(
        addr: SocketAddr,
        connect_timeout: Duration,
        idle_timeout: Duration,
        max: usize,
    ) -> Arc<Idle> {
        Arc::new(Idle {
            addr,
            connect_timeout,
            idle_timeout,
            max,
            conns: Mutex::new(VecDeque::new()),
        })
    }

    /// The newest idle connection still within `idle_timeout`; older ones past it are closed.
    fn checkout(&self, now: Instant) -> Option<Conn> {
        let mut conns = self.conns.lock();
        let (conn, since) = conns.pop_back()?;
        if now.saturating_duration_since(since) < self.idle_timeout {
            return Some(conn);
        }
        // The newest is too old: so is every other one.
        let old = std::mem::take(&mut *conns);
        drop(conns);
        drop(old);
        None
    }

    /// [`Idle::checkout`], skipping kept connections the server has closed (or sent bytes on
    /// that nobody asked for) meanwhile: a request with a body is not sent again once its body
    /// was taken, so a dead connection is best found before.
    fn checkout_live(&self, now: Instant) -> Option<Conn> {
        loop {
            let conn = self.checkout(now)?;
            let mut probe = [0u8; 1];
            match conn.io.try_read(&mut probe) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Some(conn),
                _ => drop(conn),
            }
        }
    }

    /// Keep `conn` for reuse (closing those idle past `idle_timeout`, and `conn` itself when
    /// `max` are kept already).
    pub(super) fn checkin(&self, mut conn: Conn) {
        if conn.buf.capacity() > KEEP_BUFFER_MAX {
            conn.buf = BytesMut::new();
        }
        let now = Instant::now();
        let mut conns = self.conns.lock();
        let mut expired = Vec::new();
        while conns
            .front()
            .is_some_and(|(_, since)| now.saturating_duration_since(*since) >= self.idle_timeout)
        {
            expired.extend(conns.pop_front().map(|(c, _)| c));
        }
        if conns.len() < self.max {
            conns.push_back((conn, now));
        } else {
            expired.push(conn);
        }
        drop(conns);
        drop(expired);
    }

    /// Idle connections kept now.
    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.conns.lock().len()
    }

    async fn connect(&self) -> Result<Conn, ExchangeError> {
        let io =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(self.addr)).await {
                Ok(Ok(io)) => io,
                Ok(Err(e)) => return Err(ExchangeError::Connect(e)),
                Err(_) => return Err(ExchangeError::ConnectTimeout(self.connect_timeout)),
            };
        let _ = io.set_nodelay(true);
        let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(60));
        let _ = socket2::SockRef::from(&io).set_tcp_keepalive(&keepalive);
        Ok(Conn {
            io,
            buf: BytesMut::new(),
        })
    }

    /// Send a bodyless request (`head`, encoded) and read the final response head: the head
    /// and the body that reads the rest from the connection.
    /// Interim (1xx) responses before it go to `interim` (RFC 9110 §15.2), if given.
    #[cfg(test)]
    pub async fn exchange(
        self: &Arc<Self>,
        head: &[u8],
        head_request: bool,
        interim: Option<&InterimSink>,
    ) -> Result<(Head, LeanBody), ExchangeError> {
        self.exchange_as(head, (head_request, false), true, interim)
            .await
    }

    /// Send a request written whole in `head` (bodyless, or its body after its head) and read
    /// the final response head: the head and the body that reads the rest from the
    /// connection. Interim (1xx) responses before it go to `interim` (RFC 9110 §15.2), if
    /// given. `raw`: the final head read by `parse_response_raw` (kept as received, no field
    /// map), for a caller that relays it from its bytes. `resend`: the request may go again
    /// on a new connection when its kept one failed before any response byte (an idempotent
    /// one); else a kept connection is checked first (`checkout_live`) and a failure is final.
    pub async fn exchange_as(
        self: &Arc<Self>,
        head: &[u8],
        (head_request, raw): (bool, bool),
        resend: bool,
        interim: Option<&InterimSink>,
    ) -> Result<(Head, LeanBody), ExchangeError> {
        let now = Instant::now();
        let mut kept = if resend {
            self.checkout(now)
        } else {
            self.checkout_live(now)
        };
        loop {
            let reused = kept.is_some();
            let mut conn = match kept.take() {
                Some(c) => c,
                None => self.connect().await?,
            };
            match conn.request(head, head_request, raw, interim).await {
                Ok(h) => {
                    let body = LeanBody::new(conn, Arc::clone(self), h.framing, h.reusable);
                    return Ok((h, body));
                }
                Err((e, false)) if reused && resend => {
                    tracing::debug!(server = %self.addr, error = %e, "kept connection was closed; sending again on a new one");
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
}

impl Idle {
    /// [`Idle::exchange_with_body_as`], the head read into a field map.
    #[cfg(test)]
    pub async fn exchange_with_body<B>(
        self: &Arc<Self>,
        head: &[u8],
        body: &mut B,
        framing: Option<BodyFraming>,
        resend: bool,
        head_request: bool,
        interim: Option<&InterimSink>,
    ) -> Result<(Head, LeanBody), ExchangeError>
    where
        B: http_body::Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        self.exchange_with_body_as(
            head,
            body,
            (framing, resend),
            (head_request, false),
            interim,
        )
        .await
    }

    /// Send a request with a body (`head`, encoded with its framing field, then `body` as
    /// `framing` says: `upload`) and read the final response head, as [`Idle::exchange_as`]
    /// (`raw`: read by `parse_response_raw`, kept as received). The connection is kept after
    /// the response body only when the whole request went out before the final head. A
    /// request goes again on a new connection only when its kept connection failed before any
    /// response byte and before anything of the body was taken, and `resend` allows it (the
    /// head alone was not a complete request, or the method is idempotent).
    pub async fn exchange_with_body_as<B>(
        self: &Arc<Self>,
        head: &[u8],
        body: &mut B,
        (framing, resend): (Option<BodyFraming>, bool),
        (head_request, raw): (bool, bool),
        interim: Option<&InterimSink>,
    ) -> Result<(Head, LeanBody), ExchangeError>
    where
        B: http_body::Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let mut kept = self.checkout_live(Instant::now());
        loop {
            let reused = kept.is_some();
            let mut conn = match kept.take() {
                Some(c) => c,
                None => self.connect().await?,
            };
            match conn
                .request_with_body(head, body, framing, (head_request, raw), interim)
                .await
            {
                Ok((h, complete)) => {
                    let reusable = h.reusable && complete;
                    let body = LeanBody::new(conn, Arc::clone(self), h.framing, reusable);
                    return Ok((h, body));
                }
                Err((e, true)) if reused && resend => {
                    tracing::debug!(server = %self.addr, error = %e, "kept connection was closed; sending again on a new one");
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
}

impl Conn {
    /// Write the request head and read the final response head; the error says whether any
    /// byte of a response had arrived.
    async fn request(
        &mut self,
        head: &[u8],
        head_request: bool,
        raw: bool,
        interim: Option<&InterimSink>,
    ) -> Result<Head, (ExchangeError, bool)> {
        if let Err(e) = self.io.write_all(head).await {
            return Err((ExchangeError::Io(e), false));
        }
        read_head(&mut self.io, &mut self.buf, head_request, raw, interim).await
    }
}

/// Read the final response head from `io` into `buf` (what follows it stays in `buf`),
/// handing interim ones to `interim`; the error says whether any byte of a response had
/// arrived. `raw`: the final head as `parse_response_raw` reads it (interim ones are
/// still read into a field map, for the sink).
pub(super) async fn read_head<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    head_request: bool,
    raw: bool,
    interim: Option<&InterimSink>,
) -> Result<Head, (ExchangeError, bool)> {
    let mut received = false;
    let mut interims = 0;
    loop {
        if !buf.is_empty() {
            let parsed = if raw {
                parse_response_raw(buf, head_request)
            } else {
                parse_response(buf, head_request)
            };
            // An interim head read raw is read again into a map for the sink (rare).
            let parsed = match parsed {
                Ok(Some(h)) if h.raw.is_some() && h.status.is_informational() => {
                    parse_response(buf, head_request)
                }
                p => p,
            };
            match parsed {
                Ok(Some(h)) => {
                    buf.advance(h.len);
                    if !h.status.is_informational() {
                        return Ok(h);
                    }
                    interims += 1;
                    if interims > MAX_INTERIM {
                        return Err((ExchangeError::TooManyInterim, true));
                    }
                    if let Some(sink) = interim {
                        sink.relay(h.status, &h.headers);
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => return Err((ExchangeError::Head(e), true)),
            }
        }
        buf.reserve(READ_START);
        match io.read_buf(buf).await {
            Ok(0) => return Err((ExchangeError::Closed, received)),
            Ok(_) => received = true,
            Err(e) => return Err((ExchangeError::Io(e), received)),
        }
    }
}
