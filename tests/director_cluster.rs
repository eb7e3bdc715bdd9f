//! `backends = "cluster"` in-process, on loopback (iface `lo`: no MAC resolution, no root): two
//! cache-cluster members (the cache crate's gossip `Membership`, each with a TCP listener on
//! its cluster IP and the VIP's port) and a director following them, with a datapath double
//! that records every `apply`.
//!
//! Contract under test: the director joins as an observer (weight 0 in the nodes' lists, never
//! one of its own backends); the members become the service's backends with their cluster
//! weights; a reload keeps them; a member that leaves is drained (weight 0, same index); the
//! director leaves the cluster when it stops.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strait_lb::config::DirectorConfig;
use strait_lb::control::Director;
use strait_lb::datapath::{
    BackendStats, ConnEntry, Counters, Datapath, DatapathError, DatapathOptions, Installed,
    NewFlow, SyncedFlow,
};
use strait_lb::membership::{ClusterSection, MemberState, Membership};
use strait_lb::packet::service::{Service, ServiceKey};

mod support;

type Applied = Arc<Mutex<Vec<Vec<(ServiceKey, Service)>>>>;

/// Records every apply; has no stats.
struct Recorder(Applied);

impl Datapath for Recorder {
    fn name(&self) -> String {
        "recorder".into()
    }
    fn apply(&mut self, services: &[(ServiceKey, Service)]) -> Result<(), DatapathError> {
        self.0.lock().unwrap().push(services.to_vec());
        Ok(())
    }
    fn set_owned(&mut self, _: &[std::net::Ipv4Addr]) -> Result<(), DatapathError> {
        Ok(())
    }
    fn backend_stats(&self, _: &ServiceKey) -> Result<Vec<BackendStats>, DatapathError> {
        Err(DatapathError::msg("stats", "not kept by the recorder"))
    }
    fn conns(&self, _: usize) -> Result<Vec<ConnEntry>, DatapathError> {
        Ok(Vec::new())
    }
    fn conn_count(&self) -> Result<u64, DatapathError> {
        Ok(0)
    }
    fn counters(&self) -> Result<Counters, DatapathError> {
        Ok(Vec::new())
    }
    fn take_new_flows(&mut self) -> Option<tokio::sync::mpsc::Receiver<NewFlow>> {
        None
    }
    fn install_synced(&mut self, _: &[SyncedFlow]) -> Result<Installed, DatapathError> {
        Ok(Installed::default())
    }
    fn shutdown(&mut self) -> Result<(), DatapathError> {
        Ok(())
    }
}

/// A free UDP port on `ip` (bound, then released).
fn free_udp(ip: &str) -> SocketAddr {
    let s = UdpSocket::bind((ip, 0)).unwrap();
    s.local_addr().unwrap()
}

/// A node's `[cluster]` section, as a node config would give it.
fn node_section(
    peer: SocketAddr,
    gossip: SocketAddr,
    seeds: &[SocketAddr],
    weight: u32,
) -> ClusterSection {
    let seeds: Vec<String> = seeds.iter().map(|s| format!("\"{s}\"")).collect();
    toml::from_str(&format!(
        "peer_listen = \"{peer}\"\ngossip_listen = \"{gossip}\"\nseeds = [{}]\nweight = {weight}\n\
         probe_interval = \"100ms\"\nsuspect_timeout = \"500ms\"\n",
        seeds.join(", ")
    ))
    .unwrap()
}

/// (address, weight) of every backend of the last apply's only service.
fn last_weights(applied: &Applied) -> Vec<(String, u32)> {
    let applied = applied.lock().unwrap();
    applied.last().unwrap()[0]
        .1
        .backends
        .iter()
        .map(|b| (b.id(), b.weight))
        .collect()
}

/// Polls `f` every 20 ms until it holds or `within` passes.
async fn wait_for(within: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// The state and weight of member `id` in `m`'s view.
fn seen(m: &Membership, id: &str) -> Option<(MemberState, u32)> {
    m.members()
        .iter()
        .find(|x| x.id == id)
        .map(|x| (x.state, x.weight))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_director_follows_the_cluster_members() {
    // Two nodes' service listeners: the same port (the VIP's) on their cluster IPs.
    let l1 = tokio::net::TcpListener::bind("127.0.0.81:0").await.unwrap();
    let port = l1.local_addr().unwrap().port();
    let l2 = tokio::net::TcpListener::bind(("127.0.0.82", port))
        .await
        .unwrap();
    for l in [l1, l2] {
        tokio::spawn(async move { while l.accept().await.is_ok() {} });
    }
    let (g1, g2, gd) = (
        free_udp("127.0.0.81"),
        free_udp("127.0.0.82"),
        free_udp("127.0.0.80"),
    );
    let key: Arc<[u8]> = Arc::from(&b"director-cluster-test-key"[..]);
    let n1 = Membership::start(
        &node_section(SocketAddr::from(([127, 0, 0, 81], 7070)), g1, &[g2], 100),
        "n1",
        Some(Arc::clone(&key)),
    )
    .await
    .unwrap();
    let n2 = Membership::start(
        &node_section(SocketAddr::from(([127, 0, 0, 82], 7070)), g2, &[g1], 300),
        "n2",
        Some(Arc::clone(&key)),
    )
    .await
    .unwrap();

    let dir = support::scratch_dir("dcluster");
    let key_file = dir.join("cluster.key");
    std::fs::write(&key_file, b"director-cluster-test-key\n").unwrap();
    let path = dir.join("director.toml");
    std::fs::write(
        &path,
        format!(
            "[director]\nid = \"dir\"\ninterface = \"lo\"\nadmin = \"127.0.0.1:0\"\n\
             table_size = 251\n\
             [cluster]\ngossip_listen = \"{gd}\"\nseeds = [\"{g1}\", \"{g2}\"]\n\
             secret_file = {key_file:?}\nprobe_interval = \"100ms\"\nsuspect_timeout = \"500ms\"\n\
             [[service]]\nvip = \"127.0.0.1:{port}\"\nmode = \"nat\"\nbackends = \"cluster\"\n\
             health = {{ kind = \"tcp\", interval = \"100ms\", timeout = \"50ms\", rise = 1, fall = 2 }}\n"
        ),
    )
    .unwrap();
    let applied: Applied = Arc::default();
    let a = Arc::clone(&applied);
    let open = move |_: &DirectorConfig, _: DatapathOptions| {
        Ok(Box::new(Recorder(Arc::clone(&a))) as Box<dyn Datapath>)
    };
    let director = Director::start(&path, &open).await.unwrap();

    let b1 = format!("127.0.0.81:{port}");
    let b2 = format!("127.0.0.82:{port}");
    let both = [(b1.clone(), 100), (b2.clone(), 300)];
    let took = wait_for(Duration::from_secs(10), "both members weighted", || {
        last_weights(&applied) == both
    })
    .await;
    eprintln!("both members are backends {took:?} after the start");
    // The director is an observer in the nodes' views, never a backend.
    wait_for(Duration::from_secs(5), "the director seen by n1", || {
        seen(&n1, "dir") == Some((MemberState::Alive, 0))
    })
    .await;

    // A reload keeps the members' backends.
    director.reload().unwrap();
    assert_eq!(last_weights(&applied), both);

    // n2 leaves: drained at its index, n1 untouched.
    n2.leave().await;
    let took = wait_for(Duration::from_secs(5), "n2 drained", || {
        last_weights(&applied) == [(b1.clone(), 100), (b2.clone(), 0)]
    })
    .await;
    eprintln!("n2 drained {took:?} after it left");

    director.stop().await.unwrap();
    wait_for(
        Duration::from_secs(5),
        "the director gone from n1's view",
        || seen(&n1, "dir").is_none_or(|(s, _)| s == MemberState::Dead),
    )
    .await;
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}
