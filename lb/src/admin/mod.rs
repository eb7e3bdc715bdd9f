//! The loopback-only admin listener both roles use (the cache node's and the director's): the
//! accept loop (`listener`) and its backoff when `accept` fails (`backoff`), the checks every request passes first (`guard`), and the small
//! pieces of a reply (`reply`) and of a query string (`query`); `metrics` is the registry each
//! role builds once for its `/metrics`; `reasons` counts by reason for the status blocks. The
//! routes are each role's own.

pub mod backoff;
mod guard;
pub mod labels;
mod listener;
pub mod metrics;
mod query;
pub mod reasons;
mod reply;

pub(crate) use listener::accept_loop;
pub use listener::accept_loop_async;
pub use metrics::{Format, Metrics};
pub use query::query_param;
pub use reply::{not_allowed, respond, text};

// Who asked: in the extensions of every request a role's handler gets.
pub use listener::AdminPeer;
