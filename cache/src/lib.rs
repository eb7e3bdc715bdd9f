//! strait-cache: the L7 cache node.
//!
//! A request flows `http::server` → `http::handler` (cache key, lookup, RFC 9111 decision) →
//! `store` (RAM tier, single-flight fills) or `origin` (pools) → back out with `Cache-Status`,
//! `Age` and `Via`. The RFC 9111 decisions are pure functions in `policy`; `admin` serves the
//! stats page, JSON, metrics, purge and ban to loopback clients.

pub mod admin;
pub mod cluster;
pub mod config;
pub mod fault;
pub mod http;
pub mod node;
pub mod origin;
pub mod policy;
pub mod stats;
pub mod store;
