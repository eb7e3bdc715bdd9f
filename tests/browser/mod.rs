//! Headless Chromium for the admin page tests: finding it, running it with a bound, a proxy
//! that counts the page's loads, and checking a PNG.
//!
//! Contract: [`chromium`] finds `chromium` on `PATH`; missing, it prints `SKIP <test>: ...`
//! and returns `None`, or panics under `CI=true`. Every run gets `--headless --no-sandbox`
//! (root), its own `--user-data-dir` under a temporary directory removed afterwards, and
//! is killed after a bound: [`Browser::dump_dom`] and [`Browser::screenshot`] within
//! [`RUN_LIMIT`]; [`Browser::stay`] keeps a page open for a while and then ends it.
//! [`LoadCounter`] forwards TCP to an address and counts `GET / ` requests in what clients
//! send (keep-alive connections included). [`png_size`] reads a PNG's signature and IHDR.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most one dump or screenshot may take before Chromium is killed.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Headless Chromium with a private profile.
pub struct Browser {
    exe: PathBuf,
    profile: PathBuf,
}

/// `chromium` on `PATH`, or `None` after `SKIP` (panics under `CI=true`).
pub fn chromium(test: &str) -> Option<Browser> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let exe = std::env::split_paths(&path)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file());
    let Some(exe) = exe else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: chromium not found, and CI=true forbids skipping"
        );
        eprintln!("SKIP {test}: chromium not found on PATH (apt-get install chromium)");
        return None;
    };
    // Under the test process's scratch root: anything Chromium's helper processes still write
    // there after `Drop` removed the profile is removed when the test process exits.
    let profile = crate::support::scratch_dir("chromium");
    Some(Browser { exe, profile })
}

impl Browser {
    fn command(&self, size: (u32, u32)) -> Command {
        let mut c = Command::new(&self.exe);
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", self.profile.display()))
        .arg(format!("--window-size={},{}", size.0, size.1))
        .stdin(Stdio::null());
        c
    }

    /// The DOM of `url` after load (`--dump-dom`).
    pub fn dump_dom(&self, url: &str) -> String {
        let mut c = self.command((1280, 900));
        c.arg("--dump-dom").arg(url);
        let out = run_bounded(c, RUN_LIMIT);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Writes a screenshot of `url` at `size` to `png` (`--screenshot`).
    pub fn screenshot(&self, url: &str, size: (u32, u32), png: &Path) {
        let mut c = self.command(size);
        c.arg(format!("--screenshot={}", png.display())).arg(url);
        run_bounded(c, RUN_LIMIT);
    }

    /// Keeps `url` open (no script runs: the page's own meta refresh may reload it) until
    /// `done` holds or `limit` passes, then ends Chromium; returns whether `done` held.
    pub fn stay(&self, url: &str, limit: Duration, done: impl Fn() -> bool) -> bool {
        let mut c = self.command((1280, 900));
        c.arg("--remote-debugging-port=0").arg(url);
        let mut child = c
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let held = loop {
            if done() {
                break true;
            }
            if start.elapsed() > limit || child.try_wait().unwrap().is_some() {
                break done();
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        end(&mut child);
        held
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Runs `c` to its end or kills it after `limit` (then panics); returns its stdout.
fn run_bounded(mut c: Command, limit: Duration) -> Vec<u8> {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            end(&mut child);
            panic!("chromium still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "chromium exited with {status}");
    reader.join().unwrap()
}

fn end(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A TCP forwarder to `target` counting `GET / ` requests (see the module doc).
pub struct LoadCounter {
    pub addr: SocketAddr,
    loads: Arc<AtomicU64>,
}

impl LoadCounter {
    /// Listens on `bind` (port 0: any) and forwards every connection to `target`.
    pub fn start(bind: &str, target: SocketAddr) -> LoadCounter {
        let listener = TcpListener::bind(bind).unwrap();
        let addr = listener.local_addr().unwrap();
        let loads = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&loads);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let counted = Arc::clone(&counted);
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(c2, s2, Some(counted)));
                std::thread::spawn(move || pump(server, client, None));
            }
        });
        LoadCounter { addr, loads }
    }

    /// `GET / ` requests forwarded so far.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }
}

/// Copies `from` to `to` until either ends, counting `GET / ` when `count` is given.
fn pump(mut from: TcpStream, mut to: TcpStream, count: Option<Arc<AtomicU64>>) {
    const NEEDLE: &[u8] = b"GET / HTTP/";
    let mut buf = [0u8; 16 * 1024];
    // The end of the previous read, so a request line split across reads is still seen.
    let mut tail: Vec<u8> = Vec::new();
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
        if let Some(c) = &count {
            tail.extend_from_slice(&buf[..n]);
            let found = tail.windows(NEEDLE.len()).filter(|w| *w == NEEDLE).count();
            c.fetch_add(found as u64, Ordering::Relaxed);
            let keep = tail.len().min(NEEDLE.len() - 1);
            tail.drain(..tail.len() - keep);
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// (width, height) of a PNG: its signature, then the IHDR chunk first; `None` otherwise.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    if bytes.len() < 24 || bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Some((be(16), be(20)))
}
