//! Helpers for the origin's end-to-end tests: a real listener on 127.0.0.1:0, a hyper client,
//! and raw TcpStream exchanges for when the wire format matters.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::{serve, STATS_PATH};

/// Bound on any single test exchange.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running origin; aborted (connections closed) on drop.
pub struct TestOrigin {
    pub addr: SocketAddr,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl Drop for TestOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start() -> TestOrigin {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    TestOrigin {
        addr,
        task: tokio::spawn(serve(listener)),
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// One request over a fresh hyper HTTP/1.1 connection.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &'static [u8],
) -> Answer {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "origin");
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let req = req.body(Full::new(Bytes::from_static(body))).unwrap();
    let exchange = async {
        let resp = sender.send_request(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
        .await
        .unwrap()
}

pub async fn get(addr: SocketAddr, uri: &str) -> Answer {
    send(addr, "GET", uri, &[], b"").await
}

/// Writes `request` raw and reads until the origin closes the connection.
pub async fn raw(addr: SocketAddr, request: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(EXCHANGE_TIMEOUT, stream.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

/// Splits a raw response into its head (as text) and the bytes after the blank line.
pub fn split_head(raw: &[u8]) -> (String, Vec<u8>) {
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8(raw[..at].to_vec())
            .unwrap()
            .to_ascii_lowercase(),
        raw[at + 4..].to_vec(),
    )
}

pub async fn stats(addr: SocketAddr) -> serde_json::Value {
    let a = get(addr, STATS_PATH).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), Some("application/json"));
    serde_json::from_slice(&a.body).unwrap()
}
