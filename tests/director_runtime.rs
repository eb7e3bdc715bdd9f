//! Runtime control of a director's backends, in-process (no namespaces): the control plane on
//! iface `lo` with a datapath double that records every `apply`, backends and the admin on
//! 127.0.23.x, driven by `strait ctl backend` and `strait ctl show config` (`--admin` after
//! the subcommand).
//!
//! Contract under test (`lb/src/control/runtime.rs`): `drain` takes a backend out of the table
//! while it stays alive (its established flows keep it); `maint` also marks it not alive;
//! `ready` restores it; a weight override reaches the table; every change shows in
//! `/stats.json`, `/metrics`, `ctl stats` and `show config`, and survives a reload that keeps
//! the backend's weight in the file; bad input is a 4xx and ctl exits 1.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use strait_lb::config::DirectorConfig;
use strait_lb::control::Director;
use strait_lb::datapath::{
    BackendStats, ConnEntry, Counters, Datapath, DatapathError, DatapathOptions, Installed,
    NewFlow, SyncedFlow,
};
use strait_lb::packet::service::{Service, ServiceKey};

mod support;

type Applied = Arc<Mutex<Vec<Vec<(ServiceKey, Service)>>>>;

/// Records every apply; answers zeros for everything else.
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
        Ok(Vec::new())
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

const VIP: &str = "127.0.23.30:8";
const B0: &str = "127.0.23.21:80";
const B1: &str = "127.0.23.22:80";

/// Two backends; health checks off (`kind = "none"`: always up), so only runtime control
/// changes the table.
fn config_text(w0: u32) -> String {
    format!(
        "[director]\nid = \"rt\"\ninterface = \"lo\"\nadmin = \"127.0.23.20:0\"\ntable_size = 251\n\
         [[service]]\nvip = \"{VIP}\"\nmode = \"nat\"\n\
         backends = [{{ addr = \"{B0}\", weight = {w0} }}, {{ addr = \"{B1}\" }}]\n\
         health = {{ kind = \"none\" }}\n"
    )
}

/// (address, weight, alive) of every backend of the last apply.
fn last(applied: &Applied) -> Vec<(String, u32, bool)> {
    let applied = applied.lock().unwrap();
    applied.last().unwrap()[0]
        .1
        .backends
        .iter()
        .map(|b| (b.id(), b.weight, b.alive))
        .collect()
}

/// `strait ctl ARGS... --admin ADMIN`: (exit code, stdout, stderr), off the runtime's threads.
async fn ctl(admin: SocketAddr, args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_strait"))
            .arg("ctl")
            .args(&args)
            .args(["--admin", &admin.to_string()])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

async fn stats(admin: SocketAddr) -> serde_json::Value {
    let (code, out, err) = ctl(admin, &["stats", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_maint_ready_and_weight_reach_the_datapath_and_every_view() {
    let dir = support::scratch_dir("drt");
    let path = dir.join("director.toml");
    std::fs::write(&path, config_text(100)).unwrap();
    let applied: Applied = Arc::default();
    let a = Arc::clone(&applied);
    let open = move |_: &DirectorConfig, _: DatapathOptions| {
        Ok(Box::new(Recorder(Arc::clone(&a))) as Box<dyn Datapath>)
    };
    let director = Director::start(&path, &open).await.unwrap();
    let admin = director.admin_addr();
    let all_up = vec![(B0.into(), 100, true), (B1.into(), 100, true)];
    assert_eq!(last(&applied), all_up);

    let (code, out, err) = ctl(admin, &["backend", VIP, B0, "drain"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("service {VIP} tcp backend {B0}: drain, weight 100 (file 100)\n")
    );
    // Out of the table, still alive: its established flows stay.
    assert_eq!(last(&applied)[0], (B0.into(), 0, true));
    let v = stats(admin).await;
    let b = &v["services"][0]["backends"][0];
    assert_eq!(
        (b["admin_state"].as_str(), b["state"].as_str()),
        (Some("drain"), Some("draining"))
    );
    let (_, human, _) = ctl(admin, &["stats"]).await;
    assert!(human.contains("draining"), "{human}");
    let metrics = support::admin_request(admin, "GET", "/metrics", &[]).text();
    let line = format!(
        "strait_director_backend_admin_state{{vip=\"{VIP}\",proto=\"tcp\",backend=\"{B0}\",state=\"drain\"}} 1"
    );
    assert!(metrics.contains(&line), "{metrics}");

    // Maint: out of the table and not alive (its flows move).
    let (code, _, err) = ctl(admin, &["backend", VIP, "127.0.23.21", "maint"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(last(&applied)[0], (B0.into(), 0, false));
    // A weight override on the other one.
    let (code, _, err) = ctl(admin, &["backend", VIP, B1, "weight", "40"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(last(&applied)[1], (B1.into(), 40, true));

    let (code, shown, err) = ctl(admin, &["show", "config"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(shown.contains(&config_text(100)), "{shown}");
    assert!(
        shown.contains(&format!("backend {B0}: state maint\n")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("backend {B1}: weight 40 (file 100)\n")),
        "{shown}"
    );

    // A reload that keeps the weights keeps both overrides; one that changes B0's clears B0's.
    let count = applied.lock().unwrap().len();
    director.reload().unwrap();
    assert!(applied.lock().unwrap().len() > count);
    assert_eq!(
        last(&applied),
        [(B0.into(), 0, false), (B1.into(), 40, true)]
    );
    std::fs::write(&path, config_text(60)).unwrap();
    director.reload().unwrap();
    assert_eq!(
        last(&applied),
        [(B0.into(), 60, true), (B1.into(), 40, true)]
    );

    // Ready ends nothing more on B1 than its state; its weight stays until the file changes it.
    let (code, _, _) = ctl(admin, &["backend", VIP, B1, "ready"]).await;
    assert_eq!(code, 0);
    assert_eq!(last(&applied)[1], (B1.into(), 40, true));

    // Bad input.
    let (code, _, err) = ctl(admin, &["backend", "127.0.23.30:9", B0, "drain"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("404") && err.contains("no service 127.0.23.30:9"),
        "{err}"
    );
    let (code, _, err) = ctl(admin, &["backend", VIP, "127.0.23.29", "drain"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("has no backend"), "{err}");
    let (code, _, err) = ctl(admin, &["backend", VIP, B0, "weight", "70000"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("400") && err.contains("from 0 to 65535"),
        "{err}"
    );
    let form = tokio::task::spawn_blocking(move || {
        let target = format!("/backend?service={VIP}&addr={B0}&state=drain");
        support::admin_request(admin, "POST", &target, &[("Content-Type", "text/plain")]).status
    })
    .await
    .unwrap();
    assert_eq!(form, 415, "a change guarded as /reload");
    director.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
