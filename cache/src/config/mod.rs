//! Node configuration: types (`types`), loading with `FILE:LINE:COL` diagnostics (`load`),
//! positions in the document (`locate`), semantic validation (`validate`) and the `[l4]`
//! section (`l4`), the `[cluster]` section (`cluster`).

mod cluster;
mod l4;
mod load;
mod locate;
mod types;
mod validate;

pub use cluster::{
    restart_only_changes, secret_from_bytes, ClusterSection, Secret, DEFAULT_CLUSTER_WEIGHT,
    DEFAULT_PROBE_INTERVAL, DEFAULT_SUSPECT_TIMEOUT, MAX_CLUSTER_WEIGHT, MIN_SECRET_LEN,
};
pub use l4::{L4Mode, L4Section, L4XdpMode, DEFAULT_L4_INTERFACE, MAX_L4_VIPS};
pub use load::{load, load_with, parse, render, ConfigError, ConfigKind, Diagnostic};
pub use locate::{line_col, Locator, Seg};
pub use types::*;
