//! Reading a director config: TOML text -> `RawConfig` -> `validate` -> `DirectorConfig`, or
//! every problem as a [`Diagnostic`] at `LINE:COL` (1-based; columns count characters).
//!
//! Contract:
//! * Syntax, type and unknown-key errors come from toml/serde, one at a time, at their span,
//!   prefixed with the dotted key they concern when it is known (the node config's rules,
//!   through the same `Locator`).
//! * A file that is plainly a node config (`[node]`, `[[pool]]`, ... and no director table)
//!   is one diagnostic naming `strait node` instead (`kind::other_kind`).
//! * Once the text deserializes, validation reports every problem it finds, each at the
//!   offending value (or, for a default, at its enclosing table), sorted by position.

use std::path::Path;

use super::diag::{load_with, ConfigError, Diagnostic};
use super::kind::{other_kind, ConfigKind};
use super::locate::Locator;
use super::types::{DirectorConfig, RawConfig};
use super::validate::validate;

/// Reads, parses and validates a director config file.
pub fn load(path: &Path) -> Result<DirectorConfig, ConfigError> {
    load_with(path, parse)
}

/// Parses and validates a director config.
pub fn parse(text: &str) -> Result<DirectorConfig, Vec<Diagnostic>> {
    let locator = Locator::new(text);
    let raw = toml::from_str::<RawConfig>(text).map_err(|e| {
        vec![other_kind(text, ConfigKind::Director).unwrap_or_else(|| locator.toml_error(&e))]
    })?;
    validate(&raw, &locator).map_err(|mut diagnostics| {
        diagnostics.sort_by_key(|d| (d.line, d.col));
        diagnostics
    })
}
