//! The admin listener: stats page, JSON, Prometheus metrics, purge and ban.
//! Only loopback clients are served, even when it is bound to 0.0.0.0, and only requests a
//! web page in a browser could not have sent ([`guard`]).

mod cluster;
pub mod guard;
mod metrics;
mod page;
pub mod server;
mod snapshot;

pub use cluster::ClusterSnapshot;
pub use snapshot::Snapshot;
