//! The admin pages in a real browser: headless Chromium against a node's stats page and a
//! director's page (`GET /` on each admin address), on 127.0.33.x.
//!
//! Contract under test, for each page: it renders (Chromium's DOM after load has the page's
//! sections and figures, and no error page); it reloads itself without JavaScript (the page
//! has no script; left open, Chromium fetches `/` again through a counting forwarder within
//! the meta refresh's 5 s, bounded at 12 s); a screenshot is a valid PNG of the window's size
//! and of real content (tens of KiB, not a blank page's few). With
//! `STRAIT_DOCS_SCREENSHOTS=1` the director's screenshot is also written to
//! `docs/director-page.png`. Without `chromium`: `SKIP`, or a failure under `CI=true`.
//! The director runs in-process with a datapath double that reports fixed figures (no NIC,
//! no root).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use strait_lb::config::DirectorConfig;
use strait_lb::control::Director;
use strait_lb::datapath::{
    BackendStats, ConnEntry, Counters, Datapath, DatapathError, DatapathOptions, Installed,
    NewFlow, SyncedFlow,
};
use strait_lb::packet::service::{Service, ServiceKey};

mod browser;
mod support;

use browser::{chromium, png_size, Browser, LoadCounter};

/// The longest a left-open page may take to reload itself (its refresh is 5 s).
const REFRESH_LIMIT: Duration = Duration::from_secs(12);
/// A screenshot's window; a page's real content makes its PNG at least this large.
const SHOT: (u32, u32) = (1280, 900);
const MIN_PNG_BYTES: usize = 20 * 1024;

/// Renders, reloads itself, and screenshots `admin`'s page; returns the DOM and the PNG.
fn check_page(b: &Browser, admin: SocketAddr, proxy_ip: &str) -> (String, Vec<u8>) {
    let url = format!("http://{admin}/");
    let dom = b.dump_dom(&url);
    assert!(dom.contains("</html>"), "no document: {dom}");
    // Chromium's own error page (net::ERR_*, "This site can't be reached").
    for error in ["ERR_", "main-frame-error", "This site can"] {
        assert!(!dom.contains(error), "an error page: {dom}");
    }
    assert!(!dom.contains("<script"), "the page runs a script: {dom}");

    let counter = LoadCounter::start(&format!("{proxy_ip}:0"), admin);
    let via = format!("http://{}/", counter.addr);
    let reloaded = b.stay(&via, REFRESH_LIMIT, || counter.loads() >= 2);
    assert!(
        reloaded,
        "{} load(s) of / in {REFRESH_LIMIT:?}: no refresh",
        counter.loads()
    );

    let dir = support::scratch_dir("shot");
    let png = dir.join("page.png");
    b.screenshot(&url, SHOT, &png);
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert_eq!(png_size(&bytes), Some(SHOT), "not a {SHOT:?} PNG");
    assert!(bytes.len() > MIN_PNG_BYTES, "{} bytes: blank?", bytes.len());
    (dom, bytes)
}

#[test]
fn node_stats_page_renders_refreshes_and_screenshots() {
    let Some(b) = chromium("node_stats_page_renders_refreshes_and_screenshots") else {
        return;
    };
    let origin = support::Proc::spawn_origin_on("127.0.33.3:0".parse().unwrap());
    let line = origin.wait_line("listening on", Duration::from_secs(10));
    let origin_addr: SocketAddr = line.split_whitespace().last().unwrap().parse().unwrap();
    let node = support::Node::start_config(&format!(
        "[node]\nid = \"browser-edge\"\nlisten = [\"127.0.33.1:0\"]\nadmin = \"127.0.33.2:0\"\n\n\
         [[pool]]\nname = \"static\"\nservers = [{{ addr = \"{origin_addr}\" }}]\n\n\
         [[route]]\npool = \"static\"\n"
    ));
    for i in 0..40 {
        let r = support::get(node.addr, &format!("/obj/{}?size=2048&ttl=600", i % 8), &[]);
        assert_eq!(r.status, 200);
    }
    let (dom, _) = check_page(&b, node.admin, "127.0.33.4");
    for section in [
        "strait browser-edge",
        "hit ratio (requests)",
        "<h2>Counters</h2>",
        "<h2>Pool static",
        &origin_addr.to_string(),
        "<h2>Config</h2>",
    ] {
        assert!(dom.contains(section), "no {section:?} in {dom}");
    }
}

/// Figures the double reports: packets, bytes, flows per backend; two counters.
const FIGURES: [(u64, u64, u64); 2] = [(48_211, 61_330_112, 1_207), (47_986, 60_981_004, 1_199)];

/// A datapath that reports [`FIGURES`] and does nothing else.
struct Figures;

impl Datapath for Figures {
    fn name(&self) -> String {
        "double".into()
    }
    fn apply(&mut self, _: &[(ServiceKey, Service)]) -> Result<(), DatapathError> {
        Ok(())
    }
    fn set_owned(&mut self, _: &[Ipv4Addr]) -> Result<(), DatapathError> {
        Ok(())
    }
    fn backend_stats(&self, _: &ServiceKey) -> Result<Vec<BackendStats>, DatapathError> {
        Ok(FIGURES
            .iter()
            .map(|&(packets, bytes, flows)| BackendStats {
                packets,
                bytes,
                flows,
            })
            .collect())
    }
    fn conns(&self, _: usize) -> Result<Vec<ConnEntry>, DatapathError> {
        Ok(Vec::new())
    }
    fn conn_count(&self) -> Result<u64, DatapathError> {
        Ok(2406)
    }
    fn counters(&self) -> Result<Counters, DatapathError> {
        Ok(vec![("tx_new", 2406), ("pass_other", 17)])
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn director_page_renders_refreshes_and_screenshots() {
    let Some(b) = chromium("director_page_renders_refreshes_and_screenshots") else {
        return;
    };
    let dir = support::scratch_dir("dbrowser");
    let path = dir.join("director.toml");
    std::fs::write(
        &path,
        "[director]\nid = \"browser-lb\"\ninterface = \"lo\"\nadmin = \"127.0.33.10:0\"\n\
         table_size = 251\n[[service]]\nvip = \"127.0.33.30:80\"\nmode = \"nat\"\n\
         backends = [{ addr = \"127.0.33.21:80\" }, { addr = \"127.0.33.22:80\" }]\n\
         health = { kind = \"none\" }\n",
    )
    .unwrap();
    let open = |_: &DirectorConfig, _: DatapathOptions| Ok(Box::new(Figures) as Box<dyn Datapath>);
    let director = Director::start(&path, &open).await.unwrap();
    let admin = director.admin_addr();
    let (dom, png) = tokio::task::spawn_blocking(move || check_page(&b, admin, "127.0.33.11"))
        .await
        .unwrap();
    for section in [
        "strait director browser-lb",
        "datapath double",
        "connections 2406",
        "<h2>127.0.33.30:80 tcp (nat",
        "127.0.33.21:80",
        "127.0.33.22:80",
        "48211",
        "60981004",
    ] {
        assert!(dom.contains(section), "no {section:?} in {dom}");
    }
    if std::env::var("STRAIT_DOCS_SCREENSHOTS").as_deref() == Ok("1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/director-page.png");
        std::fs::write(&docs, &png).unwrap();
        println!("wrote {}", docs.display());
    }
}
