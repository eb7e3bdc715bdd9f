//! Harness of the director namespace tests: work done from inside a host's network namespace
//! (a thread that `setns`-es: a thread's network namespace is its own), HTTP/1.1 exchanges with
//! a chosen client port, the backend that answered (from `Via: 1.1 <node> (strait)`), the
//! director's admin JSON, and the Maglev prediction of where a 5-tuple must go.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use strait_lb::maglev::{self, flow_hash, Table};

/// Runs `f` on a thread inside network namespace `netns` and returns its result.
pub fn in_netns<T: Send + 'static>(netns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{netns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a valid namespace fd affects only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("netns thread")
}

/// One answered request: which node answered, on which connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Node id from `Via: 1.1 <id> (strait)`, or "" if absent.
    pub node: String,
}

/// A TCP connection from `src` (port 0: any) to `dst`.
pub fn connect_from(
    src: SocketAddrV4,
    dst: SocketAddr,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.bind(&SocketAddr::V4(src).into())?;
    s.connect_timeout(&dst.into(), timeout)?;
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Sends one GET on `stream` and reads the response (Content-Length bodies only).
pub fn exchange(
    stream: &mut TcpStream,
    host: &str,
    path: &str,
    close: bool,
) -> std::io::Result<Answer> {
    let conn = if close { "close" } else { "keep-alive" };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: {conn}\r\n\r\n"
    )?;
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let (mut node, mut len) = (String::new(), 0usize);
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            return Err(std::io::Error::other("eof in head"));
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let Some((name, value)) = h.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            len = value.parse().unwrap_or(0);
        } else if name.eq_ignore_ascii_case("via") {
            // "1.1 b1 (strait)", possibly several hops: the first is the node nearest the client.
            node = value.split_whitespace().nth(1).unwrap_or("").to_owned();
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Answer { status, node })
}

/// One short connection from `src` to `dst`: connect, GET, close.
pub fn short_get(src: SocketAddrV4, dst: SocketAddr, path: &str) -> std::io::Result<Answer> {
    let mut s = connect_from(src, dst, Duration::from_secs(3))?;
    exchange(&mut s, &dst.to_string(), path, true)
}

/// One connection from any port to `dst`: POST `len` bytes to `path` and return the status
/// and the response body (the test origin answers `... body <len>`; read until close).
pub fn post(dst: SocketAddr, path: &str, len: usize) -> std::io::Result<(u16, String)> {
    let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
    let mut s = connect_from(any, dst, Duration::from_secs(10))?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {dst}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    )?;
    s.write_all(&vec![b'p'; len])?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.trim().to_owned()))
}

/// A TCP connect to `dst` from a socket sending with IP TTL `ttl`, waiting at most `wait`.
pub fn connect_with_ttl(dst: SocketAddr, ttl: u32, wait: Duration) -> std::io::Result<()> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.set_ttl(ttl)?;
    s.connect_timeout(&dst.into(), wait)
}

/// GET `path` on the admin address (from inside the director's namespace) and parse JSON.
pub fn admin_json(admin: SocketAddr, path: &str) -> Option<serde_json::Value> {
    let mut s = TcpStream::connect_timeout(&admin, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    serde_json::from_str(body).ok()
}

/// Where Maglev sends new TCP flows, computed as the director does: a table over the ids
/// `ip:port` with the weights, indexed by the hash of the 5-tuple.
pub struct Predictor {
    table: Table,
}

impl Predictor {
    /// The table for these backends (address, weight), all on `port`.
    pub fn new(backends: &[(Ipv4Addr, u32)], port: u16) -> Predictor {
        let list: Vec<maglev::Backend> = backends
            .iter()
            .map(|(ip, w)| maglev::Backend {
                id: format!("{ip}:{port}"),
                weight: *w,
            })
            .collect();
        Predictor {
            table: Table::build(&list, maglev::DEFAULT_TABLE_SIZE).expect("table"),
        }
    }

    /// Index (into the backend list) of the backend a new flow from `client` to `vip` gets.
    pub fn backend(&self, client: SocketAddrV4, vip: SocketAddrV4) -> usize {
        let h = flow_hash(
            client.ip().octets(),
            vip.ip().octets(),
            client.port(),
            vip.port(),
            6,
        );
        self.table.lookup(h).expect("entry") as usize
    }
}

/// Polls `f` every 50 ms until it returns true or `timeout` passes; returns the time taken.
pub fn time_until(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
