//! `strait ctl`: a small admin client for a running node or director.
//!
//! Contract:
//! * One HTTP/1.1 exchange with the node's admin listener (`--admin`, default
//!   127.0.0.1:9090) over a fresh TCP connection, bounded by [`ADMIN_TIMEOUT`] overall:
//!   `status`/`stats` -> `GET /stats.json`; `cluster` -> `GET /cluster.json`
//!   (rendered by `cluster_view`); `purge URL` -> `POST /purge?url=<URL>`;
//!   `ban PREFIX` -> `POST /ban?prefix=<PREFIX>` (query values percent-encoded, RFC 3986
//!   §2.1: everything but unreserved characters is escaped); `conns --limit N` ->
//!   `GET /conns.json?limit=N` (directors); `server`, `backend` and `show config` are
//!   `control`'s. Every request carries `Host: ADDR` and no body or
//!   `Content-Type`, as the admin listener's guard asks (`strait_lb::admin::guard`).
//! * A transport failure or timeout is the error `cannot reach admin at ADDR: <reason>` (exit 1).
//!   A non-2xx answer prints `admin at ADDR answered <status>` and the body on stderr (exit 1).
//! * `purge` and `ban` (`invalidate`): a ban prefix is checked before it is sent (refused:
//!   exit 2); `ban --all` -> `POST /ban?all=1`; an answer that removed nothing, or that a
//!   cluster member did not confirm, is exit 1 with the reason on stderr.
//! * `--json` prints the answer's JSON pretty; otherwise [`render_status`], [`render_stats`],
//!   [`render_conns`] or [`render_removed`] print a human view; a director's stats (they have
//!   `"services"`) are shown by the `director_view` renderers. Renderers are pure and tolerate missing fields:
//!   they print what is there.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, Context};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Empty;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

use crate::cli::{CtlArgs, CtlCommand};

mod cluster_view;
pub(crate) mod control;
pub(crate) mod director_view;
mod invalidate;
mod reload_view;

/// Bound on the whole exchange with the admin listener.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest admin answer read: 16 MiB.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Counters printed first by `stats`, in this order; other numbers follow alphabetically.
const KNOWN_COUNTERS: [&str; 16] = [
    "requests",
    "local_hit",
    "local_miss",
    "remote_hit",
    "remote_miss",
    "origin_fetches",
    "coalesced",
    "stale_served",
    "revalidated",
    "not_modified",
    "uncacheable",
    "errors",
    "stored_objects",
    "stored_bytes",
    "capacity_bytes",
    "evictions",
];

/// Columns of the per-pool server table: (header, JSON field).
const SERVER_COLUMNS: [(&str, &str); 9] = [
    ("server", "addr"),
    ("up", "up"),
    ("state", "state"),
    ("weight", "weight"),
    ("requests", "requests"),
    ("active", "active"),
    ("errors", "errors"),
    ("last check", "last_check"),
    ("resp ms", "response_ms"),
];

/// Runs one `strait ctl` command; returns the exit code.
pub fn run(args: CtlArgs) -> anyhow::Result<i32> {
    let (method, target) = match request_for(&args.command) {
        Ok(request) => request,
        Err(why) => {
            eprintln!("strait ctl: {why}");
            return Ok(invalidate::EXIT_REFUSED);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let admin = args.admin;
    let (status, body) = runtime
        .block_on(async {
            match tokio::time::timeout(ADMIN_TIMEOUT, fetch(admin, method, &target)).await {
                Ok(answer) => answer,
                Err(_) => Err(anyhow!("no answer within {}s", ADMIN_TIMEOUT.as_secs())),
            }
        })
        .map_err(|e| anyhow!("cannot reach admin at {admin}: {e:#}"))?;
    if !status.is_success() {
        eprintln!("admin at {admin} answered {status}");
        eprintln!("{}", String::from_utf8_lossy(&body).trim_end());
        return Ok(1);
    }
    let value: Value = serde_json::from_slice(&body)
        .with_context(|| format!("admin at {admin} answered with invalid JSON"))?;
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&value)?)
    } else {
        match &args.command {
            CtlCommand::Status if director_view::is_director(&value) => {
                director_view::render_status(&value)
            }
            CtlCommand::Stats if director_view::is_director(&value) => {
                director_view::render_stats(&value)
            }
            CtlCommand::Status => render_status(&value),
            CtlCommand::Stats => render_stats(&value),
            CtlCommand::Cluster => cluster_view::render_cluster(&value),
            CtlCommand::Runtime(runtime) => control::render(runtime, &value),
            CtlCommand::Conns { .. } => director_view::render_conns(&value),
            CtlCommand::Purge { .. } | CtlCommand::Ban { .. } => render_removed(&value),
            CtlCommand::Reload => reload_view::render_reload(&value),
        }
    };
    print!("{text}");
    if let CtlCommand::Purge { .. } | CtlCommand::Ban { .. } = args.command {
        let (code, why) = invalidate::outcome(&value);
        if let Some(why) = why {
            eprintln!("strait ctl: {why}");
        }
        return Ok(code);
    }
    Ok(0)
}

/// Method and request target of a command, or why the command line is refused.
fn request_for(command: &CtlCommand) -> Result<(Method, String), String> {
    Ok(match command {
        CtlCommand::Status | CtlCommand::Stats => (Method::GET, "/stats.json".to_owned()),
        CtlCommand::Runtime(runtime) => control::request_for(runtime),
        CtlCommand::Cluster => (Method::GET, "/cluster.json".to_owned()),
        CtlCommand::Purge { url } => (Method::POST, format!("/purge?url={}", percent_encode(url))),
        CtlCommand::Ban { prefix, all } => {
            let prefix = if *all {
                None
            } else {
                Some(prefix.as_deref().unwrap_or(""))
            };
            (Method::POST, invalidate::ban_target(prefix)?)
        }
        CtlCommand::Reload => (Method::POST, "/reload".to_owned()),
        CtlCommand::Conns { limit } => (Method::GET, format!("/conns.json?limit={limit}")),
    })
}

/// One request over a fresh connection; returns the status and the whole body.
async fn fetch(
    admin: SocketAddr,
    method: Method,
    target: &str,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let stream = tokio::net::TcpStream::connect(admin).await?;
    let request = Request::builder()
        .method(method)
        .uri(target)
        .header(http::header::HOST, admin.to_string())
        .header(http::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())?;
    let (head, body) = super::client::exchange(stream, request, MAX_ANSWER_BYTES).await?;
    Ok((head.status, body))
}

/// Everything but the RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const RESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes every [`RESERVED`] byte, so the result is safe as a query value.
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, RESERVED).to_string()
}

/// `status`: `node <id>  up <uptime>  requests <n>  hit ratio <pct>`, each part only when its
/// fields are present. Hit ratio is the node's own `hit_ratio` (hits / cache lookups) when it
/// gives one, else (local_hit + remote_hit) / requests.
pub fn render_status(stats: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(node) = stats.get("node").and_then(Value::as_str) {
        parts.push(format!("node {node}"));
    }
    if let Some(secs) = stats.get("uptime_secs").and_then(Value::as_u64) {
        parts.push(format!("up {}", format_uptime(secs)));
    }
    if let Some(requests) = stats.get("requests").and_then(Value::as_u64) {
        parts.push(format!("requests {requests}"));
        let hits = ["local_hit", "remote_hit"]
            .iter()
            .filter_map(|k| stats.get(*k).and_then(Value::as_u64))
            .sum::<u64>();
        let given = stats.get("hit_ratio").and_then(Value::as_f64);
        let ratio = match given {
            Some(r) => format!("{:.1}%", r * 100.0),
            None if requests == 0 => "n/a".to_owned(),
            None => format!("{:.1}%", hits as f64 * 100.0 / requests as f64),
        };
        parts.push(format!("hit ratio {ratio}"));
    }
    format!("{}\n", parts.join("  "))
}

/// `stats`: `node <id>`, then aligned `name  value` lines for every top-level number (known
/// counters first, then the rest alphabetically; byte counts and uptime also humanised), then
/// one server table per pool.
pub fn render_stats(stats: &Value) -> String {
    let mut out = String::new();
    let Some(map) = stats.as_object() else {
        return format!("{stats}\n");
    };
    if let Some(node) = map.get("node").and_then(Value::as_str) {
        let _ = writeln!(out, "node {node}");
    }
    let mut names: Vec<&str> = KNOWN_COUNTERS
        .iter()
        .copied()
        .filter(|k| map.get(*k).is_some_and(Value::is_number))
        .collect();
    let mut others: Vec<&str> = map
        .iter()
        .filter(|(k, v)| v.is_number() && !KNOWN_COUNTERS.contains(&k.as_str()))
        .map(|(k, _)| k.as_str())
        .collect();
    others.sort_unstable();
    names.extend(others);
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    for name in names {
        let value = &map[name];
        let mut line = format!("{name:<width$}  {value}");
        if let Some(n) = value.as_u64() {
            if name.ends_with("bytes") {
                let _ = write!(line, " ({})", format_bytes(n));
            } else if name == "uptime_secs" {
                let _ = write!(line, " ({})", format_uptime(n));
            }
        }
        let _ = writeln!(out, "{line}");
    }
    for pool in map
        .get("pools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push('\n');
        out.push_str(&render_pool(pool));
    }
    out
}

/// One pool: `pool <name> (<algorithm>)` and its server table.
fn render_pool(pool: &Value) -> String {
    let name = pool.get("name").and_then(Value::as_str).unwrap_or("?");
    let mut out = match pool.get("algorithm").and_then(Value::as_str) {
        Some(algorithm) => format!("pool {name} ({algorithm})\n"),
        None => format!("pool {name}\n"),
    };
    let mut rows: Vec<Vec<String>> = vec![SERVER_COLUMNS.iter().map(|c| c.0.to_owned()).collect()];
    for server in pool
        .get("servers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        rows.push(
            SERVER_COLUMNS
                .iter()
                .map(|c| cell(server.get(c.1)))
                .collect(),
        );
    }
    out.push_str(&align(&rows));
    out
}

/// A table cell: strings bare, booleans as yes/no, missing as `-`.
pub(crate) fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(true)) => "yes".to_owned(),
        Some(Value::Bool(false)) => "no".to_owned(),
        Some(other) => other.to_string(),
    }
}

/// Left-aligned columns separated by two spaces, no trailing blanks.
pub(crate) fn align(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, text) in row.iter().enumerate() {
            let _ = write!(line, "{text:<w$}  ", w = widths[c]);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `purge`/`ban`: `removed <n> object(s)` (the raw JSON when `removed` is missing); in a
/// cluster, then the count of each node and the nodes that did not confirm.
pub fn render_removed(answer: &Value) -> String {
    let Some(n) = answer.get("removed").and_then(Value::as_u64) else {
        return format!("{answer}\n");
    };
    let mut out = format!("removed {n} object(s)\n");
    if let Some(nodes) = answer.get("nodes").and_then(Value::as_object) {
        let each: Vec<String> = nodes.iter().map(|(id, n)| format!("{id} {n}")).collect();
        let _ = writeln!(out, "nodes: {}", each.join(", "));
    }
    if let Some(failed) = answer.get("failed").and_then(Value::as_object) {
        for (id, why) in failed {
            let why = why.as_str().unwrap_or("?");
            let _ = writeln!(out, "NOT CONFIRMED by {id}: {why}");
        }
    }
    out
}

/// Binary-prefixed size with one decimal: `512 B`, `4.0 KiB`, `256.0 MiB`.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Uptime as its non-zero `d h m s` parts: `12s`, `1h 5s`, `2d 3h`; zero is `0s`.
pub fn format_uptime(secs: u64) -> String {
    let parts = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3600, "h"),
        (secs % 3600 / 60, "m"),
        (secs % 60, "s"),
    ];
    let text: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if text.is_empty() {
        "0s".to_owned()
    } else {
        text.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    const SAMPLE: &str = r#"{"node":"a","uptime_secs":12,"requests":10,"local_hit":7,"local_miss":3,
        "remote_hit":0,"remote_miss":0,"origin_fetches":3,"coalesced":0,"stale_served":0,
        "revalidated":0,"not_modified":0,"uncacheable":0,"errors":0,"stored_objects":3,
        "stored_bytes":4096,"capacity_bytes":268435456,"evictions":0,
        "pools":[{"name":"origin","algorithm":"roundrobin","servers":[{"addr":"127.0.0.1:18080",
        "up":true,"state":"up","weight":1,"requests":3,"active":0,"errors":0,
        "last_check":"200","response_ms":1.25}]}]}"#;

    fn sample() -> Value {
        serde_json::from_str(SAMPLE).unwrap()
    }

    #[test]
    fn status_line_from_sample() {
        assert_eq!(
            render_status(&sample()),
            "node a  up 12s  requests 10  hit ratio 70.0%\n"
        );
    }

    #[test]
    fn status_line_prints_what_is_there() {
        let v = serde_json::json!({"requests": 3, "remote_hit": 1});
        assert_eq!(render_status(&v), "requests 3  hit ratio 33.3%\n");
        let v = serde_json::json!({"node": "b", "requests": 0});
        assert_eq!(render_status(&v), "node b  requests 0  hit ratio n/a\n");
        assert_eq!(render_status(&serde_json::json!({})), "\n");
        // The node's own figure (hits / lookups) wins over hits / requests.
        let v = serde_json::json!({"requests": 4, "local_hit": 1, "hit_ratio": 0.5});
        assert_eq!(render_status(&v), "requests 4  hit ratio 50.0%\n");
    }

    #[test]
    fn stats_table_from_sample() {
        let want = "\
node a
requests        10
local_hit       7
local_miss      3
remote_hit      0
remote_miss     0
origin_fetches  3
coalesced       0
stale_served    0
revalidated     0
not_modified    0
uncacheable     0
errors          0
stored_objects  3
stored_bytes    4096 (4.0 KiB)
capacity_bytes  268435456 (256.0 MiB)
evictions       0
uptime_secs     12 (12s)

pool origin (roundrobin)
server           up   state  weight  requests  active  errors  last check  resp ms
127.0.0.1:18080  yes  up     1       3         0       0       200         1.25
";
        assert_eq!(render_stats(&sample()), want);
    }

    #[test]
    fn stats_tolerates_missing_and_extra_fields() {
        let v = serde_json::json!({
            "zeta": 1, "requests": 5, "alpha": 2.5, "label": "x",
            "pools": [{"name": "p", "servers": [{"addr": "s1", "up": false}, {}]}]
        });
        let want = "\
requests  5
alpha     2.5
zeta      1

pool p
server  up  state  weight  requests  active  errors  last check  resp ms
s1      no  -      -       -         -       -       -           -
-       -   -      -       -         -       -       -           -
";
        assert_eq!(render_stats(&v), want);
        assert_eq!(render_stats(&serde_json::json!([1])), "[1]\n");
    }

    #[test]
    fn removed_count() {
        assert_eq!(
            render_removed(&serde_json::json!({"removed": 1})),
            "removed 1 object(s)\n"
        );
        assert_eq!(
            render_removed(&serde_json::json!({"ok": true})),
            "{\"ok\":true}\n"
        );
        let cluster = serde_json::json!({
            "removed": 3,
            "nodes": {"a": 1, "b": 2},
            "failed": {"c": "connect to 10.0.0.13:7070: refused"}
        });
        assert_eq!(
            render_removed(&cluster),
            "removed 3 object(s)\nnodes: a 1, b 2\n\
             NOT CONFIRMED by c: connect to 10.0.0.13:7070: refused\n"
        );
    }

    #[test]
    fn percent_encode_keeps_only_unreserved() {
        assert_eq!(
            percent_encode("http://example.com/a b.png?x=1&y=é~_-"),
            "http%3A%2F%2Fexample.com%2Fa%20b.png%3Fx%3D1%26y%3D%C3%A9~_-"
        );
        assert_eq!(percent_encode(""), "");
    }

    #[test]
    fn humanised_bytes_and_uptime() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(10 * 1024 * 1024 * 1024), "10.0 GiB");
        assert_eq!(format_uptime(0), "0s");
        assert_eq!(format_uptime(3605), "1h 5s");
        assert_eq!(format_uptime(2 * 86_400 + 3 * 3600 + 60), "2d 3h 1m");
    }

    #[test]
    fn requests_per_command() {
        let purge = CtlCommand::Purge {
            url: "http://h/a b".into(),
        };
        assert_eq!(
            request_for(&purge),
            Ok((Method::POST, "/purge?url=http%3A%2F%2Fh%2Fa%20b".into()))
        );
        let ban = CtlCommand::Ban {
            prefix: Some("http://h/img/".into()),
            all: false,
        };
        assert_eq!(
            request_for(&ban),
            Ok((Method::POST, "/ban?prefix=http%3A%2F%2Fh%2Fimg%2F".into()))
        );
        let all = CtlCommand::Ban {
            prefix: None,
            all: true,
        };
        assert_eq!(request_for(&all), Ok((Method::POST, "/ban?all=1".into())));
        let empty = CtlCommand::Ban {
            prefix: Some(String::new()),
            all: false,
        };
        assert!(request_for(&empty).is_err());
        assert_eq!(
            request_for(&CtlCommand::Stats),
            Ok((Method::GET, "/stats.json".into()))
        );
        assert_eq!(
            request_for(&CtlCommand::Conns { limit: 5 }),
            Ok((Method::GET, "/conns.json?limit=5".into()))
        );
    }

    /// A one-shot admin on 127.0.0.1:0 answering `status` and `body`; the thread returns the
    /// request head it received.
    fn one_shot_admin(
        status: &'static str,
        body: &'static str,
    ) -> (SocketAddr, std::thread::JoinHandle<String>) {
        one_shot_admin_on("127.0.0.1", status, body)
    }

    /// [`one_shot_admin`] on another loopback address.
    fn one_shot_admin_on(
        ip: &str,
        status: &'static str,
        body: &'static str,
    ) -> (SocketAddr, std::thread::JoinHandle<String>) {
        let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                conn.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(answer.as_bytes()).unwrap();
            String::from_utf8(head).unwrap()
        });
        (addr, handle)
    }

    fn args(admin: SocketAddr, json: bool, command: CtlCommand) -> CtlArgs {
        CtlArgs {
            admin,
            json,
            command,
        }
    }

    #[test]
    fn purge_posts_the_encoded_url_and_exits_0() {
        let (addr, admin) = one_shot_admin("200 OK", "{\"removed\": 2}");
        let command = CtlCommand::Purge {
            url: "http://e.com/a.png".into(),
        };
        assert_eq!(run(args(addr, false, command)).unwrap(), 0);
        let head = admin.join().unwrap();
        assert!(
            head.starts_with("POST /purge?url=http%3A%2F%2Fe.com%2Fa.png HTTP/1.1\r\n"),
            "{head}"
        );
        // What the admin guard asks of a state change: its own address as Host, no form body.
        let head = head.to_ascii_lowercase();
        assert!(head.contains(&format!("\r\nhost: {addr}\r\n")), "{head}");
        assert!(!head.contains("content-type"), "{head}");
    }

    #[test]
    fn a_purge_or_ban_that_removed_nothing_exits_1() {
        let (addr, admin) = one_shot_admin_on(
            "127.0.20.1",
            "200 OK",
            "{\"removed\": 0, \"key\": \"http://e.com/a.png\"}",
        );
        let command = CtlCommand::Purge {
            url: "http://e.com/a.png".into(),
        };
        assert_eq!(run(args(addr, false, command)).unwrap(), 1);
        admin.join().unwrap();
        let (addr, admin) = one_shot_admin_on("127.0.20.1", "200 OK", "{\"removed\": 4}");
        let command = CtlCommand::Ban {
            prefix: None,
            all: true,
        };
        assert_eq!(run(args(addr, true, command)).unwrap(), 0);
        assert!(admin
            .join()
            .unwrap()
            .starts_with("POST /ban?all=1 HTTP/1.1\r\n"));
    }

    #[test]
    fn an_empty_or_relative_ban_is_refused_without_asking_the_node() {
        // Nothing listens there: a request would be an error, not exit 2.
        let nobody = std::net::TcpListener::bind("127.0.20.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        for prefix in ["", "/img/", "http://"] {
            let command = CtlCommand::Ban {
                prefix: Some(prefix.into()),
                all: false,
            };
            assert_eq!(run(args(nobody, false, command)).unwrap(), 2, "{prefix:?}");
        }
    }

    #[test]
    fn stats_json_mode_exits_0() {
        let (addr, admin) = one_shot_admin("200 OK", SAMPLE);
        assert_eq!(run(args(addr, true, CtlCommand::Stats)).unwrap(), 0);
        assert!(admin
            .join()
            .unwrap()
            .starts_with("GET /stats.json HTTP/1.1\r\n"));
    }

    #[test]
    fn non_2xx_answer_exits_1() {
        let (addr, admin) = one_shot_admin("403 Forbidden", "loopback only\n");
        assert_eq!(run(args(addr, false, CtlCommand::Status)).unwrap(), 1);
        admin.join().unwrap();
    }

    #[test]
    fn invalid_json_is_an_error() {
        let (addr, admin) = one_shot_admin("200 OK", "not json");
        let err = run(args(addr, false, CtlCommand::Status)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("admin at {addr} answered with invalid JSON")
        );
        admin.join().unwrap();
    }

    #[test]
    fn unreachable_admin_is_a_clear_error() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        // The listener is dropped: nothing accepts on addr any more.
        let err = run(args(addr, false, CtlCommand::Status))
            .unwrap_err()
            .to_string();
        let prefix = format!("cannot reach admin at {addr}: ");
        assert!(err.starts_with(&prefix), "{err}");
        assert!(err.len() > prefix.len(), "{err}");
    }
}
