//! I/O of `strait sim run demo` from inside the topology: work on a thread that has joined a
//! host's network namespace, short HTTP/1.1 GETs (hyper, one connection each), and the
//! director's `/stats.json` polled until a condition holds.
//!
//! Contract:
//! * [`in_netns`] runs a closure on a new thread after `setns(CLONE_NEWNET)` into
//!   `/run/netns/<name>`: a thread's network namespace is its own, so the rest of the process
//!   stays where it was; each such thread runs its own current-thread tokio runtime.
//! * every exchange is bounded by [`REQUEST_TIMEOUT`]; every wait by the caller's bound, polled
//!   every [`POLL`]; both stop early with [`Interrupted`] after Ctrl-C.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Empty;
use serde_json::Value;
use strait_topology::demo_report::{via_node, Tally};

use super::guard;

/// Bound on one HTTP exchange (connect, request, whole body).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a wait polls the director's admin.
pub const POLL: Duration = Duration::from_millis(50);
/// Largest response body read.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// What the traffic phases ask for: a small object from the backends' test origins.
pub const DEMO_PATH: &str = "/obj/demo?size=1024&ttl=60";

/// Runs `f` on a thread inside network namespace `netns`, with a current-thread runtime.
pub fn in_netns<T, F, Fut>(netns: &str, f: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let path = format!("/run/netns/{netns}");
    std::thread::Builder::new()
        .name(format!("netns-{netns}"))
        .spawn(move || {
            let file = std::fs::File::open(&path).with_context(|| format!("cannot open {path}"))?;
            // SAFETY: setns on a namespace fd we hold open; CLONE_NEWNET changes only this
            // thread's network namespace.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("cannot enter network namespace {path}"));
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(f())
        })
        .context("cannot start a thread")?
        .join()
        .map_err(|_| anyhow!("the thread working in {netns} panicked"))?
}

/// One answer: status, the node named by the last `Via` field, the body.
pub struct Answer {
    pub status: StatusCode,
    pub node: Option<String>,
    pub body: Bytes,
}

/// One GET of `target` on a fresh connection to `addr` (`Connection: close`), from client
/// port `from_port` (`None`: one the kernel picks).
pub async fn get(addr: SocketAddr, target: &str, from_port: Option<u16>) -> anyhow::Result<Answer> {
    match tokio::time::timeout(REQUEST_TIMEOUT, exchange(addr, target, from_port)).await {
        Ok(answer) => answer,
        Err(_) => Err(anyhow!("no answer within {}s", REQUEST_TIMEOUT.as_secs())),
    }
}

async fn exchange(
    addr: SocketAddr,
    target: &str,
    from_port: Option<u16>,
) -> anyhow::Result<Answer> {
    let stream = match from_port {
        None => tokio::net::TcpStream::connect(addr).await,
        Some(port) => {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_reuseaddr(true)?;
            socket
                .bind(SocketAddr::from(([0, 0, 0, 0], port)))
                .with_context(|| format!("bind client port {port}"))?;
            socket.connect(addr).await
        }
    }
    .context("connect")?;
    let request = Request::get(target)
        .header(http::header::HOST, addr.to_string())
        .header(http::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())?;
    let (head, body) = crate::cmd::client::exchange(stream, request, MAX_BODY_BYTES).await?;
    let node = head
        .headers
        .get_all(http::header::VIA)
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(via_node)
        .map(str::to_owned);
    Ok(Answer {
        status: head.status,
        node,
        body,
    })
}

/// `ports.len()` GETs of [`DEMO_PATH`] to `vip`, one after the other, from namespace `netns`,
/// each from the next client port of `ports` (so every request is a new flow for the
/// director, never one its connection table already maps); returns what they got and how
/// long they took.
pub fn drive(
    netns: &str,
    vip: SocketAddr,
    ports: std::ops::Range<u16>,
) -> anyhow::Result<(Tally, Duration)> {
    in_netns(netns, move || async move {
        let mut tally = Tally::default();
        let start = Instant::now();
        for port in ports {
            guard::check()?;
            match get(vip, DEMO_PATH, Some(port)).await {
                Ok(a) => match (a.status, a.node) {
                    (StatusCode::OK, Some(node)) => tally.answered(&node),
                    (StatusCode::OK, None) => tally.failed("200 without a Via node id"),
                    (status, node) => tally.failed(format!(
                        "{status} from {}",
                        node.as_deref().unwrap_or("an unknown server")
                    )),
                },
                Err(e) => tally.failed(format!("{e:#}")),
            }
        }
        Ok((tally, start.elapsed()))
    })
}

/// Polls `targets` from namespace `netns` with GETs of [`DEMO_PATH`] until each has answered
/// 200 once, or `bound` (from `since`) passes: `Ok(time taken)` or `Err(the last failure)`.
pub fn wait_answering(
    netns: &str,
    targets: Vec<SocketAddr>,
    since: Instant,
    bound: Duration,
) -> anyhow::Result<Result<Duration, String>> {
    in_netns(netns, move || async move {
        let mut pending = targets;
        loop {
            guard::check()?;
            let mut last_failure = String::new();
            let mut still = Vec::new();
            for target in pending {
                match get(target, DEMO_PATH, None).await {
                    Ok(a) if a.status == StatusCode::OK => {}
                    Ok(a) => {
                        last_failure = format!("{target} answered {}", a.status);
                        still.push(target);
                    }
                    Err(e) => {
                        last_failure = format!("{target}: {e:#}");
                        still.push(target);
                    }
                }
            }
            if still.is_empty() {
                return Ok(Ok(since.elapsed()));
            }
            if since.elapsed() >= bound {
                return Ok(Err(last_failure));
            }
            pending = still;
            tokio::time::sleep(POLL).await;
        }
    })
}

/// `GET path` on an admin address, as JSON (from inside the namespace the admin is in).
async fn admin_json(admin: SocketAddr, path: &'static str) -> anyhow::Result<Value> {
    let a = get(admin, path, None).await?;
    if !a.status.is_success() {
        return Err(anyhow!("admin answered {}", a.status));
    }
    serde_json::from_slice(&a.body).context("admin answered with invalid JSON")
}

/// The director's (or a node's) stats, once.
pub fn stats(netns: &str, admin: SocketAddr) -> anyhow::Result<Value> {
    in_netns(netns, move || admin_json(admin, "/stats.json"))
}

/// How a wait on the director's stats ended.
pub struct Waited {
    /// Time from `since` to the answer that satisfied the condition; `None`: it never did.
    pub took: Option<Duration>,
    /// The last answer seen.
    pub last: Option<Value>,
    /// The last failure to get an answer.
    pub last_error: Option<String>,
    /// The wait stopped because `give_up` said so.
    pub gave_up: bool,
}

/// Polls the director's stats until `done` holds for an answer, `give_up` holds (checked
/// before each poll), or `bound` (from `since`) passes.
pub fn wait_for(
    netns: &str,
    admin: SocketAddr,
    since: Instant,
    bound: Duration,
    done: impl Fn(&Value) -> bool + Send + 'static,
    give_up: impl Fn() -> bool + Send + 'static,
) -> anyhow::Result<Waited> {
    wait_json(netns, admin, "/stats.json", since, bound, done, give_up)
}

/// [`wait_for`] on any admin JSON endpoint (e.g. a node's `/cluster.json`).
pub fn wait_json(
    netns: &str,
    admin: SocketAddr,
    path: &'static str,
    since: Instant,
    bound: Duration,
    done: impl Fn(&Value) -> bool + Send + 'static,
    give_up: impl Fn() -> bool + Send + 'static,
) -> anyhow::Result<Waited> {
    in_netns(netns, move || async move {
        let mut waited = Waited {
            took: None,
            last: None,
            last_error: None,
            gave_up: false,
        };
        loop {
            guard::check()?;
            if give_up() {
                waited.gave_up = true;
                return Ok(waited);
            }
            match admin_json(admin, path).await {
                Ok(v) => {
                    let ok = done(&v);
                    waited.last = Some(v);
                    if ok {
                        waited.took = Some(since.elapsed());
                        return Ok(waited);
                    }
                }
                Err(e) => waited.last_error = Some(format!("{e:#}")),
            }
            if since.elapsed() >= bound {
                return Ok(waited);
            }
            tokio::time::sleep(POLL).await;
        }
    })
}
