//! Client-facing listeners: HTTP/1.1 and h2c (prior knowledge) on every `listen` address.
//!
//! One accept loop per listener; each connection is served by hyper-util's auto builder with
//! graceful shutdown: on drain, listeners close, idle keep-alive connections are closed and
//! in-flight requests get until the drain deadline.
//!
//! Bounds: every listener of a node takes a permit of one shared [`ConnLimit`]
//! (`limits.max_connections`) before it accepts; at the limit it stops accepting (the kernel's
//! listen queue holds new clients, as HAProxy's `maxconn` does) until a connection closes. A
//! failed accept (`EMFILE`) backs the loop off (`strait_lb::admin::backoff`) rather than
//! retrying at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use strait_lb::admin::backoff::AcceptBackoff;
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::conn::{self, ConnEnv};
use super::ctx::Ctx;
use crate::stats::bump;

/// Listen backlog of client and admin sockets.
pub const LISTEN_BACKLOG: i32 = 4096;
/// Header fields accepted per request (hyper's limit; more is a 431).
pub const MAX_HEADERS: usize = 128;

/// The node's bound on open client connections (`limits.max_connections`), shared by its
/// listeners.
pub type ConnLimit = Arc<Semaphore>;

/// A bound of `max` client connections.
pub fn conn_limit(max: u32) -> ConnLimit {
    Arc::new(Semaphore::new(max as usize))
}

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
    limit: ConnLimit,
    mut stop: watch::Receiver<bool>,
    drain_timeout: Duration,
) {
    let header_read_timeout = ctx.rt.load().limits.header_read_timeout;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(max_head.max(8192))
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let env = Arc::new(ConnEnv {
        ctx,
        builder,
        header_read_timeout,
        max_head: max_head.max(8192),
        stop: stop.clone(),
        live: AtomicUsize::new(0),
    });
    let graceful = GracefulShutdown::new();
    let mut backoff = AcceptBackoff::default();
    loop {
        let permit = tokio::select! {
            p = permit(&env.ctx, &limit) => p,
            _ = stop.changed() => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        bump(&env.ctx.counters.accept_errors);
                        drop(permit);
                        tokio::select! {
                            _ = backoff.wait("client", &e) => {}
                            _ = stop.changed() => break,
                        }
                        continue;
                    }
                };
                backoff.accepted("client");
                let _ = stream.set_nodelay(true);
                let env = Arc::clone(&env);
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    conn::serve(env, stream, peer, watcher).await;
                    drop(permit);
                });
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

/// A permit for one more client connection; when none is free, counted once and waited for.
async fn permit(ctx: &Ctx, limit: &ConnLimit) -> OwnedSemaphorePermit {
    if let Ok(p) = Arc::clone(limit).try_acquire_owned() {
        return p;
    }
    bump(&ctx.counters.connection_limit_waits);
    tracing::debug!("max_connections client connections open: not accepting until one closes");
    loop {
        if let Ok(p) = Arc::clone(limit).acquire_owned().await {
            return p;
        }
        // The semaphore is never closed; should it be, wait rather than spin.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
