//! The lean client against scripted servers on loopback: reuse, a kept connection the server
//! closed, every framing, and the failures that must never look like a complete body.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::conn::ExchangeError;
use super::{encode_request, BodyFraming, Idle, LeanBody};

/// A server that answers the n-th request on each connection with `answers[n]` (then closes
/// when the list runs out); counts its connections.
async fn server(answers: Vec<&'static [u8]>) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&conns);
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            counted.fetch_add(1, Ordering::SeqCst);
            let answers = answers.clone();
            tokio::spawn(serve(s, answers));
        }
    });
    (addr, conns)
}

async fn serve(mut s: TcpStream, answers: Vec<&'static [u8]>) {
    let mut buf = Vec::new();
    for answer in answers {
        // Read one request head.
        loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                buf.drain(..i + 4);
                break;
            }
            let mut chunk = [0u8; 1024];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        // Answer in two writes, to split the response across reads.
        let (a, b) = answer.split_at(answer.len() / 2);
        if s.write_all(a).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        if s.write_all(b).await.is_err() {
            return;
        }
    }
}

fn idle(addr: std::net::SocketAddr) -> Arc<Idle> {
    Idle::new(addr, Duration::from_secs(1), Duration::from_secs(30), 4)
}

fn get(method: &Method) -> Vec<u8> {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("o.example"));
    let mut out = Vec::new();
    encode_request(&mut out, method, "/x", &h);
    out
}

async fn body(b: LeanBody) -> Result<Vec<u8>, String> {
    b.collect()
        .await
        .map(|c| c.to_bytes().to_vec())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_finished_body_gives_its_connection_back_for_the_next_request() {
    let one = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    let two =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n";
    let (addr, conns) = server(vec![one, two]).await;
    let pool = idle(addr);
    let (h, b) = pool
        .exchange(&get(&Method::GET), false, None)
        .await
        .unwrap();
    assert_eq!(h.status, 200);
    assert_eq!(body(b).await.unwrap(), b"hello");
    assert_eq!(pool.idle(), 1);
    let (_, b) = pool
        .exchange(&get(&Method::GET), false, None)
        .await
        .unwrap();
    assert_eq!(body(b).await.unwrap(), b"abcde");
    assert_eq!(conns.load(Ordering::SeqCst), 1, "one connection for both");
    assert_eq!(pool.idle(), 1);
}

#[tokio::test]
async fn a_kept_connection_the_server_closed_is_replaced_without_an_error() {
    // Each connection answers one request, then the server closes it.
    let (addr, conns) = server(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]).await;
    let pool = idle(addr);
    for _ in 0..3 {
        let (_, b) = pool
            .exchange(&get(&Method::GET), false, None)
            .await
            .unwrap();
        assert_eq!(body(b).await.unwrap(), b"ok");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(conns.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_body_to_the_close_is_read_whole_and_the_connection_not_kept() {
    let (addr, _) = server(vec![b"HTTP/1.1 200 OK\r\n\r\nuntil the end"]).await;
    let pool = idle(addr);
    let (_, b) = pool
        .exchange(&get(&Method::GET), false, None)
        .await
        .unwrap();
    assert_eq!(body(b).await.unwrap(), b"until the end");
    assert_eq!(pool.idle(), 0);
}

#[tokio::test]
async fn short_bodies_fail_and_are_never_complete() {
    let (addr, _) = server(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"]).await;
    let pool = idle(addr);
    let (_, b) = pool
        .exchange(&get(&Method::GET), false, None)
        .await
        .unwrap();
    let e = body(b).await.unwrap_err();
    assert!(e.contains("6 bytes before the body's end"), "{e}");
    let (addr, _) = server(vec![
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    ])
    .await;
    let pool = idle(addr);
    let (_, b) = pool
        .exchange(&get(&Method::GET), false, None)
        .await
        .unwrap();
    assert!(body(b).await.is_err());
    let (addr, _) = server(vec![
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ])
    .await;
    let pool = idle(addr);
    let (_, b) = pool
        .exchange(&get(&Method::GET), false, None)
        .await
        .unwrap();
    assert!(body(b).await.unwrap_err().contains("invalid chunk size"));
    assert_eq!(pool.idle(), 0);
}

#[tokio::test]
async fn bytes_after_the_body_keep_the_connection_from_reuse() {
    let (addr, _) = server(vec![
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
    ])
    .await;
    let pool = idle(addr);
    let (_, b) = pool
        .exchange(&get(&Method::GET), false, None)
        .await
        .unwrap();
    assert_eq!(body(b).await.unwrap(), b"ok");
    assert_eq!(pool.idle(), 0);
}

#[tokio::test]
async fn interim_responses_go_to_the_sink_and_head_has_no_body() {
    let (addr, _) = server(vec![
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
    ])
    .await;
    let pool = idle(addr);
    let line = crate::interim::InterimLine::new();
    let sink = line.begin();
    let (h, b) = pool
        .exchange(&get(&Method::GET), false, Some(&sink))
        .await
        .unwrap();
    assert_eq!(h.status, 200);
    assert!(!h.headers.contains_key("link"));
    let relayed = String::from_utf8(sink.take()).unwrap();
    assert_eq!(
        relayed, "HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n",
        "100 is not relayed"
    );
    assert_eq!(body(b).await.unwrap(), b"abc");
    let (h, b) = pool
        .exchange(&get(&Method::HEAD), true, None)
        .await
        .unwrap();
    assert_eq!(h.headers["content-length"], "3");
    assert_eq!(body(b).await.unwrap(), b"");
    assert_eq!(pool.idle(), 1, "a HEAD answer leaves the connection usable");
}

#[tokio::test]
async fn a_dropped_unfinished_body_closes_its_connection() {
    let (addr, conns) = server(vec![
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nstart",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
    ])
    .await;
    let pool = idle(addr);
    let (_, b) = pool
        .exchange(&get(&Method::GET), false, None)
        .await
        .unwrap();
    drop(b);
    assert_eq!(pool.idle(), 0);
    // A new connection: the server answers it as a first request again.
    let (h, _b) = pool
        .exchange(&get(&Method::GET), false, None)
        .await
        .unwrap();
    assert_eq!(h.headers["content-length"], "100000");
    assert_eq!(conns.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn no_server_is_a_connect_error_and_a_broken_head_is_not() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let e = idle(addr)
        .exchange(&get(&Method::GET), false, None)
        .await
        .err()
        .unwrap();
    assert!(e.is_connect(), "{e}");
    let (addr, _) = server(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n"]).await;
    let e = idle(addr)
        .exchange(&get(&Method::GET), false, None)
        .await
        .err()
        .unwrap();
    assert!(matches!(e, ExchangeError::Head(_)), "{e}");
    assert!(!e.is_connect());
    let (addr, _) = server(vec![]).await;
    let e = idle(addr)
        .exchange(&get(&Method::GET), false, None)
        .await
        .err()
        .unwrap();
    // Closed at once: an end of stream or a reset, depending on timing; never a connect error.
    assert!(
        matches!(e, ExchangeError::Closed | ExchangeError::Io(_)),
        "{e}"
    );
    assert!(!e.is_connect());
}

#[tokio::test]
async fn idle_connections_are_bounded_and_expire() {
    let answer: &'static [u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
    let (addr, _) = server(vec![answer; 4]).await;
    let pool = Idle::new(addr, Duration::from_secs(1), Duration::from_millis(50), 2);
    let mut bodies = Vec::new();
    for _ in 0..3 {
        bodies.push(
            pool.exchange(&get(&Method::GET), false, None)
                .await
                .unwrap()
                .1,
        );
    }
    for b in bodies {
        body(b).await.unwrap();
    }
    assert_eq!(pool.idle(), 2, "at most max kept");
    tokio::time::sleep(Duration::from_millis(80)).await;
    let (_, b) = pool
        .exchange(&get(&Method::GET), false, None)
        .await
        .unwrap();
    assert_eq!(pool.idle(), 0, "expired ones closed at checkout");
    body(b).await.unwrap();
    assert_eq!(pool.idle(), 1);
}

/// A server that reads whole requests (a head, then the body its `Content-Length` or chunked
/// framing says), keeps each one's raw bytes, and answers `answer`; or, with `early`, answers
/// right after the head, reading nothing more.
async fn body_server(
    answer: &'static [u8],
    early: bool,
) -> (
    std::net::SocketAddr,
    Arc<AtomicUsize>,
    Arc<parking_lot::Mutex<Vec<Vec<u8>>>>,
) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let (counted, kept) = (Arc::clone(&conns), Arc::clone(&seen));
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            let kept = Arc::clone(&kept);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(n) = whole_request(&mut s, &mut buf, early).await else {
                        return;
                    };
                    kept.lock().push(buf.drain(..n).collect());
                    if s.write_all(answer).await.is_err() {
                        return;
                    }
                    if early {
                        // Waits for nothing more.
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        return;
                    }
                }
            });
        }
    });
    (addr, conns, seen)
}

/// The length of the first whole request in `buf` (reading more from `s` as needed).
async fn whole_request(s: &mut TcpStream, buf: &mut Vec<u8>, head_only: bool) -> Option<usize> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
            let start = i + 4;
            if head_only {
                return Some(start);
            }
            if let Some(l) = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
            {
                let end = start + l.trim().parse::<usize>().unwrap();
                if buf.len() >= end {
                    return Some(end);
                }
            } else if head.contains("transfer-encoding: chunked") {
                if let Some(j) = buf[start..].windows(5).position(|w| w == b"0\r\n\r\n") {
                    return Some(start + j + 5);
                }
            } else {
                return Some(start);
            }
        }
        let mut chunk = [0u8; 64 * 1024];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

type TestFrame = Result<http_body::Frame<bytes::Bytes>, std::convert::Infallible>;

/// A request body whose frames are sent on the returned channel (its end when it is dropped).
fn channel_body() -> (
    tokio::sync::mpsc::Sender<bytes::Bytes>,
    impl http_body::Body<Data = bytes::Bytes, Error = std::convert::Infallible> + Unpin,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let b = rx.recv().await?;
        Some((
            Ok::<_, std::convert::Infallible>(http_body::Frame::data(b)),
            rx,
        ))
    });
    (tx, http_body_util::StreamBody::new(Box::pin(stream)))
}

fn post_head(framing: &str) -> Vec<u8> {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("o.example"));
    let (name, value) = framing.split_once(": ").unwrap();
    h.insert(
        http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
        HeaderValue::from_str(value).unwrap(),
    );
    let mut out = Vec::new();
    encode_request(&mut out, &Method::POST, "/up", &h);
    out
}

const OK2: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const TOO_LARGE: &[u8] = b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 2\r\n\r\nno";

#[tokio::test]
async fn a_streamed_body_arrives_whole_and_the_connection_is_reused() {
    let (addr, conns, seen) = body_server(OK2, false).await;
    let pool = idle(addr);
    // Chunked, frames as they come (the first one after the head went alone).
    let head = post_head("transfer-encoding: chunked");
    let (tx, mut b) = channel_body();
    let feed = tokio::spawn(async move {
        for part in [&b"hello"[..], b"", b" world"] {
            tokio::time::sleep(Duration::from_millis(5)).await;
            tx.send(bytes::Bytes::from_static(part)).await.unwrap();
        }
    });
    let (h, rb) = pool
        .exchange_with_body(
            &head,
            &mut b,
            Some(BodyFraming::Chunked),
            false,
            false,
            None,
        )
        .await
        .unwrap();
    feed.await.unwrap();
    assert_eq!(h.status, 200);
    assert_eq!(body(rb).await.unwrap(), b"ok");
    assert_eq!(
        pool.idle(),
        1,
        "a complete exchange gives its connection back"
    );
    // Content-Length, 1 MiB in 16 KiB frames, on the kept connection.
    let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let head = post_head(&format!("content-length: {}", big.len()));
    let v: Vec<TestFrame> = big
        .chunks(16 * 1024)
        .map(|c| Ok(http_body::Frame::data(bytes::Bytes::copy_from_slice(c))))
        .collect();
    let mut b = http_body_util::StreamBody::new(futures_util::stream::iter(v));
    let framing = Some(BodyFraming::Length(big.len() as u64));
    let (_, rb) = pool
        .exchange_with_body(&head, &mut b, framing, false, false, None)
        .await
        .unwrap();
    assert_eq!(body(rb).await.unwrap(), b"ok");
    assert_eq!(conns.load(Ordering::SeqCst), 1);
    let seen = seen.lock();
    let chunked = post_head("transfer-encoding: chunked");
    assert_eq!(
        seen[0],
        [&chunked[..], b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"].concat()
    );
    assert_eq!(seen[1], [&head[..], &big[..]].concat());
}

#[tokio::test]
async fn a_refusal_before_the_body_ends_is_taken_and_its_connection_closed() {
    let (addr, conns, _) = body_server(TOO_LARGE, true).await;
    let pool = idle(addr);
    let head = post_head("content-length: 100");
    let (tx, mut b) = channel_body();
    tx.send(bytes::Bytes::from_static(b"part")).await.unwrap();
    // The rest never comes: the answer must not wait for it.
    let (h, rb) = tokio::time::timeout(
        Duration::from_secs(2),
        pool.exchange_with_body(
            &head,
            &mut b,
            Some(BodyFraming::Length(100)),
            false,
            false,
            None,
        ),
    )
    .await
    .expect("the early answer is taken")
    .unwrap();
    assert_eq!(h.status, 413);
    assert_eq!(body(rb).await.unwrap(), b"no");
    assert_eq!(
        pool.idle(),
        0,
        "an unfinished request's connection is not kept"
    );
    drop(tx);
    assert_eq!(conns.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_early_answer_that_is_not_a_refusal_still_gets_the_rest_of_the_body() {
    // The server answers 200 right after the head, then reads the body to its end.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let got = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = Vec::new();
        let n = whole_request(&mut s, &mut buf, true).await.unwrap();
        s.write_all(OK2).await.unwrap();
        let mut rest = buf.split_off(n);
        while rest.len() < 10 {
            let mut more = [0u8; 64];
            let k = tokio::io::AsyncReadExt::read(&mut s, &mut more)
                .await
                .unwrap();
            assert!(k > 0, "the body stopped at {} bytes", rest.len());
            rest.extend_from_slice(&more[..k]);
        }
        rest
    });
    let pool = idle(addr);
    let head = post_head("content-length: 10");
    let (tx, mut b) = channel_body();
    tx.send(bytes::Bytes::from_static(b"hello")).await.unwrap();
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        tx.send(bytes::Bytes::from_static(b"world")).await.unwrap();
    });
    let (h, rb) = tokio::time::timeout(
        Duration::from_secs(5),
        pool.exchange_with_body(
            &head,
            &mut b,
            Some(BodyFraming::Length(10)),
            false,
            false,
            None,
        ),
    )
    .await
    .expect("answered")
    .unwrap();
    sender.await.unwrap();
    assert_eq!(h.status, 200);
    assert_eq!(body(rb).await.unwrap(), b"ok");
    assert_eq!(got.await.unwrap(), b"helloworld");
    assert_eq!(pool.idle(), 0, "an early answer's connection is not kept");
}

/// A pool whose one kept connection the server has closed (it answers one request per
/// connection), and the server's connection count.
async fn pool_with_a_closed_kept_connection() -> (Arc<Idle>, Arc<AtomicUsize>) {
    let (addr, conns) = server(vec![OK2]).await;
    let pool = idle(addr);
    let (_, rb) = pool
        .exchange(&get(&Method::GET), false, None)
        .await
        .unwrap();
    body(rb).await.unwrap();
    assert_eq!(pool.idle(), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    (pool, conns)
}

#[tokio::test]
async fn a_kept_connection_the_server_closed_is_not_used_for_a_body() {
    let (pool, conns) = pool_with_a_closed_kept_connection().await;
    let head = post_head("content-length: 0");
    let mut b = http_body_util::Empty::<bytes::Bytes>::new();
    // Not resendable: it must not have gone on the dead connection.
    let (h, rb) = pool
        .exchange_with_body(
            &head,
            &mut b,
            Some(BodyFraming::Length(0)),
            false,
            false,
            None,
        )
        .await
        .unwrap();
    assert_eq!(h.status, 200);
    body(rb).await.unwrap();
    assert_eq!(conns.load(Ordering::SeqCst), 2);
}

/// A request written whole (its body after its head) and not resendable: a POST.
fn whole_post() -> Vec<u8> {
    let mut head = post_head("content-length: 3");
    head.extend_from_slice(b"abc");
    head
}

#[tokio::test]
async fn a_whole_request_that_may_not_go_again_skips_a_closed_kept_connection() {
    let (pool, conns) = pool_with_a_closed_kept_connection().await;
    let (h, rb) = pool
        .exchange_as(&whole_post(), (false, false), false, None)
        .await
        .unwrap();
    assert_eq!(h.status, 200);
    body(rb).await.unwrap();
    assert_eq!(conns.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_whole_request_that_may_not_go_again_is_sent_once_when_its_connection_dies() {
    // Answers the first request of each connection, then reads the next one whole and closes
    // without a word: the server may have acted on it.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let counted = Arc::clone(&counted);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                let mut answered = false;
                loop {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    buf.drain(..i + 4);
                    counted.fetch_add(1, Ordering::SeqCst);
                    if answered {
                        return;
                    }
                    answered = true;
                    if s.write_all(OK2).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let pool = idle(addr);
    let (_, rb) = pool
        .exchange(&get(&Method::GET), false, None)
        .await
        .unwrap();
    body(rb).await.unwrap();
    assert_eq!(pool.idle(), 1);
    let failed = pool
        .exchange_as(&whole_post(), (false, false), false, None)
        .await;
    assert!(failed.is_err(), "the request's connection died unanswered");
    assert_eq!(seen.load(Ordering::SeqCst), 2, "sent once, never again");
    // The pool goes on, on a new connection.
    let (h, rb) = pool
        .exchange_as(&get(&Method::GET), (false, false), true, None)
        .await
        .unwrap();
    assert_eq!(h.status, 200);
    body(rb).await.unwrap();
}
