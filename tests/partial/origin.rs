//! A scripted origin for partial-content tests: one object per path, of `size` bytes, whose
//! version (its bytes and its validator, an `ETag` or a `Last-Modified`) the test changes. It honours a single closed, open
//! or suffix `Range` (206 with `Content-Range`), and `If-Range` by strong comparison with the current
//! `ETag` (a mismatch gets the whole 200) unless told to ignore it. Every request is recorded
//! with its path and the body bytes sent for it. HTTP/1.1 keep-alive, no request bodies.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request as the origin saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub status: u16,
    pub sent: usize,
}

/// What the origin serves now.
struct Script {
    size: usize,
    version: u8,
    /// The validator: `"..."` or `W/"..."` is sent as `ETag`; `lm:<date>` as `Last-Modified`.
    etag: String,
    cache_control: String,
    /// How long each answer is held back.
    delay: std::time::Duration,
    honour_if_range: bool,
    seen: Vec<Seen>,
}

pub struct RangeOrigin {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
}

/// The bytes of version `version` of an object of `size` bytes.
pub fn content(version: u8, size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| ((i * 7 + usize::from(version) * 31) % 251) as u8)
        .collect()
}

impl RangeOrigin {
    /// Serve version 1 of a `size`-byte object with `etag` on `ip`.
    pub fn start(ip: &str, size: usize, etag: &str) -> RangeOrigin {
        let listener = TcpListener::bind((ip, 0)).expect("bind range origin");
        let addr = listener.local_addr().expect("range origin address");
        let script = Arc::new(Mutex::new(Script {
            size,
            version: 1,
            etag: etag.to_string(),
            cache_control: "max-age=600".to_string(),
            delay: std::time::Duration::ZERO,
            honour_if_range: true,
            seen: Vec::new(),
        }));
        let shared = Arc::clone(&script);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let script = Arc::clone(&shared);
                std::thread::spawn(move || serve(conn, &script));
            }
        });
        RangeOrigin { addr, script }
    }

    /// Serve `version` with `etag` from now on.
    pub fn change(&self, version: u8, etag: &str) {
        let mut s = self.script.lock().expect("script");
        s.version = version;
        s.etag = etag.to_string();
    }

    /// Send `cc` as `Cache-Control` from now on.
    pub fn cache_control(&self, cc: &str) {
        self.script.lock().expect("script").cache_control = cc.to_string();
    }

    /// Hold each answer back this long (a slow origin).
    pub fn delay(&self, d: std::time::Duration) {
        self.script.lock().expect("script").delay = d;
    }

    /// Answer every Range with a 206, whatever `If-Range` says (a broken origin).
    pub fn ignore_if_range(&self) {
        self.script.lock().expect("script").honour_if_range = false;
    }

    /// The requests so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.script.lock().expect("script").seen.clone()
    }

    /// The requests for `path` so far.
    pub fn seen_of(&self, path: &str) -> Vec<Seen> {
        let s = self.script.lock().expect("script");
        s.seen.iter().filter(|r| r.path == path).cloned().collect()
    }
}

fn serve(conn: TcpStream, script: &Mutex<Script>) {
    let mut r = BufReader::new(conn);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        let field = |name: &str| {
            head.iter().skip(1).find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let (range, if_range) = (field("range"), field("if-range"));
        let path = head
            .first()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("")
            .to_string();
        let delay = script.lock().expect("script").delay;
        std::thread::sleep(delay);
        let reply = answer(script, path, range, if_range);
        if r.get_mut().write_all(&reply).is_err() {
            return;
        }
    }
}

/// The response to one request, recorded in the script.
fn answer(
    script: &Mutex<Script>,
    path: String,
    range: Option<String>,
    if_range: Option<String>,
) -> Vec<u8> {
    let mut s = script.lock().expect("script");
    let body = content(s.version, s.size);
    let (validator_field, validator) = match s.etag.strip_prefix("lm:") {
        Some(date) => ("Last-Modified", date.to_string()),
        None => ("ETag", s.etag.clone()),
    };
    let if_range_ok = match &if_range {
        None => true,
        Some(v) => !s.honour_if_range || (*v == validator && !v.starts_with("W/")),
    };
    let span = range
        .as_deref()
        .and_then(|r| parse(r, body.len()))
        .filter(|_| if_range_ok);
    let (status, extra, part) = match span {
        Some((a, b)) => (
            "206 Partial Content",
            format!("Content-Range: bytes {a}-{b}/{}\r\n", body.len()),
            &body[a..=b],
        ),
        None => ("200 OK", String::new(), &body[..]),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\n\
         Cache-Control: {}\r\n{validator_field}: {validator}\r\nAccept-Ranges: bytes\r\n{extra}\
         Content-Length: {}\r\n\r\n",
        s.cache_control,
        part.len()
    )
    .into_bytes();
    out.extend_from_slice(part);
    s.seen.push(Seen {
        path,
        range,
        if_range,
        status: if span.is_some() { 206 } else { 200 },
        sent: part.len(),
    });
    out
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n`, clipped to `len`; None when unsatisfiable or another
/// form.
fn parse(v: &str, len: usize) -> Option<(usize, usize)> {
    let (a, b) = v.strip_prefix("bytes=")?.split_once('-')?;
    if a.is_empty() {
        let n: usize = b.parse().ok()?;
        return (n > 0 && len > 0).then(|| (len.saturating_sub(n), len - 1));
    }
    let a: usize = a.parse().ok()?;
    let b: usize = if b.is_empty() {
        len - 1
    } else {
        b.parse().ok()?
    };
    (a <= b && a < len).then(|| (a, b.min(len - 1)))
}
