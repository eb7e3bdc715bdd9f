//! The admin accept loop: HTTP/1.1 connections, each request checked by [`Guard::check`]
//! first; a refusal is logged and answered with its status and a short text, everything else
//! goes to the role's handler.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, HOST, ORIGIN};
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::guard::{Guard, Refusal};
use super::reply::text;

/// The admin client's address, in every request's extensions a handler gets (for logs of
/// who changed what).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminPeer(pub SocketAddr);

/// Accepts HTTP/1.1 connections on `listener` until `stop` turns true; every request that
/// passes [`Guard::check`] (with `changes`, the paths that change state) is answered by
/// `handle` with the client's address (the node's and the director's admin).
pub(crate) async fn accept_loop<H>(
    listener: TcpListener,
    changes: &'static [&'static str],
    stop: watch::Receiver<bool>,
    handle: H,
) where
    H: Fn(SocketAddr, Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    accept_loop_async(
        listener,
        changes,
        stop,
        || {},
        move |peer, req| std::future::ready(handle(peer, req)),
    )
    .await;
}

/// `accept_loop` with a handler that may wait (cluster-wide purge asks the other nodes), and
/// `on_accept_error` called at every failed accept (the node counts them).
pub async fn accept_loop_async<H, F, E>(
    listener: TcpListener,
    changes: &'static [&'static str],
    mut stop: watch::Receiver<bool>,
    on_accept_error: E,
    handle: H,
) where
    H: Fn(SocketAddr, Request<Incoming>) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
    E: Fn(),
{
    let guard = Guard {
        listen: listener.local_addr().ok(),
        changes,
    };
    let handle = Arc::new(handle);
    let mut backoff = super::backoff::AcceptBackoff::default();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                on_accept_error();
                backoff.wait("admin", &e).await;
                continue;
            }
        };
        backoff.accepted("admin");
        let handle = Arc::clone(&handle);
        let svc = service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(AdminPeer(peer));
            let answer = match guard.check(peer, &req) {
                Ok(()) => Ok(handle(peer, req)),
                Err(why) => Err(refused(why, peer, &req)),
            };
            async move {
                Ok::<_, Infallible>(match answer {
                    Ok(pending) => pending.await,
                    Err(refusal) => refusal,
                })
            }
        });
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Logs a refused request and answers it.
fn refused<B>(why: Refusal, peer: SocketAddr, req: &Request<B>) -> Response<Full<Bytes>> {
    tracing::info!(
        %peer,
        reason = why.as_str(),
        method = %req.method(),
        path = req.uri().path(),
        host = ?req.headers().get(HOST),
        origin = ?req.headers().get(ORIGIN),
        "admin request refused"
    );
    let mut r = text(why.status(), why.body());
    if let Some(allow) = why.allow() {
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
    }
    r
}
