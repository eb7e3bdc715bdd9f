//! Node configuration: types (`types`), loading (`load`), semantic validation (`validate`) and
//! the `[l4]` section (`l4`), the `[cluster]` section (`cluster`). `FILE:LINE:COL` diagnostics
//! and positions in the document are the shared ones of `strait_lb::config`, re-exported here.

mod cluster;
mod l4;
mod load;
pub mod shared;
mod types;
mod validate;

pub use cluster::{
    restart_only_changes, secret_from_bytes, ClusterSection, Secret, DEFAULT_CLUSTER_WEIGHT,
    DEFAULT_PROBE_INTERVAL, DEFAULT_SUSPECT_TIMEOUT, MAX_CLUSTER_WEIGHT, MIN_SECRET_LEN,
};
pub use l4::{L4Mode, L4Section, L4XdpMode, DEFAULT_L4_INTERFACE, MAX_L4_VIPS};
pub use load::{load, parse};
pub use strait_lb::config::{
    line_col, load_with, render, ConfigError, ConfigKind, Diagnostic, Locator, Seg,
};
pub use types::*;
