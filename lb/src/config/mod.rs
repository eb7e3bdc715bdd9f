//! Director configuration: types as written and as used (`types`), loading with
//! `FILE:LINE:COL` diagnostics (`load`), and validation of the director section (`validate`)
//! and of each service (`service`). The format is the one `strait check` documents:
//! `[director]` and one or more `[[service]]` tables.

mod load;
mod service;
mod types;
mod validate;

pub use load::{load, parse};
pub use strait_cache::config::{render, ConfigError, Diagnostic};
pub use types::*;

#[cfg(test)]
mod tests;
