//! Honest reloads: what a reload applied, what it could not, and the config in effect.
//!
//! Contract:
//! * Every reload — the file (SIGHUP, `POST /reload`) or pools and routes adopted from the
//!   cluster (`cluster::confdist`) — ends in one [`Outcome`], kept as the last one and
//!   counted: applied (with the changes against the config that ran before, and the
//!   start-only keys it could not apply) or refused (with its errors).
//! * Each outcome is logged on one line: `reload (file) applied: <summary>` at info,
//!   `... not applied (restart needed): node.listen, ...` at warn, refusals at error.
//! * Start-only keys are compared with the config the node started with (they never change
//!   while it runs), so a key changed in the file stays reported until a restart.
//! * The stats page, `/stats.json` and `/metrics` show the version, the config path and hash,
//!   and the last outcome ([`Reloads::to_json`]).

pub mod diff;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::config::NodeConfig;
use diff::Changes;

/// The version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What started a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The config file (SIGHUP or `POST /reload`).
    File,
    /// Pools and routes distributed by another member of the cluster.
    Cluster,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::File => "file",
            Source::Cluster => "cluster",
        }
    }
}

/// One reload's outcome.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub time: SystemTime,
    pub source: Source,
    /// Applied (possibly without its start-only keys), or refused.
    pub applied: bool,
    /// Why it was refused.
    pub errors: Vec<String>,
    /// Start-only keys whose new value was not applied.
    pub not_applied: Vec<&'static str>,
    pub changes: Changes,
}

impl Outcome {
    pub fn result(&self) -> &'static str {
        if self.applied {
            "applied"
        } else {
            "refused"
        }
    }

    /// The one-line summary of what changed.
    pub fn summary(&self) -> String {
        self.changes.summary()
    }

    /// `/reload`'s answer and the `last_reload` of `/stats.json`.
    pub fn to_json(&self) -> Value {
        json!({
            "reloaded": self.applied,
            "result": self.result(),
            "source": self.source.as_str(),
            "time": humantime::format_rfc3339_seconds(self.time).to_string(),
            "unix_time": unix(self.time),
            "summary": self.summary(),
            "changes": self.changes.to_json(),
            "not_applied": self.not_applied,
            "errors": self.errors,
        })
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct State {
    started: Arc<NodeConfig>,
    running: Arc<NodeConfig>,
    hash: String,
    last: Option<Outcome>,
    applied: u64,
    refused: u64,
}

/// The config in effect and the reloads so far (in `Ctx`).
pub struct Reloads {
    path: PathBuf,
    state: Mutex<State>,
}

/// A plain read of [`Reloads`] for the admin views.
#[derive(Debug, Clone)]
pub struct ReloadView {
    pub version: &'static str,
    pub path: String,
    pub hash: String,
    pub last: Option<Outcome>,
    pub applied: u64,
    pub refused: u64,
}

impl Reloads {
    /// The node started with `cfg`, read from `path` whose text was `text`.
    pub fn new(path: &Path, text: &str, cfg: &NodeConfig) -> Reloads {
        let cfg = Arc::new(cfg.clone());
        Reloads {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                started: Arc::clone(&cfg),
                running: cfg,
                hash: hash(text),
                last: None,
                applied: 0,
                refused: 0,
            }),
        }
    }

    /// `cfg` was installed: records and logs the outcome (module doc) and returns it.
    pub fn applied(&self, source: Source, cfg: &NodeConfig) -> Outcome {
        let mut st = self.state.lock();
        let outcome = Outcome {
            time: SystemTime::now(),
            source,
            applied: true,
            errors: Vec::new(),
            not_applied: diff::start_only(&st.started, cfg),
            changes: diff::changes(&st.running, cfg),
        };
        tracing::info!(
            source = source.as_str(),
            "reload ({}) applied: {}",
            source.as_str(),
            outcome.summary()
        );
        if !outcome.not_applied.is_empty() {
            tracing::warn!(
                source = source.as_str(),
                "reload ({}) not applied (restart needed): {}",
                source.as_str(),
                outcome.not_applied.join(", ")
            );
        }
        st.running = Arc::new(cfg.clone());
        st.applied += 1;
        st.last = Some(outcome.clone());
        outcome
    }

    /// A reload was refused for `errors` (already logged by the caller); records it.
    pub fn refused(&self, source: Source, errors: Vec<String>) {
        let mut st = self.state.lock();
        st.refused += 1;
        st.last = Some(Outcome {
            time: SystemTime::now(),
            source,
            applied: false,
            errors,
            not_applied: Vec::new(),
            changes: Changes::default(),
        });
    }

    /// The file was read again (its text hashes to the config hash shown).
    pub fn file_read(&self, text: &str) {
        self.state.lock().hash = hash(text);
    }

    /// A consistent read for the admin views.
    pub fn view(&self) -> ReloadView {
        let st = self.state.lock();
        ReloadView {
            version: VERSION,
            path: self.path.display().to_string(),
            hash: st.hash.clone(),
            last: st.last.clone(),
            applied: st.applied,
            refused: st.refused,
        }
    }
}

impl ReloadView {
    /// The `config` object of `/stats.json`.
    pub fn to_json(&self) -> Value {
        json!({
            "path": self.path,
            "hash": self.hash,
            "reloads_applied": self.applied,
            "reloads_refused": self.refused,
            "last_reload": self.last.as_ref().map(Outcome::to_json),
        })
    }

    /// An empty view (no reload yet), for renderers' tests.
    #[cfg(test)]
    pub fn for_tests() -> ReloadView {
        ReloadView {
            version: VERSION,
            path: "/etc/strait/node.toml".into(),
            hash: "ab".repeat(32),
            last: None,
            applied: 0,
            refused: 0,
        }
    }

    /// Unix time of the last reload, 0 when none.
    pub fn last_time(&self) -> u64 {
        self.last.as_ref().map_or(0, |o| unix(o.time))
    }
}

/// SHA-256 of the file text, in hex.
fn hash(text: &str) -> String {
    crate::config::shared::hex(&crate::config::shared::hash_of(text))
}
