//! The soak's clients: a few concurrent loops in the client's namespace, each a GET of the
//! next request of the mix (`soak::workload`) to the VIP on a fresh connection, every answer
//! judged (`soak::verdict`) against what was down meanwhile and counted.
//!
//! Contract: each loop stops at `until`, after [`MAX_REQUESTS_PER_CLIENT`] requests, or at
//! Ctrl-C; an exchange is bounded by [`REQUEST_TIMEOUT`] and its body by [`MAX_BODY`]; a client
//! pauses [`PAUSE`] between requests (the load is modest: this is about correctness).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use strait_topology::soak::report::Tally;
use strait_topology::soak::rng::Rng;
use strait_topology::soak::schedule::Downtime;
use strait_topology::soak::verdict::{self, Answer};
use strait_topology::soak::workload::{self, Pick};

use super::super::{guard, probe};

/// Bound on one exchange: connect, request, whole body (a 5 MB body through a busy node).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest body read (the largest object is 5 MB).
const MAX_BODY: usize = 8 * 1024 * 1024;
/// Pause between a client's requests.
const PAUSE: Duration = Duration::from_millis(5);
/// Most requests of one client.
pub const MAX_REQUESTS_PER_CLIENT: u64 = 10_000_000;
/// A target restarted less than this before a failed request still explains it (time to be
/// found up by the director's checks, the cluster's gossip and the nodes' origin checks).
pub const SETTLE: Duration = Duration::from_secs(3);

/// What the clients share with the fault loop.
pub struct Shared {
    /// The run's start: every time is measured from it.
    pub t0: Instant,
    pub downtime: Mutex<Downtime>,
    pub tally: Mutex<Tally>,
}

/// Runs `clients` loops from namespace `netns` until `until`.
pub fn run(
    netns: &str,
    vip: SocketAddr,
    clients: u16,
    seed: u64,
    until: Instant,
    shared: Arc<Shared>,
) -> anyhow::Result<()> {
    probe::in_netns(netns, move || async move {
        let base = Rng::new(seed);
        let mut loops = tokio::task::JoinSet::new();
        for i in 0..clients {
            let rng = base.fork(u64::from(i) + 1);
            loops.spawn(client(vip, rng, until, shared.clone()));
        }
        while let Some(done) = loops.join_next().await {
            done??;
        }
        Ok(())
    })
}

async fn client(
    vip: SocketAddr,
    mut rng: Rng,
    until: Instant,
    shared: Arc<Shared>,
) -> anyhow::Result<()> {
    for _ in 0..MAX_REQUESTS_PER_CLIENT {
        guard::check()?;
        if Instant::now() >= until {
            break;
        }
        let pick = workload::pick(&mut rng);
        let start = shared.t0.elapsed();
        let got = fetch(vip, &pick).await;
        let end = shared.t0.elapsed();
        let disturbed = locked(&shared.downtime).disturbed(start, end, SETTLE);
        let (outcome, detail) = verdict::classify(&pick, &got, disturbed);
        let bytes = got.as_ref().map_or(0, |a| a.body.len() as u64);
        locked(&shared.tally).record(start, &pick, outcome, detail.as_deref(), bytes);
        tokio::time::sleep(PAUSE).await;
    }
    Ok(())
}

/// One GET on a fresh connection; an error as text.
async fn fetch(vip: SocketAddr, pick: &Pick) -> Result<Answer, String> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(vip).await?;
        let mut request = Request::get(pick.target.as_str())
            .header(http::header::HOST, vip.to_string())
            .header(http::header::CONNECTION, "close");
        if let Some((first, last)) = pick.range {
            request = request.header(http::header::RANGE, format!("bytes={first}-{last}"));
        }
        let request = request.body(Empty::<Bytes>::new())?;
        let (head, body) = crate::cmd::client::exchange(stream, request, MAX_BODY).await?;
        anyhow::Ok(Answer {
            status: head.status,
            headers: head.headers,
            body,
        })
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
        Ok(Ok(a)) => Ok(a),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())),
    }
}

/// The value behind `m`, also after a thread panicked holding it (the data stays usable).
pub fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
