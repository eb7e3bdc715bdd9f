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
