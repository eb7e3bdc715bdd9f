//! Admin HTTP listener (HTTP/1.1). Routes: `GET /`, `GET /stats.json`, `GET /cluster.json`,
//! `GET /metrics`,
//! `POST /purge?url=URL`, `POST /ban?prefix=PREFIX`. Non-loopback peers get 403.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{metrics, page, Snapshot};
use crate::cluster::frame::Frame;
use crate::cluster::invalidate::broadcast;
use crate::http::ctx::Ctx;
use crate::policy::key::primary_key;
use crate::stats::add;

/// Serve the admin listener until `stop` turns true.
pub async fn serve(listener: TcpListener, ctx: Arc<Ctx>, stop: watch::Receiver<bool>) {
    accept_loop_async(listener, stop, move |peer, req| {
        let ctx = Arc::clone(&ctx);
        async move { route_async(&ctx, peer, req).await }
    })
    .await;
}

/// Accepts HTTP/1.1 connections on `listener` until `stop` turns true; every request is
/// answered by `handle` with the client's address (the node's and the director's admin).
pub async fn accept_loop<H>(listener: TcpListener, stop: watch::Receiver<bool>, handle: H)
where
    H: Fn(SocketAddr, Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    accept_loop_async(listener, stop, move |peer, req| {
        std::future::ready(handle(peer, req))
    })
    .await;
}

/// [`accept_loop`] with a handler that may wait (cluster-wide purge asks the other nodes).
pub async fn accept_loop_async<H, F>(
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    handle: H,
) where
    H: Fn(SocketAddr, Request<Incoming>) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let handle = Arc::new(handle);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let handle = Arc::clone(&handle);
                let svc = service_fn(move |req| {
                    let answer = handle(peer, req);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
}

/// A node's admin request: purge and ban reach every member when the node is in a cluster;
/// everything else is [`route`].
pub async fn route_async(
    ctx: &Ctx,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let Some(cluster) = ctx.cluster.as_ref() else {
        return route(ctx, peer, req);
    };
    if req.method() != Method::POST || !is_allowed(peer) {
        return route(ctx, peer, req);
    }
    let (frame, local) = match req.uri().path() {
        "/purge" => {
            let Some(key) = query_param(req.uri(), "url").as_deref().and_then(url_key) else {
                return route(ctx, peer, req);
            };
            let n = crate::http::purge_url(&ctx.store, &key);
            tracing::info!(key = %key, removed = n, "purge (cluster-wide)");
            (Frame::Purge { url: key }, n)
        }
        "/ban" => {
            let Some(prefix) = query_param(req.uri(), "prefix") else {
                return route(ctx, peer, req);
            };
            let n = ctx.store.ban_prefix(&prefix);
            tracing::info!(prefix = %prefix, removed = n, "ban (cluster-wide)");
            (Frame::Ban { prefix }, n)
        }
        _ => return route(ctx, peer, req),
    };
    add(&ctx.counters.invalidated, n_u64(local));
    let out = broadcast(cluster, frame).await;
    for (id, why) in &out.failed {
        tracing::warn!(node = %id, reason = %why, "invalidation not confirmed by a member");
    }
    let mut nodes = serde_json::Map::new();
    nodes.insert(ctx.node_id.clone(), n_u64(local).into());
    for (id, n) in &out.removed {
        nodes.insert(id.clone(), (*n).into());
    }
    let failed: serde_json::Map<String, serde_json::Value> = out
        .failed
        .iter()
        .map(|(id, why)| (id.clone(), why.clone().into()))
        .collect();
    let body = serde_json::json!({
        "removed": n_u64(local) + out.total(),
        "nodes": nodes,
        "failed": failed,
    });
    respond(StatusCode::OK, "application/json", body.to_string())
}

fn n_u64(n: usize) -> u64 {
    n as u64
}

/// Answer one admin request.
pub fn route(ctx: &Ctx, peer: SocketAddr, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if !is_allowed(peer) {
        tracing::info!(%peer, "admin request refused: not a loopback client");
        return text(
            StatusCode::FORBIDDEN,
            "403 admin is for loopback clients only\n",
        );
    }
    let path = req.uri().path();
    match (req.method(), path) {
        (&Method::GET, "/") => {
            let body = page::render(&Snapshot::take(ctx));
            respond(StatusCode::OK, "text/html; charset=utf-8", body)
        }
        (&Method::GET, "/stats.json") => {
            let body = Snapshot::take(ctx).to_json().to_string();
            respond(StatusCode::OK, "application/json", body)
        }
        (&Method::GET, "/cluster.json") => {
            let snap = ctx
                .cluster
                .as_ref()
                .map(|c| super::ClusterSnapshot::take(&c.members));
            let body = super::cluster::to_json(&ctx.node_id, snap.as_ref()).to_string();
            respond(StatusCode::OK, "application/json", body)
        }
        (&Method::GET, "/metrics") => {
            let body = metrics::render(&Snapshot::take(ctx));
            respond(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                body,
            )
        }
        (&Method::POST, "/purge") => {
            let Some(url) = query_param(req.uri(), "url") else {
                return text(StatusCode::BAD_REQUEST, "400 purge needs ?url=\n");
            };
            let Some(key) = url_key(&url) else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "400 url must be absolute, e.g. http://host/path\n",
                );
            };
            let n = crate::http::purge_url(&ctx.store, &key);
            add(&ctx.counters.invalidated, n as u64);
            tracing::info!(key = %key, removed = n, "purge");
            removed(n)
        }
        (&Method::POST, "/ban") => {
            let Some(prefix) = query_param(req.uri(), "prefix") else {
                return text(StatusCode::BAD_REQUEST, "400 ban needs ?prefix=\n");
            };
            let n = ctx.store.ban_prefix(&prefix);
            add(&ctx.counters.invalidated, n as u64);
            tracing::info!(prefix = %prefix, removed = n, "ban");
            removed(n)
        }
        (&Method::POST, "/reload") => match crate::node::reload(ctx) {
            Ok(()) => respond(
                StatusCode::OK,
                "application/json",
                "{\"reloaded\":true}".to_string(),
            ),
            Err(why) => respond(
                StatusCode::UNPROCESSABLE_ENTITY,
                "text/plain; charset=utf-8",
                format!("422 reload refused, the running config stays:\n{why}\n"),
            ),
        },
        (_, "/" | "/stats.json" | "/cluster.json" | "/metrics" | "/purge" | "/ban" | "/reload") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed\n")
        }
        _ => text(StatusCode::NOT_FOUND, "404 not found\n"),
    }
}

/// Only loopback clients may use the admin listener (IPv4 127/8, IPv6 ::1, and IPv4-mapped
/// loopback), whatever address it is bound to.
pub fn is_allowed(peer: SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

fn removed(n: usize) -> Response<Full<Bytes>> {
    respond(
        StatusCode::OK,
        "application/json",
        format!("{{\"removed\":{n}}}"),
    )
}

/// The cache key of an absolute URL, as the request path computes it.
fn url_key(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    uri.authority()?;
    primary_key(&uri, &http::HeaderMap::new())
}

/// The percent-decoded value of a query parameter.
pub fn query_param(uri: &Uri, name: &str) -> Option<String> {
    let q = uri.query()?;
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == name {
            return percent_decode(v);
        }
    }
    None
}

/// Decode `%XX` escapes and `+` (as space); None on a malformed escape or non-UTF-8 result.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", body.to_string())
}

fn respond(status: StatusCode, ctype: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_peers_are_allowed() {
        let ok = [
            "127.0.0.1:5",
            "127.9.8.7:5",
            "[::1]:5",
            "[::ffff:127.0.0.1]:5",
        ];
        let refused = [
            "10.0.0.1:5",
            "192.168.1.2:5",
            "[2001:db8::1]:5",
            "[::ffff:10.0.0.1]:5",
            "0.0.0.0:5",
        ];
        for a in ok {
            assert!(is_allowed(a.parse().unwrap()), "{a}");
        }
        for a in refused {
            assert!(!is_allowed(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn query_params_are_percent_decoded() {
        let u: Uri = "/purge?x=1&url=http%3A%2F%2Fa.example%2Fp%3Fq%3D1"
            .parse()
            .unwrap();
        assert_eq!(
            query_param(&u, "url").as_deref(),
            Some("http://a.example/p?q=1")
        );
        assert_eq!(query_param(&u, "nope"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("a+b").as_deref(), Some("a b"));
    }
}
