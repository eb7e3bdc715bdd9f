//! Hostile HTTP end to end (issue #18 item 4): real `strait node` processes on 127.0.30.0/24,
//! raw sockets for the hostile bytes, and a strict reader (`support::strict`) for everything
//! the node writes back, so a framing error in strait's own output fails the test.
//!
//! Contract under test (docs/security.md): a request with ambiguous or broken framing gets one
//! clear 4xx and the connection closes, and nothing it carried reaches the origin; slow,
//! silent and stalled clients are cut by `limits.header_read_timeout`, `body_timeout` and
//! `send_timeout`; `limits.max_connections` bounds the node's client connections; a failed
//! accept (`EMFILE`) backs off; an origin that frames its answer ambiguously or floods interim
//! responses gets a 502, nothing stored, and its connection is not reused; an origin body that
//! breaks after its head reaches the client visibly cut (never complete), unstored, blamed on
//! the origin.

mod support;

#[path = "hostile/conns.rs"]
mod conns;
#[path = "hostile/cut.rs"]
mod cut;
#[path = "hostile/framing.rs"]
mod framing;
#[path = "hostile/linger.rs"]
mod linger;
#[path = "hostile/origin.rs"]
mod origin;
#[path = "hostile/pass_lane.rs"]
mod pass_lane;
#[path = "hostile/script.rs"]
mod script;
#[path = "hostile/slow.rs"]
mod slow;
#[path = "hostile/upload.rs"]
mod upload;
#[path = "hostile/upload_answer.rs"]
mod upload_answer;
#[path = "hostile/upload_lane.rs"]
mod upload_lane;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

use support::strict::{self, Strict};
use support::*;

/// The node's address on the loopback range these tests own.
pub(crate) const NODE_IP: &str = "127.0.30.1";
/// The origins' address.
pub(crate) const ORIGIN_IP: &str = "127.0.30.2";

/// `strait sim origin` on [`ORIGIN_IP`], a port picked by the kernel.
pub(crate) fn origin() -> Origin {
    let proc = Proc::spawn_origin_on(format!("{ORIGIN_IP}:0").parse().expect("addr"));
    let line = proc.wait_line("listening on", START_TIMEOUT);
    let addr = line
        .split_whitespace()
        .last()
        .and_then(|a| a.parse().ok())
        .expect("origin address");
    Origin { proc, addr }
}

/// A node config on [`NODE_IP`] in front of `origins`, with `extra` tables.
pub(crate) fn config(origins: &[SocketAddr], extra: &str) -> String {
    node_config(origins, extra).replace("127.0.0.1:0", &format!("{NODE_IP}:0"))
}

/// A node in front of `origins`.
pub(crate) fn node(origins: &[SocketAddr], extra: &str) -> Node {
    Node::start_config(&config(origins, extra))
}

/// A node whose process may open at most `nofile` descriptors (`prlimit`).
pub(crate) fn node_with_nofile(origins: &[SocketAddr], extra: &str, nofile: u32) -> Node {
    let dir = scratch_dir("hostile-node");
    let path = dir.join("node.toml");
    std::fs::write(&path, config(origins, extra)).expect("write config");
    let mut child = Command::new("prlimit")
        .arg(format!("--nofile={nofile}:{nofile}"))
        .arg(env!("CARGO_BIN_EXE_strait"))
        .args(["node", "--config", path.to_str().expect("utf-8")])
        .env("STRAIT_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn prlimit strait node");
    let (tx, rx) = channel();
    let err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let proc = Proc { child, lines: rx };
    let addr_of = |l: String| l.split_whitespace().last().and_then(|a| a.parse().ok());
    let addr = addr_of(proc.wait_line("listening http", START_TIMEOUT)).expect("http addr");
    let admin = addr_of(proc.wait_line("listening admin", START_TIMEOUT)).expect("admin addr");
    Node {
        proc,
        addr,
        admin,
        config: path,
    }
}

/// What a node wrote, as text, with a `Date` it added (not the 2020 one the tests' origins
/// send) masked: it is the clock's.
pub(crate) fn own_date_masked(got: &[u8]) -> String {
    String::from_utf8_lossy(got)
        .split("\r\n")
        .map(|l| match l.strip_prefix("date: ") {
            Some(_) if !l.contains("2020") => "date: (now)",
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// A connection to `addr` with a read timeout.
pub(crate) fn connect(addr: SocketAddr, timeout: Duration) -> BufReader<TcpStream> {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(timeout)).expect("read timeout");
    BufReader::new(s)
}

/// Send `raw` on a new connection; the first final response, read strictly, and the reader.
pub(crate) fn send(addr: SocketAddr, raw: &[u8]) -> (Strict, BufReader<TcpStream>) {
    let mut r = connect(addr, IO_TIMEOUT);
    let what = String::from_utf8_lossy(&raw[..raw.len().min(120)]).into_owned();
    // A node may refuse a request before its body ended (a 413 on a chunk size) and close:
    // the rest of the write then fails, and the answer is still there to read.
    let wrote = r.get_mut().write_all(raw);
    let resp = strict::read_final(&mut r, false)
        .unwrap_or_else(|e| panic!("{what:?}: {e} (the write: {wrote:?})"));
    (resp, r)
}

/// CPU time (user + system, in clock ticks) the process `pid` has used.
pub(crate) fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // The fields after the command name (which may hold spaces) start after its ')'.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}
