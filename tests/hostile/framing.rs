//! Client requests with obfuscated, ambiguous or oversized framing (RFC 9112 §2.2, §5, §6,
//! §7.1): one clear 4xx (501 for a coding the node does not implement, as §6.1 asks), the
//! connection closed after it, and nothing the request carried — above all not a second
//! request hidden in its body — reaches the origin. Legal forms (chunk extensions, trailers,
//! OWS as a tab, bare LF line ends, which §2.2 lets a recipient accept) work.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::script::{Scripted, Step};
use crate::support::strict;
use crate::support::IO_TIMEOUT;
use crate::{connect, node, origin, send};

/// A request hidden in the body of the hostile ones: the origin must never see it.
const SMUGGLED: &str = "GET /obj/smuggled HTTP/1.1\r\nHost: test.example\r\n\r\n";

/// `POST /obj/hostile` with `fields` (CRLF-terminated lines) and `body`.
fn post(fields: &str, body: &str) -> Vec<u8> {
    format!("POST /obj/hostile HTTP/1.1\r\nHost: test.example\r\n{fields}\r\n{body}").into_bytes()
}

/// The hostile requests and the status each must get.
fn cases() -> Vec<(&'static str, Vec<u8>, u16)> {
    let chunked_then = format!("0\r\n\r\n{SMUGGLED}");
    let te = |v: &str| post(&format!("Transfer-Encoding: {v}\r\n"), &chunked_then);
    let cl_te = format!(
        "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
        chunked_then.len()
    );
    let many: String = (0..200).map(|i| format!("X-F{i}: v\r\n")).collect();
    let long_ext = format!("5;{}=x\r\nhello\r\n0\r\n\r\n", "e".repeat(64 * 1024));
    let long_trailer = format!("0\r\nX-T: {}\r\n\r\n", "t".repeat(64 * 1024));
    let chunked = |body: &str| post("Transfer-Encoding: chunked\r\n", body);
    vec![
        ("chunked, identity", te("chunked, identity"), 400),
        ("chunked not last", te("chunked, gzip"), 400),
        ("unknown coding alone", te("foo"), 400),
        ("unknown coding before chunked", te("foo, chunked"), 501),
        ("chunked twice in one field", te("chunked, chunked"), 400),
        (
            "two TE fields",
            post(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                &chunked_then,
            ),
            400,
        ),
        (
            "space before the colon",
            post("Transfer-Encoding : chunked\r\n", &chunked_then),
            400,
        ),
        (
            "vertical tab",
            post("Transfer-Encoding:\x0bchunked\r\n", &chunked_then),
            400,
        ),
        (
            "obs-fold of TE",
            post("Transfer-Encoding:\r\n chunked\r\n", &chunked_then),
            400,
        ),
        (
            "obs-fold",
            post("X-A: a\r\n b\r\nContent-Length: 0\r\n", ""),
            400,
        ),
        ("CL with TE", post(&cl_te, &chunked_then), 400),
        (
            "two different Content-Lengths",
            post("Content-Length: 0\r\nContent-Length: 51\r\n", SMUGGLED),
            400,
        ),
        (
            "a Content-Length list that disagrees",
            post("Content-Length: 0, 51\r\n", SMUGGLED),
            400,
        ),
        (
            "a signed Content-Length",
            post("Content-Length: +0\r\n", ""),
            400,
        ),
        (
            "a bad chunk size",
            chunked(&format!("zz\r\n{SMUGGLED}")),
            400,
        ),
        (
            "a chunk size that overflows (over max_request_body long before)",
            chunked(&format!("1{}\r\nx\r\n", "0".repeat(20))),
            413,
        ),
        (
            "a negative chunk size",
            chunked(&format!("-5\r\nhello\r\n{chunked_then}")),
            400,
        ),
        (
            "a huge chunk size, its bytes following",
            chunked(&format!("FFFFFFFFFF\r\n{}", "x".repeat(1024 * 1024 + 1))),
            413,
        ),
        (
            "a bare LF after a chunk size",
            chunked(&format!("5\nhello\r\n{chunked_then}")),
            400,
        ),
        ("an over-long chunk extension", chunked(&long_ext), 400),
        ("an over-long trailer", chunked(&long_trailer), 400),
        (
            "a bare CR in a field",
            post("X-A: a\rb\r\nContent-Length: 0\r\n", ""),
            400,
        ),
        (
            "200 small fields",
            format!("GET /obj/many HTTP/1.1\r\nHost: test.example\r\n{many}\r\n").into_bytes(),
            431,
        ),
    ]
}

#[test]
fn obfuscated_and_ambiguous_framing_gets_one_4xx_and_reaches_nothing() {
    let origin = origin();
    let node = node(&[origin.addr], "[limits]\nmax_request_body = \"1MiB\"\n");
    let mut wrong = Vec::new();
    for (name, raw, want) in cases() {
        let (resp, mut r) = send(node.addr, &raw);
        if resp.status != want {
            wrong.push(format!("{name}: {} (want {want})", resp.status));
            continue;
        }
        // Nothing after the answer: the connection closes (no second response).
        if let Err(e) = strict::expect_closed(&mut r) {
            wrong.push(format!("{name}: {e}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    let seen = origin.stats();
    assert_eq!(origin.count("/obj/smuggled"), 0, "{seen}");
    // A body whose framing breaks part way (a bad chunk after good ones, a body crossing
    // max_request_body) may have had its head sent upstream already: the origin sees that
    // upload cut, never complete, and never what followed it.
    assert_eq!(origin.count("/obj/many"), 0, "{seen}");
    // Still serving, strictly framed.
    let (ok, _) = send(
        node.addr,
        b"GET /obj/after HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(ok.status, 200);
}

#[test]
fn legal_extensions_trailers_tabs_and_bare_lf_work() {
    let origin = origin();
    let node = node(&[origin.addr], "");
    let te = "Transfer-Encoding: chunked\r\nConnection: close\r\n";
    let legal: [(&str, Vec<u8>); 4] = [
        (
            "chunk extensions",
            post(te, "5;a=b;c=\"d e\"\r\nhello\r\n1;x\r\n!\r\n0;end\r\n\r\n"),
        ),
        (
            "trailers",
            post(te, "6\r\nhello!\r\n0\r\nX-Sum: 6\r\nX-Two: y\r\n\r\n"),
        ),
        (
            "a tab as OWS",
            post(
                "Transfer-Encoding:\tchunked\t\r\nConnection: close\r\n",
                "6\r\nhello!\r\n0\r\n\r\n",
            ),
        ),
        (
            "bare LF line ends in the head",
            b"POST /obj/hostile HTTP/1.1\nHost: test.example\nContent-Length: 6\n\
              Connection: close\n\nhello!"
                .to_vec(),
        ),
    ];
    for (name, raw) in legal {
        let (resp, mut r) = send(node.addr, &raw);
        assert_eq!(resp.status, 200, "{name}");
        assert_eq!(
            String::from_utf8_lossy(&resp.body),
            "method POST path /obj/hostile body 6\n",
            "{name}"
        );
        strict::expect_closed(&mut r).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // Keep-alive requests after a chunked body with a trailer are read as requests.
    let mut raw = post(
        "Transfer-Encoding: chunked\r\n",
        "1\r\nx\r\n0\r\nX-T: 1\r\n\r\n",
    );
    raw.extend_from_slice(
        b"GET /obj/next HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n\r\n",
    );
    let (first, mut r) = send(node.addr, &raw);
    assert_eq!(first.status, 200);
    let second = strict::read_final(&mut r, false).expect("second response");
    assert_eq!(second.status, 200);
    strict::expect_closed(&mut r).expect("closed");
}

/// The answer to `first` (head and, maybe, a size line) written at once, then `later` after a
/// pause (if any): the status, how long it took from the first write, and the reader.
fn chunked_post(
    addr: std::net::SocketAddr,
    first: &str,
    later: Option<&str>,
) -> (u16, Duration, std::io::BufReader<std::net::TcpStream>) {
    let mut r = connect(addr, IO_TIMEOUT);
    let start = Instant::now();
    r.get_mut().write_all(first.as_bytes()).expect("write");
    if let Some(more) = later {
        std::thread::sleep(Duration::from_millis(200));
        r.get_mut().write_all(more.as_bytes()).expect("write");
    }
    let resp = strict::read_final(&mut r, false).unwrap_or_else(|e| panic!("{first:?}: {e}"));
    (resp.status, start.elapsed(), r)
}

#[test]
fn a_chunk_size_over_max_request_body_is_413_before_its_data() {
    let origin = Scripted::start(|_, _| {
        vec![Step::Send(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        )]
    });
    // A client that sends nothing after the size line would otherwise hold its request until
    // body_timeout (408): the 413 must come well before it.
    let node = node(
        &[origin.addr],
        "[limits]\nmax_request_body = \"1MiB\"\nbody_timeout = \"30s\"\n",
    );
    let head = |path: &str| {
        format!("POST {path} HTTP/1.1\r\nHost: test.example\r\nTransfer-Encoding: chunked\r\n\r\n")
    };
    let prompt = Duration::from_secs(10);
    for (path, size) in [("/huge", "FFFFFFFF"), ("/just-over", "100001")] {
        let (status, took, mut r) =
            chunked_post(node.addr, &format!("{}{size}\r\n", head(path)), None);
        assert_eq!(status, 413, "{path}");
        assert!(took < prompt, "{path}: {took:?}");
        strict::expect_closed(&mut r).expect("closed after the 413");
        assert_eq!(
            origin.conns_of(path),
            Vec::<usize>::new(),
            "{path} reached the origin"
        );
    }
    // The size line after the head, once the request is on its way: 413 all the same.
    let (status, took, _) = chunked_post(node.addr, &head("/late"), Some("FFFFFFFF\r\n"));
    assert_eq!(
        (status, took < prompt),
        (413, true),
        "late size line: {took:?}"
    );
    for conn in origin.conns_of("/late") {
        assert_eq!(
            origin.body_of(conn, "/late"),
            None,
            "the origin got a whole body"
        );
    }
    // Pipelined behind an upload that is within the limit: only the second is refused.
    let fine = "POST /fine HTTP/1.1\r\nHost: test.example\r\nContent-Length: 5\r\n\r\nhello";
    let mut r = connect(node.addr, IO_TIMEOUT);
    r.get_mut()
        .write_all(format!("{fine}{}FFFFFFFF\r\n", head("/second")).as_bytes())
        .expect("write");
    let first = strict::read_final(&mut r, false).expect("first");
    assert_eq!((first.status, &first.body[..]), (200, &b"ok"[..]));
    let second = strict::read_final(&mut r, false).expect("second");
    assert_eq!(second.status, 413);
    assert_eq!(origin.conns_of("/second"), Vec::<usize>::new());
    // Exactly the limit, sent, is an upload like any other.
    let mib = 1024 * 1024;
    let body = format!("{mib:x}\r\n{}\r\n0\r\n\r\n", "x".repeat(mib));
    let (status, _, _) = chunked_post(node.addr, &format!("{}{body}", head("/exact")), None);
    assert_eq!(status, 200);
    let conn = *origin
        .conns_of("/exact")
        .last()
        .expect("reached the origin");
    assert_eq!(origin.body_of(conn, "/exact"), Some(mib));
    assert!(node.counter("client_body_too_large") >= 4);
    assert_eq!(node.counter("origin_errors"), 0);
}
