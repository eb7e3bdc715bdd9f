//! strait-cache: the L7 cache node, built on `strait-lb` (health, membership, selection, the
//! admin listener, config diagnostics).
//!
//! What it offers other crates: [`config`] (the node config: load, check, the `[l4]` section the
//! binary applies to the host) and [`node`] (run a node until it is drained), plus the peer
//! protocol's frame codec ([`cluster::frame`]) for tests that speak it, and the rule a ban
//! prefix follows ([`checked_ban_prefix`]) for `strait ctl` to check it before asking.
//!
//! Inside, in the order a request meets them (see `http::handler` for the stages):
//! * `http`: listeners, the hit fast path, admission, the request path (look up, decide, fill,
//!   respond), the cluster paths (`remote`, `owner`, `handover`);
//! * `policy`: RFC 9111 and its neighbours as pure functions;
//! * `store`: the RAM tier, the stored object, coalesced fills and their memory budget;
//! * `origin`: pools of origin servers (routes, connections, the client's upload);
//! * `cluster`: key ownership and the peer protocol;
//! * `access`: the access log (one line per client request, written off the request path);
//! * `deadline`: a coarse time bound for many short waits, cheaper than a timer each;
//! * `fault`: who is to blame for a failure; `stats`: the counters; `admin`: the node's admin
//!   endpoints.

#![warn(missing_docs)]

mod access;
mod admin;
pub mod cluster;
pub mod config;
mod deadline;
mod fault;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod interim;
pub mod node;
mod origin;
mod policy;
mod reload;
mod stats;
mod store;

pub use policy::ban::{checked_ban_prefix, BanRefused};
