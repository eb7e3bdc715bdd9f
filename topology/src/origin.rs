//! The test origin behind `strait sim origin`: a small HTTP/1.1 server (keep-alive) whose
//! answers are deterministic, so caches and proxies can be checked byte for byte.
//!
//! Routes (the path is matched without its query):
//! * `GET|HEAD /obj/<name>`: `size` bytes of [`object_bytes`]`(name, size)` with
//!   `Cache-Control: max-age=<ttl>`, a strong `ETag` (see [`etag`]), `Last-Modified:
//!   Thu, 01 Jan 2026 00:00:00 GMT`, `Date`, `Content-Type: application/octet-stream`.
//!   `If-None-Match` (else `If-Modified-Since`) that matches gives `304` with Date, ETag,
//!   Cache-Control and Vary, when the answer would otherwise be 2xx (RFC 9110 §13.2).
//! * `GET|HEAD /dyn/<name>`: `Cache-Control: no-store`, body `dyn <name> <n>\n`, where `n` is
//!   the number of requests counted for this path so far, this one included.
//! * `GET|HEAD /health` and `/health.html`: `200 ok\n`.
//! * `GET /_origin/stats`: a JSON object mapping each request path (no query) to the number of
//!   requests counted for it, e.g. `{"/obj/a": 1}`. `POST /_origin/reset` zeroes the counters.
//!   Neither is counted.
//! * Any other method (POST, PUT, DELETE, PATCH, extension methods such as `M-SEARCH`) to any
//!   path: reads the whole request body, answers `200 method <M> path <p> body <len>\n` with
//!   `Cache-Control: no-store`.
//! * Anything else: `404 not found\n`.
//!
//! Every request except the two `/_origin/` ones is counted under its path when its head
//! arrives, before any `delay=`.
//!
//! Test knobs, as query parameters on `/obj/`, `/dyn/` and the other-method answers (form
//! encoded: `%XX` escapes, `+` is a space; unknown parameters are ignored; a bad value is a
//! `400`):
//! * `size=N` (default 1024, at most 256 MiB), `ttl=S` (default 3600): `/obj/` only.
//! * `delay=MS`: wait before sending the response head (at most 10 minutes).
//! * `status=N` (200..=599): the response status; on `/obj/` a matching precondition still
//!   gives 304 when N is 2xx.
//! * `cc=<Cache-Control>`: replaces the default field; `cc=` (empty) removes it.
//! * `vary=<field>[,<field>...]`: adds `Vary`; on `/obj/` the content and ETag are those of
//!   [`variant_key`]`(name, [value of each field])`, so variants differ.
//! * `chunked=1`: no Content-Length; the body goes in 4 KiB chunks, `chunk_delay=MS` apart.
//! * `chunk_delay=MS` without `chunked=1`: a slow body of known length — Content-Length as
//!   usual, the body in 4 KiB pieces `MS` apart (e.g. `size=65536&chunk_delay=125`: 16
//!   pieces over 2 s).
//! * `cut=K`: Content-Length still announces the whole body, but the connection is closed
//!   after K body bytes: the client sees a body cut short.
//! * `etag=0` / `lm=0`: omit ETag / Last-Modified (and the matching precondition).
//! * `hdr=Name:Value` (repeatable, at most 32): an extra response header field.
//! * `sum=1`: `X-Content-Size` (the body's length in bytes) and `X-Content-Sha256` (its
//!   SHA-256, lowercase hex) describe the whole body, on every answer that has one (not 204
//!   or 304); HEAD gets the fields of the GET. See [`digest`].

mod body;
mod content;
pub mod digest;
mod knobs;
mod reply;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::Instrument;

pub use content::{etag, object_bytes, variant_key};

use body::{CutIo, CutSignal, OriginBody};
use knobs::Knobs;
use reply::Reply;

/// Path of the counters (JSON).
pub const STATS_PATH: &str = "/_origin/stats";
/// Path that zeroes the counters (POST).
pub const RESET_PATH: &str = "/_origin/reset";
/// Most distinct paths counted; later new paths are counted under [`OVERFLOW_PATH`].
pub const MAX_TRACKED_PATHS: usize = 65_536;
/// Where requests to paths beyond [`MAX_TRACKED_PATHS`] are counted.
pub const OVERFLOW_PATH: &str = "/_origin/overflow";
/// Largest request body the other-method answer reads: 1 GiB (more gets 413).
pub const MAX_REQUEST_BODY: u64 = 1 << 30;
/// Pause after an accept error other than a per-connection one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Consecutive accept errors after which [`Origin::serve`] gives up.
const MAX_ACCEPT_FAILURES: u32 = 50;

/// The origin's state: request counters shared by all connections.
#[derive(Debug, Default)]
pub struct Origin {
    counts: Mutex<HashMap<String, u64>>,
}

/// Serves a fresh [`Origin`] on `listener` until the future is dropped (which also closes
/// every connection it accepted).
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    Arc::new(Origin::default()).serve(listener).await
}

impl Origin {
    /// An origin with zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests counted per path so far.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// Zeroes every counter.
    pub fn reset(&self) {
        self.counts.lock().clear();
    }

    /// Counts one request to `path`; returns the path's new count.
    fn count(&self, path: &str) -> u64 {
        let mut counts = self.counts.lock();
        let key = if counts.contains_key(path) || counts.len() < MAX_TRACKED_PATHS {
            path
        } else {
            OVERFLOW_PATH
        };
        let n = counts.entry(key.to_owned()).or_insert(0);
        *n += 1;
        *n
    }

    /// Accepts and serves connections on `listener` until the future is dropped. Returns an
    /// error only after [`MAX_ACCEPT_FAILURES`] accept failures in a row.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> io::Result<()> {
        let mut connections = JoinSet::new();
        let mut failures = 0u32;
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        failures = 0;
                        let span = tracing::debug_span!("origin_connection", %peer);
                        connections.spawn(serve_connection(self.clone(), stream).instrument(span));
                    }
                    Err(e) if is_per_connection(&e) => {
                        tracing::debug!(error = %e, "origin accept: connection lost");
                    }
                    Err(e) => {
                        failures += 1;
                        if failures >= MAX_ACCEPT_FAILURES {
                            return Err(e);
                        }
                        tracing::warn!(error = %e, "origin accept failed; backing off");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    }
}

/// Accept errors that concern one connection only.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// One keep-alive HTTP/1.1 connection.
async fn serve_connection(origin: Arc<Origin>, stream: TcpStream) {
    // Best effort: only latency depends on it.
    let _ = stream.set_nodelay(true);
    let signal = Arc::new(CutSignal::default());
    let io = TokioIo::new(CutIo::new(stream, signal.clone()));
    let service = service_fn(move |request| handle(origin.clone(), signal.clone(), request));
    let served = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service)
        .await;
    if let Err(e) = served {
        tracing::debug!(error = %e, "origin connection ended with an error");
    }
}

/// What a request asks for.
enum Route<'a> {
    Object(&'a str),
    Dynamic(&'a str),
    Health,
    Other,
    NotFound,
}

fn route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    if method != Method::GET && method != Method::HEAD {
        return Route::Other;
    }
    let named = |prefix| {
        path.strip_prefix(prefix)
            .filter(|name: &&str| !name.is_empty())
    };
    if let Some(name) = named("/obj/") {
        Route::Object(name)
    } else if let Some(name) = named("/dyn/") {
        Route::Dynamic(name)
    } else if path == "/health" || path == "/health.html" {
        Route::Health
    } else {
        Route::NotFound
    }
}

async fn handle(
    origin: Arc<Origin>,
    cut: Arc<CutSignal>,
    request: Request<Incoming>,
) -> Result<Response<OriginBody>, Infallible> {
    let now = SystemTime::now();
    let method = request.method().clone();
    let head_only = method == Method::HEAD;
    let path = request.uri().path().to_owned();
    let plain = Knobs::default();

    match (&method, path.as_str()) {
        (&Method::GET | &Method::HEAD, STATS_PATH) => {
            let json = serde_json::to_vec(&origin.counts()).unwrap_or_default();
            return Ok(Reply::json(json, now).into_response(head_only, &plain, &cut));
        }
        (&Method::POST, RESET_PATH) => {
            origin.reset();
            let reply = Reply::text(StatusCode::OK, "reset\n", now);
            return Ok(reply.into_response(false, &plain, &cut));
        }
        _ => {}
    }

    let n = origin.count(&path);
    let route = route(&method, &path);
    let knobs = match route {
        Route::Object(_) | Route::Dynamic(_) | Route::Other => {
            match Knobs::parse(request.uri().query()) {
                Ok(k) => k,
                Err(e) => {
                    let reply = Reply::text(StatusCode::BAD_REQUEST, format!("{e}\n"), now);
                    return Ok(reply.into_response(head_only, &plain, &cut));
                }
            }
        }
        Route::Health | Route::NotFound => plain,
    };
    let mut reply = match route {
        Route::Object(name) => Reply::object(name, &knobs, request.headers(), now),
        Route::Dynamic(name) => Reply::dynamic(name, n, &knobs, now),
        Route::Health => Reply::text(StatusCode::OK, "ok\n", now),
        Route::NotFound => Reply::text(StatusCode::NOT_FOUND, "not found\n", now),
        Route::Other => match body_length(request.into_body()).await {
            Ok(len) => Reply::echo(&method, &path, len, &knobs, now),
            Err(status) => Reply::text(status, "cannot read the request body\n", now),
        },
    };
    if knobs.sum
        && !matches!(
            reply.status,
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        )
    {
        digest::stamp(&mut reply.headers, &reply.body);
    }
    if !knobs.delay.is_zero() {
        tokio::time::sleep(knobs.delay).await;
    }
    Ok(reply.into_response(head_only, &knobs, &cut))
}

/// Reads a request body to its end, returning its length (413 beyond
/// [`MAX_REQUEST_BODY`], 400 when the client breaks off).
async fn body_length(mut body: Incoming) -> Result<u64, StatusCode> {
    let mut len = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| StatusCode::BAD_REQUEST)?;
        if let Some(data) = frame.data_ref() {
            len += data.len() as u64;
            if len > MAX_REQUEST_BODY {
                return Err(StatusCode::PAYLOAD_TOO_LARGE);
            }
        }
    }
    Ok(len)
}

#[cfg(test)]
mod knob_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
