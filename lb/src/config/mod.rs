//! Director configuration: types as written and as used (`types`), loading (`load`), and
//! validation of the director section (`validate`) and of each service (`service`). The format
//! is the one `strait check` documents: `[director]`, one or more `[[service]]` tables and an
//! optional `[cluster]` (`cluster`) and an optional `[ha]` (`ha`).
//!
//! Also the plumbing every strait config uses, the cache node's included: `FILE:LINE:COL`
//! diagnostics (`diag`: [`Diagnostic`], [`ConfigError`], [`render`], [`load_with`]) and
//! positions in a TOML document (`locate`: [`Locator`]).

mod cluster;
mod diag;
mod ha;
mod load;
mod locate;
mod service;
mod types;
mod validate;

pub use cluster::{ClusterConfig, ClusterKey};
pub use diag::{load_with, render, ConfigError, Diagnostic};
pub use ha::{HaConfig, SyncConfig, SyncSecret};
pub use load::{load, parse};
pub use locate::{line_col, Locator, Seg};
pub use types::*;

#[cfg(test)]
mod tests;
