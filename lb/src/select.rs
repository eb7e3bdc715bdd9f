//! Backend selection: which backend (origin server, cluster node, director backend) takes a
//! request, a key or a flow. Every choice here is pure: the caller passes what may be looked
//! at, so each rule is tested without sockets.
//!
//! * [`schedule`]: an origin pool's per-request scheduler ([`schedule::Algorithm`]:
//!   roundrobin, leastconn, source, uri, random2).
//! * [`rendezvous`]: weighted rendezvous hashing of cache keys over the cluster's nodes (the
//!   key's owner and its runners-up).
//! * `hash`: the pinned 64-bit hash both of them use (never changes between releases).
//! * [`maglev`] and [`sched`]: the director's Maglev tables and its schedulers (maglev, wrr,
//!   sh), from backends to a service's table.

pub(crate) mod hash;
pub mod rendezvous;
pub mod schedule;

pub use crate::{maglev, sched};
