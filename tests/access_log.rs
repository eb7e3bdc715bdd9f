//! The node's access log (`[log]`), against real processes on 127.0.22.0/24: every field of a
//! miss, a fast-path hit, a hit on hyper's path (a range), a 404 and a 502, read back in both
//! formats; the drop counter when nobody reads the file; SIGUSR1 reopening a renamed file.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{admin_request, get, scratch_dir, wait_until, Node, Proc, START_TIMEOUT};

/// Keys of a node's access line, in order.
const KEYS: [&str; 13] = [
    "time",
    "client",
    "method",
    "host",
    "path",
    "status",
    "bytes",
    "duration_ms",
    "ttfb_ms",
    "cache",
    "route",
    "pool",
    "server",
];

/// `strait sim origin` on 127.0.22.1, a port picked by the kernel.
fn origin() -> (Proc, SocketAddr) {
    let p = Proc::spawn_origin_on("127.0.22.1:0".parse().unwrap());
    let line = p.wait_line("listening on", START_TIMEOUT);
    let addr = line.split_whitespace().last().unwrap().parse().unwrap();
    (p, addr)
}

/// A port on 127.0.22.9 with nothing listening.
fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.22.9:0").unwrap();
    l.local_addr().unwrap()
}

fn config(origin: SocketAddr, dead: SocketAddr, log: &str) -> String {
    format!(
        "[node]\nid = \"a\"\nlisten = [\"127.0.22.1:0\"]\nadmin = \"127.0.22.1:0\"\n\n\
         [[pool]]\nname = \"origin\"\nservers = [{{ addr = \"{origin}\" }}]\n\n\
         [[pool]]\nname = \"dead\"\nservers = [{{ addr = \"{dead}\" }}]\n\n\
         [[route]]\nmatch = {{ path_prefix = \"/dead/\" }}\npool = \"dead\"\n\n\
         [[route]]\npool = \"origin\"\n\n[log]\n{log}\n"
    )
}

/// One logfmt line as (key, value) pairs; `-` (bare) is None.
fn parse_text(line: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        Some('r') => value.push('\r'),
                        Some(c) => value.push(c),
                        None => break,
                    },
                    c => value.push(c),
                }
            }
            assert!(matches!(chars.next(), Some(' ') | None), "{line}");
        } else {
            value = chars.by_ref().take_while(|c| *c != ' ').collect();
        }
        let absent = !quoted && value == "-";
        out.push((key, (!absent).then_some(value)));
    }
}

/// One JSON line as (key, value) pairs, in the line's order; null is None.
fn parse_json(line: &str) -> Vec<(String, Option<String>)> {
    let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
    let obj = v.as_object().expect("an object");
    let mut keys: Vec<(usize, &String)> = obj
        .keys()
        .map(|k| (line.find(&format!("\"{k}\":")).unwrap(), k))
        .collect();
    keys.sort();
    keys.into_iter()
        .map(|(_, k)| {
            let value = match &obj[k] {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            };
            (k.clone(), value)
        })
        .collect()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

type Fields = HashMap<String, Option<String>>;

fn field<'a>(f: &'a Fields, k: &str) -> Option<&'a str> {
    f.get(k).unwrap_or_else(|| panic!("no {k}")).as_deref()
}

fn read_log(path: &Path, json: bool, n: usize) -> Vec<Fields> {
    assert!(
        wait_until(Duration::from_secs(10), || lines(path).len() >= n),
        "{} lines wanted: {:?}",
        n,
        lines(path)
    );
    lines(path)
        .iter()
        .map(|l| {
            let pairs = if json { parse_json(l) } else { parse_text(l) };
            let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(keys, KEYS, "{l}");
            pairs.into_iter().collect()
        })
        .collect()
}

fn every_field_of_each_kind_of_request(json: bool) {
    let (_o, origin) = origin();
    let dead = dead_addr();
    let dir = scratch_dir("access-fields");
    let log = dir.join("access.log");
    let format = if json { "json" } else { "text" };
    let node = Node::start_config(&config(
        origin,
        dead,
        &format!(
            "access = \"{}\"\naccess_format = \"{format}\"",
            log.display()
        ),
    ));
    let path = "/obj/a?size=100&ttl=60";
    let miss = get(node.addr, path, &[]);
    assert_eq!(miss.status, 200);
    let hit = get(node.addr, path, &[]);
    assert!(
        hit.cache_status().starts_with("a; hit"),
        "{}",
        hit.cache_status()
    );
    let ranged = get(node.addr, path, &[("Range", "bytes=0-9")]);
    assert_eq!(ranged.status, 206);
    let missing = get(node.addr, "/nope", &[]);
    assert_eq!(missing.status, 404);
    let failed = get(node.addr, "/dead/x", &[]);
    assert_eq!(failed.status, 502);
    // A no-store key asked twice: the second request takes the pass lane.
    let lane_path = "/obj/p?size=30&cc=no-store";
    let _ = get(node.addr, lane_path, &[]);
    let lane = get(node.addr, lane_path, &[]);
    assert_eq!(node.counter("pass_lane"), 1);

    let all = read_log(&log, json, 7);
    let find = |status: &str, cache: &str| -> &Fields {
        all.iter()
            .find(|f| {
                field(f, "status") == Some(status)
                    && field(f, "cache").unwrap_or("").contains(cache)
            })
            .unwrap_or_else(|| panic!("no {status} {cache:?} line in {all:?}"))
    };
    for f in &all {
        let time = field(f, "time").unwrap();
        assert!(time.len() == 24 && time.ends_with('Z'), "{time}");
        let client: SocketAddr = field(f, "client").unwrap().parse().unwrap();
        assert!(client.ip().is_loopback());
        assert_eq!(field(f, "method"), Some("GET"));
        assert_eq!(field(f, "host"), Some("test.example"));
        let d: f64 = field(f, "duration_ms").unwrap().parse().unwrap();
        let t: f64 = field(f, "ttfb_ms").unwrap().parse().unwrap();
        assert!(t <= d && d < 10_000.0, "{f:?}");
    }
    let origin_s = origin.to_string();
    let m = find("200", "fwd=miss");
    assert_eq!(field(m, "path"), Some(path));
    assert_eq!(field(m, "bytes"), Some("100"));
    assert_eq!(field(m, "cache"), Some(miss.cache_status()));
    assert_eq!(field(m, "route"), Some("1"));
    assert_eq!(field(m, "pool"), Some("origin"));
    assert_eq!(field(m, "server"), Some(origin_s.as_str()));

    let h = find("200", "hit");
    assert_eq!(field(h, "path"), Some(path));
    assert_eq!(field(h, "bytes"), Some("100"));
    assert_eq!(field(h, "cache"), Some(hit.cache_status()));
    assert_eq!(field(h, "route"), Some("1"));
    assert_eq!(field(h, "pool"), Some("origin"));
    assert_eq!(field(h, "server"), None, "a hit asked no origin server");

    let r = find("206", "hit");
    assert_eq!(field(r, "bytes"), Some("10"));
    assert_eq!(field(r, "pool"), Some("origin"));

    let n = find("404", "");
    assert_eq!(field(n, "path"), Some("/nope"));
    assert_eq!(
        field(n, "bytes"),
        Some(missing.body.len().to_string().as_str())
    );
    assert_eq!(field(n, "server"), Some(origin_s.as_str()));
    assert_eq!(field(n, "route"), Some("1"));

    let e = find("502", "");
    assert_eq!(field(e, "path"), Some("/dead/x"));
    assert_eq!(field(e, "route"), Some("0"));
    assert_eq!(field(e, "pool"), Some("dead"));
    assert_eq!(
        field(e, "bytes"),
        Some(failed.body.len().to_string().as_str())
    );
    assert!(field(e, "cache").is_some(), "{e:?}");

    let lane_lines: Vec<&Fields> = all
        .iter()
        .filter(|f| field(f, "path") == Some(lane_path))
        .collect();
    assert_eq!(lane_lines.len(), 2, "{all:?}");
    for l in lane_lines {
        assert_eq!(field(l, "status"), Some("200"));
        assert_eq!(field(l, "bytes"), Some("30"));
        assert_eq!(field(l, "cache"), Some(lane.cache_status()));
        assert_eq!(field(l, "route"), Some("1"));
        assert_eq!(field(l, "pool"), Some("origin"));
        assert_eq!(field(l, "server"), Some(origin_s.as_str()));
    }

    assert_eq!(node.counter("access_log_lines"), 7);
    assert_eq!(node.counter("access_log_dropped"), 0);
}

#[test]
fn text_lines_carry_every_field_of_a_miss_a_hit_a_404_and_a_502() {
    every_field_of_each_kind_of_request(false);
}

#[test]
fn json_lines_carry_every_field_of_a_miss_a_hit_a_404_and_a_502() {
    every_field_of_each_kind_of_request(true);
}

/// A FIFO opened for reading by nobody that ever reads, its pipe shrunk to one page.
fn stalled_fifo(dir: &Path) -> (PathBuf, std::fs::File) {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let fifo = dir.join("access.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    // SAFETY: fcntl on an open descriptor; a failure only leaves the default pipe size.
    unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    (fifo, reader)
}

#[test]
fn a_stalled_writer_drops_and_counts_lines_and_requests_go_on() {
    let (_o, origin) = origin();
    let dir = scratch_dir("access-stall");
    let (fifo, _reader) = stalled_fifo(&dir);
    let node = Node::start_config(&config(
        origin,
        dead_addr(),
        &format!("access = \"{}\"\naccess_queue = 4", fifo.display()),
    ));
    assert_eq!(get(node.addr, "/obj/s?size=10&ttl=60", &[]).status, 200);
    let mut sent = 0;
    while node.counter("access_log_dropped") == 0 {
        for _ in 0..50 {
            let r = get(node.addr, "/obj/s?size=10&ttl=60", &[]);
            assert_eq!(r.status, 200, "requests are served while the log stalls");
        }
        sent += 50;
        assert!(sent < 5000, "nothing dropped after {sent} requests");
    }
    let metrics = admin_request(node.admin, "GET", "/metrics", &[]).text();
    let dropped = metrics
        .lines()
        .find(|l| l.starts_with("strait_access_log_dropped_total "))
        .unwrap_or_else(|| panic!("{metrics}"));
    let n: u64 = dropped.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n > 0, "{dropped}");
}

#[test]
fn sigusr1_reopens_a_file_that_was_renamed() {
    let (_o, origin) = origin();
    let dir = scratch_dir("access-reopen");
    let log = dir.join("access.log");
    let node = Node::start_config(&config(
        origin,
        dead_addr(),
        &format!("access = \"{}\"", log.display()),
    ));
    assert_eq!(get(node.addr, "/obj/before?size=1", &[]).status, 200);
    assert!(wait_until(Duration::from_secs(10), || lines(&log).len() == 1));
    let rotated = dir.join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    node.proc.signal("USR1");
    node.proc
        .wait_line("reopening the access log", Duration::from_secs(10));
    assert!(
        wait_until(Duration::from_secs(10), || log.exists()),
        "the path is opened again"
    );
    assert_eq!(get(node.addr, "/obj/after?size=1", &[]).status, 200);
    assert!(wait_until(Duration::from_secs(10), || lines(&log).len() == 1));
    assert!(
        lines(&log)[0].contains("path=\"/obj/after?size=1\""),
        "{:?}",
        lines(&log)
    );
    let old = lines(&rotated);
    assert_eq!(old.len(), 1, "{old:?}");
    assert!(old[0].contains("/obj/before"), "{old:?}");
}
