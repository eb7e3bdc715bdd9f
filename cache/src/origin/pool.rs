//! One origin pool: its servers (counters, health), a keep-alive HTTP client, the scheduler,
//! active health checks, passive ejection and cookie persistence.
//!
//! `Pool::send` picks an available server (the pool's algorithm; the persistence cookie first
//! when it names an available server), sends the request with the pool's connect and
//! first-byte timeouts, records the outcome (passive ejection after N consecutive failures or
//! 5xx), and retries an idempotent request without a body once on another server when the
//! first attempt could not connect or was reset before a response head.
//!
//! A failure is returned as a [`Fault`]: an origin fault counts against the server (its errors,
//! passive ejection); a fault of the client's request body (see `upload`) never does. The
//! first-byte timeout runs only while the request does not wait on the client's body.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Method, Response};
use http_body_util::{Either, Empty};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::interim::InterimSink;
use strait_lb::health::admin::Override;
use strait_lb::health::{self, CheckOutcome, Health, ServerState};
use strait_lb::select::schedule::{Algorithm, Candidate, PickInput, Scheduler};

use super::body::{Blame, OriginBody};
use super::h1::conn::ExchangeError;
use super::h1::head::RawHead;
use super::h1::{encode_request, BodyFraming, Idle};
use super::persist;
use super::probe::probe_kind;
use super::section::{HealthConfig, PassiveConfig, PoolConfig};
use super::upload::{client_fault, origin_deadline, Upload, UploadWatch};
use crate::fault::Fault;
use crate::policy::headers::content_length;
use crate::stats::{bump, Counters};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};

/// Body of a request sent to an origin: nothing (fills, revalidations) or the client's body.
pub type OutBody<'a> = Either<Empty<Bytes>, Upload<'a>>;

/// One origin server, its counters and health.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    /// Opaque id used in persistence cookies.
    pub id: String,
    /// Weight in effect: the runtime override's, else the file's (a reload may change it;
    /// 0 = no new requests).
    pub weight: AtomicU32,
    /// Weight in the file (see `control`).
    pub file_weight: AtomicU32,
    /// Runtime control: drain, maint, a weight override (`control`, `strait ctl server`).
    pub admin: Mutex<Override>,
    /// Requests sent to it.
    pub requests: AtomicU64,
    /// Requests waiting for its response head right now.
    pub active: AtomicU64,
    /// Failed requests (connect, timeout, broken response, 5xx).
    pub errors: AtomicU64,
    /// Response body bytes received from it (by Content-Length, or counted while filling).
    pub bytes: AtomicU64,
    /// Moving average (1/8) of the time to the response head, in microseconds.
    pub response_us: AtomicU64,
    pub health: Mutex<Health>,
}

impl Server {
    pub(super) fn new(addr: SocketAddr, weight: u32) -> Server {
        Server {
            addr,
            id: persist::server_id(&addr),
            weight: AtomicU32::new(weight),
            file_weight: AtomicU32::new(weight),
            admin: Mutex::new(Override::default()),
            requests: AtomicU64::new(0),
            active: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            response_us: AtomicU64::new(0),
            health: Mutex::new(Health::new(SystemTime::now())),
        }
    }

    /// Takes new requests now: up, not ejected.
    pub fn available(&self, now: Instant) -> bool {
        self.health.lock().available(now)
    }

    fn record_time(&self, took: Duration) {
        let sample = took.as_micros().min(u128::from(u64::MAX)) as u64;
        let old = self.response_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.response_us.store(new, Ordering::Relaxed);
    }
}

/// An origin pool.
pub struct Pool {
    pub name: String,
    /// `name`, shared with the bodies of the pool's answers (their failures name it).
    label: Arc<str>,
    pub algorithm: Algorithm,
    pub servers: Vec<Arc<Server>>,
    scheduler: Scheduler,
    /// The node's own client: idle connections per server, in the order of `servers`.
    lean: Vec<Arc<Idle>>,
    first_byte_timeout: Duration,
    passive: PassiveConfig,
    /// Cookie name of cookie persistence.
    pub persistence: Option<String>,
    /// Dropping the pool stops its health checker.
    _checker_stop: Option<watch::Sender<bool>>,
}

/// What a pool send needs of the client's request.
pub struct OutRequest<'a> {
    pub method: Method,
    /// Path and query ("/a?b").
    pub path_and_query: PathAndQuery,
    pub headers: HeaderMap,
    pub body: OutBody<'a>,
    /// The progress of the client's body in `body`, when it carries one.
    pub upload: Option<UploadWatch>,
    /// Where the server's interim (1xx) responses go, if anywhere.
    pub interim: Option<InterimSink>,
    /// Keep the final response head as received ([`Sent::raw_head`]) and leave the response's
    /// field map empty: for a request whose answer the caller relays from its bytes (the pass
    /// lane's, the upload lane's).
    pub raw_response: bool,
    /// The encoded head (`raw`) ends with the whole body its `Content-Length` announces
    /// (`body` is empty): the request goes out in one write, as a bodyless one does, and is
    /// never sent again unless its method is idempotent.
    pub body_in_head: bool,
}

/// A server's response, and its head as received when the request asked for it.
type Answer = (Response<OriginBody>, Option<Box<RawHead>>);

/// A response head from a server, and what the caller must add for persistence.
pub struct Sent {
    pub response: Response<OriginBody>,
    pub server: Arc<Server>,
    /// `Set-Cookie` to add to this client's response (persistence), if any.
    pub set_cookie: Option<HeaderValue>,
    /// The response head as received, when the request asked for it (`raw_response`): the
    /// response's field map is then empty.
    pub raw_head: Option<Box<RawHead>>,
}

impl Pool {
    /// Build a pool (and its connection pool) from config. Servers of `previous` (the same pool
    /// before a reload) with the same address are carried over with their counters, health and
    /// runtime override (cleared when the file changed their weight: `control`).
    /// Starts the health checker when the pool has `health` (must run inside a tokio runtime).
    pub fn new(cfg: &PoolConfig, previous: Option<&Pool>) -> Pool {
        let servers: Vec<Arc<Server>> = cfg
            .servers
            .get_ref()
            .iter()
            .map(|s| {
                let s = s.get_ref();
                if let Some(old) =
                    previous.and_then(|p| p.servers.iter().find(|o| o.addr == s.addr))
                {
                    old.reloaded(cfg.name.get_ref(), s.weight);
                    return Arc::clone(old);
                }
                Arc::new(Server::new(s.addr, s.weight))
            })
            .collect();
        let ids: Vec<String> = servers.iter().map(|s| s.addr.to_string()).collect();
        let lean = servers
            .iter()
            .map(|s| {
                Idle::new(
                    s.addr,
                    cfg.connect_timeout,
                    cfg.idle_timeout,
                    cfg.max_idle_per_server,
                )
            })
            .collect();
        let checker_stop = cfg
            .health
            .as_ref()
            .map(|h| spawn_checker(cfg.name.get_ref(), &servers, h.get_ref()));
        Pool {
            name: cfg.name.get_ref().clone(),
            label: Arc::from(cfg.name.get_ref().as_str()),
            algorithm: cfg.algorithm,
            scheduler: Scheduler::new(cfg.algorithm, &ids),
            servers,
            lean,
            first_byte_timeout: cfg.first_byte_timeout,
            passive: cfg.passive.clone(),
            persistence: cfg.persistence.as_ref().map(|p| p.cookie.get_ref().clone()),
            _checker_stop: checker_stop,
        }
    }

    /// Choose a server: the persistence cookie's server when it is available and not in
    /// maintenance, else the scheduler's pick among the servers that take new requests (not
    /// drained, not in maintenance). Returns the index and whether a (new) cookie must be set.
    fn choose(
        &self,
        input: &PickInput<'_>,
        headers: &HeaderMap,
        exclude: Option<usize>,
    ) -> Option<(usize, bool)> {
        let now = Instant::now();
        // Which servers a cookie may pin to: only a pool with persistence asks.
        let mut pinnable = Vec::new();
        let candidates: Vec<Candidate> = self
            .servers
            .iter()
            .map(|s| {
                let admin = s.admin();
                let healthy = s.available(now);
                if self.persistence.is_some() {
                    pinnable.push(healthy && admin.keeps_existing());
                }
                Candidate {
                    weight: s.weight.load(Ordering::Relaxed),
                    available: healthy && admin.takes_new(),
                    active: s.active.load(Ordering::Relaxed),
                }
            })
            .collect();
        let mut needs_cookie = false;
        if let Some(name) = &self.persistence {
            match persist::cookie_value(headers, name) {
                Some(id) => {
                    let pinned = self.servers.iter().position(|s| s.id == id);
                    if let Some(i) = pinned {
                        if pinnable[i] && Some(i) != exclude {
                            return Some((i, false));
                        }
                    }
                    needs_cookie = true;
                }
                None => needs_cookie = true,
            }
        }
        self.scheduler
            .pick(input, &candidates, exclude)
            .map(|i| (i, needs_cookie))
    }

    /// How long a request may wait for a server's response head (connecting included).
    pub fn first_byte_timeout(&self) -> Duration {
        self.first_byte_timeout
    }

    /// Send a request to one of the pool's servers and wait for the response head.
    pub async fn send(
        &self,
        req: OutRequest<'_>,
        input: &PickInput<'_>,
        counters: &Arc<Counters>,
    ) -> Result<Sent, Fault> {
        self.send_with(req, input, counters, None).await
    }

    /// Whether the pool pins clients to servers with a cookie (`persistence`).
    pub fn has_persistence(&self) -> bool {
        self.persistence.is_some()
    }

    /// [`Pool::send`], with the request's head already encoded (`raw`, on the node's own
    /// client): for a bodyless, idempotent `req` (the pass lane's), or one whose body is framed
    /// by the `Content-Length` in `raw`, or streamed chunked as `raw` says (the upload lane's).
    /// `req.headers` then only serve the server choice and, for a body, hold that
    /// `Content-Length` or `Transfer-Encoding: chunked` (its framing).
    pub async fn send_with(
        &self,
        req: OutRequest<'_>,
        input: &PickInput<'_>,
        counters: &Arc<Counters>,
        raw: Option<&[u8]>,
    ) -> Result<Sent, Fault> {
        debug_assert!(
            raw.is_none()
                || (matches!(req.body, Either::Left(_)) && is_idempotent(&req.method))
                || content_length(&req.headers).is_some()
                || req.headers.contains_key(TRANSFER_ENCODING)
        );
        let Some((first, cookie)) = self.choose(input, &req.headers, None) else {
            tracing::warn!(pool = %self.name, "no server available");
            return Err(Fault::NoServer);
        };
        // A request with a body is never sent to a second server (its body was taken once).
        let retryable =
            matches!(req.body, Either::Left(_)) && is_idempotent(&req.method) && !req.body_in_head;
        let retry_copy = if retryable && self.servers.len() > 1 {
            Some((
                req.method.clone(),
                req.path_and_query.clone(),
                req.headers.clone(),
                (req.interim.clone(), req.raw_response),
            ))
        } else {
            None
        };
        let result = match self.send_to(first, req, counters, raw).await {
            Err(e @ (Fault::OriginUnreachable | Fault::OriginBroken)) => {
                let Some((method, path_and_query, headers, (interim, raw_response))) = retry_copy
                else {
                    return Err(e);
                };
                let Some((second, _)) = self.choose(input, &headers, Some(first)) else {
                    return Err(e);
                };
                tracing::debug!(pool = %self.name, fault = e.as_str(), "retrying on another server");
                let again = OutRequest {
                    method,
                    path_and_query,
                    headers,
                    body: Either::Left(Empty::new()),
                    upload: None,
                    interim,
                    raw_response,
                    body_in_head: false,
                };
                self.send_to(second, again, counters, raw)
                    .await
                    .map(|s| (s, true))
            }
            other => other.map(|s| (s, false)),
        };
        let (((response, raw_head), server), retried) = result?;
        let set_cookie = match &self.persistence {
            Some(name) if cookie || retried => persist::set_cookie(name, &server.id),
            _ => None,
        };
        Ok(Sent {
            response,
            server,
            set_cookie,
            raw_head,
        })
    }

    async fn send_to(
        &self,
        idx: usize,
        req: OutRequest<'_>,
        counters: &Arc<Counters>,
        raw: Option<&[u8]>,
    ) -> Result<(Answer, Arc<Server>), Fault> {
        let server = Arc::clone(&self.servers[idx]);
        let upload = req.upload.clone();
        bump(&server.requests);
        bump(&counters.origin_fetches);
        bump(&server.active);
        let started = Instant::now();
        let lean = matches!(req.body, Either::Left(_))
            && (is_idempotent(&req.method) || (req.body_in_head && raw.is_some()));
        let exchange = std::pin::pin!(self.exchange(idx, req, lean, raw));
        let result = match &upload {
            // Nothing of the client's to wait on: the coarse bound (`deadline`), up to a tick
            // late, instead of a timer in the runtime's wheel for every request.
            None => crate::deadline::within(self.first_byte_timeout, exchange)
                .await
                .ok(),
            Some(_) => {
                let deadline = origin_deadline(upload.clone(), self.first_byte_timeout);
                tokio::select! {
                    r = exchange => Some(r),
                    _ = deadline => None,
                }
            }
        };
        server.active.fetch_sub(1, Ordering::Relaxed);
        // The client's fault first: its broken body also fails the origin request.
        if let Some(fault) = upload.as_ref().and_then(client_fault) {
            tracing::debug!(pool = %self.name, server = %server.addr, fault = fault.as_str(),
                "request body failed on the client's side; not counted against the server");
            return Err(fault);
        }
        let outcome = match result {
            Some(Ok(resp)) => Ok(resp),
            Some(Err((fault, error))) => {
                tracing::warn!(pool = %self.name, server = %server.addr, error = %error,
                    fault = fault.as_str(), "origin request failed");
                Err(fault)
            }
            None => {
                tracing::warn!(pool = %self.name, server = %server.addr,
                    timeout = ?self.first_byte_timeout, "origin sent no response head in time");
                Err(Fault::OriginTimeout)
            }
        };
        let failed = match &outcome {
            Ok((resp, raw)) => {
                server.record_time(started.elapsed());
                let length = match raw {
                    Some(raw) => raw.content_length,
                    None => content_length(resp.headers()),
                };
                if let Some(n) = length {
                    server.bytes.fetch_add(n, Ordering::Relaxed);
                }
                resp.status().is_server_error()
            }
            Err(_) => true,
        };
        if failed {
            bump(&server.errors);
            if outcome.is_err() {
                bump(&counters.origin_errors);
            }
            self.passive_result(&server, true);
        }
        // From here the body answers for the request (`body::Blame`): a failure of it is the
        // server's too, and a good head counts as a success for passive ejection only once its
        // body has not failed.
        let blame = Blame {
            server: Arc::clone(&server),
            pool: Arc::clone(&self.label),
            counters: Arc::clone(counters),
            passive: (self.passive.failures, self.passive.backoff),
            upload,
            head_failed: failed,
            settled: false,
        };
        outcome.map(|(r, raw)| ((r.map(|body| body.blaming(blame)), raw), server))
    }

    /// One request to server `idx` up to its response head, on the node's own client: the
    /// bodyless exchange when `lean` (no body, idempotent), else the one that sends a body (and
    /// never sends a request again once it may have been acted on). The error is the fault and
    /// its text.
    async fn exchange(
        &self,
        idx: usize,
        req: OutRequest<'_>,
        lean: bool,
        raw: Option<&[u8]>,
    ) -> Result<Answer, (Fault, String)> {
        if lean {
            let mut encoded = Vec::new();
            let head = match raw {
                Some(raw) => raw,
                None => {
                    encoded.reserve(512);
                    encode_request(
                        &mut encoded,
                        &req.method,
                        req.path_and_query.as_str(),
                        &req.headers,
                    );
                    &encoded
                }
            };
            let head_request = req.method == Method::HEAD;
            let interim = req.interim.as_ref();
            let resend = is_idempotent(&req.method);
            let exchange =
                self.lean[idx].exchange_as(head, (head_request, req.raw_response), resend, interim);
            return match exchange.await {
                Ok((h, body)) => {
                    let mut resp = Response::new(OriginBody::lean(body));
                    *resp.status_mut() = h.status;
                    *resp.version_mut() = h.version;
                    *resp.headers_mut() = h.headers;
                    Ok((resp, h.raw))
                }
                Err(e) if e.is_connect() => Err((Fault::OriginUnreachable, e.to_string())),
                Err(e) => Err((Fault::OriginBroken, e.to_string())),
            };
        }
        // Boxed: the streaming exchange's future is several KiB, and every future that holds
        // this one (up to the request's) would otherwise be that much larger for every
        // request, the lean ones too, and moved and allocated whole.
        Box::pin(self.exchange_with_body(idx, req, raw)).await
    }

    /// A request with a client's body (or a bodyless one of a method that is not idempotent),
    /// on the node's own client: the client's `Content-Length` when it had one, else chunked
    /// (no framing field at all when the body is empty from the start, as hyper's client did).
    /// `raw`: the head, already encoded with the `Content-Length` in `req.headers`, or with
    /// `Transfer-Encoding: chunked` when `req.headers` has that field.
    async fn exchange_with_body(
        &self,
        idx: usize,
        req: OutRequest<'_>,
        raw: Option<&[u8]>,
    ) -> Result<Answer, (Fault, String)> {
        let OutRequest {
            method,
            path_and_query,
            mut headers,
            mut body,
            interim,
            raw_response,
            ..
        } = req;
        // An encoded head that says chunked (the upload lane's streamed chunked body) is sent
        // chunked even when its body turns out empty: the head cannot be taken back.
        let raw_chunked = raw.is_some() && headers.contains_key(TRANSFER_ENCODING);
        let framing = match content_length(&headers) {
            Some(n) => Some(BodyFraming::Length(n)),
            None if headers.contains_key(CONTENT_LENGTH) => {
                return Err((Fault::Node, "unreadable Content-Length".to_string()))
            }
            None if !raw_chunked && http_body::Body::is_end_stream(&body) => None,
            None => {
                headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
                Some(BodyFraming::Chunked)
            }
        };
        let mut encoded = Vec::new();
        let head = match raw {
            Some(raw) if matches!(framing, Some(BodyFraming::Length(_))) || raw_chunked => raw,
            Some(_) => return Err((Fault::Node, "encoded head without its length".to_string())),
            None => {
                encoded.reserve(512);
                encode_request(&mut encoded, &method, path_and_query.as_str(), &headers);
                &encoded
            }
        };
        // Sent again after a kept connection died only when the server cannot have acted on
        // it: the head alone was incomplete, or the method is idempotent.
        let resend = is_idempotent(&method) || framing.is_some_and(BodyFraming::expects_bytes);
        let head_request = method == Method::HEAD;
        match self.lean[idx]
            .exchange_with_body_as(
                head,
                &mut body,
                (framing, resend),
                (head_request, raw_response),
                interim.as_ref(),
            )
            .await
        {
            Ok((h, body)) => {
                let mut resp = Response::new(OriginBody::lean(body));
                *resp.status_mut() = h.status;
                *resp.version_mut() = h.version;
                *resp.headers_mut() = h.headers;
                Ok((resp, h.raw))
            }
            Err(e) if e.is_connect() => Err((Fault::OriginUnreachable, e.to_string())),
            Err(e @ ExchangeError::Length(_)) => Err((Fault::Node, e.to_string())),
            Err(e) => Err((Fault::OriginBroken, e.to_string())),
        }
    }

    fn passive_result(&self, server: &Server, failed: bool) {
        if self.passive.failures == 0 {
            return;
        }
        let ejected = server.health.lock().on_response(
            failed,
            self.passive.failures,
            self.passive.backoff,
            Instant::now(),
        );
        if ejected {
            tracing::warn!(pool = %self.name, server = %server.addr, backoff = ?self.passive.backoff,
                "server ejected after consecutive failed requests");
        }
    }
}

/// Start the pool's active checker; it stops when the returned sender is dropped.
fn spawn_checker(pool: &str, servers: &[Arc<Server>], h: &HealthConfig) -> watch::Sender<bool> {
    let (tx, rx) = watch::channel(false);
    let kind = probe_kind(h);
    let targets: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    let servers: Vec<Arc<Server>> = servers.to_vec();
    let (rise, fall) = (h.rise, h.fall);
    let pool = pool.to_string();
    let report = move |i: usize, outcome: CheckOutcome| {
        let Some(server) = servers.get(i) else { return };
        let detail = outcome.detail.clone();
        let changed = server
            .health
            .lock()
            .on_check(outcome, rise, fall, SystemTime::now());
        match changed {
            Some(ServerState::Down) => {
                tracing::warn!(pool = %pool, server = %server.addr, check = %detail, "server is DOWN")
            }
            Some(ServerState::Up) => {
                tracing::info!(pool = %pool, server = %server.addr, check = %detail, "server is UP")
            }
            None => {}
        }
    };
    tokio::spawn(health::probe::run(
        targets, kind, h.interval, h.timeout, report, rx,
    ));
    tx
}

/// RFC 9110 §9.2.2 idempotent methods.
pub fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}
