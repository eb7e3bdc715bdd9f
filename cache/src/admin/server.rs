//! Admin HTTP listener (HTTP/1.1). Routes: `GET /`, `GET /stats.json`, `GET /cluster.json`,
//! `GET /metrics`, `POST /purge?url=URL`, `POST /ban?prefix=PREFIX`, `POST /reload`.
//! Every request passes [`Guard::check`] first (loopback peer, admin `Host`, not cross-site,
//! state changes by POST without a form content type); a refusal is logged and answered with
//! its status and a short text. A ban must name more than the scheme every key starts with.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, HOST, ORIGIN};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::guard::{Guard, Refusal};
use super::{metrics, page, Snapshot};
use crate::cluster::frame::Frame;
use crate::cluster::invalidate::broadcast;
use crate::http::ctx::Ctx;
use crate::policy::key::{bans_everything, primary_key};
use crate::stats::add;

/// The node's admin paths that change state.
pub const NODE_CHANGES: &[&str] = &["/purge", "/ban", "/reload"];

/// Serve the admin listener until `stop` turns true.
pub async fn serve(listener: TcpListener, ctx: Arc<Ctx>, stop: watch::Receiver<bool>) {
    accept_loop_async(listener, NODE_CHANGES, stop, move |_peer, req| {
        let ctx = Arc::clone(&ctx);
        async move { route_async(&ctx, req).await }
    })
    .await;
}

/// Accepts HTTP/1.1 connections on `listener` until `stop` turns true; every request that
/// passes [`Guard::check`] (with `changes`, the paths that change state) is answered by
/// `handle` with the client's address (the node's and the director's admin).
pub async fn accept_loop<H>(
    listener: TcpListener,
    changes: &'static [&'static str],
    stop: watch::Receiver<bool>,
    handle: H,
) where
    H: Fn(SocketAddr, Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    accept_loop_async(listener, changes, stop, move |peer, req| {
        std::future::ready(handle(peer, req))
    })
    .await;
}

/// [`accept_loop`] with a handler that may wait (cluster-wide purge asks the other nodes).
pub async fn accept_loop_async<H, F>(
    listener: TcpListener,
    changes: &'static [&'static str],
    mut stop: watch::Receiver<bool>,
    handle: H,
) where
    H: Fn(SocketAddr, Request<Incoming>) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let guard = Guard {
        listen: listener.local_addr().ok(),
        changes,
    };
    let handle = Arc::new(handle);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let handle = Arc::clone(&handle);
                let svc = service_fn(move |req: Request<Incoming>| {
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
            _ = stop.wait_for(|s| *s) => break,
        }
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

/// A node's admin request (already past [`Guard::check`]): purge and ban reach every member
/// when the node is in a cluster; everything else is [`route`].
pub async fn route_async(ctx: &Ctx, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(cluster) = ctx.cluster.as_ref() else {
        return route(ctx, req);
    };
    if req.method() != Method::POST {
        return route(ctx, req);
    }
    let (frame, local) = match req.uri().path() {
        "/purge" => {
            let Some(key) = query_param(req.uri(), "url").as_deref().and_then(url_key) else {
                return route(ctx, req);
            };
            let n = crate::http::purge_url(&ctx.store, &key);
            tracing::info!(key = %key, removed = n, "purge (cluster-wide)");
            (Frame::Purge { url: key }, n)
        }
        "/ban" => {
            let Some(prefix) = query_param(req.uri(), "prefix").filter(|p| !bans_everything(p))
            else {
                return route(ctx, req);
            };
            let n = ctx.store.ban_prefix(&prefix);
            tracing::info!(prefix = %prefix, removed = n, "ban (cluster-wide)");
            (Frame::Ban { prefix }, n)
        }
        _ => return route(ctx, req),
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

/// Answer one admin request (already past [`Guard::check`]).
pub fn route(ctx: &Ctx, req: Request<Incoming>) -> Response<Full<Bytes>> {
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
            if bans_everything(&prefix) {
                return text(
                    StatusCode::BAD_REQUEST,
                    "400 ban needs a non-empty prefix naming a host, e.g. http://host/\n",
                );
            }
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
        (_, "/" | "/stats.json" | "/cluster.json" | "/metrics") => not_allowed("GET"),
        (_, "/purge" | "/ban" | "/reload") => not_allowed("POST"),
        _ => text(StatusCode::NOT_FOUND, "404 not found\n"),
    }
}

/// 405 with the one method `allow`ed.
pub fn not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed\n");
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
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
    fn a_ban_must_name_more_than_the_scheme() {
        for p in ["", "h", "http", "http:", "http://"] {
            assert!(bans_everything(p), "{p:?}");
        }
        for p in ["http://a", "http://test.example/obj/", "https://", "x"] {
            assert!(!bans_everything(p), "{p:?}");
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
