//! The cache cluster: which node owns a key (`handle`, over `strait_lb::select::rendezvous`),
//! and the peer protocol (`frame`, `auth`; connections in `peer`, the owner's side in `serve`,
//! objects to and from frames in `wire`). Who is in the cluster (gossip, the member list) is
//! `strait_lb::membership`.

pub mod auth;
pub mod frame;
mod handle;
pub mod invalidate;
pub mod peer;
pub mod wire;

pub use handle::{Cluster, Owner};
pub use strait_lb::membership::{Member, MemberState, Membership};
