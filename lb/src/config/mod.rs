//! Director configuration: types as written and as used (`types`), loading (`load`), and
//! validation of the director section (`validate`) and of each service (`service`). The format
//! is the one `strait check` documents: `[director]`, one or more `[[service]]` tables and an
//! optional `[cluster]` (`cluster`) and an optional `[ha]` (`ha`).
//!
//! Also the plumbing every strait config uses, the cache node's included: `FILE:LINE:COL`
//! diagnostics (`diag`: [`Diagnostic`], [`ConfigError`], [`render`], [`load_with`]) and
//! positions in a TOML document (`locate`: [`Locator`]), values as operators write them
//! (`units`: sizes, durations, address messages) and which kind of config a file is (`kind`).

mod cluster;
mod diag;
mod ha;
mod kind;
mod load;
mod locate;
mod service;
mod types;
pub mod units;
mod validate;

pub use cluster::{ClusterConfig, ClusterKey};
pub use diag::{load_with, render, ConfigError, Diagnostic};
pub use ha::{HaConfig, SyncConfig, SyncSecret};
pub use kind::{other_kind, ConfigKind};
pub use load::{load, parse};
pub use locate::{line_col, Locator, Seg};
pub use types::*;

#[cfg(test)]
mod tests;
