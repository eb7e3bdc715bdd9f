//! strait-cache: the L7 cache node.
//!
//! A request flows `http::server` → `http::handler` (route, cache key, lookup) →
//! `store` (RAM tier, single-flight fills) or `origin` (pools) → back out with
//! `Cache-Status`, `Age` and `Via`. The RFC 9111 decisions are pure functions in `policy`.

pub mod config;
pub mod policy;
pub mod store;
