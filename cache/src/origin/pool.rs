//! One origin pool: its servers, their counters, a keep-alive HTTP client and the scheduler.
//!
//! `Pool::send` picks a server (smooth weighted round robin), sends the request with the
//! pool's connect and first-byte timeouts, and retries an idempotent request without a body
//! once on another server when the first attempt could not connect.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;

use super::schedule::SmoothWrr;
use crate::config::PoolConfig;
use crate::stats::{bump, Counters};

/// Body of a request sent to an origin: nothing (fills, revalidations) or the client's body.
pub type OutBody = Either<Empty<Bytes>, Incoming>;

/// Why an origin request failed; decides the status the client sees.
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    /// No server could be connected to (502).
    #[error("cannot connect to origin {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The response head did not arrive in time (504).
    #[error("origin {addr} did not answer within {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },
    /// The origin answered something that is not a valid HTTP response, or reset (502).
    #[error("broken response from origin {addr}: {source}")]
    Broken {
        addr: SocketAddr,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The pool has no server that can take the request (503).
    #[error("pool {pool} has no server available")]
    NoServer { pool: String },
}

impl OriginError {
    /// The status code the client gets for this failure.
    pub fn status(&self) -> http::StatusCode {
        match self {
            OriginError::Connect { .. } | OriginError::Broken { .. } => {
                http::StatusCode::BAD_GATEWAY
            }
            OriginError::Timeout { .. } => http::StatusCode::GATEWAY_TIMEOUT,
            OriginError::NoServer { .. } => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// One origin server and its counters.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub weight: u32,
    /// Requests sent to it.
    pub requests: AtomicU64,
    /// Requests waiting for its response head right now.
    pub active: AtomicU64,
    /// Failed requests (connect, timeout, broken response).
    pub errors: AtomicU64,
}

/// An origin pool.
pub struct Pool {
    pub name: String,
    pub algorithm: crate::config::Algorithm,
    pub servers: Vec<Arc<Server>>,
    wrr: Mutex<SmoothWrr>,
    client: Client<HttpConnector, OutBody>,
    first_byte_timeout: Duration,
}

/// What a pool send needs of the client's request.
pub struct OutRequest {
    pub method: Method,
    /// Path and query ("/a?b").
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: OutBody,
}

impl Pool {
    /// Build a pool (and its connection pool) from config.
    pub fn new(cfg: &PoolConfig) -> Pool {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(cfg.connect_timeout));
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(cfg.idle_timeout)
            .pool_max_idle_per_host(cfg.max_idle_per_server)
            .set_host(false)
            .build(connector);
        let servers: Vec<Arc<Server>> = cfg
            .servers
            .get_ref()
            .iter()
            .map(|s| {
                Arc::new(Server {
                    addr: s.get_ref().addr,
                    weight: s.get_ref().weight,
                    requests: AtomicU64::new(0),
                    active: AtomicU64::new(0),
                    errors: AtomicU64::new(0),
                })
            })
            .collect();
        Pool {
            name: cfg.name.get_ref().clone(),
            algorithm: cfg.algorithm,
            wrr: Mutex::new(SmoothWrr::new(servers.len())),
            servers,
            client,
            first_byte_timeout: cfg.first_byte_timeout,
        }
    }

    fn pick(&self, exclude: Option<usize>) -> Option<usize> {
        self.wrr
            .lock()
            .pick(|i| self.servers[i].weight, |i| Some(i) != exclude)
    }

    /// Send a request to one of the pool's servers and wait for the response head.
    ///
    /// A request without a body whose method is idempotent is retried once on another server
    /// when the connection could not be made.
    pub async fn send(
        &self,
        req: OutRequest,
        counters: &Counters,
    ) -> Result<(Response<Incoming>, Arc<Server>), OriginError> {
        let first = self.pick(None).ok_or_else(|| OriginError::NoServer {
            pool: self.name.clone(),
        })?;
        let retryable = matches!(req.body, Either::Left(_)) && is_idempotent(&req.method);
        let retry_copy = if retryable && self.servers.len() > 1 {
            Some((
                req.method.clone(),
                req.path_and_query.clone(),
                req.headers.clone(),
            ))
        } else {
            None
        };
        match self.send_to(first, req, counters).await {
            Err(e @ OriginError::Connect { .. }) => {
                let Some((method, path_and_query, headers)) = retry_copy else {
                    return Err(e);
                };
                let Some(second) = self.pick(Some(first)) else {
                    return Err(e);
                };
                tracing::debug!(pool = %self.name, error = %e, "retrying on another server");
                let again = OutRequest {
                    method,
                    path_and_query,
                    headers,
                    body: Either::Left(Empty::new()),
                };
                self.send_to(second, again, counters).await
            }
            other => other,
        }
    }

    async fn send_to(
        &self,
        idx: usize,
        req: OutRequest,
        counters: &Counters,
    ) -> Result<(Response<Incoming>, Arc<Server>), OriginError> {
        let server = Arc::clone(&self.servers[idx]);
        let uri: Uri = format!("http://{}{}", server.addr, req.path_and_query)
            .parse()
            .map_err(|_| OriginError::NoServer {
                pool: self.name.clone(),
            })?;
        let mut builder = Request::builder()
            .method(req.method)
            .uri(uri)
            .version(Version::HTTP_11);
        if let Some(h) = builder.headers_mut() {
            *h = req.headers;
        }
        let request = builder.body(req.body).map_err(|_| OriginError::NoServer {
            pool: self.name.clone(),
        })?;
        bump(&server.requests);
        bump(&counters.origin_fetches);
        bump(&server.active);
        let result =
            tokio::time::timeout(self.first_byte_timeout, self.client.request(request)).await;
        server
            .active
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        match result {
            Ok(Ok(resp)) => Ok((resp, server)),
            Ok(Err(e)) => {
                bump(&server.errors);
                bump(&counters.origin_errors);
                if e.is_connect() {
                    Err(OriginError::Connect {
                        addr: server.addr,
                        source: e,
                    })
                } else {
                    Err(OriginError::Broken {
                        addr: server.addr,
                        source: e,
                    })
                }
            }
            Err(_) => {
                bump(&server.errors);
                bump(&counters.origin_errors);
                Err(OriginError::Timeout {
                    addr: server.addr,
                    timeout: self.first_byte_timeout,
                })
            }
        }
    }
}

/// RFC 9110 §9.2.2 idempotent methods.
pub fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}
