//! End-to-end tests of the origin's routes, counters and connection handling.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::test_support::{get, raw, send, start, stats, EXCHANGE_TIMEOUT};
use super::*;

#[tokio::test]
async fn object_has_default_content_and_fields() {
    let o = start().await;
    let a = get(o.addr, "/obj/a").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, object_bytes("a", 1024));
    assert_eq!(a.header("content-length"), Some("1024"));
    assert_eq!(a.header("cache-control"), Some("max-age=3600"));
    assert_eq!(a.header("etag"), Some(etag("a", 1024).as_str()));
    assert_eq!(
        a.header("last-modified"),
        Some("Thu, 01 Jan 2026 00:00:00 GMT")
    );
    assert_eq!(a.header("content-type"), Some("application/octet-stream"));
    let date = httpdate::parse_http_date(a.header("date").unwrap()).unwrap();
    let skew = SystemTime::now().duration_since(date).unwrap_or_default();
    assert!(skew < Duration::from_secs(5));
}

#[tokio::test]
async fn object_size_and_ttl_knobs() {
    let o = start().await;
    let a = get(o.addr, "/obj/b?size=10&ttl=5").await;
    assert_eq!(a.body, object_bytes("b", 10));
    assert_eq!(a.header("cache-control"), Some("max-age=5"));
    assert_eq!(a.header("etag"), Some(etag("b", 10).as_str()));
    let empty = get(o.addr, "/obj/b?size=0").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.header("content-length"), Some("0"));
    assert!(empty.body.is_empty());
}

#[tokio::test]
async fn matching_if_none_match_gets_304() {
    let o = start().await;
    let tag = etag("a", 1024);
    let a = send(o.addr, "GET", "/obj/a", &[("if-none-match", &tag)], b"").await;
    assert_eq!(a.status, StatusCode::NOT_MODIFIED);
    assert!(a.body.is_empty());
    assert_eq!(a.header("etag"), Some(tag.as_str()));
    assert_eq!(a.header("cache-control"), Some("max-age=3600"));
    assert!(a.header("date").is_some());
    let a = send(
        o.addr,
        "GET",
        "/obj/a",
        &[("if-none-match", "\"nope\"")],
        b"",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body.len(), 1024);
}

#[tokio::test]
async fn head_sends_fields_without_body_and_keeps_the_connection_usable() {
    let o = start().await;
    let out = raw(
        o.addr,
        "HEAD /obj/h?size=300 HTTP/1.1\r\nhost: o\r\n\r\n\
         GET /health HTTP/1.1\r\nhost: o\r\nconnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8(out).unwrap();
    let parts: Vec<&str> = text.split("\r\n\r\n").collect();
    assert_eq!(parts.len(), 3, "{text}");
    assert!(parts[0].starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        parts[0]
            .to_ascii_lowercase()
            .contains("\r\ncontent-length: 300"),
        "{text}"
    );
    assert!(parts[1].starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert_eq!(parts[2], "ok\n");
}

#[tokio::test]
async fn dyn_counts_its_requests_and_is_no_store() {
    let o = start().await;
    let a = get(o.addr, "/dyn/x").await;
    assert_eq!(a.body, "dyn x 1\n");
    assert_eq!(a.header("cache-control"), Some("no-store"));
    assert_eq!(get(o.addr, "/dyn/x").await.body, "dyn x 2\n");
    assert_eq!(get(o.addr, "/dyn/y").await.body, "dyn y 1\n");
}

#[tokio::test]
async fn health_and_unknown_paths() {
    let o = start().await;
    for path in ["/health", "/health.html"] {
        let a = get(o.addr, path).await;
        assert_eq!((a.status, a.body.as_ref()), (StatusCode::OK, &b"ok\n"[..]));
    }
    let a = get(o.addr, "/nothing/here").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(get(o.addr, "/obj/").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn stats_count_each_path_and_reset_zeroes_them() {
    let o = start().await;
    get(o.addr, "/obj/a?size=1").await;
    get(o.addr, "/obj/a?size=2").await;
    send(o.addr, "HEAD", "/obj/b", &[], b"").await;
    get(o.addr, "/missing").await;
    send(o.addr, "POST", "/form", &[], b"x").await;
    assert_eq!(
        stats(o.addr).await,
        serde_json::json!({"/obj/a": 2, "/obj/b": 1, "/missing": 1, "/form": 1})
    );
    let reset = send(o.addr, "POST", RESET_PATH, &[], b"").await;
    assert_eq!(reset.status, StatusCode::OK);
    assert_eq!(stats(o.addr).await, serde_json::json!({}));
    assert_eq!(get(o.addr, "/dyn/z").await.body, "dyn z 1\n");
}

#[tokio::test]
async fn requests_share_one_keep_alive_connection() {
    let o = start().await;
    let stream = TcpStream::connect(o.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    for i in 1..=3u64 {
        let req = Request::get("/dyn/k")
            .header("host", "o")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, format!("dyn k {i}\n"));
    }
}

#[tokio::test]
async fn other_methods_echo_what_they_received() {
    let o = start().await;
    let a = send(o.addr, "POST", "/p?x=1", &[], b"hello").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, "method POST path /p body 5\n");
    assert_eq!(a.header("cache-control"), Some("no-store"));
    let a = send(o.addr, "M-SEARCH", "*", &[], b"").await;
    assert_eq!(a.body, "method M-SEARCH path * body 0\n");
    let a = send(o.addr, "PUT", "/obj/a?status=201", &[], b"abc").await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.body, "method PUT path /obj/a body 3\n");
    for m in ["DELETE", "PATCH"] {
        let a = send(o.addr, m, "/q", &[], b"").await;
        assert_eq!(a.body, format!("method {m} path /q body 0\n"));
    }
    assert_eq!(stats(o.addr).await["/q"], 2);
}

#[tokio::test]
async fn dropping_serve_closes_open_connections() {
    let o = start().await;
    let mut stream = TcpStream::connect(o.addr).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: o\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
    drop(o);
    let eof = tokio::time::timeout(EXCHANGE_TIMEOUT, stream.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(eof, Ok(0) | Err(_)), "{eof:?}");
}

#[tokio::test]
async fn origin_struct_counts_are_visible_in_process() {
    let origin = Arc::new(Origin::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(origin.clone().serve(listener));
    get(addr, "/obj/in").await;
    assert_eq!(origin.counts().get("/obj/in"), Some(&1));
    origin.reset();
    assert!(origin.counts().is_empty());
    task.abort();
}
