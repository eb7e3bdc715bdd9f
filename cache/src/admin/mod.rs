//! The node's admin routes: stats page, JSON, Prometheus metrics, purge and ban.
//! Only loopback clients are served, even when it is bound to 0.0.0.0, and only requests a
//! web page in a browser could not have sent: the listener and its guard are
//! `strait_lb::admin`, which the director's admin uses too.

mod cluster;
mod invalidate;
mod metrics;
mod page;
pub(crate) mod rates;
mod reload_block;
pub mod server;
mod snapshot;
// Runtime control (`/server`) and the config in effect (`/config`).
pub(crate) mod control;

pub use cluster::ClusterSnapshot;
pub use snapshot::Snapshot;
