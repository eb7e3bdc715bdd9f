//! Admin HTTP listener (HTTP/1.1). Routes: `GET /`, `GET /stats.json`, `GET /cluster.json`,
//! `GET /metrics`, `POST /purge?url=URL`, `POST /ban?prefix=PREFIX` (or `?all=1`),
//! `POST /reload`.
//! Every request passes the guard of `strait_lb::admin` first (loopback peer, admin `Host`, not
//! cross-site, state changes by POST without a form content type), in its accept loop; a
//! refusal is logged and answered with its status and a short text there. Purge and ban are
//! `super::invalidate` (a ban names an absolute URL prefix, or `all=1`).

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use strait_lb::admin::{accept_loop_async, not_allowed, respond, text, Metrics};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{metrics, page, Snapshot};
use crate::http::ctx::Ctx;
use crate::stats::bump;

/// The node's admin paths that change state.
pub const NODE_CHANGES: &[&str] = &["/purge", "/ban", "/reload", "/server"];

/// Serve the admin listener until `stop` turns true; the node's metrics registry is built
/// here, once.
pub async fn serve(listener: TcpListener, ctx: Arc<Ctx>, stop: watch::Receiver<bool>) {
    let live = Arc::clone(&ctx);
    let metrics = Arc::new(metrics::registry(move || Snapshot::take(&live)));
    let counters = Arc::clone(&ctx.counters);
    let accept_failed = move || bump(&counters.accept_errors);
    accept_loop_async(
        listener,
        NODE_CHANGES,
        stop,
        accept_failed,
        move |_peer, req| {
            let ctx = Arc::clone(&ctx);
            let metrics = Arc::clone(&metrics);
            async move { route_async(&ctx, &metrics, req).await }
        },
    )
    .await;
}

/// A node's admin request (already past the guard): purge and ban (`super::invalidate`, which
/// reach every member when the node is in a cluster); everything else is [`route`].
pub async fn route_async(
    ctx: &Ctx,
    metrics: &Metrics,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::POST, path @ ("/purge" | "/ban")) => {
            super::invalidate::answer(ctx, path, req.uri()).await
        }
        _ => route(ctx, metrics, req),
    }
}

/// Answer one admin request (already past [`Guard::check`]).
pub fn route(ctx: &Ctx, metrics: &Metrics, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    match (req.method(), path) {
        (_, "/server" | "/config" | "/config.json") => super::control::route(ctx, &req),
        (&Method::GET, "/") => {
            let body = page::render(&Snapshot::with_rates(ctx));
            respond(StatusCode::OK, "text/html; charset=utf-8", body)
        }
        (&Method::GET, "/stats.json") => {
            let body = Snapshot::with_rates(ctx).to_json().to_string();
            respond(StatusCode::OK, "application/json", body)
        }
        (&Method::GET, "/cluster.json") => {
            let snap = ctx.cluster.as_ref().map(super::ClusterSnapshot::of);
            let body = super::cluster::to_json(&ctx.node_id, snap.as_ref()).to_string();
            respond(StatusCode::OK, "application/json", body)
        }
        (&Method::GET, "/metrics") => metrics.scrape(&req),
        (&Method::POST, "/reload") => match crate::node::reload(ctx) {
            Ok(outcome) => respond(
                StatusCode::OK,
                "application/json",
                outcome.to_json().to_string(),
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
