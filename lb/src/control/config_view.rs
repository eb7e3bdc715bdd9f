//! What the admin views show of the config and the access log: the build's version, the
//! config file and its hash, the reloads so far and the last one (`events::Outcome`), and the
//! access log's counters. Rendered as the `config` and `access_log` objects of `/stats.json`,
//! a block of the page and the `config_*` / `access_log_*` metric families.

use std::fmt::{self, Write as _};

use html_escape::encode_text as escape;
use serde_json::{json, Value};

use super::events::{unix, Outcome, VERSION};
use crate::admin::metrics::{counter, counters, gauge, gauges, DescriptorEncoder};

/// The config file's identity, the reloads so far and the access log's counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigView {
    /// The config file.
    pub path: String,
    /// SHA-256 of its last text read, hex.
    pub hash: String,
    /// Reloads applied.
    pub applied: u64,
    /// Reloads refused.
    pub refused: u64,
    /// The last reload.
    pub last: Option<Outcome>,
    /// Access lines written.
    pub access_lines: u64,
    /// Access lines dropped (queue full).
    pub access_dropped: u64,
    /// Access lines lost to failed writes.
    pub access_failed: u64,
}

impl ConfigView {
    /// Adds `version`, `config` and `access_log` to a `/stats.json` object.
    pub fn add_json(&self, v: &mut Value) {
        v["version"] = json!(VERSION);
        v["config"] = json!({
            "path": self.path,
            "hash": self.hash,
            "reloads_applied": self.applied,
            "reloads_refused": self.refused,
            "last_reload": self.last.as_ref().map(Outcome::to_json),
        });
        v["access_log"] = json!({
            "lines": self.access_lines,
            "dropped": self.access_dropped,
            "failed": self.access_failed,
        });
    }

    /// The page's config block.
    pub fn write_html(&self, out: &mut String) {
        let _ = write!(
            out,
            "<h2>Config</h2><p>version {} · file {} · sha-256 <code>{}</code> · reloads {} \
             applied, {} refused · access log {} lines, {} dropped</p>",
            VERSION,
            escape(&self.path),
            escape(&self.hash),
            self.applied,
            self.refused,
            self.access_lines,
            self.access_dropped
        );
        if let Some(o) = &self.last {
            let _ = write!(
                out,
                "<p>last reload {} {}: {}</p>",
                humantime::format_rfc3339_seconds(o.time),
                o.result(),
                escape(&o.changes.summary())
            );
            if !o.not_applied.is_empty() {
                let _ = write!(
                    out,
                    "<p>not applied (restart needed): {}</p>",
                    escape(&o.not_applied.join(", "))
                );
            }
            for e in &o.errors {
                let _ = write!(out, "<pre>{}</pre>", escape(e));
            }
        }
    }

    /// The `config_*` and `access_log_*` families.
    pub fn encode_metrics(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        gauges(
            enc,
            "config_info",
            "Always 1: the build's version, the config file and the SHA-256 of its last read text",
            [(
                [
                    ("version", VERSION),
                    ("path", self.path.as_str()),
                    ("hash", self.hash.as_str()),
                ],
                1,
            )],
        )?;
        gauge(
            enc,
            "config_last_reload_timestamp_seconds",
            "Unix time of the last reload, 0 before the first",
            self.last.as_ref().map_or(0, |o| unix(o.time)),
        )?;
        gauge(
            enc,
            "config_last_reload_success",
            "1 when the last reload was applied (or none happened yet), 0 when it was refused",
            u64::from(self.last.as_ref().is_none_or(|o| o.applied)),
        )?;
        counters(
            enc,
            "config_reloads",
            "Reloads by result",
            [
                ([("result", "applied")], self.applied),
                ([("result", "refused")], self.refused),
            ],
        )?;
        counter(
            enc,
            "access_log_lines",
            "Access lines written",
            self.access_lines,
        )?;
        counter(
            enc,
            "access_log_dropped",
            "Access lines dropped because the writer's queue was full",
            self.access_dropped,
        )?;
        counter(
            enc,
            "access_log_failed",
            "Access lines lost to failed writes",
            self.access_failed,
        )
    }
}

/// SHA-256 of a file's text, hex.
pub(super) fn hash_text(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::events::Changes;

    #[test]
    fn json_page_and_metrics_show_a_refused_reload() {
        let v = ConfigView {
            path: "/etc/strait/director.toml".into(),
            hash: "ab".into(),
            refused: 1,
            last: Some(Outcome {
                time: std::time::SystemTime::UNIX_EPOCH,
                applied: false,
                errors: vec!["director.toml:1:1: <bad>".into()],
                not_applied: vec![],
                changes: Changes::default(),
            }),
            access_dropped: 4,
            ..Default::default()
        };
        let mut j = json!({});
        v.add_json(&mut j);
        assert_eq!(j["config"]["last_reload"]["result"], "refused");
        assert_eq!(j["access_log"]["dropped"], 4);
        assert_eq!(j["version"], VERSION);
        let mut h = String::new();
        v.write_html(&mut h);
        assert!(h.contains("&lt;bad&gt;") && h.contains("refused"), "{h}");
        let m = crate::admin::Metrics::new("strait_director", move |enc| v.encode_metrics(enc));
        let text = m.render().unwrap();
        assert!(
            text.contains("strait_director_config_last_reload_success 0"),
            "{text}"
        );
        assert!(
            text.contains("strait_director_access_log_dropped_total 4"),
            "{text}"
        );
    }
}
