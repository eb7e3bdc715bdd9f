//! End-to-end tests of the origin's test knobs (query parameters), over real connections.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::test_support::{get, raw, send, split_head, start, EXCHANGE_TIMEOUT};
use super::*;

#[tokio::test]
async fn delay_holds_the_head_back() {
    let o = start().await;
    let t = Instant::now();
    let a = get(o.addr, "/obj/a?delay=200&size=3").await;
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(a.body, object_bytes("a", 3));
}

#[tokio::test]
async fn status_knob_sets_the_status_but_keeps_the_body() {
    let o = start().await;
    let a = get(o.addr, "/obj/a?status=503&size=4").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.body, object_bytes("a", 4));
    let a = get(o.addr, "/dyn/a?status=404").await;
    assert_eq!(
        (a.status, a.body.as_ref()),
        (StatusCode::NOT_FOUND, &b"dyn a 1\n"[..])
    );
    let tag = etag("a", 1024);
    let a = send(
        o.addr,
        "GET",
        "/obj/a?status=200",
        &[("if-none-match", &tag)],
        b"",
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn cc_knob_replaces_or_removes_cache_control() {
    let o = start().await;
    let a = get(o.addr, "/obj/a?cc=private%2C%20max-age%3D5").await;
    assert_eq!(a.header("cache-control"), Some("private, max-age=5"));
    let a = get(o.addr, "/obj/a?cc=").await;
    assert_eq!(a.header("cache-control"), None);
    let a = get(o.addr, "/dyn/a?cc=max-age%3D60").await;
    assert_eq!(a.header("cache-control"), Some("max-age=60"));
}

#[tokio::test]
async fn vary_knob_makes_variants_differ() {
    let o = start().await;
    let uri = "/obj/v?vary=Accept-Language&size=64";
    let en = send(o.addr, "GET", uri, &[("accept-language", "en")], b"").await;
    let fr = send(o.addr, "GET", uri, &[("accept-language", "fr")], b"").await;
    let none = get(o.addr, uri).await;
    assert_eq!(en.header("vary"), Some("accept-language"));
    assert_eq!(en.body, object_bytes(&variant_key("v", &["en"]), 64));
    assert_eq!(fr.body, object_bytes(&variant_key("v", &["fr"]), 64));
    assert_eq!(none.body, object_bytes(&variant_key("v", &[""]), 64));
    assert_ne!(en.body, fr.body);
    assert_eq!(
        en.header("etag"),
        Some(etag(&variant_key("v", &["en"]), 64).as_str())
    );
    assert_ne!(en.header("etag"), fr.header("etag"));
}

#[tokio::test]
async fn chunked_knob_sends_4k_chunks_without_length() {
    let o = start().await;
    let out = raw(
        o.addr,
        "GET /obj/c?size=10000&chunked=1 HTTP/1.1\r\nhost: o\r\nconnection: close\r\n\r\n",
    )
    .await;
    let (head, body) = split_head(&out);
    assert!(head.contains("\r\ntransfer-encoding: chunked"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    // 4096 = 0x1000, twice, then the 1808-byte (0x710) rest and the last chunk.
    let data = object_bytes("c", 10_000);
    let mut want = Vec::new();
    for (size, piece) in [
        ("1000", &data[..4096]),
        ("1000", &data[4096..8192]),
        ("710", &data[8192..]),
    ] {
        want.extend_from_slice(format!("{size}\r\n").as_bytes());
        want.extend_from_slice(piece);
        want.extend_from_slice(b"\r\n");
    }
    want.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(body.len(), want.len());
    assert!(body == want, "chunked body differs");
}

#[tokio::test]
async fn chunk_delay_paces_the_chunks() {
    let o = start().await;
    let t = Instant::now();
    let a = get(o.addr, "/obj/p?size=10000&chunked=1&chunk_delay=100").await;
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(a.body, object_bytes("p", 10_000));
}

#[tokio::test]
async fn chunk_delay_alone_paces_a_body_of_known_length() {
    let o = start().await;
    let t = Instant::now();
    let out = raw(
        o.addr,
        "GET /obj/s?size=10000&chunk_delay=100 HTTP/1.1\r\nhost: o\r\nconnection: close\r\n\r\n",
    )
    .await;
    // 3 pieces of 4 KiB, 100 ms apart.
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    let (head, body) = split_head(&out);
    assert!(head.contains("\r\ncontent-length: 10000"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert_eq!(body, object_bytes("s", 10_000).to_vec());
}

#[tokio::test]
async fn cut_knob_closes_after_k_body_bytes_with_the_full_length_announced() {
    let o = start().await;
    let out = raw(
        o.addr,
        "GET /obj/d?size=10000&cut=100 HTTP/1.1\r\nhost: o\r\n\r\n",
    )
    .await;
    let (head, body) = split_head(&out);
    assert!(head.starts_with("http/1.1 200 ok"), "{head}");
    assert!(head.contains("\r\ncontent-length: 10000"), "{head}");
    assert_eq!(body, object_bytes("d", 10_000)[..100].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_of_a_large_body_delivers_exactly_k_bytes() {
    let o = start().await;
    let out = raw(
        o.addr,
        "GET /obj/big?size=4000000&cut=3000001 HTTP/1.1\r\nhost: o\r\n\r\n",
    )
    .await;
    let (head, body) = split_head(&out);
    assert!(head.contains("\r\ncontent-length: 4000000"), "{head}");
    assert_eq!(body.len(), 3_000_001);
    assert!(body == object_bytes("big", 3_000_001), "cut body differs");
}

#[tokio::test]
async fn cut_to_zero_sends_only_the_head() {
    let o = start().await;
    let out = raw(
        o.addr,
        "GET /obj/z?size=50&cut=0 HTTP/1.1\r\nhost: o\r\n\r\n",
    )
    .await;
    let (head, body) = split_head(&out);
    assert!(head.contains("\r\ncontent-length: 50"), "{head}");
    assert!(body.is_empty());
}

#[tokio::test]
async fn cut_body_is_an_error_for_an_http_client() {
    let o = start().await;
    let stream = TcpStream::connect(o.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/obj/e?size=5000&cut=1000")
        .header("host", "o")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let collected = tokio::time::timeout(EXCHANGE_TIMEOUT, resp.into_body().collect())
        .await
        .unwrap();
    assert!(collected.is_err(), "a cut body must not look complete");
}

#[tokio::test]
async fn cut_with_chunked_stops_mid_stream() {
    let o = start().await;
    let out = raw(
        o.addr,
        "GET /obj/f?size=10000&chunked=1&cut=5000 HTTP/1.1\r\nhost: o\r\n\r\n",
    )
    .await;
    let (head, body) = split_head(&out);
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(!body.ends_with(b"0\r\n\r\n"));
    let data = object_bytes("f", 10_000);
    let mut want = b"1000\r\n".to_vec();
    want.extend_from_slice(&data[..4096]);
    want.extend_from_slice(b"\r\n388\r\n");
    want.extend_from_slice(&data[4096..5000]);
    want.extend_from_slice(b"\r\n");
    assert_eq!(body.len(), want.len());
    assert!(body == want, "chunked cut body differs");
}

#[tokio::test]
async fn validators_can_be_switched_off() {
    let o = start().await;
    let a = get(o.addr, "/obj/a?etag=0").await;
    assert_eq!(a.header("etag"), None);
    assert!(a.header("last-modified").is_some());
    let a = get(o.addr, "/obj/a?lm=0").await;
    assert_eq!(a.header("last-modified"), None);
    assert_eq!(a.header("etag"), Some(etag("a", 1024).as_str()));
    let since = [("if-modified-since", "Fri, 02 Jan 2026 00:00:00 GMT")];
    let a = send(o.addr, "GET", "/obj/a", &since, b"").await;
    assert_eq!(a.status, StatusCode::NOT_MODIFIED);
    let a = send(o.addr, "GET", "/obj/a?lm=0", &since, b"").await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn hdr_knob_adds_fields() {
    let o = start().await;
    let a = get(
        o.addr,
        "/obj/a?hdr=X-Test%3A%20one&hdr=X-Test:two&hdr=Expires:0",
    )
    .await;
    let xs: Vec<&str> = a
        .headers
        .get_all("x-test")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(xs, vec!["one", "two"]);
    assert_eq!(a.header("expires"), Some("0"));
}

#[tokio::test]
async fn bad_knob_is_a_400_and_still_counted() {
    let o = start().await;
    let a = get(o.addr, "/obj/a?size=lots").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body, "bad query parameter size=lots: not a byte count\n");
    let a = get(o.addr, "/obj/a?status=42").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let counts = get(o.addr, STATS_PATH).await;
    assert_eq!(counts.body, "{\"/obj/a\":2}");
}

#[tokio::test]
async fn sum_knob_states_size_and_sha256_of_every_body() {
    let o = start().await;
    for uri in [
        "/obj/a?size=5000&sum=1",
        "/obj/a?size=5000&sum=1&chunked=1",
        "/dyn/a?sum=1",
    ] {
        let a = get(o.addr, uri).await;
        assert_eq!(digest::check(&a.headers, &a.body), Ok(()), "{uri}");
    }
    let a = get(o.addr, "/obj/a?size=5000&sum=1").await;
    assert_eq!(a.header("x-content-size"), Some("5000"));
    assert_eq!(
        a.header("x-content-sha256"),
        Some(digest::sha256_hex(&object_bytes("a", 5000)).as_str())
    );
    let a = get(o.addr, "/obj/a?size=5").await;
    assert_eq!(a.header("x-content-sha256"), None);
    let tag = etag("a", 1024);
    let a = send(
        o.addr,
        "GET",
        "/obj/a?sum=1",
        &[("if-none-match", &tag)],
        b"",
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_MODIFIED);
    assert_eq!(a.header("x-content-sha256"), None);
}
