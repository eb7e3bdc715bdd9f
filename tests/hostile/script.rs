//! A raw keep-alive origin on [`ORIGIN_IP`] that answers each request with a script (bytes,
//! pauses, a close), reads request bodies (`Content-Length` or chunked) before it answers, and
//! records what it was asked, on which connection, and which connections the node closed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::ORIGIN_IP;

/// One step of an answer.
pub enum Step {
    Send(Vec<u8>),
    Pause(Duration),
    /// Close the connection (after what was sent).
    Close,
}

/// The steps for a request (method, target).
pub type Script = fn(&str, &str) -> Vec<Step>;

/// What the origin has seen.
#[derive(Default)]
pub struct Seen {
    /// (connection number, method, target, body bytes) per request, in the order their heads
    /// arrived; body bytes `usize::MAX` until the whole body is read.
    pub requests: Vec<(usize, String, String, usize)>,
    /// Connections that have ended (closed by the node, or by the script).
    pub closed: Vec<usize>,
}

/// A running scripted origin.
pub struct Scripted {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl Scripted {
    pub fn start(script: Script) -> Scripted {
        let l = TcpListener::bind(format!("{ORIGIN_IP}:0")).expect("bind origin");
        let addr = l.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for (n, conn) in l.incoming().enumerate() {
                let Ok(conn) = conn else { continue };
                let log = Arc::clone(&log);
                std::thread::spawn(move || serve(n, conn, script, &log));
            }
        });
        Scripted { addr, seen }
    }

    /// The connections that carried requests for `target`, in order.
    pub fn conns_of(&self, target: &str) -> Vec<usize> {
        let seen = self.seen.lock().expect("seen");
        seen.requests
            .iter()
            .filter(|r| r.2 == target)
            .map(|r| r.0)
            .collect()
    }

    /// The body length of the request for `target` on connection `n`, if one came.
    pub fn body_of(&self, n: usize, target: &str) -> Option<usize> {
        let seen = self.seen.lock().expect("seen");
        seen.requests
            .iter()
            .find(|r| r.0 == n && r.2 == target)
            .map(|r| r.3)
            .filter(|&b| b != usize::MAX)
    }

    /// Connection `n` has ended.
    pub fn closed(&self, n: usize) -> bool {
        self.seen.lock().expect("seen").closed.contains(&n)
    }
}

fn serve(n: usize, conn: TcpStream, script: Script, log: &Mutex<Seen>) {
    let mut r = BufReader::new(conn);
    loop {
        let Some((method, target)) = read_request(&mut r, n, log) else {
            log.lock().expect("seen").closed.push(n);
            return;
        };
        let path = target.split('?').next().unwrap_or("").to_string();
        for step in script(&method, &path) {
            let ok = match step {
                Step::Send(bytes) => r.get_mut().write_all(&bytes).is_ok(),
                Step::Pause(d) => {
                    std::thread::sleep(d);
                    true
                }
                Step::Close => false,
            };
            if !ok {
                log.lock().expect("seen").closed.push(n);
                return;
            }
        }
    }
}

/// One request, recorded when its head is read and again when its body is: method and
/// target; None when the connection ended first.
fn read_request(
    r: &mut BufReader<TcpStream>,
    n: usize,
    log: &Mutex<Seen>,
) -> Option<(String, String)> {
    let mut first = None;
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if first.is_none() {
            first = Some(line);
            continue;
        }
        let (name, value) = line.split_once(':').unwrap_or((&line, ""));
        let value = value.trim().to_ascii_lowercase();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().unwrap_or(0);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.ends_with("chunked");
        }
    }
    let first = first.unwrap_or_default();
    let mut words = first.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let target = words.next().unwrap_or("").to_string();
    let at = {
        let mut seen = log.lock().expect("seen");
        seen.requests
            .push((n, method.clone(), target.clone(), usize::MAX));
        seen.requests.len() - 1
    };
    let body = if chunked {
        read_chunked(r)?
    } else {
        let mut buf = vec![0; length];
        r.read_exact(&mut buf).ok()?;
        length
    };
    log.lock().expect("seen").requests[at].3 = body;
    Some((method, target))
}

fn read_chunked(r: &mut BufReader<TcpStream>) -> Option<usize> {
    let mut total = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        let size = line.trim().split(';').next().unwrap_or("");
        let n = usize::from_str_radix(size, 16).ok()?;
        if n == 0 {
            // Trailers, then the blank line.
            loop {
                let mut t = String::new();
                if r.read_line(&mut t).unwrap_or(0) == 0 {
                    return None;
                }
                if t == "\r\n" {
                    return Some(total);
                }
            }
        }
        let mut data = vec![0; n + 2];
        r.read_exact(&mut data).ok()?;
        total += n;
    }
}
