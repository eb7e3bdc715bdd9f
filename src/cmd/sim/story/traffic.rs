//! The client's side of the story: [`LONG`] connections each streaming a slow response through
//! the VIP until the end, and a new short connection every [`SHORT_EVERY`], static objects
//! (`/obj/`, [`OBJECTS`] of them, cacheable) and dynamic answers (`/dyn/`) in turn, until
//! `stop` is set. Every request records when it started, which node answered (`Via`) and how
//! (`Cache-Status`); every long connection the node that answered it and when it broke.

use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strait_topology::demo_report::via_node;
use strait_topology::story::{cache_path, Answered, Kind, Long, Short};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Long-lived connections.
pub(super) const LONG: usize = 20;
/// Time between two short requests.
pub(super) const SHORT_EVERY: Duration = Duration::from_millis(20);
/// Distinct static objects the short requests cycle through.
pub(super) const OBJECTS: usize = 24;
/// Path prefix of those objects at the static origin (its counts tell the fetches).
pub(super) const OBJECT_PREFIX: &str = "/obj/static-";
/// A short request whose connection is not up within this failed (no SYN retries).
const SHORT_CONNECT: Duration = Duration::from_millis(300);
/// Bound on one short request's whole exchange.
const SHORT_BOUND: Duration = Duration::from_secs(2);
/// A long connection's response: one 4 KiB chunk per this ...
const CHUNK_EVERY: Duration = Duration::from_millis(100);
/// ... for this long (longer than any run: the scenario stops it).
const LONG_FOR: Duration = Duration::from_secs(90);
/// A long connection that receives nothing for this long is lost.
const STALL: Duration = Duration::from_secs(3);
/// How often a long connection looks at `stop`.
const LOOK: Duration = Duration::from_millis(250);
/// Most bytes of a response head kept.
const MAX_HEAD: usize = 16 * 1024;

/// What the traffic recorded.
pub(super) struct Recorded {
    pub(super) shorts: Vec<Short>,
    pub(super) longs: Vec<Long>,
}

/// Runs the traffic until `stop` (see the module doc); times are from `t0`.
pub(super) async fn traffic(
    vip: SocketAddrV4,
    t0: Instant,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Recorded> {
    let size = 4096 * (LONG_FOR.as_millis() / CHUNK_EVERY.as_millis()) as usize;
    let longs: Vec<_> = (0..LONG)
        .map(|i| {
            let target = format!(
                "/obj/long-{i}?size={size}&chunked=1&chunk_delay={}&cc=no-store",
                CHUNK_EVERY.as_millis()
            );
            let stop = Arc::clone(&stop);
            tokio::spawn(async move { stream(vip, target, t0, stop).await })
        })
        .collect();
    let mut shorts = Vec::new();
    let mut tick = tokio::time::interval(SHORT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let (kind, target) = if i.is_multiple_of(2) {
            let k = (i / 2) % OBJECTS;
            (
                Kind::Static,
                format!("{OBJECT_PREFIX}{k}?size=2048&ttl=600"),
            )
        } else {
            (Kind::Dynamic, format!("/dyn/api-{}", (i / 2) % 8))
        };
        let task = tokio::spawn(async move {
            let answer = short(vip, target).await;
            (answer, t0.elapsed())
        });
        shorts.push((t0.elapsed(), kind, task));
        i += 1;
    }
    let mut out = Vec::with_capacity(shorts.len());
    for (at, kind, task) in shorts {
        let (answer, ended) = task
            .await
            .unwrap_or_else(|e| (Err(format!("its task failed: {e}")), t0.elapsed()));
        out.push(Short {
            at,
            ended,
            kind,
            answer,
        });
    }
    let mut recorded = Vec::with_capacity(longs.len());
    for task in longs {
        recorded.push(task.await.unwrap_or_else(|e| Long {
            node: None,
            lost_at: Some(Duration::ZERO),
            why: Some(format!("its task failed: {e}")),
        }));
    }
    Ok(Recorded {
        shorts: out,
        longs: recorded,
    })
}

/// A response head: 200, the answering node, `Cache-Status`.
struct Head {
    ok: bool,
    node: Option<String>,
    cache_status: String,
}

/// Parses the head at the start of `bytes`, once it is complete.
fn head(bytes: &[u8]) -> Option<Head> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = text.split("\r\n");
    let ok = lines.next().is_some_and(|l| l.starts_with("HTTP/1.1 200"));
    let mut h = Head {
        ok,
        node: None,
        cache_status: String::new(),
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("via") {
            h.node = via_node(value).map(str::to_owned);
        } else if name.eq_ignore_ascii_case("cache-status") {
            h.cache_status = value.to_owned();
        }
    }
    Some(h)
}

/// Connects to `vip` within `bound` and sends a GET of `target`; or why it could not.
async fn send(vip: SocketAddrV4, target: &str, bound: Duration) -> Result<TcpStream, String> {
    let mut c = tokio::time::timeout(bound, TcpStream::connect(vip))
        .await
        .map_err(|_| format!("no connection within {} ms", bound.as_millis()))?
        .map_err(|e| format!("connect: {e}"))?;
    let req = format!("GET {target} HTTP/1.1\r\nHost: {vip}\r\nConnection: close\r\n\r\n");
    c.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("send: {e}"))?;
    Ok(c)
}

/// One short GET on a new connection: its answer (a 200 with a `Via` node in time), or why
/// there was none.
async fn short(vip: SocketAddrV4, target: String) -> Result<Answered, String> {
    let exchange = async {
        let mut c = send(vip, &target, SHORT_CONNECT).await?;
        let mut buf = Vec::new();
        if let Err(e) = c.read_to_end(&mut buf).await {
            return Err(format!("read after {} bytes: {e}", buf.len()));
        }
        let h = head(&buf).ok_or_else(|| format!("no response head in {} bytes", buf.len()))?;
        if !h.ok {
            return Err(format!("answered {}", status_line(&buf)));
        }
        Ok(Answered {
            node: h.node.ok_or("a 200 without a Via node")?,
            path: cache_path(&h.cache_status),
        })
    };
    tokio::time::timeout(SHORT_BOUND, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", SHORT_BOUND.as_secs())))
}

/// The status line at the start of `bytes` (at most 40 characters).
fn status_line(bytes: &[u8]) -> String {
    let line = bytes.split(|b| *b == b'\r').next().unwrap_or_default();
    String::from_utf8_lossy(&line[..line.len().min(40)]).into_owned()
}

/// One long GET, read until `stop` (survived) or until it breaks.
async fn stream(vip: SocketAddrV4, target: String, t0: Instant, stop: Arc<AtomicBool>) -> Long {
    let mut long = Long {
        node: None,
        lost_at: None,
        why: None,
    };
    let mut c = match send(vip, &target, Duration::from_secs(2)).await {
        Ok(c) => c,
        Err(why) => {
            long.lost_at = Some(t0.elapsed());
            long.why = Some(why);
            return long;
        }
    };
    let mut buf = vec![0u8; 65536];
    let mut first = Vec::new();
    let mut last = t0.elapsed();
    let why = loop {
        if stop.load(Ordering::Relaxed) {
            return long;
        }
        match tokio::time::timeout(LOOK, c.read(&mut buf)).await {
            Err(_) if t0.elapsed() - last < STALL => continue,
            // Stalled: lost when its last byte came.
            Err(_) => break format!("nothing for {} s", STALL.as_secs()),
            Ok(Ok(n)) if n > 0 => {
                last = t0.elapsed();
                if long.node.is_none() && first.len() < MAX_HEAD {
                    first.extend_from_slice(&buf[..n]);
                    match head(&first) {
                        Some(h) if h.ok && h.node.is_some() => long.node = h.node,
                        // Not a 200 with a node: lost at once.
                        Some(_) => break format!("answered {}", status_line(&first)),
                        None => {}
                    }
                }
            }
            // Closed before its end (it outlasts the run) or reset: lost now.
            Ok(Ok(_)) => {
                last = t0.elapsed();
                break "closed".to_owned();
            }
            Ok(Err(e)) => {
                last = t0.elapsed();
                break format!("read: {e}");
            }
        }
    };
    long.lost_at = Some(last);
    long.why = Some(why);
    long
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_gives_status_node_and_cache_status() {
        let h = head(
            b"HTTP/1.1 200 OK\r\nvia: 1.1 b3 (strait), 1.1 b1 (strait)\r\n\
              Cache-Status: b3; hit, b1; fwd=miss; detail=peer\r\n\r\nbody",
        )
        .expect("head");
        assert!(h.ok);
        assert_eq!(h.node.as_deref(), Some("b1"));
        assert_eq!(h.cache_status, "b3; hit, b1; fwd=miss; detail=peer");
        assert!(head(b"HTTP/1.1 200 OK\r\nVia: 1.1 b1").is_none());
        assert!(!head(b"HTTP/1.1 503 x\r\n\r\n").expect("head").ok);
    }

    #[test]
    fn a_failure_names_the_status_line_at_most_40_characters() {
        assert_eq!(
            status_line(b"HTTP/1.1 503 Service Unavailable\r\nServer: x\r\n\r\n"),
            "HTTP/1.1 503 Service Unavailable"
        );
        assert_eq!(status_line(&[b'x'; 100]).len(), 40);
        assert_eq!(status_line(b""), "");
    }
}
