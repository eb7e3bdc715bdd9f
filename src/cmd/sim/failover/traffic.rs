//! The client's side of `sim run failover`: long connections streaming a slow response
//! through the VIP for the whole run, and a new short connection every [`PROBE_EVERY`].

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use strait_topology::failover::Probe;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Time between two short probes.
pub const PROBE_EVERY: Duration = Duration::from_millis(5);
/// A probe whose connection is not up within this failed (no waiting for SYN retries).
pub const PROBE_CONNECT: Duration = Duration::from_millis(100);
/// Bound on one probe's whole exchange.
pub const PROBE_BOUND: Duration = Duration::from_secs(1);
/// A long connection's response: one 4 KiB chunk per this.
const CHUNK_EVERY: Duration = Duration::from_millis(100);

/// The client's side: long connections and probes until `run_for` from `t0`; returns the
/// probes and how many long connections delivered their whole response.
pub(super) async fn traffic(
    vip: SocketAddrV4,
    long: u16,
    t0: Instant,
    run_for: Duration,
) -> anyhow::Result<(Vec<Probe>, usize)> {
    let chunks = (run_for + Duration::from_secs(1)).as_millis() / CHUNK_EVERY.as_millis();
    let size = 4096 * chunks as usize;
    let longs: Vec<_> = (0..long)
        .map(|i| {
            let target = format!(
                "/obj/long-{i}?size={size}&chunked=1&chunk_delay={}&cc=no-store",
                CHUNK_EVERY.as_millis()
            );
            tokio::spawn(async move { stream(vip, &target).await.is_ok() })
        })
        .collect();
    let mut probes = Vec::new();
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while t0.elapsed() < run_for {
        tick.tick().await;
        let at = t0.elapsed();
        probes.push((at, tokio::spawn(short(vip))));
    }
    let mut out = Vec::with_capacity(probes.len());
    for (at, task) in probes {
        out.push(Probe {
            at,
            ok: task.await.unwrap_or(false),
        });
    }
    let mut survived = 0;
    for task in longs {
        if task.await.unwrap_or(false) {
            survived += 1;
        }
    }
    Ok((out, survived))
}

/// One short GET on a new connection: true on a 200 within the bounds.
async fn short(vip: SocketAddrV4) -> bool {
    let exchange = async {
        let mut c = tokio::time::timeout(PROBE_CONNECT, tokio::net::TcpStream::connect(vip))
            .await
            .ok()?
            .ok()?;
        let req =
            format!("GET /obj/probe?size=64 HTTP/1.1\r\nHost: {vip}\r\nConnection: close\r\n\r\n");
        c.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        c.read_to_end(&mut buf).await.ok()?;
        Some(buf.starts_with(b"HTTP/1.1 200"))
    };
    matches!(
        tokio::time::timeout(PROBE_BOUND, exchange).await,
        Ok(Some(true))
    )
}

/// One long GET read to its end; Ok when the whole chunked response arrived.
async fn stream(vip: SocketAddrV4, target: &str) -> anyhow::Result<()> {
    let mut c = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(vip))
        .await
        .context("connect timed out")??;
    let req = format!("GET {target} HTTP/1.1\r\nHost: {vip}\r\nConnection: close\r\n\r\n");
    c.write_all(req.as_bytes()).await?;
    let mut buf = vec![0u8; 65536];
    let mut head = Vec::new();
    let mut tail = Vec::new();
    loop {
        let n = tokio::time::timeout(Duration::from_secs(3), c.read(&mut buf))
            .await
            .context("stalled")??;
        if n == 0 {
            break;
        }
        if head.len() < 16 {
            head.extend_from_slice(&buf[..n.min(16)]);
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 16 {
            tail.drain(..tail.len() - 16);
        }
    }
    if !head.starts_with(b"HTTP/1.1 200") {
        bail!("not a 200");
    }
    if !tail.ends_with(b"0\r\n\r\n") {
        bail!("cut before its end");
    }
    Ok(())
}
