//! Client-facing listeners: HTTP/1.1 and h2c (prior knowledge) on every `listen` address.
//!
//! One accept loop per listener; each connection is served by hyper-util's auto builder with
//! graceful shutdown: on drain, listeners close, idle keep-alive connections are closed and
//! in-flight requests get until the drain deadline.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::ctx::Ctx;
use super::handler::handle;

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
                let conn_ctx = Arc::clone(&ctx);
                let ctx = Arc::clone(&ctx);
                let svc = service_fn(move |req| {
                    let ctx = Arc::clone(&ctx);
                    async move { Ok::<_, Infallible>(handle(ctx, req).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                let conn = graceful.watch(conn);
                let ctx = Arc::clone(&conn_ctx);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        connection_error(&ctx, peer, e.as_ref());
                    }
                });
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timeout: closing remaining client connections");
    }
}

/// A connection ended with an error. Requests hyper refused while parsing (it answered 400 or
/// 431 itself) are counted as bad requests and logged; the rest (resets, timeouts) only at debug.
fn connection_error(ctx: &Ctx, peer: SocketAddr, e: &(dyn std::error::Error + 'static)) {
    match e.downcast_ref::<hyper::Error>() {
        Some(he) if he.is_parse() || he.is_parse_too_large() => {
            crate::stats::bump(&ctx.counters.bad_requests);
            crate::stats::bump(&ctx.counters.errors);
            tracing::info!(%peer, error = %he, "bad request refused by the HTTP parser");
        }
        _ => tracing::debug!(%peer, error = %e, "client connection ended with an error"),
    }
}
