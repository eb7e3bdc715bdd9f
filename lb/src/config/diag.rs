//! Config diagnostics shared by every strait config (the node's and the director's): a
//! [`Diagnostic`] is one problem at a 1-based `LINE:COL` (columns count characters), a
//! [`ConfigError`] is a file that could not be read or did not validate, and [`render`] prints
//! diagnostics as `FILE:LINE:COL: message`, the form `strait check` shows.
//!
//! Contract: [`load_with`] reads the whole file and hands its text to the caller's parser;
//! the parser returns every problem it found (positions come from `super::locate`), and the
//! error carries the path so that it renders with the file name.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a config file, at a 1-based line and character column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Line of the problem, from 1 (a problem with no place in the file is at 1:1).
    pub line: usize,
    /// Column of the problem, from 1, counted in characters (not bytes) from the line start.
    pub col: usize,
    /// What is wrong, for a person, without the position (e.g. `unknown key "foo"`); the
    /// checks that found it (the node's or the director's) word it.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

/// Failure to load a config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("{}: cannot read: {source}", .path.display())]
    Read {
        /// The file as it was asked for (not canonicalised).
        path: PathBuf,
        /// What the operating system said (or invalid UTF-8 as `InvalidData`).
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid config; one line per problem.
    #[error("{}", render(.path, .diagnostics))]
    Invalid {
        /// The file as it was asked for (not canonicalised).
        path: PathBuf,
        /// Every problem the parser found, in the order it found them.
        diagnostics: Vec<Diagnostic>,
    },
}

/// `FILE:LINE:COL: message`, one line per diagnostic (no trailing newline).
pub fn render(path: &Path, diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<String> = diagnostics
        .iter()
        .map(|d| format!("{}:{d}", path.display()))
        .collect();
    lines.join("\n")
}

/// Read a config file and parse it with `parse` (node or director), the errors carrying the path.
pub fn load_with<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, Vec<Diagnostic>>,
) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|diagnostics| ConfigError::Invalid {
        path: path.to_path_buf(),
        diagnostics,
    })
}
