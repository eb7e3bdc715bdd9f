//! Origin pools: the servers a node forwards misses and passes to.

pub mod pool;
mod schedule;

pub use pool::{OriginError, OutBody, Pool, Server};
