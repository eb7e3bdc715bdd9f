//! The admin listener: stats page, JSON, Prometheus metrics, purge and ban.
//! Only loopback clients are served; anyone else gets 403 even when it is bound to 0.0.0.0.

mod cluster;
mod metrics;
mod page;
pub mod server;
mod snapshot;

pub use cluster::ClusterSnapshot;
pub use snapshot::Snapshot;
