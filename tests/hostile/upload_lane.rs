//! The upload lane (`cache/src/http/upload_lane.rs`): a request with a `Content-Length` body,
//! or a plain chunked one (whole, or streamed as it arrives), served by the connection's own loop. It must take the request (`upload_lane` counts it),
//! send the origin exactly the client's bytes and nothing after them, leave a pipelined
//! request to be read as a request, hold `max_request_body`, `body_timeout` and a client that
//! goes away as the general path does, stop an upload the origin refused early, and answer
//! every request it does not take exactly as hyper does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::strict::{self, Strict};
use crate::support::IO_TIMEOUT;
use crate::{connect, node, ORIGIN_IP};

/// One request as the origin read it: its head (request line and fields) and its body.
#[derive(Clone, Debug)]
struct Got {
    head: String,
    body: Vec<u8>,
    /// Chunks of a chunked body.
    chunks: usize,
}

impl Got {
    fn line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A keep-alive origin that records every request byte for byte. Targets under `/early/`
/// are answered 403 as soon as their head is read (the body is then read, and dropped, on
/// the way to the next request); `/early-ok/` the same with a 200; anything else after its
/// whole body, with `method <M> body <n>`.
struct Recorder {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Recorder {
    fn start() -> Recorder {
        let l = TcpListener::bind(format!("{ORIGIN_IP}:0")).expect("bind");
        let addr = l.local_addr().expect("addr");
        let got = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&got);
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let log = Arc::clone(&log);
                std::thread::spawn(move || serve(conn, &log));
            }
        });
        Recorder { addr, got }
    }

    fn requests(&self) -> Vec<Got> {
        self.got.lock().expect("got").clone()
    }
}

fn serve(conn: TcpStream, log: &Mutex<Vec<Got>>) {
    let mut r = BufReader::new(conn);
    while let Some(head) = crate::support::read_head(&mut r) {
        let mut got = Got {
            head,
            body: Vec::new(),
            chunks: 0,
        };
        let chunked = got.field("transfer-encoding").is_some();
        let mut len: usize = got
            .field("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let target = got.line().split(' ').nth(1).unwrap_or("").to_string();
        let early = |status: &str| format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\n\r\nearly");
        if target.starts_with("/early/") || target.starts_with("/early-ok/") {
            let status = if target.starts_with("/early/") {
                "403 Forbidden"
            } else {
                "200 OK"
            };
            if r.get_mut().write_all(early(status).as_bytes()).is_err() {
                return;
            }
        }
        let whole = if chunked {
            let body = read_chunked(&mut r, &mut got.chunks);
            got.body = body.clone().unwrap_or_default();
            len = got.body.len();
            body.is_some()
        } else {
            got.body.resize(len, 0);
            r.read_exact(&mut got.body).is_ok()
        };
        if !whole {
            got.body.clear();
        }
        let method = got.line().split(' ').next().unwrap_or("").to_string();
        log.lock().expect("got").push(got);
        if !whole {
            return;
        }
        if target.starts_with("/early") {
            continue;
        }
        let text = format!("method {method} body {len}\n");
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\r\n{text}",
            text.len()
        );
        if r.get_mut().write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// A chunked body (no trailers), None when the connection ended first; `chunks` counts its
/// chunks.
fn read_chunked(r: &mut BufReader<TcpStream>, chunks: &mut usize) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let n = usize::from_str_radix(line.trim(), 16).ok()?;
        let mut data = vec![0; n + 2];
        r.read_exact(&mut data).ok()?;
        if n == 0 {
            return Some(body);
        }
        *chunks += 1;
        body.extend_from_slice(&data[..n]);
    }
}

/// Bytes that are not all alike (a shifted or cut body cannot look right).
fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36])
        .collect()
}

fn post_head(method: &str, target: &str, len: usize, extra: &str) -> Vec<u8> {
    format!(
        "{method} {target} HTTP/1.1\r\nHost: test.example\r\nContent-Length: {len}\r\n\
         User-Agent: lane-test\r\n{extra}\r\n"
    )
    .into_bytes()
}

#[test]
fn a_post_takes_the_lane_the_origin_gets_its_exact_bytes_and_a_pipelined_get_follows() {
    let origin = Recorder::start();
    let node = node(&[origin.addr], "");
    let body = pattern(1000);
    let mut raw = post_head(
        "POST",
        "/api/items?x=1",
        body.len(),
        "X-Forwarded-For: 192.0.2.9\r\n",
    );
    raw.extend_from_slice(&body);
    // A second upload and a GET in the same write: each must be read as a request.
    raw.extend_from_slice(&post_head("PUT", "/api/items/7", 3, ""));
    raw.extend_from_slice(b"GET");
    raw.extend_from_slice(
        b"GET /api/after HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n",
    );
    let mut r = connect(node.addr, IO_TIMEOUT);
    r.get_mut().write_all(&raw).expect("write");
    let first = strict::read_final(&mut r, false).expect("first");
    assert_eq!(first.status, 200);
    assert_eq!(first.body, b"method POST body 1000\n");
    let via = first.header("via").expect("via");
    assert!(via.contains("a (strait)"), "{via}");
    assert!(first.header("date").is_some());
    let cs = first.header("cache-status").expect("cache-status");
    assert_eq!(cs, "a; fwd=method");
    assert!(!first.closes());
    let second = strict::read_final(&mut r, false).expect("second");
    assert_eq!(
        (second.status, &second.body[..]),
        (200, &b"method PUT body 3\n"[..])
    );
    let third = strict::read_final(&mut r, false).expect("third");
    assert_eq!(third.status, 200);
    strict::expect_closed(&mut r).expect("closed after the third");

    let got = origin.requests();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(got[0].line(), "POST /api/items?x=1 HTTP/1.1");
    assert_eq!(
        got[0].body, body,
        "the origin got the client's bytes exactly"
    );
    assert_eq!(got[0].field("content-length"), Some("1000"));
    assert_eq!(got[0].field("host"), Some("test.example"));
    assert_eq!(got[0].field("user-agent"), Some("lane-test"));
    let xff = got[0].field("x-forwarded-for").unwrap_or("");
    assert!(
        xff.starts_with("192.0.2.9, 127.0.") && !xff.contains(" 192.0.2.9"),
        "{xff}"
    );
    assert!(got[0]
        .field("via")
        .is_some_and(|v| v.contains("a (strait)")));
    assert!(got[0].field("forwarded").is_some());
    assert_eq!(got[1].line(), "PUT /api/items/7 HTTP/1.1");
    assert_eq!(
        got[1].body, b"GET",
        "the body is the three bytes, not the request after"
    );
    assert_eq!(got[2].line(), "GET /api/after HTTP/1.1");
    assert_eq!(node.counter("upload_lane"), 2, "both uploads took the lane");
    assert_eq!(node.counter("passed"), 2);
}

/// A chunked upload of `chunks` (their sizes) of [`pattern`] bytes, and the body it carries.
fn chunked_upload(target: &str, chunks: &[usize]) -> (Vec<u8>, Vec<u8>) {
    let mut raw = format!(
        "PUT {target} HTTP/1.1\r\nHost: test.example\r\nTransfer-Encoding: chunked\r\n\
         User-Agent: lane-test\r\n\r\n"
    )
    .into_bytes();
    let mut body = Vec::new();
    for &n in chunks {
        let data = pattern(n + body.len())[body.len()..].to_vec();
        raw.extend_from_slice(format!("{n:X}\r\n").as_bytes());
        raw.extend_from_slice(&data);
        raw.extend_from_slice(b"\r\n");
        body.extend_from_slice(&data);
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    (raw, body)
}

#[test]
fn a_whole_chunked_upload_takes_the_lane_and_goes_up_with_its_length() {
    let origin = Recorder::start();
    let node = node(&[origin.addr], "");
    // Three chunks, then a request in the same write.
    let (mut raw, body) = chunked_upload("/chunked", &[700, 1, 300]);
    raw.extend_from_slice(b"GET /after HTTP/1.1\r\nHost: test.example\r\n\r\n");
    // One that ends past the room of the node's first read of a connection (8 KiB), behind
    // an upload with a length: the lane reads on rather than leave it to hyper.
    let mut padding = post_head("POST", "/padding", 0, "");
    let pad = 8 * 1024 - 200 - padding.len() - 20;
    padding = post_head("POST", "/padding", pad, "");
    padding.extend_from_slice(&pattern(pad));
    let (straddling, straddling_body) = chunked_upload("/straddling", &[1000]);
    padding.extend_from_slice(&straddling);
    padding
        .extend_from_slice(b"GET /end HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n");
    let mut r = connect(node.addr, IO_TIMEOUT);
    r.get_mut().write_all(&raw).expect("write");
    let first = strict::read_final(&mut r, false).expect("first");
    assert_eq!(
        (first.status, &first.body[..]),
        (200, &b"method PUT body 1001\n"[..])
    );
    assert_eq!(first.header("cache-status"), Some("a; fwd=method"));
    assert!(!first.closes());
    let after = strict::read_final(&mut r, false).expect("after");
    assert_eq!(after.status, 200);
    assert_eq!(
        node.counter("upload_lane"),
        1,
        "the chunked upload took the lane"
    );

    let (answers, end) = outcome(node.addr, &padding);
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!((&statuses[..], &end[..]), (&[200, 200, 200][..], "closed"));
    assert_eq!(answers[1].1, b"method PUT body 1000\n");
    assert_eq!(
        node.counter("upload_lane"),
        3,
        "the upload cut by the first read took the lane too"
    );

    let got = origin.requests();
    let of = |t: &str| got.iter().find(|g| g.line().contains(t)).expect(t).clone();
    let up = of("/chunked");
    assert_eq!(up.line(), "PUT /chunked HTTP/1.1");
    assert_eq!(up.body, body, "the origin got the chunks' data exactly");
    assert_eq!(up.field("content-length"), Some("1001"));
    assert_eq!(up.field("transfer-encoding"), None);
    assert_eq!(up.field("user-agent"), Some("lane-test"));
    assert!(up.field("via").is_some_and(|v| v.contains("a (strait)")));
    assert_eq!(of("/straddling").body, straddling_body);
    assert_eq!(of("/padding").body.len(), pad);
    assert!(got.iter().any(|g| g.line() == "GET /after HTTP/1.1"));
}

#[test]
fn a_chunked_upload_that_does_not_come_whole_streams_on_the_lane() {
    let origin = Recorder::start();
    let node = node(
        &[origin.addr],
        "[limits]\nmax_request_body = \"1MiB\"\nbody_timeout = \"1s\"\n",
    );
    // 300 KiB in chunks of several sizes, with extensions, and a trailer section; written in
    // pieces with pauses (so the node cannot have it whole), a GET pipelined behind it.
    let body = pattern(300 * 1024);
    let mut raw =
        b"POST /streamed HTTP/1.1\r\nHost: test.example\r\nTransfer-Encoding: chunked\r\n\
                    User-Agent: lane-test\r\n\r\n"
            .to_vec();
    let mut at = 0;
    for (i, n) in [1usize, 4096, 70_000, 17, 100_000]
        .iter()
        .cycle()
        .enumerate()
    {
        if at == body.len() {
            break;
        }
        let n = (*n).min(body.len() - at);
        let ext = if i % 2 == 0 { ";name=value" } else { "" };
        raw.extend_from_slice(format!("{n:x}{ext}\r\n").as_bytes());
        raw.extend_from_slice(&body[at..at + n]);
        raw.extend_from_slice(b"\r\n");
        at += n;
    }
    raw.extend_from_slice(b"0\r\nX-Checksum: 1\r\n\r\n");
    raw.extend_from_slice(
        b"GET /after HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n",
    );
    let mut r = connect(node.addr, IO_TIMEOUT);
    for piece in raw.chunks(50_000) {
        r.get_mut().write_all(piece).expect("write");
        std::thread::sleep(Duration::from_millis(30));
    }
    let first = strict::read_final(&mut r, false).expect("first");
    assert_eq!(
        (first.status, &first.body[..]),
        (200, format!("method POST body {}\n", body.len()).as_bytes())
    );
    assert_eq!(first.header("cache-status"), Some("a; fwd=method"));
    assert!(
        !first.closes(),
        "the whole body was read: the connection goes on"
    );
    let after = strict::read_final(&mut r, false).expect("after");
    assert_eq!(after.status, 200);
    assert_eq!(
        node.counter("upload_lane"),
        1,
        "the streamed upload took the lane"
    );
    let got = origin.requests();
    let up = got
        .iter()
        .find(|g| g.line().contains("/streamed"))
        .expect("sent up");
    assert_eq!(up.field("transfer-encoding"), Some("chunked"));
    assert_eq!(up.field("content-length"), None);
    assert_eq!(up.field("x-checksum"), None, "trailers are dropped");
    assert!(up.body == body, "the origin got the chunks' data exactly");

    // A size line past the limit in the middle of the stream: 413 at that line (before its
    // data), the connection ends, and the origin never gets a whole body.
    let mut raw =
        b"POST /over HTTP/1.1\r\nHost: test.example\r\nTransfer-Encoding: chunked\r\n\r\n\
                    10\r\n0123456789abcdef\r\n"
            .to_vec();
    let mut r = connect(node.addr, IO_TIMEOUT);
    r.get_mut().write_all(&raw).expect("write");
    std::thread::sleep(Duration::from_millis(100));
    raw = b"100000\r\nonly this".to_vec();
    r.get_mut().write_all(&raw).expect("write");
    let resp = strict::read_final(&mut r, false).expect("answer");
    assert_eq!(resp.status, 413, "{resp:?}");
    assert!(resp.closes());
    // A malformed size line: 400; a client that stalls mid-chunk: 408 at `body_timeout`.
    for (raw, status) in [
        (&b"5\r\nhello\r\nzz\r\n"[..], 400),
        (&b"100\r\nnot all of it"[..], 408),
    ] {
        let mut r = connect(node.addr, IO_TIMEOUT);
        let head = b"PUT /bad HTTP/1.1\r\nHost: test.example\r\nTransfer-Encoding: chunked\r\n\r\n";
        r.get_mut().write_all(head).expect("write");
        std::thread::sleep(Duration::from_millis(50));
        r.get_mut().write_all(raw).expect("write");
        let resp = strict::read_final(&mut r, false).expect("answer");
        assert_eq!(resp.status, status, "{resp:?}");
        assert!(resp.closes());
    }
    assert_eq!(node.counter("upload_lane"), 4);
    let got = origin.requests();
    assert!(
        got.iter()
            .filter(|g| g.line().contains("/over") || g.line().contains("/bad"))
            .all(|g| g.body.is_empty()),
        "no cut body reached the origin as whole: {got:#?}"
    );
}

#[test]
fn a_body_cut_into_tiny_chunks_goes_up_in_few() {
    // 20,000 one-byte chunks: one upstream chunk (and write) each would cost the node a
    // system call per 6 bytes the client sends. On the lane (plain or not) and on hyper's
    // path (a connection hyper already has), the origin gets the same bytes in far fewer
    // chunks.
    let origin = Recorder::start();
    let node = node(&[origin.addr], "");
    let data = pattern(20_000);
    let cases = [
        ("/tiny-lane", "", false),
        ("/tiny-parts", "Authorization: x\r\n", false),
        ("/tiny-hyper", "", true),
    ];
    for (target, extra, behind_hyper) in cases {
        let mut raw = if behind_hyper {
            TO_HYPER.to_vec()
        } else {
            Vec::new()
        };
        raw.extend_from_slice(
            format!(
                "POST {target} HTTP/1.1\r\nHost: test.example\r\n{extra}Transfer-Encoding: chunked\r\n\r\n"
            )
            .as_bytes(),
        );
        for b in &data {
            raw.extend_from_slice(b"1\r\n");
            raw.push(*b);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        let mut r = connect(node.addr, IO_TIMEOUT);
        r.get_mut().write_all(&raw).expect("write");
        if behind_hyper {
            let first = strict::read_final(&mut r, false).expect("first");
            assert_eq!(first.body, b"method POST body 1\n");
        }
        let resp = strict::read_final(&mut r, false).expect("answer");
        assert_eq!(resp.body, b"method POST body 20000\n", "{target}");
    }
    assert_eq!(
        node.counter("upload_lane"),
        2,
        "the ones on the connection's loop took the lane"
    );
    let got = origin.requests();
    for (target, most) in [
        ("/tiny-lane", 20),
        ("/tiny-parts", 20),
        ("/tiny-hyper", 1_000),
    ] {
        let up = got
            .iter()
            .find(|g| g.line().contains(target))
            .expect(target);
        assert!(up.body == data, "{target}: the exact bytes");
        assert!(up.chunks <= most, "{target}: {} chunks", up.chunks);
    }
}

#[test]
fn a_small_body_read_on_past_max_request_header_stays_on_the_lane() {
    let origin = Recorder::start();
    // Heads of at most 8 KiB: bodies of 40 KiB, sent with their heads, are read on past it.
    let node = node(&[origin.addr], "[cache]\nmax_request_header = \"8KiB\"\n");
    let body = pattern(40 * 1024);
    let mut raw = post_head("POST", "/length", body.len(), "");
    raw.extend_from_slice(&body);
    let (chunked, chunked_body) = chunked_upload("/chunked", &[20 * 1024, 20 * 1024]);
    raw.extend_from_slice(&chunked);
    raw.extend_from_slice(b"GET /end HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n");
    let (answers, end) = outcome(node.addr, &raw);
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!((&statuses[..], &end[..]), (&[200, 200, 200][..], "closed"));
    assert_eq!(node.counter("upload_lane"), 2, "both took the lane");
    let got = origin.requests();
    let of = |t: &str| got.iter().find(|g| g.line().contains(t)).expect(t).clone();
    assert_eq!(of("/length").body, body);
    assert_eq!(of("/chunked").body, chunked_body);
    // A head over the limit is still 431.
    let big = post_head(
        "POST",
        "/big",
        0,
        &format!("X-Pad: {}\r\n", "p".repeat(9000)),
    );
    let (answers, _) = outcome(node.addr, &big);
    assert_eq!(answers.first().map(|a| a.0), Some(431));
}

#[test]
fn an_upload_expecting_100_continue_gets_it_only_while_its_body_is_awaited() {
    let origin = Recorder::start();
    let node = node(&[origin.addr], "[limits]\nmax_request_body = \"1KiB\"\n");
    let body = pattern(1000);
    // The client waits for the 100 before its body.
    let mut r = connect(node.addr, IO_TIMEOUT);
    let head = post_head("POST", "/waits", body.len(), "Expect: 100-continue\r\n");
    r.get_mut().write_all(&head).expect("head");
    let interim = strict::read(&mut r, false)
        .expect("read")
        .expect("an answer");
    assert_eq!(interim.status, 100, "the 100 before the body");
    r.get_mut().write_all(&body).expect("body");
    let fin = strict::read_final(&mut r, false).expect("final");
    assert_eq!(
        (fin.status, &fin.body[..]),
        (200, &b"method POST body 1000\n"[..])
    );
    assert_eq!(node.counter("upload_lane"), 1);
    // A client that sent its body with its head gets no 100: the final answer comes first.
    let mut raw = post_head("POST", "/sent", body.len(), "Expect: 100-continue\r\n");
    raw.extend_from_slice(&body);
    r.get_mut().write_all(&raw).expect("write");
    let first = strict::read(&mut r, false)
        .expect("read")
        .expect("an answer");
    assert_eq!(first.status, 200, "no 100 for a body already sent");
    assert_eq!(node.counter("upload_lane"), 2);
    // One refused at its head gets its final answer at once, no 100, and the origin nothing.
    let mut r = connect(node.addr, IO_TIMEOUT);
    let head = post_head("POST", "/over", 1025, "Expect: 100-continue\r\n");
    r.get_mut().write_all(&head).expect("head");
    let first = strict::read(&mut r, false)
        .expect("read")
        .expect("an answer");
    assert_eq!(first.status, 413);
    // The same upload behind hyper (a chunked upload that is not plain moves the connection
    // there first).
    let mut behind = TO_HYPER.to_vec();
    behind.extend_from_slice(&post_head(
        "POST",
        "/hyper",
        body.len(),
        "Expect: 100-continue\r\nConnection: close\r\n",
    ));
    behind.extend_from_slice(&body);
    let (answers, _) = outcome(node.addr, &behind);
    assert_eq!(answers.len(), 2);
    assert_eq!(node.counter("upload_lane"), 2, "hyper's was not the lane's");
    let got = origin.requests();
    let of = |t: &str| got.iter().find(|g| g.line().contains(t)).expect(t).clone();
    for t in ["/waits", "/sent", "/hyper"] {
        assert_eq!(of(t).body, body, "{t}");
    }
    assert!(got.iter().all(|g| !g.line().contains("/over")));
    // What goes upstream is what the general path sends (`Expect` included).
    let (sent, hyper) = (fields(&of("/sent")), fields(&of("/hyper")));
    assert_eq!(sent, hyper);
    assert!(sent
        .iter()
        .any(|(n, v)| n == "expect" && v == "100-continue"));
}

/// Where a request's fields end in `raw` (before the blank line that ends its head): more
/// fields can go there.
fn fields_end(raw: &[u8]) -> usize {
    raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 2
}

#[test]
fn a_chunked_upload_expecting_100_continue_gets_it_on_the_lane() {
    let origin = Recorder::start();
    let node = node(&[origin.addr], "[limits]\nmax_request_body = \"1KiB\"\n");
    // Plain, and with a field that makes it take the general stages' branch: the client waits
    // for the 100 before its chunks, the lane answers, and the connection goes on.
    for (i, extra) in ["", "Authorization: Bearer t\r\n"].into_iter().enumerate() {
        let target = format!("/waits-chunked/{i}");
        let (raw, body) = chunked_upload(&target, &[300, 1, 500]);
        let head_len = fields_end(&raw);
        let mut head = raw[..head_len].to_vec();
        head.extend_from_slice(format!("Expect: 100-continue\r\n{extra}\r\n").as_bytes());
        let mut r = connect(node.addr, IO_TIMEOUT);
        r.get_mut().write_all(&head).expect("head");
        let interim = strict::read(&mut r, false)
            .expect("read")
            .expect("an answer");
        assert_eq!(interim.status, 100, "{target}: the 100 before the chunks");
        r.get_mut().write_all(&raw[head_len + 2..]).expect("body");
        let fin = strict::read_final(&mut r, false).expect("final");
        assert_eq!(
            (fin.status, &fin.body[..]),
            (200, format!("method PUT body {}\n", body.len()).as_bytes()),
            "{target}"
        );
        assert!(!fin.closes(), "{target}: the whole body was read");
        assert_eq!(
            node.counter("upload_lane"),
            i as u64 + 1,
            "{target} took the lane"
        );
        let got = origin.requests();
        let up = got
            .iter()
            .find(|g| g.line().contains(&target))
            .expect("sent up");
        assert_eq!(up.body, body, "{target}");
    }
    // Chunks sent with the head: no 100, the final answer first.
    let (raw, body) = chunked_upload("/sent-chunked", &[10, 20]);
    let head_len = fields_end(&raw);
    let mut with = raw[..head_len].to_vec();
    with.extend_from_slice(b"Expect: 100-continue\r\n");
    with.extend_from_slice(&raw[head_len..]);
    let mut r = connect(node.addr, IO_TIMEOUT);
    r.get_mut().write_all(&with).expect("write");
    let first = strict::read(&mut r, false)
        .expect("read")
        .expect("an answer");
    assert_eq!(
        (first.status, &first.body[..]),
        (200, format!("method PUT body {}\n", body.len()).as_bytes()),
        "no 100 for chunks already sent"
    );
    // Chunks over `max_request_body` after the 100: 413 at the size line, the origin's
    // upload cut.
    let (raw, _) = chunked_upload("/over-chunked", &[1000, 1000]);
    let head_len = fields_end(&raw);
    let mut head = raw[..head_len].to_vec();
    head.extend_from_slice(b"Expect: 100-continue\r\n\r\n");
    let mut r = connect(node.addr, IO_TIMEOUT);
    r.get_mut().write_all(&head).expect("head");
    let interim = strict::read(&mut r, false)
        .expect("read")
        .expect("an answer");
    assert_eq!(interim.status, 100);
    let _ = r.get_mut().write_all(&raw[head_len + 2..]);
    let fin = strict::read_final(&mut r, false).expect("final");
    assert_eq!(fin.status, 413);
    assert_eq!(node.counter("upload_lane"), 4);
}

#[test]
fn a_length_over_max_request_body_is_413_before_the_origin_and_the_limit_itself_passes() {
    let origin = Recorder::start();
    let node = node(&[origin.addr], "[limits]\nmax_request_body = \"1KiB\"\n");
    let mut raw = post_head("POST", "/over", 1025, "");
    raw.extend_from_slice(&pattern(1025));
    let mut r = connect(node.addr, IO_TIMEOUT);
    r.get_mut().write_all(&raw).expect("write");
    let resp = strict::read_final(&mut r, false).expect("answer");
    assert_eq!(resp.status, 413);
    strict::expect_closed(&mut r).expect("closed after the 413");
    let mut raw = post_head("POST", "/exact", 1024, "Connection: close\r\n");
    raw.extend_from_slice(&pattern(1024));
    let mut r = connect(node.addr, IO_TIMEOUT);
    r.get_mut().write_all(&raw).expect("write");
    let resp = strict::read_final(&mut r, false).expect("answer");
    assert_eq!(
        (resp.status, &resp.body[..]),
        (200, &b"method POST body 1024\n"[..])
    );
    let got = origin.requests();
    assert_eq!(
        got.len(),
        1,
        "only the one within the limit went upstream: {got:#?}"
    );
    assert_eq!(got[0].body, pattern(1024));
    assert_eq!(node.counter("client_body_too_large"), 1);
    assert_eq!(node.counter("upload_lane"), 1);
}

#[test]
fn a_client_stalling_mid_body_gets_408_at_body_timeout_and_one_leaving_is_aborted() {
    let origin = Recorder::start();
    let node = node(&[origin.addr], "[limits]\nbody_timeout = \"1s\"\n");
    let mut raw = post_head("POST", "/stall", 100, "");
    raw.extend_from_slice(&pattern(40));
    let mut r = connect(node.addr, IO_TIMEOUT);
    let start = Instant::now();
    r.get_mut().write_all(&raw).expect("write");
    let resp = strict::read_final(&mut r, false).expect("answer");
    let took = start.elapsed();
    assert_eq!(resp.status, 408, "{resp:?}");
    assert!(
        resp.closes(),
        "the connection closes after a client's fault"
    );
    assert!(
        resp.header("cache-status")
            .is_some_and(|c| c.contains("client-body-timeout")),
        "{resp:?}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(8),
        "{took:?}"
    );
    strict::expect_closed(&mut r).expect("closed after the 408");
    assert_eq!(node.counter("client_body_timeout"), 1);
    // A client that goes away mid-body: its fault, not the origin's.
    let mut raw = post_head("POST", "/gone", 100, "");
    raw.extend_from_slice(&pattern(40));
    let mut s = TcpStream::connect(node.addr).expect("connect");
    s.write_all(&raw).expect("write");
    drop(s);
    let deadline = Instant::now() + IO_TIMEOUT;
    while node.counter("client_aborted") == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(node.counter("client_aborted"), 1);
    assert_eq!(node.counter("origin_errors"), 0);
    assert_eq!(node.counter("upload_lane"), 2);
    // Neither body reached the origin whole.
    assert!(
        origin.requests().iter().all(|g| g.body.is_empty()),
        "{:#?}",
        origin.requests()
    );
}

#[test]
fn an_early_refusal_stops_the_upload_and_an_early_200_still_gets_the_whole_body() {
    let origin = Recorder::start();
    let node = node(&[origin.addr], "");
    // Refused at once, the body not all sent yet: the answer, then the connection ends.
    let mut raw = post_head("POST", "/early/a", 100_000, "");
    raw.extend_from_slice(&pattern(2000));
    let mut r = connect(node.addr, IO_TIMEOUT);
    r.get_mut().write_all(&raw).expect("write");
    let resp = strict::read_final(&mut r, false).expect("answer");
    assert_eq!((resp.status, &resp.body[..]), (403, &b"early"[..]));
    assert!(
        resp.closes(),
        "the rest of the body was never read: {resp:?}"
    );
    strict::expect_closed(&mut r).expect("closed");
    // Refused at once, the whole (small) body already read with the head: skipped, and the
    // connection carries the next request.
    let mut raw = post_head("POST", "/early/b", 300, "");
    raw.extend_from_slice(&pattern(300));
    raw.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n");
    let mut r = connect(node.addr, IO_TIMEOUT);
    r.get_mut().write_all(&raw).expect("write");
    let resp = strict::read_final(&mut r, false).expect("answer");
    assert_eq!(resp.status, 403);
    let next = strict::read_final(&mut r, false).expect("next");
    assert_eq!(
        (next.status, &next.body[..]),
        (200, &b"method GET body 0\n"[..])
    );
    // An early 200: the rest of the body still goes, then the answer.
    let body = pattern(50_000);
    let mut r = connect(node.addr, IO_TIMEOUT);
    r.get_mut()
        .write_all(&post_head("POST", "/early-ok/c", body.len(), ""))
        .expect("write");
    r.get_mut().write_all(&body[..10_000]).expect("write");
    std::thread::sleep(Duration::from_millis(200));
    r.get_mut().write_all(&body[10_000..]).expect("write");
    let resp = strict::read_final(&mut r, false).expect("answer");
    assert_eq!((resp.status, &resp.body[..]), (200, &b"early"[..]));
    // The origin answered before reading the body: it logs the request once it has.
    let deadline = Instant::now() + IO_TIMEOUT;
    let got = loop {
        let got = origin.requests();
        if got.iter().any(|g| g.line().contains("/early-ok/c")) || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let c = got
        .iter()
        .find(|g| g.line().contains("/early-ok/c"))
        .expect("c");
    assert_eq!(c.body, body);
    assert!(got.iter().any(|g| g.line().contains("/next")));
}

/// What a client made of `raw`: every final response (status and body) until the connection
/// ended, and how it ended.
fn outcome(node: SocketAddr, raw: &[u8]) -> (Vec<(u16, Vec<u8>)>, String) {
    let mut r = connect(node, Duration::from_secs(5));
    r.get_mut().write_all(raw).expect("write");
    let mut answers = Vec::new();
    loop {
        match strict::read(&mut r, false) {
            Ok(Some(Strict { status, body, .. })) if status >= 200 => answers.push((status, body)),
            Ok(Some(_)) => {}
            Ok(None) => return (answers, "closed".into()),
            Err(e) => return (answers, format!("error: {e}")),
        }
    }
}

/// A request the connection's loop leaves to hyper (its `Connection` names a field), which
/// puts its connection in hyper's hands for good.
const TO_HYPER: &[u8] = b"POST /first HTTP/1.1\r\nHost: test.example\r\nConnection: x-to-hyper\r\n\
    Content-Length: 1\r\n\r\nx";

#[test]
fn requests_the_lane_takes_or_refuses_are_answered_as_hyper_answers_them() {
    let origin = Recorder::start();
    let node = node(&[origin.addr], "[limits]\nmax_request_body = \"1KiB\"\n");
    let end = b"GET /end HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n".to_vec();
    let with = |fields: &str, body: &str| {
        let mut v =
            format!("POST /s HTTP/1.1\r\nHost: test.example\r\n{fields}\r\n{body}").into_bytes();
        v.extend_from_slice(&end);
        v
    };
    // Each case, and whether the lane takes it (the rest fall back to hyper).
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("plain", with("Content-Length: 5\r\n", "hello"), true),
        ("empty", with("Content-Length: 0\r\n", ""), true),
        ("no length", with("", ""), true),
        (
            "more than its length",
            with("Content-Length: 2\r\n", "hello"),
            true,
        ),
        ("tab OWS", with("Content-Length:\t5\t\r\n", "hello"), true),
        (
            "leading zero",
            with("Content-Length: 05\r\n", "hello"),
            false,
        ),
        (
            "two equal lengths",
            with("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"),
            false,
        ),
        (
            "a length list",
            with("Content-Length: 5, 5\r\n", "hello"),
            false,
        ),
        ("signed", with("Content-Length: +5\r\n", "hello"), false),
        ("negative", with("Content-Length: -5\r\n", "hello"), false),
        (
            "space inside",
            with("Content-Length: 5 5\r\n", "hello"),
            false,
        ),
        (
            "over the limit",
            with("Content-Length: 1025\r\n", "hello"),
            false,
        ),
        (
            "huge",
            with("Content-Length: 99999999999999999999\r\n", "hello"),
            false,
        ),
        (
            "expect",
            with("Content-Length: 5\r\nExpect: 100-continue\r\n", "hello"),
            true,
        ),
        (
            "expect, over the limit",
            with("Content-Length: 1025\r\nExpect: 100-continue\r\n", "hello"),
            false,
        ),
        (
            "expect something else",
            with("Content-Length: 5\r\nExpect: something\r\n", "hello"),
            false,
        ),
        (
            "upgrade",
            with(
                "Content-Length: 5\r\nConnection: upgrade\r\nUpgrade: websocket\r\n",
                "hello",
            ),
            false,
        ),
        (
            "chunked",
            with(
                "Transfer-Encoding: chunked\r\n",
                "3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
            ),
            true,
        ),
        (
            "chunked, nothing",
            with("Transfer-Encoding: chunked\r\n", "0\r\n\r\n"),
            true,
        ),
        (
            "chunked, the limit",
            with(
                "Transfer-Encoding: chunked\r\n",
                &format!("400\r\n{}\r\n0\r\n\r\n", "x".repeat(1024)),
            ),
            true,
        ),
        (
            "chunked, over the limit",
            with(
                "Transfer-Encoding: chunked\r\n",
                &format!("401\r\n{}\r\n0\r\n\r\n", "x".repeat(1025)),
            ),
            false,
        ),
        (
            "chunked, an extension",
            with(
                "Transfer-Encoding: chunked\r\n",
                "5;a=b\r\nhello\r\n0\r\n\r\n",
            ),
            true,
        ),
        (
            "chunked, a trailer",
            with(
                "Transfer-Encoding: chunked\r\n",
                "5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
            ),
            true,
        ),
        (
            "chunked, data longer than its size",
            with("Transfer-Encoding: chunked\r\n", "2\r\nhello\r\n0\r\n\r\n"),
            true,
        ),
        (
            "chunked, not hex",
            with("Transfer-Encoding: chunked\r\n", "zz\r\nhello\r\n0\r\n\r\n"),
            true,
        ),
        (
            "chunked, not plain, an extension and a trailer",
            with(
                "Authorization: x\r\nTransfer-Encoding: chunked\r\n",
                "5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
            ),
            true,
        ),
        (
            "chunked, not plain, whole",
            with(
                "Authorization: x\r\nTransfer-Encoding: chunked\r\n",
                "3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
            ),
            true,
        ),
        (
            "chunked, not plain, not hex",
            with(
                "Authorization: x\r\nTransfer-Encoding: chunked\r\n",
                "zz\r\nhello\r\n0\r\n\r\n",
            ),
            true,
        ),
        (
            "chunked, not plain, over the limit",
            with(
                "Authorization: x\r\nTransfer-Encoding: chunked\r\n",
                &format!("401\r\n{}\r\n0\r\n\r\n", "x".repeat(1025)),
            ),
            false,
        ),
        (
            "gzip, chunked",
            with(
                "Transfer-Encoding: gzip, chunked\r\n",
                "5\r\nhello\r\n0\r\n\r\n",
            ),
            false,
        ),
        (
            "HTTP/1.0",
            {
                let mut v =
                    b"POST /s HTTP/1.0\r\nHost: test.example\r\nContent-Length: 5\r\n\r\nhello"
                        .to_vec();
                v.extend_from_slice(&end);
                v
            },
            false,
        ),
    ];
    // The same bytes behind a chunked upload that is not `plain` (which the lane leaves to
    // hyper), which puts the connection in hyper's hands first: what hyper makes of them.
    let behind_hyper = |raw: &[u8]| {
        let mut v = TO_HYPER.to_vec();
        v.extend_from_slice(raw);
        v
    };
    let mut wrong = Vec::new();
    for (name, raw, takes) in &cases {
        let before = node.counter("upload_lane");
        let (lane, lane_end) = outcome(node.addr, raw);
        if (node.counter("upload_lane") > before) != *takes {
            wrong.push(format!("{name}: the lane should take it: {takes}"));
        }
        let (mut hyper, hyper_end) = outcome(node.addr, &behind_hyper(raw));
        if hyper.first().map(|a| a.0) == Some(200) {
            hyper.remove(0);
        }
        if lane != hyper || lane_end != hyper_end {
            let show = |a: &[(u16, Vec<u8>)]| -> Vec<(u16, String)> {
                a.iter()
                    .map(|(s, b)| (*s, String::from_utf8_lossy(b).into_owned()))
                    .collect()
            };
            wrong.push(format!(
                "{name}: lane {:?} {lane_end}, hyper {:?} {hyper_end}",
                show(&lane),
                show(&hyper)
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The fields of a request head as a sorted list of (lowercase name, value).
fn fields(g: &Got) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = g
        .head
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_upstream_head_of_a_plain_upload_is_the_one_the_general_path_sends() {
    let origin = Recorder::start();
    let node = node(&[origin.addr], "");
    let upload = |target: &str| {
        let mut v = format!(
            "PATCH {target} HTTP/1.1\r\nHost: Test.Example\r\nUser-Agent: t/1\r\nX-Dup: a\r\n\
             Content-Type: application/json\r\nX-Dup: b\r\nConnection: keep-alive\r\n\
             Content-Length: 7\r\nIf-Match: \"v1\"\r\n\r\n{{\"a\":1}}"
        )
        .into_bytes();
        v.extend_from_slice(
            b"GET /end HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n",
        );
        v
    };
    let (lane, _) = outcome(node.addr, &upload("/lane"));
    assert_eq!(lane[0], (200, b"method PATCH body 7\n".to_vec()));
    assert_eq!(node.counter("upload_lane"), 1);
    let mut behind = TO_HYPER.to_vec();
    behind.extend_from_slice(&upload("/hyper"));
    let (hyper, _) = outcome(node.addr, &behind);
    assert_eq!(hyper[1], (200, b"method PATCH body 7\n".to_vec()));
    assert_eq!(node.counter("upload_lane"), 1, "hyper's was not the lane's");
    let got = origin.requests();
    let of = |t: &str| got.iter().find(|g| g.line().contains(t)).expect(t).clone();
    let (lane, hyper) = (of("/lane"), of("/hyper"));
    assert_eq!(lane.body, b"{\"a\":1}");
    assert_eq!(lane.body, hyper.body);
    assert_eq!(fields(&lane), fields(&hyper), "{lane:#?}\n{hyper:#?}");
    assert!(lane.field("connection").is_none());
    // The answer head, as the general path's.
    let mut raw = post_head("POST", "/answer", 2, "Connection: close\r\n");
    raw.extend_from_slice(b"ok");
    let mut r = connect(node.addr, IO_TIMEOUT);
    r.get_mut().write_all(&raw).expect("write");
    let resp = strict::read_final(&mut r, false).expect("answer");
    assert_eq!(resp.header("cache-status"), Some("a; fwd=method"));
    assert!(resp.header("via").is_some_and(|v| v.contains("a (strait)")));
    assert!(resp.header("date").is_some() && resp.closes());
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    assert_eq!(node.counter("upload_lane"), 2);
}

#[test]
fn an_early_refusal_of_a_long_upload_is_read_after_the_whole_body_went_out() {
    let origin = Recorder::start();
    let node = node(&[origin.addr], "[limits]\nmax_request_body = \"8MiB\"\n");
    // Refused at its head; 2 MiB more than the sockets hold: the client's write ends only
    // because the node drains the rest after its answer (lingering close).
    let body = pattern(2 * 1024 * 1024);
    let mut raw = post_head("POST", "/early/long", body.len(), "");
    raw.extend_from_slice(&body);
    let mut r = connect(node.addr, IO_TIMEOUT);
    r.get_mut()
        .write_all(&raw)
        .expect("the whole upload written: the node drained it");
    let resp = strict::read_final(&mut r, false).expect("answer");
    // Whether the node read the whole body before it answered (then the connection may carry
    // another request) or not (then it closes) depends on timing; either way the answer is
    // read whole.
    assert_eq!((resp.status, &resp.body[..]), (403, &b"early"[..]));
}
