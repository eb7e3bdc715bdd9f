//! Runtime control on the node's admin listener: `POST /server` (drain, ready, maint or a new
//! weight for one server of a pool; `crate::origin::control`) and `GET /config` (the
//! configuration in effect).
//!
//! Contract:
//! * `POST /server?pool=NAME&addr=IP:PORT&state=ready|drain|maint`, or `&weight=N` instead
//!   of `state` (0..=1000, the file's bound). 200 with `{"pool", "server", "admin_state",
//!   "weight", "file_weight", "changed"}`; 400 for a missing or malformed parameter, 404 for
//!   an unknown pool or server, each with a one-line reason. It changes state, so it is in
//!   `NODE_CHANGES`: POST only, no form content type, loopback clients (the admin guard).
//! * `GET /config`: `text/plain`, the TOML text the running config was read from — the file
//!   as of the start or the last applied reload (keys a reload cannot change, such as
//!   `listen`, keep their start values until a restart whatever the text says), or in a
//!   cluster the file with the cluster's shared pools and routes merged in when another
//!   member's version runs — after a comment header naming its source, then the servers
//!   with a runtime override as comments (`# runtime override: ...`), so the output stays a
//!   valid config file that is exactly the file's text. `GET /config.json` is
//!   `{"config": <that text>}` (what `strait ctl show config` asks).
//! * The file's text is recorded in two steps so a refused reload never shows: a reload
//!   offers the text it read ([`AppliedText::offer`]) and the install of its runtime commits
//!   it ([`AppliedText::commit`]).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use parking_lot::Mutex;
use strait_lb::admin::metrics::{gauges, DescriptorEncoder};
use strait_lb::admin::{not_allowed, query_param, respond, AdminPeer};
use strait_lb::health::admin::{AdminState, Command, Override};

use super::Snapshot;
use crate::http::ctx::Ctx;
use crate::origin::control::{self, ControlError};

/// Largest weight a runtime change may set (the file's bound, `config::validate::pools`).
const MAX_WEIGHT: u32 = 1000;

/// The config text in effect (module doc).
pub struct AppliedText {
    applied: Mutex<Arc<str>>,
    pending: Mutex<Option<Arc<str>>>,
}

impl AppliedText {
    /// The text the node started with.
    pub fn new(text: &str) -> AppliedText {
        AppliedText {
            applied: Mutex::new(Arc::from(text)),
            pending: Mutex::new(None),
        }
    }

    /// A reload read `text` and is about to install it.
    pub fn offer(&self, text: &str) {
        *self.pending.lock() = Some(Arc::from(text));
    }

    /// The reload's runtime is installed: the text offered is in effect (nothing when none
    /// was offered, as for a version the cluster distributed).
    pub fn commit(&self) {
        if let Some(text) = self.pending.lock().take() {
            *self.applied.lock() = text;
        }
    }

    /// The text in effect.
    pub fn get(&self) -> Arc<str> {
        Arc::clone(&self.applied.lock())
    }
}

/// Answers `/server` and `/config` (already past the guard).
pub fn route<B>(ctx: &Ctx, req: &Request<B>) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/server") => match set_server(ctx, req) {
            Ok(body) => respond(StatusCode::OK, "application/json", body),
            Err((status, why)) => respond(
                status,
                "text/plain; charset=utf-8",
                format!("{} {why}\n", status.as_u16()),
            ),
        },
        (&Method::GET, "/config") => respond(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            config_in_effect(ctx),
        ),
        (&Method::GET, "/config.json") => respond(
            StatusCode::OK,
            "application/json",
            serde_json::json!({ "config": config_in_effect(ctx) }).to_string(),
        ),
        (_, "/server") => not_allowed("POST"),
        _ => not_allowed("GET"),
    }
}

/// `POST /server`: the JSON answer, or the status and reason of a refusal.
fn set_server<B>(ctx: &Ctx, req: &Request<B>) -> Result<String, (StatusCode, String)> {
    let bad = |why: String| (StatusCode::BAD_REQUEST, why);
    let uri = req.uri();
    let pool = query_param(uri, "pool")
        .ok_or_else(|| bad("missing pool=NAME (the [[pool]] name)".into()))?;
    let addr_text = query_param(uri, "addr").ok_or_else(|| bad("missing addr=IP:PORT".into()))?;
    let addr: SocketAddr = addr_text.parse().map_err(|_| {
        bad(format!(
            "bad addr {addr_text:?}: write the server's ip:port as in the file"
        ))
    })?;
    let cmd = Command::from_query(
        query_param(uri, "state").as_deref(),
        query_param(uri, "weight").as_deref(),
        MAX_WEIGHT,
    )
    .map_err(bad)?;
    let by = req
        .extensions()
        .get::<AdminPeer>()
        .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |p| p.0);
    let rt = ctx.rt.load();
    let changed = control::apply(&rt.pools, &pool, addr, cmd, by).map_err(|e| match e {
        ControlError::NoPool(_) | ControlError::NoServer { .. } => {
            (StatusCode::NOT_FOUND, e.to_string())
        }
    })?;
    Ok(serde_json::json!({
        "pool": pool,
        "server": addr.to_string(),
        "admin_state": changed.after.state.as_str(),
        "weight": changed.after.weight(changed.file_weight),
        "file_weight": changed.file_weight,
        "changed": changed.before != changed.after,
    })
    .to_string())
}

/// One server with a runtime override, for the config view.
struct Overridden {
    pool: String,
    addr: SocketAddr,
    admin: Override,
    file_weight: u32,
}

/// `GET /config`'s text (module doc).
fn config_in_effect(ctx: &Ctx) -> String {
    let (source, text) = match &ctx.cluster {
        None => (
            format!(
                "{} as of the start or the last applied reload",
                ctx.config_path.display()
            ),
            ctx.applied_text.get().to_string(),
        ),
        Some(cluster) => {
            let st = cluster.config.lock();
            if st.file_hash == st.applied.hash {
                (
                    format!(
                        "{} as of the start or the last applied reload (cluster config {})",
                        ctx.config_path.display(),
                        st.applied
                    ),
                    st.file_text.clone(),
                )
            } else {
                let merged = crate::config::shared::merge(&st.file_text, &st.applied_text)
                    .unwrap_or_else(|why| format!("# cannot merge the shared config: {why}\n"));
                (
                    format!(
                        "{} with the cluster's shared pools and routes {} merged in",
                        ctx.config_path.display(),
                        st.applied
                    ),
                    merged,
                )
            }
        }
    };
    let rt = ctx.rt.load();
    let overridden: Vec<Overridden> = rt
        .pools
        .iter()
        .flat_map(|p| {
            p.servers.iter().filter_map(|s| {
                let admin = s.admin();
                admin.is_set().then(|| Overridden {
                    pool: p.name.clone(),
                    addr: s.addr,
                    admin,
                    file_weight: s.file_weight.load(std::sync::atomic::Ordering::Relaxed),
                })
            })
        })
        .collect();
    render_config(&ctx.node_id, &source, &text, &overridden)
}

/// The config view: header, the text as written, the runtime overrides as comments.
fn render_config(node: &str, source: &str, text: &str, overridden: &[Overridden]) -> String {
    let mut out = format!(
        "# strait node {node}: the configuration in effect\n# source: {source}\n\
         # runtime overrides (strait ctl server), if any, are listed at the end as comments\n\n"
    );
    out.push_str(text);
    if !text.ends_with('\n') {
        out.push('\n');
    }
    if !overridden.is_empty() {
        out.push_str("\n# runtime overrides (not in the file; cleared by a reload that changes the server's weight):\n");
        for o in overridden {
            let _ = writeln!(
                out,
                "# runtime override: pool {:?} server {}: {}",
                o.pool,
                o.addr,
                o.admin.describe(o.file_weight)
            );
        }
    }
    out
}

/// `strait_origin_server_admin_state{pool, server, state}`: 1 for the server's admin state,
/// 0 for the two others.
pub fn encode_admin_states(enc: &mut DescriptorEncoder<'_>, s: &Snapshot) -> std::fmt::Result {
    let series = s.pools.iter().flat_map(|p| {
        p.servers.iter().flat_map(move |srv| {
            AdminState::ALL.into_iter().map(move |st| {
                (
                    [
                        ("pool", p.name.as_str()),
                        ("server", srv.addr.as_str()),
                        ("state", st.as_str()),
                    ],
                    u64::from(srv.admin_state == st.as_str()),
                )
            })
        })
    });
    gauges(
        enc,
        "origin_server_admin_state",
        "Runtime control state of the origin server (ready, drain or maint), set by strait ctl server",
        series,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_text_is_in_effect_only_once_committed() {
        let t = AppliedText::new("a = 1\n");
        t.offer("a = 2\n");
        assert_eq!(&*t.get(), "a = 1\n", "offered, not installed yet");
        t.commit();
        assert_eq!(&*t.get(), "a = 2\n");
        t.commit();
        assert_eq!(&*t.get(), "a = 2\n", "nothing offered: nothing changes");
    }

    #[test]
    fn the_config_view_is_the_text_then_the_overrides_as_comments() {
        let mut admin = Override::default();
        admin.apply(Command::State(AdminState::Drain));
        let o = [Overridden {
            pool: "p".into(),
            addr: "127.0.23.1:80".parse().unwrap(),
            admin,
            file_weight: 1,
        }];
        let text = render_config("a", "/etc/n.toml", "[node]\nid = \"a\"", &o);
        assert!(text
            .starts_with("# strait node a: the configuration in effect\n# source: /etc/n.toml\n"));
        assert!(text.contains("\n[node]\nid = \"a\"\n"), "{text}");
        assert!(
            text.ends_with("# runtime override: pool \"p\" server 127.0.23.1:80: state drain\n"),
            "{text}"
        );
        // Comments only: the view parses as the same TOML as the text.
        let parsed: toml::Table = text.parse().unwrap();
        assert_eq!(parsed["node"]["id"].as_str(), Some("a"));
        let plain = render_config("a", "x", "[node]\n", &[]);
        assert!(!plain.contains("runtime override:"), "{plain}");
    }
}
