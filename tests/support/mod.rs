//! Test support: real `strait` processes (a node, the test origin) on loopback ports chosen by
//! the kernel, and a small blocking HTTP/1.1 client that can also send malformed bytes.
#![allow(dead_code)]

pub mod strict;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// How long a test waits for a process to print its listening lines.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Socket read timeout of the test client.
pub const IO_TIMEOUT: Duration = Duration::from_secs(15);

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

/// A fresh scratch directory for one test, under this test process's own root.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    let d = scratch_root().join(format!("{tag}-{n}"));
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// `strait-test-<pid>` in the temporary directory: every scratch directory of this process,
/// removed when it exits (kept with `STRAIT_TEST_KEEP=1`, to look at a failure's files), so
/// that test runs do not pile directories up there.
fn scratch_root() -> &'static std::path::Path {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    extern "C" fn remove_root() {
        if let Some(root) = ROOT.get() {
            let _ = std::fs::remove_dir_all(root);
        }
    }
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("strait-test-{}", std::process::id()));
        std::fs::create_dir_all(&root).expect("scratch root");
        if std::env::var_os("STRAIT_TEST_KEEP").is_none() {
            // SAFETY: registers a plain function with no arguments, run once at exit.
            unsafe { libc::atexit(remove_root) };
        }
        root
    })
}

/// A child process killed on drop, with its output lines readable.
pub struct Proc {
    pub child: Child,
    pub lines: Receiver<String>,
}

impl Proc {
    fn spawn(args: &[&str], from_stderr: bool) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strait"));
        cmd.args(args).stdin(Stdio::null());
        cmd.env(
            "STRAIT_LOG",
            std::env::var("STRAIT_LOG").unwrap_or_else(|_| "info".into()),
        );
        if from_stderr {
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        } else {
            cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        }
        let mut child = cmd.spawn().expect("spawn strait");
        let (tx, rx) = channel();
        let out: Box<dyn Read + Send> = if from_stderr {
            Box::new(child.stderr.take().expect("stderr"))
        } else {
            Box::new(child.stdout.take().expect("stdout"))
        };
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if std::env::var("STRAIT_TEST_ECHO").is_ok() {
                    eprintln!("[child] {line}");
                }
                if tx.send(line).is_err() {
                    // receiver gone: keep draining so the child never blocks on a full pipe
                }
            }
        });
        Proc { child, lines: rx }
    }

    /// Wait for a line containing `needle`; returns it.
    pub fn wait_line(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => continue,
                Err(_) => panic!("no line containing {needle:?} within {timeout:?}"),
            }
        }
    }

    /// Send a signal to the process.
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(st.success());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process that gets SIGTERM on drop, up to 5 s to stop (polled: it usually takes a few
/// ms), then SIGKILL (a director, which detaches its XDP program on SIGTERM: a fixed 300 ms
/// could run out on a busy machine and leave the program attached).
pub struct Terminated(pub Child);

impl Drop for Terminated {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        wait_until(Duration::from_secs(5), || {
            !matches!(self.0.try_wait(), Ok(None))
        });
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn last_addr(line: &str) -> SocketAddr {
    line.split_whitespace()
        .last()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}

/// `strait sim origin` on 127.0.0.1, a port picked by the kernel.
pub struct Origin {
    pub proc: Proc,
    pub addr: SocketAddr,
}

impl Origin {
    pub fn start() -> Origin {
        let proc = Proc::spawn(&["sim", "origin", "--listen", "127.0.0.1:0"], false);
        let line = proc.wait_line("listening on", START_TIMEOUT);
        let addr = last_addr(&line);
        Origin { proc, addr }
    }

    /// The origin's per-path request counts.
    pub fn stats(&self) -> serde_json::Value {
        let r = get(self.addr, "/_origin/stats", &[]);
        serde_json::from_slice(&r.body).expect("origin stats json")
    }

    /// Requests the origin answered for `path` (no query).
    pub fn count(&self, path: &str) -> u64 {
        self.stats().get(path).and_then(|v| v.as_u64()).unwrap_or(0)
    }
}

/// A config for one node in front of `origins`; `extra` is appended (more tables).
pub fn node_config(origins: &[SocketAddr], extra: &str) -> String {
    let servers: Vec<String> = origins
        .iter()
        .map(|a| format!("{{ addr = \"{a}\" }}"))
        .collect();
    format!(
        "[node]\nid = \"a\"\nlisten = [\"127.0.0.1:0\"]\nadmin = \"127.0.0.1:0\"\n\n\
         [[pool]]\nname = \"origin\"\nservers = [{}]\n\n[[route]]\npool = \"origin\"\n\n{extra}\n",
        servers.join(", ")
    )
}

/// A running `strait node`.
pub struct Node {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub config: PathBuf,
}

impl Node {
    /// Start a node in front of `origins` with `extra` config tables.
    pub fn start(origins: &[SocketAddr], extra: &str) -> Node {
        Node::start_config(&node_config(origins, extra))
    }

    /// Start a node with a whole config text.
    pub fn start_config(text: &str) -> Node {
        let dir = scratch_dir("node");
        let config = dir.join("node.toml");
        std::fs::write(&config, text).expect("write config");
        let proc = Proc::spawn(
            &["node", "--config", config.to_str().expect("utf-8 path")],
            true,
        );
        let http = last_addr(&proc.wait_line("listening http", START_TIMEOUT));
        let admin = last_addr(&proc.wait_line("listening admin", START_TIMEOUT));
        Node {
            proc,
            addr: http,
            admin,
            config,
        }
    }

    /// The node's `/stats.json`.
    pub fn stats(&self) -> serde_json::Value {
        let r = admin_request(self.admin, "GET", "/stats.json", &[]);
        assert_eq!(r.status, 200, "stats.json: {}", r.text());
        serde_json::from_slice(&r.body).expect("stats json")
    }

    /// `strait ctl --admin <this node's admin> ARGS...`: (exit code, stdout, stderr).
    pub fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_strait"))
            .args(["ctl", "--admin", &self.admin.to_string()])
            .args(args)
            .output()
            .expect("run strait ctl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// One counter of `/stats.json`.
    pub fn counter(&self, name: &str) -> u64 {
        self.stats()
            .get(name)
            .and_then(|v| v.as_u64())
            .unwrap_or_else(|| panic!("no counter {name}"))
    }
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body ended early (connection closed before Content-Length / last chunk).
    pub truncated: bool,
}

impl Resp {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    pub fn cache_status(&self) -> &str {
        self.header("cache-status").unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// GET `path` with extra headers (Host is added).
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Resp {
    request(addr, "GET", path, headers, b"")
}

/// The next request or response head on `r`, its lines up to the blank line (without it);
/// None when the connection ends first.
pub fn read_head(r: &mut impl BufRead) -> Option<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        if line == "\r\n" {
            return Some(head);
        }
        head.push_str(&line);
    }
}

/// Send one request on a new connection and read the response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut raw = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        raw.push_str("Host: test.example\r\n");
    }
    for (n, v) in headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("Connection: close\r\n\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    raw_request(addr, &bytes, method == "HEAD")
}

/// A request to an admin listener at `addr` with `Host: <addr>`, as `strait ctl` sends it,
/// unless `headers` name their own Host.
pub fn admin_request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let host = addr.to_string();
    let mut all = Vec::with_capacity(headers.len() + 1);
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        all.push(("Host", host.as_str()));
    }
    all.extend_from_slice(headers);
    request(addr, method, path, &all, b"")
}

/// Send raw bytes, read one response.
pub fn raw_request(addr: SocketAddr, bytes: &[u8], head_only: bool) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s.write_all(bytes).expect("write");
    let mut r = BufReader::new(s);
    read_response(&mut r, head_only).expect("a response")
}

/// Read one response from a buffered stream; None if the connection closed before a head.
pub fn read_response(r: &mut impl BufRead, head_only: bool) -> Option<Resp> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).ok()? == 0 {
            return None;
        }
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':')?;
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
        truncated: false,
    };
    if head_only || status == 304 || status == 204 || (100..200).contains(&status) {
        return Some(resp);
    }
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let mut size_line = String::new();
            if r.read_line(&mut size_line).unwrap_or(0) == 0 {
                resp.truncated = true;
                break;
            }
            let size = usize::from_str_radix(size_line.trim().split(';').next()?, 16).ok()?;
            if size == 0 {
                let mut end = String::new();
                let _ = r.read_line(&mut end);
                break;
            }
            let mut chunk = vec![0; size];
            if r.read_exact(&mut chunk).is_err() {
                resp.truncated = true;
                break;
            }
            resp.body.extend_from_slice(&chunk);
            let mut crlf = String::new();
            let _ = r.read_line(&mut crlf);
        }
    } else if let Some(n) = resp
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        let mut body = Vec::with_capacity(n);
        let _ = r.take(n as u64).read_to_end(&mut body);
        resp.truncated = body.len() < n;
        resp.body = body;
    } else {
        let _ = r.read_to_end(&mut resp.body);
    }
    Some(resp)
}

/// Poll `f` until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// The deterministic content of the origin's `/obj/<name>?size=N`.
pub fn object_bytes(name: &str, size: usize) -> Vec<u8> {
    strait_topology::origin::object_bytes(name, size)
}

// ===== Raw test origins (added for tests/proxy.rs) =====

/// A raw TCP origin on 127.0.0.1 (kernel-chosen port) for tests that must see exactly what a
/// node forwards, or that need answers no real server gives. Each connection's request head
/// (request line and fields, without the blank line) is recorded; then the current reply is
/// written and the connection closed. An empty reply never answers: the connection is held open
/// until the peer closes it. Request bodies are not read.
pub struct RecordingOrigin {
    pub addr: SocketAddr,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reply: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl RecordingOrigin {
    /// Start the origin; it lives until the test process exits.
    pub fn start(reply: &[u8]) -> RecordingOrigin {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind recording origin");
        let addr = listener.local_addr().expect("recording origin address");
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let reply = std::sync::Arc::new(std::sync::Mutex::new(reply.to_vec()));
        let (shared_heads, shared_reply) = (heads.clone(), reply.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let heads = std::sync::Arc::clone(&shared_heads);
                let reply = std::sync::Arc::clone(&shared_reply);
                std::thread::spawn(move || serve_recorded(conn, &heads, &reply));
            }
        });
        RecordingOrigin { addr, heads, reply }
    }

    /// Answer later requests with `reply` instead.
    pub fn set_reply(&self, reply: &[u8]) {
        *self.reply.lock().expect("reply lock") = reply.to_vec();
    }

    /// The request heads received so far, in arrival order.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("heads lock").clone()
    }
}

fn serve_recorded(
    conn: TcpStream,
    heads: &std::sync::Mutex<Vec<String>>,
    reply: &std::sync::Mutex<Vec<u8>>,
) {
    let mut r = BufReader::new(conn);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        head.push_str(&line);
    }
    heads.lock().expect("heads lock").push(head);
    let reply = reply.lock().expect("reply lock").clone();
    if reply.is_empty() {
        let _ = std::io::copy(&mut r, &mut std::io::sink());
        return;
    }
    let _ = r.get_mut().write_all(&reply);
}

/// A loopback address with nothing listening (a port bound by the kernel, then released).
pub fn closed_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("local addr")
}

// ===== end of tests/proxy.rs helpers =====

// ---- lead: origin restarts (tests/health.rs)
impl Proc {
    /// `strait sim origin` on a given address.
    pub fn spawn_origin_on(addr: SocketAddr) -> Proc {
        Proc::spawn(&["sim", "origin", "--listen", &addr.to_string()], false)
    }

    /// Like `wait_line`, but None instead of a panic (e.g. the process exited: port busy).
    pub fn try_wait_line(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return Some(l),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }
}

// ---- lead: root-only tests (namespaces)
/// The network namespaces whose names start with `prefix` (the topology builder's own list).
pub fn namespaces(prefix: &str) -> Vec<String> {
    strait_topology::netns::list()
        .expect("ip netns list")
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// True when the test may run: root, and every tool in `tools` answers `-V` (keepalived:
/// `--version`). Otherwise prints
/// `SKIP <test>: <reason>` and returns false — except with `CI=true`, where it panics.
pub fn require_root(test: &str, tools: &[&str]) -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        // keepalived's `-V` is not "version" but "don't release VRRP", which would start a
        // daemon here (in the root namespace) if a config existed: ask it with `--version`.
        .filter(|t| {
            let flag = if *t == "keepalived" {
                "--version"
            } else {
                "-V"
            };
            Command::new(t).arg(flag).output().is_err()
        })
        .collect();
    if root && missing.is_empty() {
        return true;
    }
    let why = if root {
        format!("missing {}", missing.join(", "))
    } else {
        "needs root".to_string()
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {why} (CI=true: namespace tests must run)");
    }
    eprintln!("SKIP {test}: {why}");
    false
}

// ---- lead: topologies for namespace tests
/// A topology brought up with `strait sim up` (after a `sim down` of leftovers of an earlier
/// run) and taken down with `strait sim down` on drop.
pub struct SimTopology {
    /// The topology file.
    pub file: PathBuf,
}

impl SimTopology {
    /// Brings `file` up, its processes logging under `logs`; panics with `sim up`'s error
    /// (after the teardown) when it fails.
    pub fn up(file: PathBuf, logs: &std::path::Path) -> SimTopology {
        let sim = |args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_strait"))
                .arg("sim")
                .args(args)
                .arg("--topology")
                .arg(&file)
                .output()
        };
        let _ = sim(&["down"]);
        let up = Command::new(env!("CARGO_BIN_EXE_strait"))
            .args(["sim", "up", "--topology"])
            .arg(&file)
            .arg("--logs")
            .arg(logs)
            .output()
            .expect("sim up");
        let topology = SimTopology { file };
        assert!(
            up.status.success(),
            "sim up: {}",
            String::from_utf8_lossy(&up.stderr)
        );
        topology
    }
}

impl Drop for SimTopology {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_strait"))
            .args(["sim", "down", "--topology"])
            .arg(&self.file)
            .output();
    }
}

/// A copy of the example topology `example` (repo-relative) named `name` (short: generated
/// interface names stay within 15 bytes), written to `dir`: the hosts in `drop` removed, and
/// the hosts in `run_by_test` without their commands (the test runs their director itself)
/// and with `port_xdp = true` (no `strait director` run line is left to say it forwards with
/// XDP).
pub fn topology_copy(
    example: &str,
    name: &str,
    dir: &std::path::Path,
    run_by_test: &[&str],
    drop: &[&str],
) -> PathBuf {
    let text = std::fs::read_to_string(example).expect("example topology");
    let mut doc: toml::Table = text.parse().expect("topology toml");
    doc.insert("name".into(), toml::Value::String(name.into()));
    let host_name = |h: &toml::Value| h.get("name").and_then(|n| n.as_str()).map(str::to_owned);
    if let Some(toml::Value::Array(hosts)) = doc.get_mut("host") {
        hosts.retain(|h| !host_name(h).is_some_and(|n| drop.contains(&n.as_str())));
        for h in hosts.iter_mut() {
            if host_name(h).is_some_and(|n| run_by_test.contains(&n.as_str())) {
                let t = h.as_table_mut().expect("host table");
                t.remove("run");
                t.insert("port_xdp".into(), toml::Value::Boolean(true));
            }
        }
    }
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, toml::to_string(&doc).expect("toml")).expect("write topology");
    file
}
