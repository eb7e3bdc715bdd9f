//! The director's control plane in-process, against real HTTP listeners on 127.0.0.x (iface
//! `lo`, whose all-zero MAC needs no resolution), with a datapath double that records every
//! `apply`.
//!
//! Contract under test: the first apply weighs every backend; a backend whose listener dies
//! is at weight 0 in an apply within `fall × interval + timeout` (plus slack) and back after
//! `rise` good checks; a reload changes weights in place, keeps indices, drains removed
//! backends and appends new ones; an invalid reload is refused and changes nothing; the admin
//! endpoints answer; start fails clearly when the datapath or interface cannot be opened.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strait_lb::config::DirectorConfig;
use strait_lb::control::{Director, StartError};
use strait_lb::datapath::{
    BackendStats, ConnEntry, Counters, Datapath, DatapathError, DatapathOptions, Installed,
    NewFlow, SyncedFlow,
};
use strait_lb::packet::service::{Service, ServiceKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

mod support;

const INTERVAL: Duration = Duration::from_millis(100);
const TIMEOUT: Duration = Duration::from_millis(50);
const FALL: u32 = 2;
const RISE: u32 = 2;
/// Allowance for a loaded test machine on top of the configured bounds.
const SLACK: Duration = Duration::from_secs(2);

type Applied = Arc<Mutex<Vec<Vec<(ServiceKey, Service)>>>>;

/// Records every apply; answers stats from the last one.
struct Recorder {
    applied: Applied,
    shut: Arc<Mutex<bool>>,
}

impl Datapath for Recorder {
    fn name(&self) -> String {
        "recorder".into()
    }
    fn apply(&mut self, services: &[(ServiceKey, Service)]) -> Result<(), DatapathError> {
        self.applied.lock().unwrap().push(services.to_vec());
        Ok(())
    }
    fn set_owned(&mut self, _: &[std::net::Ipv4Addr]) -> Result<(), DatapathError> {
        Ok(())
    }
    fn backend_stats(&self, key: &ServiceKey) -> Result<Vec<BackendStats>, DatapathError> {
        let applied = self.applied.lock().unwrap();
        let last = applied
            .last()
            .ok_or_else(|| DatapathError::msg("stats", "nothing applied"))?;
        let (_, service) = last
            .iter()
            .find(|(k, _)| k == key)
            .ok_or_else(|| DatapathError::msg("stats", "unknown service"))?;
        Ok((0..service.backends.len() as u64)
            .map(|i| BackendStats {
                packets: 10 + i,
                bytes: 1000 + i,
                flows: i,
            })
            .collect())
    }
    fn conns(&self, limit: usize) -> Result<Vec<ConnEntry>, DatapathError> {
        let applied = self.applied.lock().unwrap();
        let (key, _) = &applied.last().unwrap()[0];
        let entry = |port| ConnEntry {
            client: ([192, 0, 2, 1].into(), port),
            vip: (key.vip.into(), key.port),
            proto: key.proto,
            backend: 1,
            idle: Some(std::time::Duration::from_millis(1500)),
            closing: false,
            half_open: false,
            synced: false,
        };
        Ok([entry(40000), entry(40001)]
            .into_iter()
            .take(limit)
            .collect())
    }
    fn conn_count(&self) -> Result<u64, DatapathError> {
        Ok(2)
    }
    fn counters(&self) -> Result<Counters, DatapathError> {
        Ok(vec![("tx_new", 3)])
    }
    fn take_new_flows(&mut self) -> Option<tokio::sync::mpsc::Receiver<NewFlow>> {
        None
    }
    fn install_synced(&mut self, _: &[SyncedFlow]) -> Result<Installed, DatapathError> {
        Ok(Installed::default())
    }
    fn shutdown(&mut self) -> Result<(), DatapathError> {
        *self.shut.lock().unwrap() = true;
        Ok(())
    }
}

/// A backend: an HTTP/1.1 listener answering 200 to anything, until killed.
struct Backend {
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Backend {
    async fn start(ip: [u8; 4]) -> Backend {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((ip, 0)))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let mut b = Backend { addr, task: None };
        b.serve(listener);
        b
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        self.task = Some(tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        }));
    }

    /// Closes the listener (connects are refused from now on).
    async fn kill(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    async fn revive(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

fn config_text(backends: &[(SocketAddr, u32)]) -> String {
    let list: Vec<String> = backends
        .iter()
        .map(|(a, w)| format!("{{ addr = \"{a}\", weight = {w} }}"))
        .collect();
    format!(
        "[director]\nid = \"test\"\ninterface = \"lo\"\nadmin = \"127.0.0.1:0\"\ntable_size = 251\n\
         [[service]]\nvip = \"127.0.0.1:8\"\nmode = \"nat\"\nbackends = [{}]\n\
         health = {{ kind = \"http\", path = \"/health\", interval = \"{}ms\", timeout = \"{}ms\", \
         rise = {RISE}, fall = {FALL} }}\n",
        list.join(", "),
        INTERVAL.as_millis(),
        TIMEOUT.as_millis()
    )
}

struct Setup {
    dir: PathBuf,
    path: PathBuf,
    applied: Applied,
    shut: Arc<Mutex<bool>>,
    director: Director,
    backends: Vec<Backend>,
}

async fn setup(tag: &str) -> Setup {
    let dir = support::scratch_dir(tag);
    let path = dir.join("director.toml");
    let mut backends = Vec::new();
    for ip in [[127, 0, 0, 2], [127, 0, 0, 3], [127, 0, 0, 4]] {
        backends.push(Backend::start(ip).await);
    }
    let weights: Vec<_> = backends.iter().map(|b| (b.addr, 100)).collect();
    std::fs::write(&path, config_text(&weights)).unwrap();
    let applied: Applied = Arc::default();
    let shut = Arc::new(Mutex::new(false));
    let (a, s) = (Arc::clone(&applied), Arc::clone(&shut));
    let open = move |_: &DirectorConfig, _: DatapathOptions| {
        Ok(Box::new(Recorder {
            applied: Arc::clone(&a),
            shut: Arc::clone(&s),
        }) as Box<dyn Datapath>)
    };
    let director = Director::start(&path, &open).await.unwrap();
    Setup {
        dir,
        path,
        applied,
        shut,
        director,
        backends,
    }
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

/// Polls `f` every 10 ms until it holds or `within` passes; returns the time it took.
async fn wait_for(within: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

/// One HTTP/1.1 exchange with the admin listener: (status, body).
fn admin(addr: SocketAddr, method: &str, target: &str) -> (u16, String) {
    let (status, _, body) = admin_exchange(addr, method, target, "");
    (status, body)
}

/// One exchange with the `extra` header lines (each ending in CRLF) and `Host: <addr>` unless
/// `extra` names a Host: (status, head, body).
fn admin_exchange(
    addr: SocketAddr,
    method: &str,
    target: &str,
    extra: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let host = if extra.to_ascii_lowercase().contains("host:") {
        String::new()
    } else {
        format!("Host: {addr}\r\n")
    };
    write!(
        s,
        "{method} {target} HTTP/1.1\r\n{host}{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_owned(), body.to_owned())
}

async fn admin_async(addr: SocketAddr, method: &'static str, target: String) -> (u16, String) {
    tokio::task::spawn_blocking(move || admin(addr, method, &target))
        .await
        .unwrap()
}

fn finish(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_changes_reach_the_datapath_within_their_bounds() {
    let mut t = setup("dctl-health").await;
    let ids: Vec<String> = t.backends.iter().map(|b| b.addr.to_string()).collect();
    let first = t.applied.lock().unwrap()[0].clone();
    let weights: Vec<_> = first[0]
        .1
        .backends
        .iter()
        .map(|b| (b.id(), b.weight))
        .collect();
    assert_eq!(
        weights,
        ids.iter().map(|i| (i.clone(), 100)).collect::<Vec<_>>()
    );
    assert!(first[0].1.table.is_some());
    // Wait until the checks have run once, so the kill is what changes the state.
    wait_for(SLACK, "first checks", || {
        let s = t.director.snapshot().unwrap();
        s.services[0]
            .backends
            .iter()
            .all(|b| b.last_check.is_some())
    })
    .await;

    t.backends[1].kill().await;
    let bound = INTERVAL * FALL + TIMEOUT + SLACK;
    let took = wait_for(bound, "killed backend at weight 0", || {
        last_weights(&t.applied)[1].1 == 0
    })
    .await;
    eprintln!(
        "down after {took:?} (configured bound {:?})",
        INTERVAL * FALL + TIMEOUT
    );
    let w = last_weights(&t.applied);
    assert_eq!((w[0].1, w[2].1), (100, 100));
    let table = t.applied.lock().unwrap().last().unwrap()[0]
        .1
        .table
        .clone()
        .unwrap();
    assert_eq!(table.shares()[1], 0);
    let snap = t.director.snapshot().unwrap();
    assert_eq!(snap.services[0].backends[1].state, "down");

    t.backends[1].revive().await;
    wait_for(
        INTERVAL * RISE + TIMEOUT + SLACK,
        "revived backend weighted again",
        || last_weights(&t.applied)[1].1 == 100,
    )
    .await;
    t.director.stop().await.unwrap();
    assert!(*t.shut.lock().unwrap());
    finish(&t.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_indices_and_drains_removed_backends() {
    let t = setup("dctl-reload").await;
    let a: Vec<SocketAddr> = t.backends.iter().map(|b| b.addr).collect();
    let extra = Backend::start([127, 0, 0, 5]).await;
    // Weight of #0 changed, #2 removed, a new one first in the file.
    std::fs::write(
        &t.path,
        config_text(&[(extra.addr, 100), (a[0], 50), (a[1], 100)]),
    )
    .unwrap();
    let (status, body) = admin_async(t.director.admin_addr(), "POST", "/reload".into()).await;
    assert_eq!(status, 200, "{body}");
    let outcome: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(outcome["reloaded"], true, "{body}");
    assert!(
        outcome["summary"]
            .as_str()
            .unwrap()
            .starts_with("backends +"),
        "{body}"
    );
    assert_eq!(
        last_weights(&t.applied),
        [
            (a[0].to_string(), 50),
            (a[1].to_string(), 100),
            (a[2].to_string(), 0),
            (extra.addr.to_string(), 100)
        ]
    );
    let snap = t.director.snapshot().unwrap();
    assert_eq!(snap.services[0].backends[2].state, "draining");
    wait_for(SLACK, "new backend checked", || {
        let s = t.director.snapshot().unwrap();
        s.services[0].backends[3].last_check.is_some()
    })
    .await;

    // An invalid file is refused with its position; nothing is applied.
    let count = t.applied.lock().unwrap().len();
    std::fs::write(&t.path, config_text(&[(a[0], 70000)])).unwrap();
    let why = t.director.reload().unwrap_err();
    assert!(why.contains("director.toml:9:"), "{why}");
    assert!(why.contains("weight 70000 is out of range"), "{why}");
    let (status, body) = admin_async(t.director.admin_addr(), "POST", "/reload".into()).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("the running config stays"), "{body}");
    assert_eq!(t.applied.lock().unwrap().len(), count);
    assert_eq!(last_weights(&t.applied)[0], (a[0].to_string(), 50));
    t.director.stop().await.unwrap();
    finish(&t.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_answer() {
    let t = setup("dctl-admin").await;
    let addr = t.director.admin_addr();
    let (status, body) = admin_async(addr, "GET", "/stats.json".into()).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["id"], "test");
    assert_eq!(v["role"], "standalone");
    assert_eq!(v["datapath"], "recorder");
    assert_eq!(v["conntrack_entries"], 2);
    assert_eq!(v["counters"]["tx_new"], 3);
    let s = &v["services"][0];
    assert_eq!(
        (s["vip"].as_str(), s["proto"].as_str()),
        (Some("127.0.0.1:8"), Some("tcp"))
    );
    assert_eq!(
        (s["mode"].as_str(), s["scheduler"].as_str()),
        (Some("nat"), Some("maglev"))
    );
    let b = &s["backends"][1];
    assert_eq!(b["addr"], t.backends[1].addr.to_string());
    assert_eq!(
        (b["weight"].as_u64(), b["packets"].as_u64()),
        (Some(100), Some(11))
    );
    assert_eq!(
        (b["bytes"].as_u64(), b["flows"].as_u64()),
        (Some(1001), Some(1))
    );
    for key in ["up", "state", "detail", "since"] {
        assert!(!b[key].is_null(), "{key} missing: {b}");
    }

    let (status, body) = admin_async(addr, "GET", "/conns.json?limit=1".into()).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["count"], 2);
    assert_eq!(v["conns"].as_array().unwrap().len(), 1);
    let c = &v["conns"][0];
    assert_eq!(c["client"], "192.0.2.1:40000");
    assert_eq!(c["vip"], "127.0.0.1:8");
    assert_eq!(c["proto"], "tcp");
    assert_eq!(c["backend"], t.backends[1].addr.to_string());
    assert_eq!(c["idle_ms"], 1500);
    assert_eq!(v["per_backend"][t.backends[1].addr.to_string()], 1);

    let (status, body) = admin_async(addr, "GET", "/metrics".into()).await;
    assert_eq!(status, 200);
    let line = format!(
        "strait_director_backend_packets_total{{vip=\"127.0.0.1:8\",proto=\"tcp\",backend=\"{}\"}} 10",
        t.backends[0].addr
    );
    assert!(body.contains(&line), "{body}");
    assert!(
        body.contains("strait_director_conntrack_entries 2"),
        "{body}"
    );

    let (status, body) = admin_async(addr, "GET", "/".into()).await;
    assert_eq!(status, 200);
    assert!(body.contains(&t.backends[2].addr.to_string()), "{body}");
    assert_eq!(admin_async(addr, "GET", "/nope".into()).await.0, 404);
    assert_eq!(admin_async(addr, "POST", "/stats.json".into()).await.0, 405);
    assert_eq!(
        admin_async(addr, "GET", "/conns.json?limit=x".into())
            .await
            .0,
        400
    );
    t.director.stop().await.unwrap();
    finish(&t.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_refuses_what_a_browser_could_send_and_ctl_still_works() {
    let t = setup("dctl-browser").await;
    let addr = t.director.admin_addr();
    let a: Vec<SocketAddr> = t.backends.iter().map(|b| b.addr).collect();
    std::fs::write(
        &t.path,
        config_text(&[(a[0], 50), (a[1], 100), (a[2], 100)]),
    )
    .unwrap();
    let cases = [
        ("GET", "/stats.json", "Host: evil.example:9090\r\n", 421),
        ("GET", "/stats.json", "Sec-Fetch-Site: cross-site\r\n", 403),
        ("POST", "/reload", "Origin: http://evil.example\r\n", 403),
        ("POST", "/reload", "Sec-Fetch-Site: same-site\r\n", 403),
        ("POST", "/reload", "Content-Type: text/plain\r\n", 415),
        ("GET", "/reload", "", 405),
    ];
    for (method, target, extra, want) in cases {
        let (status, head, body) =
            tokio::task::spawn_blocking(move || admin_exchange(addr, method, target, extra))
                .await
                .unwrap();
        assert_eq!(status, want, "{method} {target} {extra:?}: {body}");
        if want == 405 {
            assert!(
                head.to_ascii_lowercase().contains("\r\nallow: post"),
                "{head}"
            );
        }
    }
    assert_eq!(last_weights(&t.applied)[0], (a[0].to_string(), 100));

    let ctl = move |args: &'static [&'static str]| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_strait"))
                .args(["ctl", "--admin", &addr.to_string()])
                .args(args)
                .output()
                .unwrap()
        })
    };
    let out = ctl(&["reload"]).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(last_weights(&t.applied)[0], (a[0].to_string(), 50));
    let out = ctl(&["--json", "stats"]).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["id"], "test");
    t.director.stop().await.unwrap();
    finish(&t.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_fails_clearly_without_a_datapath_or_interface() {
    let dir = support::scratch_dir("dctl-start");
    let path = dir.join("director.toml");
    let backend: SocketAddr = "127.0.0.2:9".parse().unwrap();
    std::fs::write(&path, config_text(&[(backend, 100)])).unwrap();
    let refuse =
        |_: &DirectorConfig, o: DatapathOptions| -> Result<Box<dyn Datapath>, DatapathError> {
            Err(DatapathError::msg(
                format!("attach XDP to {}", o.interface.name),
                "no such thing",
            ))
        };
    let e = Director::start(&path, &refuse).await.err().unwrap();
    assert!(matches!(e, StartError::Datapath(_)), "{e:?}");
    assert_eq!(e.to_string(), "datapath: attach XDP to lo: no such thing");

    let text = config_text(&[(backend, 100)]).replace("\"lo\"", "\"nosuchif0\"");
    std::fs::write(&path, text).unwrap();
    let e = Director::start(&path, &refuse).await.err().unwrap();
    assert!(e.to_string().starts_with("interface nosuchif0: "), "{e}");
    finish(&dir);
}

/// `kill -SIG <this process>`.
fn signal_self(sig: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{sig}"), std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_sigterm_stops_the_director() {
    let dir = support::scratch_dir("dctl-signals");
    let path = dir.join("director.toml");
    let backend = Backend::start([127, 0, 0, 6]).await;
    let admin_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let text = |weight| {
        config_text(&[(backend.addr, weight)]).replace("127.0.0.1:0", &admin_addr.to_string())
    };
    std::fs::write(&path, text(100)).unwrap();
    let applied: Applied = Arc::default();
    let shut = Arc::new(Mutex::new(false));
    let (a, s) = (Arc::clone(&applied), Arc::clone(&shut));
    let open = move |_: &DirectorConfig, _: DatapathOptions| {
        Ok(Box::new(Recorder {
            applied: Arc::clone(&a),
            shut: Arc::clone(&s),
        }) as Box<dyn Datapath>)
    };
    let run_path = path.clone();
    let running = tokio::spawn(async move { strait_lb::control::run(&run_path, &open).await });
    wait_for(SLACK, "admin listening", || {
        TcpStream::connect(admin_addr).is_ok()
    })
    .await;
    assert_eq!(last_weights(&applied), [(backend.addr.to_string(), 100)]);

    std::fs::write(&path, text(40)).unwrap();
    signal_self("HUP");
    wait_for(SLACK, "SIGHUP reload applied", || {
        last_weights(&applied)[0].1 == 40
    })
    .await;

    signal_self("TERM");
    let result = tokio::time::timeout(SLACK, running).await.unwrap().unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(*shut.lock().unwrap());
    assert!(
        TcpStream::connect(admin_addr).is_err(),
        "admin still listening"
    );
    finish(&dir);
}

/// The access log's lines as JSON values.
fn log_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_state_changes_and_reloads_are_access_lines() {
    let dir = support::scratch_dir("dctl-events");
    let path = dir.join("director.toml");
    let log = dir.join("events.log");
    let mut b = Backend::start([127, 0, 22, 31]).await;
    let baddr = b.addr;
    let text = |weight: u32, admin: &str| {
        config_text(&[(baddr, weight)])
            .replace("admin = \"127.0.0.1:0\"", &format!("admin = \"{admin}\""))
            .replace("vip = \"127.0.0.1:8\"", "vip = \"127.0.22.30:8\"")
            + &format!(
                "[log]\naccess = \"{}\"\naccess_format = \"json\"\n",
                log.display()
            )
    };
    std::fs::write(&path, text(100, "127.0.22.30:0")).unwrap();
    let open = move |_: &DirectorConfig, _: DatapathOptions| {
        Ok(Box::new(Recorder {
            applied: Arc::default(),
            shut: Arc::default(),
        }) as Box<dyn Datapath>)
    };
    let director = Director::start(&path, &open).await.unwrap();
    let bound = INTERVAL * (FALL + RISE) + TIMEOUT + SLACK;
    let backend = b.addr.to_string();
    let has = |event: &str, key: &str, value: &str| {
        log_lines(&log)
            .iter()
            .any(|l| l["event"] == event && l[key] == value)
    };

    b.kill().await;
    wait_for(bound, "a down line", || has("backend", "state", "down")).await;
    let down = log_lines(&log)
        .into_iter()
        .find(|l| l["state"] == "down")
        .unwrap();
    assert_eq!(down["vip"], "127.0.22.30:8");
    assert_eq!(down["backend"], backend.as_str());
    assert_eq!(down["director"], "test");
    assert!(!down["detail"].as_str().unwrap().is_empty(), "{down}");
    assert!(down["time"].as_str().unwrap().ends_with('Z'));
    b.revive().await;
    wait_for(bound, "an up line", || has("backend", "state", "up")).await;

    // A weight change (applied) and another admin address (start-only).
    std::fs::write(&path, text(50, "127.0.22.30:1")).unwrap();
    let outcome = director.reload().unwrap();
    assert_eq!(outcome.not_applied, ["director.admin"]);
    assert_eq!(
        outcome.changes.summary(),
        format!("backends ~127.0.22.30:8/tcp/{backend}")
    );
    wait_for(SLACK, "a reload line", || {
        has("reload", "result", "applied")
    })
    .await;
    let line = log_lines(&log)
        .into_iter()
        .find(|l| l["event"] == "reload")
        .unwrap();
    assert_eq!(line["not_applied"], "director.admin");
    assert_eq!(line["changes"], outcome.changes.summary().as_str());
    let snap = director.snapshot().unwrap();
    let stats = snap.to_json();
    assert_eq!(
        stats["config"]["last_reload"]["result"], "applied",
        "{stats}"
    );
    assert_eq!(stats["access_log"]["dropped"], 0);
    assert!(
        stats["access_log"]["lines"].as_u64().unwrap() >= 3,
        "{stats}"
    );
    director.stop().await.unwrap();
    finish(&dir);
}
