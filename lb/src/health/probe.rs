//! Active health checks: one probe, and the loop that probes a pool's servers on an interval.
//!
//! A probe is a TCP connect, or an HTTP/1.1 `GET path` with `Host: <addr>` and
//! `Connection: close` whose response status line (RFC 9112 section 4) must carry the expected
//! status code. Only the status line is read; headers and body are ignored. Every probe,
//! connect included, is bounded by its timeout, and its outcome never is an error: failures are
//! `CheckOutcome { ok: false, detail }` for the state machine in `super::state`.
//!
//! `run` owns its probe tasks (one `JoinSet` per round): when `stop` turns true or its sender
//! is dropped, the round in flight is aborted and `report` is never called again.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use super::CheckOutcome;

/// Longest status line read before the response is declared malformed.
pub(crate) const MAX_STATUS_LINE: usize = 1024;

/// Shortest interval between rounds; smaller configured intervals are raised to it.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// What a probe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    /// `GET path` over HTTP/1.1; passes when the status equals `expect`.
    Http {
        /// Request target, e.g. `/health`.
        path: String,
        /// Status code that passes.
        expect: u16,
    },
    /// A TCP connect; passes when connected.
    Tcp,
}

/// One probe: TCP connect (ok when connected) or an HTTP/1.1 `GET path` with `Host: <addr>`
/// and `Connection: close` (ok when the status equals `expect`), all within `timeout`.
pub async fn probe(addr: SocketAddr, kind: &ProbeKind, timeout: Duration) -> CheckOutcome {
    // tokio's clock (the same as std's unless a test pauses it): latency and deadline agree.
    let start = tokio::time::Instant::now();
    let (ok, detail) = match tokio::time::timeout(timeout, attempt(addr, kind)).await {
        Ok(result) => result,
        Err(_) => (
            false,
            format!("timeout after {}", humantime::format_duration(timeout)),
        ),
    };
    CheckOutcome {
        ok,
        detail,
        latency: start.elapsed(),
    }
}

/// Probe every target every `interval` (all targets concurrently, the first round at once),
/// calling `report(index, outcome)` for each result, until `stop` turns true (or its sender is
/// dropped). A probe never outlives `timeout`.
///
/// A round ends when all its probes have reported; if that takes longer than `interval`, the
/// next round starts as soon as it ends, so two probes of one server never overlap.
pub async fn run(
    targets: Vec<SocketAddr>,
    kind: ProbeKind,
    interval: Duration,
    timeout: Duration,
    report: impl Fn(usize, CheckOutcome) + Send + Sync + 'static,
    mut stop: watch::Receiver<bool>,
) {
    let kind = Arc::new(kind);
    let mut ticker = tokio::time::interval(interval.max(MIN_INTERVAL));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => return,
            _ = ticker.tick() => {}
        }
        let mut round = JoinSet::new();
        for (index, &addr) in targets.iter().enumerate() {
            let kind = Arc::clone(&kind);
            round.spawn(async move { (index, probe(addr, &kind, timeout).await) });
        }
        loop {
            tokio::select! {
                biased;
                _ = stopped(&mut stop) => return,
                joined = round.join_next() => match joined {
                    Some(Ok((index, outcome))) => report(index, outcome),
                    // A probe task cannot panic by design; if one did, skip it this round.
                    Some(Err(e)) => tracing::warn!(error = %e, "health probe task failed"),
                    None => break,
                },
            }
        }
    }
}

/// Resolves once `stop` holds true or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // `wait_for` checks the current value first, so a flip seen earlier is not missed; its
    // error means the sender was dropped, which also stops the checker.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The probe without its deadline: (passed, detail).
async fn attempt(addr: SocketAddr, kind: &ProbeKind) -> (bool, String) {
    let mut stream = match TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(e) => return (false, format!("connect: {}", io_message(&e))),
    };
    let (path, expect) = match kind {
        ProbeKind::Tcp => return (true, "connected".to_string()),
        ProbeKind::Http { path, expect } => (path, *expect),
    };
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: strait-check\r\n\r\n");
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return (false, format!("write: {}", io_message(&e)));
    }
    let line = match read_status_line(&mut stream).await {
        Ok(line) => line,
        Err(detail) => return (false, detail),
    };
    match parse_status(&line) {
        Some(status) if status == expect => (true, status.to_string()),
        Some(status) => (false, format!("status {status} (expected {expect})")),
        None => (false, "bad status line".to_string()),
    }
}

/// Reads up to the first line feed (or end of stream), at most `MAX_STATUS_LINE` bytes.
async fn read_status_line(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut line = Vec::with_capacity(128);
    let mut chunk = [0u8; 256];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            Err(e) => return Err(format!("read: {}", io_message(&e))),
        };
        if n == 0 {
            return if line.is_empty() {
                Err("closed before status line".to_string())
            } else {
                Ok(line)
            };
        }
        line.extend_from_slice(&chunk[..n]);
        if let Some(end) = line.iter().position(|&b| b == b'\n') {
            line.truncate(end);
            return Ok(line);
        }
        if line.len() > MAX_STATUS_LINE {
            return Err("status line too long".to_string());
        }
    }
}

/// Status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`, CR optional), if well formed.
fn parse_status(line: &[u8]) -> Option<u16> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let (minor, rest) = rest.split_first()?;
    let rest = rest.strip_prefix(b" ")?;
    if !minor.is_ascii_digit() || rest.len() < 3 {
        return None;
    }
    let (code, tail) = rest.split_at(3);
    if !code.iter().all(u8::is_ascii_digit) || !(tail.is_empty() || tail[0] == b' ') {
        return None;
    }
    let status = code
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    (100..=999).contains(&status).then_some(status)
}

/// An I/O error as a short message: `Connection refused`, without the `(os error N)` suffix.
fn io_message(e: &io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .map(str::to_string)
            .unwrap_or(text),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    const WAIT: Duration = Duration::from_secs(5);

    fn http(path: &str, expect: u16) -> ProbeKind {
        ProbeKind::Http {
            path: path.to_string(),
            expect,
        }
    }

    /// A server that reads each request head, sends it on `heads`, then writes `reply`
    /// and closes.
    async fn answering(reply: &'static str) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 512];
                    while !head.ends_with(b"\r\n\r\n") {
                        let n = conn.read(&mut buf).await.unwrap();
                        if n == 0 {
                            break;
                        }
                        head.extend_from_slice(&buf[..n]);
                    }
                    let _ = tx.send(String::from_utf8(head).unwrap());
                    conn.write_all(reply.as_bytes()).await.unwrap();
                });
            }
        });
        (addr, rx)
    }

    /// A server that accepts connections and never answers.
    async fn silent() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (conn, _) = listener.accept().await.unwrap();
                held.push(conn);
            }
        });
        addr
    }

    /// An address with nothing listening.
    async fn refused() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    #[tokio::test]
    async fn http_probe_passes_on_expected_status_and_sends_a_proper_request() {
        let (addr, mut heads) =
            answering("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await;
        let out = probe(addr, &http("/health", 200), Duration::from_secs(1)).await;
        assert!(out.ok, "{out:?}");
        assert_eq!(out.detail, "200");
        assert!(out.latency < Duration::from_secs(1));
        let head = heads.recv().await.unwrap();
        assert_eq!(
            head,
            format!(
                "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
                 User-Agent: strait-check\r\n\r\n"
            )
        );
    }

    #[tokio::test]
    async fn http_probe_judges_the_status_line() {
        let cases = [
            (
                "HTTP/1.1 500 Internal Server Error\r\n\r\n",
                200,
                false,
                "status 500 (expected 200)",
            ),
            ("HTTP/1.0 204 No Content\r\n\r\n", 204, true, "204"),
            ("HTTP/1.1 200 OK", 200, true, "200"),
            ("SSH-2.0-OpenSSH\r\n", 200, false, "bad status line"),
            ("", 200, false, "closed before status line"),
        ];
        for (reply, expect, ok, detail) in cases {
            let (addr, _heads) = answering(reply).await;
            let out = probe(addr, &http("/", expect), Duration::from_secs(1)).await;
            assert_eq!(
                (out.ok, out.detail.as_str()),
                (ok, detail),
                "reply {reply:?}"
            );
        }
    }

    #[tokio::test]
    async fn probe_reports_connection_refused() {
        let addr = refused().await;
        for kind in [http("/", 200), ProbeKind::Tcp] {
            let out = probe(addr, &kind, Duration::from_secs(1)).await;
            assert!(!out.ok);
            assert_eq!(out.detail, "connect: Connection refused");
        }
    }

    // The paused clock: the server never answers, so the runtime idles and the clock jumps to
    // the probe's deadline. The probe ends exactly at its timeout, however busy the machine
    // (with the real clock a bound on the overshoot was a guess).
    #[tokio::test(start_paused = true)]
    async fn http_probe_times_out_on_a_silent_server() {
        let addr = silent().await;
        let timeout = Duration::from_millis(200);
        let start = tokio::time::Instant::now();
        let out = probe(addr, &http("/", 200), timeout).await;
        let took = start.elapsed();
        assert!(!out.ok);
        assert_eq!(out.detail, "timeout after 200ms");
        assert_eq!(took, timeout);
        assert_eq!(out.latency, timeout);
    }

    #[tokio::test]
    async fn tcp_probe_passes_on_connect() {
        let addr = silent().await;
        let out = probe(addr, &ProbeKind::Tcp, Duration::from_secs(1)).await;
        assert!(out.ok);
        assert_eq!(out.detail, "connected");
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r"), Some(200));
        assert_eq!(parse_status(b"HTTP/1.0 503"), Some(503));
        assert_eq!(parse_status(b"HTTP/1.1 404 Not Found"), Some(404));
        assert_eq!(parse_status(b"HTTP/2 200"), None);
        assert_eq!(parse_status(b"HTTP/1.1 20 OK"), None);
        assert_eq!(parse_status(b"HTTP/1.1 2000 OK"), None);
        assert_eq!(parse_status(b"HTTP/1.1 abc OK"), None);
        assert_eq!(parse_status(b"HTTP/1.1 099 OK"), None);
        assert_eq!(parse_status(b""), None);
    }

    type Reports = mpsc::UnboundedReceiver<(usize, CheckOutcome)>;

    fn reporter() -> (
        impl Fn(usize, CheckOutcome) + Send + Sync + 'static,
        Reports,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        (move |i, o| drop(tx.send((i, o))), rx)
    }

    #[tokio::test]
    async fn run_reports_every_target_each_round_until_stopped() {
        let up = silent().await;
        let down = refused().await;
        let (report, mut reports) = reporter();
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(run(
            vec![up, down],
            ProbeKind::Tcp,
            Duration::from_millis(50),
            Duration::from_millis(200),
            report,
            stop,
        ));
        let mut seen = [0usize; 2];
        while seen.iter().any(|&n| n < 3) {
            let (i, out) = tokio::time::timeout(WAIT, reports.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(out.ok, i == 0, "target {i}: {out:?}");
            seen[i] += 1;
            // Rounds are sequential: no target gets ahead of another by more than one.
            assert!(seen[0].abs_diff(seen[1]) <= 1, "{seen:?}");
        }
        stop_tx.send(true).unwrap();
        tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
        // After `run` returns, the report closure is gone: the channel drains and closes.
        while let Some((i, _)) = reports.recv().await {
            seen[i] += 1;
        }
        assert!(seen.iter().all(|&n| (3..=4).contains(&n)), "{seen:?}");
    }

    #[tokio::test]
    async fn run_probes_at_once_and_stops_when_the_sender_is_dropped() {
        let up = silent().await;
        let (report, mut reports) = reporter();
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(run(
            vec![up],
            ProbeKind::Tcp,
            Duration::from_secs(3600),
            Duration::from_secs(1),
            report,
            stop,
        ));
        let (i, out) = tokio::time::timeout(WAIT, reports.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((i, out.ok), (0, true));
        drop(stop_tx);
        tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
        assert!(reports.recv().await.is_none());
    }

    #[tokio::test]
    async fn run_stops_during_a_slow_round() {
        let addr = silent().await;
        let (report, mut reports) = reporter();
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(run(
            vec![addr],
            http("/", 200),
            Duration::from_millis(10),
            Duration::from_secs(60),
            report,
            stop,
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .unwrap()
            .unwrap();
        assert!(reports.recv().await.is_none());
    }

    #[tokio::test]
    async fn run_returns_at_once_when_already_stopped() {
        let (report, mut reports) = reporter();
        let (_stop_tx, stop) = watch::channel(true);
        let addr = silent().await;
        tokio::time::timeout(
            Duration::from_secs(1),
            run(
                vec![addr],
                ProbeKind::Tcp,
                MIN_INTERVAL,
                MIN_INTERVAL,
                report,
                stop,
            ),
        )
        .await
        .unwrap();
        assert!(reports.recv().await.is_none());
    }
}
