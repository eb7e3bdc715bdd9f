//! The `[log]` table both roles' configs have: where access lines go, in which format, and
//! how many may wait for the writer.
//!
//! ```toml
//! [log]
//! access = "off"            # "off" | "stderr" | a file path (reopened on SIGUSR1)
//! access_format = "text"    # "text" | "json"
//! access_queue = 4096       # lines waiting for the writer; more are dropped and counted
//! ```
//!
//! Values are checked while the file deserializes, so a bad one is reported at its position
//! like any type error.

use std::path::PathBuf;

use serde::Deserialize;

/// Default `access_queue`.
pub const DEFAULT_ACCESS_QUEUE: usize = 4096;
/// Largest accepted `access_queue`.
pub const MAX_ACCESS_QUEUE: usize = 1 << 20;

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `access`: where access lines go (default off).
    #[serde(default)]
    pub access: Destination,
    /// `access_format`: the line format (default text).
    #[serde(default)]
    pub access_format: Format,
    /// `access_queue`: the bound of the queue between the request path and the writer.
    #[serde(default)]
    pub access_queue: QueueLen,
}

/// The file path the errors give as an example.
const EXAMPLE_PATH: &str = "/var/log/strait/access.log";

/// Where access lines are written.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum Destination {
    /// No access log (one branch per request).
    #[default]
    Off,
    /// The process's standard error, with its other logs.
    Stderr,
    /// A file, appended to and reopened on SIGUSR1 (after logrotate renamed it).
    File(PathBuf),
}

impl TryFrom<String> for Destination {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "off" => Ok(Destination::Off),
            "stderr" => Ok(Destination::Stderr),
            "" => Err(format!(
                "\"\" is not an access log destination; write \"off\", \"stderr\" or a file \
                 path, e.g. {EXAMPLE_PATH:?}"
            )),
            p if p.ends_with('/') => Err(format!(
                "{p:?} names a directory, not a file; write a file path, e.g. {EXAMPLE_PATH:?}"
            )),
            p => Ok(Destination::File(PathBuf::from(p))),
        }
    }
}

impl Destination {
    /// `off`, `stderr` or the path, as written.
    pub fn describe(&self) -> String {
        match self {
            Destination::Off => "off".into(),
            Destination::Stderr => "stderr".into(),
            Destination::File(p) => p.display().to_string(),
        }
    }
}

/// The format of an access line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum Format {
    /// `key=value` pairs in a fixed order, separated by one space (logfmt).
    #[default]
    Text,
    /// One JSON object per line (JSON lines).
    Json,
}

impl TryFrom<String> for Format {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(format!(
                "{other:?} is not an access log format; write \"text\" or \"json\""
            )),
        }
    }
}

impl Format {
    /// The name as written in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
        }
    }
}

/// `access_queue`: 1..=[`MAX_ACCESS_QUEUE`] lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct QueueLen(pub usize);

impl Default for QueueLen {
    fn default() -> Self {
        QueueLen(DEFAULT_ACCESS_QUEUE)
    }
}

impl TryFrom<i64> for QueueLen {
    type Error = String;

    fn try_from(n: i64) -> Result<Self, String> {
        match usize::try_from(n) {
            Ok(n) if (1..=MAX_ACCESS_QUEUE).contains(&n) => Ok(QueueLen(n)),
            _ => Err(format!(
                "{n} is not a queue length of 1 to {MAX_ACCESS_QUEUE} lines; write e.g. \
                 {DEFAULT_ACCESS_QUEUE}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LogSection, String> {
        #[derive(Deserialize)]
        struct File {
            log: LogSection,
        }
        toml::from_str::<File>(text)
            .map(|f| f.log)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_off_text_and_4096() {
        let s = parse("[log]\n").unwrap();
        assert_eq!(s, LogSection::default());
        assert_eq!(s.access, Destination::Off);
        assert_eq!(s.access_format, Format::Text);
        assert_eq!(s.access_queue, QueueLen(DEFAULT_ACCESS_QUEUE));
    }

    #[test]
    fn destinations_and_formats_parse() {
        let s = parse("[log]\naccess = \"stderr\"\naccess_format = \"json\"\naccess_queue = 8\n")
            .unwrap();
        assert_eq!(s.access, Destination::Stderr);
        assert_eq!(s.access_format, Format::Json);
        assert_eq!(s.access_queue, QueueLen(8));
        let s = parse("[log]\naccess = \"/var/log/a.log\"\n").unwrap();
        assert_eq!(s.access, Destination::File("/var/log/a.log".into()));
        assert_eq!(s.access.describe(), "/var/log/a.log");
    }

    #[test]
    fn bad_values_are_refused_with_the_value() {
        for (text, needle) in [
            (
                "access = \"\"",
                "\"\" is not an access log destination; write \"off\", \"stderr\" or a file \
                 path, e.g. \"/var/log/strait/access.log\"",
            ),
            (
                "access = \"/var/log/\"",
                "\"/var/log/\" names a directory, not a file; write a file path, e.g. \
                 \"/var/log/strait/access.log\"",
            ),
            (
                "access_format = \"xml\"",
                "\"xml\" is not an access log format; write \"text\" or \"json\"",
            ),
            (
                "access_queue = 0",
                "0 is not a queue length of 1 to 1048576 lines; write e.g. 4096",
            ),
            ("access_queue = 2000000", "2000000 is not a queue length"),
            ("colour = true", "colour"),
        ] {
            let e = parse(&format!("[log]\n{text}\n")).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
