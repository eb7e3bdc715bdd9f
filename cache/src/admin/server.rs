//! Admin HTTP listener (HTTP/1.1). Routes: `GET /`, `GET /stats.json`, `GET /cluster.json`,
//! `GET /metrics`, `POST /purge?url=URL`, `POST /ban?prefix=PREFIX`, `POST /reload`.
//! Every request passes the guard of `strait_lb::admin` first (loopback peer, admin `Host`, not
//! cross-site, state changes by POST without a form content type), in its accept loop; a
//! refusal is logged and answered with its status and a short text there. A ban must name more
//! than the scheme every key starts with.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use strait_lb::admin::{accept_loop_async, not_allowed, query_param, respond, text, Metrics};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{metrics, page, Snapshot};
use crate::cluster::frame::Frame;
use crate::cluster::invalidate::broadcast;
use crate::http::ctx::Ctx;
use crate::policy::key::{bans_everything, primary_key};
use crate::stats::add;

/// The node's admin paths that change state.
pub const NODE_CHANGES: &[&str] = &["/purge", "/ban", "/reload", "/server"];

/// Serve the admin listener until `stop` turns true; the node's metrics registry is built
/// here, once.
pub async fn serve(listener: TcpListener, ctx: Arc<Ctx>, stop: watch::Receiver<bool>) {
    let live = Arc::clone(&ctx);
    let metrics = Arc::new(metrics::registry(move || Snapshot::take(&live)));
    accept_loop_async(listener, NODE_CHANGES, stop, move |_peer, req| {
        let ctx = Arc::clone(&ctx);
        let metrics = Arc::clone(&metrics);
        async move { route_async(&ctx, &metrics, req).await }
    })
    .await;
}

/// A node's admin request (already past the guard): purge and ban reach every member
/// when the node is in a cluster; everything else is [`route`].
pub async fn route_async(
    ctx: &Ctx,
    metrics: &Metrics,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let Some(cluster) = ctx.cluster.as_ref() else {
        return route(ctx, metrics, req);
    };
    if req.method() != Method::POST {
        return route(ctx, metrics, req);
    }
    let (frame, local) = match req.uri().path() {
        "/purge" => {
            let Some(key) = query_param(req.uri(), "url").as_deref().and_then(url_key) else {
                return route(ctx, metrics, req);
            };
            let n = crate::http::purge_url(&ctx.store, &key);
            tracing::info!(key = %key, removed = n, "purge (cluster-wide)");
            (Frame::Purge { url: key }, n)
        }
        "/ban" => {
            let Some(prefix) = query_param(req.uri(), "prefix").filter(|p| !bans_everything(p))
            else {
                return route(ctx, metrics, req);
            };
            let n = ctx.store.ban_prefix(&prefix);
            tracing::info!(prefix = %prefix, removed = n, "ban (cluster-wide)");
            (Frame::Ban { prefix }, n)
        }
        _ => return route(ctx, metrics, req),
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
pub fn route(ctx: &Ctx, metrics: &Metrics, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    match (req.method(), path) {
        (_, "/server" | "/config" | "/config.json") => super::control::route(ctx, &req),
        (&Method::GET, "/") => {
            let body = page::render(&Snapshot::take(ctx));
            respond(StatusCode::OK, "text/html; charset=utf-8", body)
        }
        (&Method::GET, "/stats.json") => {
            let body = Snapshot::take(ctx).to_json().to_string();
            respond(StatusCode::OK, "application/json", body)
        }
        (&Method::GET, "/cluster.json") => {
            let snap = ctx.cluster.as_ref().map(super::ClusterSnapshot::of);
            let body = super::cluster::to_json(&ctx.node_id, snap.as_ref()).to_string();
            respond(StatusCode::OK, "application/json", body)
        }
        (&Method::GET, "/metrics") => {
            let body = metrics
                .render()
                .unwrap_or_else(|| "# encoding failed\n".to_owned());
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
}
