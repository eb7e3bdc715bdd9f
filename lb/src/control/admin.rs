//! The director's admin listener (HTTP/1.1), guarded as the node's
//! ([`crate::admin::guard`]: loopback peers, admin `Host`, not cross-site, `/reload` by
//! POST without a form content type). Routes: `GET /` (page), `GET /stats.json`, `GET /conns.json?limit=N` (default
//! [`DEFAULT_CONNS_LIMIT`]), `GET /metrics`, `POST /reload` (200 with the outcome, `{"reloaded":true, "summary", "not_applied", ...}`, or 422
//! with the reasons while the running config stays). A datapath error answers 500. The
//! metrics registry is built once, when the listener starts; each scrape reads the datapath.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::view::Snapshot;
use super::{lock, Inner};
use crate::admin::{accept_loop, not_allowed, query_param, respond, Metrics};

/// Connections listed by `/conns.json` without `?limit=`.
pub(super) const DEFAULT_CONNS_LIMIT: usize = 1000;

/// The director's admin paths that change state.
const CHANGES: &[&str] = &["/reload", "/backend"];

/// Serves until `stop` turns true.
pub(super) async fn serve(listener: TcpListener, inner: Arc<Inner>, stop: watch::Receiver<bool>) {
    let live = Arc::clone(&inner);
    let metrics = Metrics::new("strait_director", move |enc| {
        Snapshot::take(&live)
            .map_err(|e| tracing::warn!(error = %e, "admin: datapath query failed"))
            .map_or(Err(fmt::Error), |s| s.encode_metrics(enc))
    });
    accept_loop(listener, CHANGES, stop, move |_peer, req| {
        route(&inner, &metrics, &req)
    })
    .await;
}

/// Answers one request (already past the guard).
fn route<B>(inner: &Arc<Inner>, metrics: &Metrics, req: &Request<B>) -> Response<Full<Bytes>> {
    let snapshot = || Snapshot::take(inner);
    let answer = match (req.method(), req.uri().path()) {
        (_, "/backend" | "/config" | "/config.json") => Ok(super::backend_ctl::route(inner, req)),
        (&Method::GET, "/") => snapshot().map(|s| respond(StatusCode::OK, HTML, s.to_html())),
        (&Method::GET, "/stats.json") => {
            snapshot().map(|s| respond(StatusCode::OK, JSON, s.to_json().to_string()))
        }
        (&Method::GET, "/metrics") => Ok(metrics.scrape(req)),
        (&Method::GET, "/conns.json") => {
            let limit = match query_param(req.uri(), "limit") {
                None => Some(DEFAULT_CONNS_LIMIT),
                Some(v) => v.parse::<usize>().ok(),
            };
            match limit {
                Some(limit) => conns(inner, limit),
                None => Ok(respond(
                    StatusCode::BAD_REQUEST,
                    TEXT,
                    "400 limit must be a number\n".into(),
                )),
            }
        }
        (&Method::POST, "/reload") => Ok(match inner.reload() {
            Ok(outcome) => respond(StatusCode::OK, JSON, outcome.to_json().to_string()),
            Err(why) => respond(
                StatusCode::UNPROCESSABLE_ENTITY,
                TEXT,
                format!("422 reload refused, the running config stays:\n{why}\n"),
            ),
        }),
        (_, "/" | "/stats.json" | "/metrics" | "/conns.json") => Ok(not_allowed("GET")),
        (_, "/reload") => Ok(not_allowed("POST")),
        _ => Ok(respond(
            StatusCode::NOT_FOUND,
            TEXT,
            "404 not found\n".into(),
        )),
    };
    answer.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "admin: datapath query failed");
        respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            TEXT,
            format!("500 {e}\n"),
        )
    })
}

/// `/conns.json`: `{"count", "conns": [{"client", "vip", "proto", "backend", "idle_ms",
/// "closing", "half_open", "synced"}],
/// "per_backend": {backend: n}}`: `count` the forward entries held, `conns` those not idle
/// past their timeout, `idle_ms` since their last packet (`null` when the datapath cannot
/// tell), `closing` whether the flow sent a TCP FIN or RST, `half_open` whether no packet
/// without SYN used it yet, `synced` whether the HA sync installed it and no packet here
/// recorded it since, `per_backend` the listed entries by backend (all live ones when
/// `limit` is at least the table: what a drain waits for).
fn conns(
    inner: &Inner,
    limit: usize,
) -> Result<Response<Full<Bytes>>, crate::datapath::DatapathError> {
    let (entries, count) = {
        let datapath = lock(&inner.datapath);
        (datapath.conns(limit)?, datapath.conn_count()?)
    };
    let state = lock(&inner.state);
    let list: Vec<_> = entries
        .iter()
        .map(|c| {
            let vip = std::net::SocketAddrV4::new(c.vip.0, c.vip.1);
            let backend = state
                .services
                .iter()
                .find(|s| s.config.vip == vip && s.config.proto.number() == c.proto)
                .and_then(|s| s.backends.get(c.backend as usize))
                .map_or_else(|| format!("#{}", c.backend), |b| b.addr().to_string());
            let proto = match c.proto {
                6 => "tcp".to_owned(),
                17 => "udp".to_owned(),
                n => n.to_string(),
            };
            json!({
                "client": std::net::SocketAddrV4::new(c.client.0, c.client.1).to_string(),
                "vip": vip.to_string(), "proto": proto, "backend": backend,
                "idle_ms": c.idle.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                "closing": c.closing, "half_open": c.half_open, "synced": c.synced,
            })
        })
        .collect();
    let mut per_backend = serde_json::Map::new();
    for c in &list {
        let b = c["backend"].as_str().unwrap_or_default().to_owned();
        let n = per_backend
            .get(&b)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        per_backend.insert(b, json!(n + 1));
    }
    let body = json!({"count": count, "conns": list, "per_backend": per_backend}).to_string();
    Ok(respond(StatusCode::OK, JSON, body))
}

const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";
