//! `[cluster]` in a node config. The section, its rules and the secret file are
//! `strait_lb::membership::section` (membership starts from it); this is where the node's
//! loading reads and checks it.

use super::types::NodeConfig;
use super::{Diagnostic, Locator};

pub use strait_lb::membership::section::{
    restart_only_changes, secret_from_bytes, ClusterSection, Secret, DEFAULT_CLUSTER_WEIGHT,
    DEFAULT_PROBE_INTERVAL, DEFAULT_SUSPECT_TIMEOUT, MAX_CLUSTER_WEIGHT, MIN_SECRET_LEN,
};

/// Read `secret_file` into `secret`; a problem is reported at the `secret_file` value.
pub(crate) fn read_secret(config: &mut NodeConfig, loc: &Locator<'_>) -> Option<Diagnostic> {
    strait_lb::membership::section::read_secret(config.cluster.as_mut()?, loc)
}

/// Problems of `[cluster]`: advertised addresses, seeds, weight and timings.
pub(crate) fn check_cluster(config: &NodeConfig, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    if let Some(c) = &config.cluster {
        strait_lb::membership::section::check(c, loc, out);
    }
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
