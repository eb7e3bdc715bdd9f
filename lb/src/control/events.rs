//! The director's access log and reload record: nothing per packet; one line per backend
//! state change and one per reload (`[log]`, `crate::accesslog`), and what the last reload did.
//!
//! Contract:
//! * Backend line fields, in order: `time`, `event` (`backend`), `director`, `vip`,
//!   `backend`, `state` (`up`, `down`), `detail` (the check's result or "no ARP reply").
//! * Reload line fields: `time`, `event` (`reload`), `director`, `result` (`applied` or
//!   `refused`), `changes` (the one-line summary), `not_applied` (the start-only keys, comma
//!   separated, `-` when none), `error` (`-` unless refused).
//! * [`changes`]: services by VIP and protocol (added, removed, changed: any setting but the
//!   backend list) and backends by service and address in services present in both (added,
//!   removed, changed: weight or port); [`Changes::summary`] is one line, `no changes` when
//!   nothing differs. Pure.

use std::fmt::Write as _;
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::accesslog::{Line, Record, Value as V};
use crate::config::{DirectorConfig, ServiceConfig};

/// The version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One line of the director's access log.
#[derive(Debug, Clone)]
pub enum Event {
    /// A backend went up or down.
    Backend {
        /// When the change was seen.
        time: SystemTime,
        /// The service's VIP (`ip:port`).
        vip: String,
        /// The backend (`ip:port` probed).
        backend: String,
        /// `up` or `down`.
        state: &'static str,
        /// Why: the check's result, or "no ARP reply".
        detail: String,
    },
    /// A reload was applied or refused.
    Reload(Outcome),
}

impl Record for Event {
    /// The director's id.
    type Env = String;

    fn write(&self, director: &String, line: &mut Line) {
        match self {
            Event::Backend {
                time,
                vip,
                backend,
                state,
                detail,
            } => {
                line.field("time", V::Time(*time));
                line.field("event", V::Str("backend"));
                line.field("director", V::Str(director));
                line.field("vip", V::Str(vip));
                line.field("backend", V::Str(backend));
                line.field("state", V::Str(state));
                line.field("detail", V::Str(detail));
            }
            Event::Reload(o) => {
                line.field("time", V::Time(o.time));
                line.field("event", V::Str("reload"));
                line.field("director", V::Str(director));
                line.field("result", V::Str(o.result()));
                line.field("changes", V::Str(&o.changes.summary()));
                let keys = o.not_applied.join(",");
                line.opt_str("not_applied", (!keys.is_empty()).then_some(keys.as_str()));
                let errors = o.errors.join("; ");
                line.opt_str("error", (!errors.is_empty()).then_some(errors.as_str()));
            }
        }
    }
}

/// Added, removed and changed names of one kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delta {
    /// New names.
    pub added: Vec<String>,
    /// Names gone.
    pub removed: Vec<String>,
    /// Names whose settings differ.
    pub changed: Vec<String>,
}

impl Delta {
    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// What a reload changes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Services, named `vip/proto`.
    pub services: Delta,
    /// Backends, named `vip/proto/ip:port`.
    pub backends: Delta,
}

impl Changes {
    /// `services +10.0.0.1:80/tcp; backends -10.0.0.1:80/tcp/10.0.1.1:80`, or `no changes`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (name, d) in [("services", &self.services), ("backends", &self.backends)] {
            if d.is_empty() {
                continue;
            }
            let mut s = name.to_string();
            for (sign, names) in [('+', &d.added), ('-', &d.removed), ('~', &d.changed)] {
                for n in names {
                    let _ = write!(s, " {sign}{n}");
                }
            }
            parts.push(s);
        }
        if parts.is_empty() {
            "no changes".into()
        } else {
            parts.join("; ")
        }
    }
}

fn service_name(s: &ServiceConfig) -> String {
    format!("{}/{}", s.vip, s.proto.as_str())
}

/// What changes from `old` to `new` (module doc).
pub fn changes(old: &DirectorConfig, new: &DirectorConfig) -> Changes {
    let mut c = Changes::default();
    let same = |a: &ServiceConfig, b: &ServiceConfig| a.vip == b.vip && a.proto == b.proto;
    for n in &new.services {
        let name = service_name(n);
        let Some(o) = old.services.iter().find(|o| same(o, n)) else {
            c.services.added.push(name);
            continue;
        };
        let settings = ServiceConfig {
            backends: n.backends.clone(),
            ..o.clone()
        };
        if settings != *n {
            c.services.changed.push(name.clone());
        }
        for b in &n.backends {
            let label = format!("{name}/{}:{}", b.ip, b.port);
            match o.backends.iter().find(|x| x.ip == b.ip) {
                None => c.backends.added.push(label),
                Some(x) if x != b => c.backends.changed.push(label),
                Some(_) => {}
            }
        }
        for b in &o.backends {
            if !n.backends.iter().any(|x| x.ip == b.ip) {
                c.backends
                    .removed
                    .push(format!("{name}/{}:{}", b.ip, b.port));
            }
        }
    }
    for o in &old.services {
        if !new.services.iter().any(|n| same(o, n)) {
            c.services.removed.push(service_name(o));
        }
    }
    c
}

/// One reload's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// When it happened.
    pub time: SystemTime,
    /// Applied (possibly without its start-only keys), or refused.
    pub applied: bool,
    /// Why it was refused.
    pub errors: Vec<String>,
    /// Start-only keys whose new value was not applied.
    pub not_applied: Vec<String>,
    /// What changed.
    pub changes: Changes,
}

impl Outcome {
    /// `applied` or `refused`.
    pub fn result(&self) -> &'static str {
        if self.applied {
            "applied"
        } else {
            "refused"
        }
    }

    /// `/reload`'s answer and `last_reload` in `/stats.json`.
    pub fn to_json(&self) -> Value {
        json!({
            "reloaded": self.applied,
            "result": self.result(),
            "time": humantime::format_rfc3339_seconds(self.time).to_string(),
            "unix_time": unix(self.time),
            "summary": self.changes.summary(),
            "not_applied": self.not_applied,
            "errors": self.errors,
        })
    }
}

pub(super) fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accesslog::Format;

    fn cfg(backends: &str, extra: &str) -> DirectorConfig {
        let text = format!(
            "[director]\nid = \"d\"\ninterface = \"lo\"\n\
             [[service]]\nvip = \"10.0.0.100:80\"\nmode = \"dr\"\nbackends = [{backends}]\n{extra}"
        );
        crate::config::parse(&text).unwrap_or_else(|d| panic!("{d:?}"))
    }

    #[test]
    fn backends_and_services_are_named_in_one_line() {
        let a = "{ addr = \"10.0.0.11\" }, { addr = \"10.0.0.12\" }";
        let b = "{ addr = \"10.0.0.11\", weight = 5 }, { addr = \"10.0.0.13\" }";
        let second = "[[service]]\nvip = \"10.0.0.101:80\"\nmode = \"dr\"\nbackends = [{ addr = \"10.0.0.11\" }]\n";
        let c = changes(&cfg(a, ""), &cfg(b, second));
        assert_eq!(
            c.summary(),
            "services +10.0.0.101:80/tcp; backends +10.0.0.100:80/tcp/10.0.0.13:80 \
             -10.0.0.100:80/tcp/10.0.0.12:80 ~10.0.0.100:80/tcp/10.0.0.11:80"
        );
        assert_eq!(changes(&cfg(a, ""), &cfg(a, "")).summary(), "no changes");
        let back = changes(&cfg(b, second), &cfg(b, ""));
        assert_eq!(back.services.removed, ["10.0.0.101:80/tcp"]);
    }

    #[test]
    fn lines_for_a_backend_change_and_a_reload() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let e = Event::Backend {
            time: t,
            vip: "10.0.0.100:80".into(),
            backend: "10.0.0.11:80".into(),
            state: "down",
            detail: "connect: refused".into(),
        };
        let mut l = Line::new(Format::Text, String::new());
        e.write(&"d".to_string(), &mut l);
        assert_eq!(
            l.finish(),
            "time=2023-11-14T22:13:20.000Z event=backend director=d vip=10.0.0.100:80 \
             backend=10.0.0.11:80 state=down detail=\"connect: refused\"\n"
        );
        let r = Event::Reload(Outcome {
            time: t,
            applied: true,
            errors: vec![],
            not_applied: vec!["admin".into()],
            changes: Changes::default(),
        });
        let mut l = Line::new(Format::Json, String::new());
        r.write(&"d".to_string(), &mut l);
        let v: Value = serde_json::from_str(&l.finish()).unwrap();
        assert_eq!(v["event"], "reload");
        assert_eq!(v["result"], "applied");
        assert_eq!(v["changes"], "no changes");
        assert_eq!(v["not_applied"], "admin");
        assert!(v["error"].is_null());
    }
}
