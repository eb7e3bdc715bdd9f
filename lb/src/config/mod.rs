//! Director configuration: types as written and as used (`types`), loading with
//! `FILE:LINE:COL` diagnostics (`load`), and validation of the director section (`validate`)
//! and of each service (`service`). The format is the one `strait check` documents:
//! `[director]`, one or more `[[service]]` tables and an optional `[cluster]` (`cluster`).

mod cluster;
mod load;
mod service;
mod types;
mod validate;

pub use cluster::{ClusterConfig, ClusterKey};
pub use load::{load, parse};
pub use strait_cache::config::{render, ConfigError, Diagnostic};
pub use types::*;

#[cfg(test)]
mod tests;
