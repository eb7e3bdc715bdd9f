//! Client-facing listeners: HTTP/1.1 and h2c (prior knowledge) on every `listen` address.
//!
//! One accept loop per listener; each connection is served by hyper-util's auto builder with
//! graceful shutdown: on drain, listeners close, idle keep-alive connections are closed and
//! in-flight requests get until the drain deadline.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::conn::{self, ConnEnv};
use super::ctx::Ctx;

/// Listen backlog of client and admin sockets.
pub const LISTEN_BACKLOG: i32 = 4096;
/// A client that sends no complete request head within this is disconnected.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Header fields accepted per request (hyper's limit; more is a 431).
pub const MAX_HEADERS: usize = 128;

/// Bind a TCP listener with SO_REUSEADDR and a deep backlog.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let sock = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(sock.into())
}

/// Serve client connections from `listener` until `stop` turns true, then drain.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    max_head: usize,
    mut stop: watch::Receiver<bool>,
    drain_timeout: Duration,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(max_head.max(8192))
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let env = Arc::new(ConnEnv {
        ctx,
        builder,
        max_head: max_head.max(8192),
        stop: stop.clone(),
        live: AtomicUsize::new(0),
    });
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(conn::serve(Arc::clone(&env), stream, peer, graceful.watcher()));
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    let deadline = tokio::time::Instant::now() + drain_timeout;
    if tokio::time::timeout_at(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timeout: closing remaining client connections");
    }
    // Fast-path connections close when idle; wait for the busy ones.
    while env.live.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
