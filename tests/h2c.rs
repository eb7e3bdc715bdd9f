//! HTTP/2 over cleartext (prior knowledge) on the client-facing listener: the same cache,
//! the same headers, and `:authority` standing in for `Host`.

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{object_bytes, Node, Origin};

async fn h2_get(
    addr: std::net::SocketAddr,
    uri: &str,
) -> (http::StatusCode, http::HeaderMap, Bytes) {
    h2_get_with(addr, uri, &[]).await
}

async fn h2_get_with(
    addr: std::net::SocketAddr,
    uri: &str,
    headers: &[(&str, &str)],
) -> (http::StatusCode, http::HeaderMap, Bytes) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let mut req = http::Request::builder().uri(uri);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let req = req.body(Empty::<Bytes>::new()).expect("request");
    let resp = send.send_request(req).await.expect("h2 response");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("h2 body").to_bytes();
    (parts.status, parts.headers, body)
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served_and_cached() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let uri = format!("http://h2.example:{}/obj/h2?size=3000", node.addr.port());

    let (status, headers, body) = h2_get(node.addr, &uri).await;
    assert_eq!(status, 200);
    assert_eq!(&body[..], &object_bytes("h2", 3000)[..]);
    let cs = headers
        .get("cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert_eq!(cs, "a; fwd=miss; stored");
    assert_eq!(
        headers.get("via").and_then(|v| v.to_str().ok()),
        Some("1.1 a (strait)")
    );

    let (status, headers, body) = h2_get(node.addr, &uri).await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), 3000);
    let cs = headers
        .get("cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(cs.starts_with("a; hit; ttl="), "{cs}");
    assert!(headers.contains_key("age"));
    assert_eq!(origin.count("/obj/h2"), 1);
}

/// RFC 9113 §8.3.1: a `host` field that names another authority than `:authority` is refused,
/// so it can neither route nor key the request elsewhere than what is sent upstream.
#[tokio::test]
async fn an_h2_host_that_differs_from_authority_is_400() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], "");
    let uri = format!("http://h2.example:{}/obj/h2host", node.addr.port());
    let (status, _, _) = h2_get_with(node.addr, &uri, &[("host", "victim.example")]).await;
    assert_eq!(status, 400);
    assert_eq!(origin.count("/obj/h2host"), 0);
    let same = format!("h2.example:{}", node.addr.port());
    let (status, _, _) = h2_get_with(node.addr, &uri, &[("host", same.as_str())]).await;
    assert_eq!(status, 200);
    assert_eq!(origin.count("/obj/h2host"), 1);
}

/// `limits.header_read_timeout` of the nodes below: short, the margins generous.
const HEAD_TIMEOUT: &str = "[limits]\nheader_read_timeout = \"1s\"\n";
/// Long enough for the node to close a connection at a 1 s timeout on a busy machine.
const CLOSE_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
const SETTINGS: &[u8] = &[0, 0, 0, 0x4, 0, 0, 0, 0, 0];
/// A HEADERS frame on stream 1 with END_STREAM but not END_HEADERS (one HPACK byte,
/// `:method: GET`): the header block goes on in CONTINUATION frames that never come.
const HEADERS_UNFINISHED: &[u8] = &[0, 0, 1, 0x1, 0x1, 0, 0, 0, 1, 0x82];

/// Read what the node sends until it closes the connection: how long that took, or None
/// when it was still open after `CLOSE_WITHIN`.
async fn closed_after(stream: &mut tokio::net::TcpStream) -> Option<std::time::Duration> {
    use tokio::io::AsyncReadExt;
    let start = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(CLOSE_WITHIN, read_to_end).await.ok()?;
    Some(start.elapsed())
}

#[tokio::test]
async fn an_h2_connection_that_never_completes_a_request_is_closed_at_header_read_timeout() {
    use tokio::io::AsyncWriteExt;
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], HEAD_TIMEOUT);
    let cases: [(&str, Vec<u8>); 3] = [
        (
            "the preface and SETTINGS, then nothing",
            [PREFACE, SETTINGS].concat(),
        ),
        (
            "a HEADERS frame without END_HEADERS",
            [PREFACE, SETTINGS, HEADERS_UNFINISHED].concat(),
        ),
        ("part of the preface", PREFACE[..18].to_vec()),
    ];
    for (what, bytes) in &cases {
        let mut stream = tokio::net::TcpStream::connect(node.addr)
            .await
            .expect("connect");
        stream.write_all(bytes).await.expect("write");
        let took = closed_after(&mut stream).await;
        let took = took.unwrap_or_else(|| panic!("{what}: still open after {CLOSE_WITHIN:?}"));
        // Not refused on sight: closed by the timeout.
        assert!(
            took >= std::time::Duration::from_millis(500),
            "{what}: {took:?}"
        );
    }
    assert!(support::wait_until(
        std::time::Duration::from_secs(5),
        || { node.counter("header_timeouts") >= cases.len() as u64 }
    ));
}

#[tokio::test]
async fn an_h2_connection_is_closed_when_idle_but_never_under_a_slow_request() {
    let origin = Origin::start();
    let node = Node::start(&[origin.addr], HEAD_TIMEOUT);
    let stream = tokio::net::TcpStream::connect(node.addr)
        .await
        .expect("connect");
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    let conn = tokio::spawn(conn);
    // The origin takes 2.5 s, over the timeout: a request in flight is not waiting for a head.
    let uri = format!(
        "http://h2.example:{}/obj/slow-h2?size=100&delay=2500",
        node.addr.port()
    );
    let req = http::Request::builder()
        .uri(uri)
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = send.send_request(req).await.expect("h2 response");
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.expect("whole body");
    assert_eq!(body.to_bytes().len(), 100);
    // Then idle: closed within the timeout and the margin.
    let start = std::time::Instant::now();
    let ended = tokio::time::timeout(CLOSE_WITHIN, conn).await;
    assert!(
        ended.is_ok(),
        "idle h2 connection still open after {CLOSE_WITHIN:?}"
    );
    assert!(start.elapsed() >= std::time::Duration::from_millis(500));
    assert!(node.counter("header_timeouts") >= 1);
}
