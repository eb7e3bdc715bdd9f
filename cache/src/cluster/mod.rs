//! The cache cluster: which node owns a key (`handle`, over `strait_lb::select::rendezvous`),
//! the distribution of the shared config (`confdist`), and the peer protocol (`frame`, `auth`; connections in `peer`, objects to and from frames in
//! `wire`). The request path uses it (`http::remote`, `http::owner`, `http::handover`); who is
//! in the cluster (gossip, the member list) is `strait_lb::membership`. Only the frame codec is
//! public, for tests that speak the protocol.

pub(crate) mod auth;
pub mod confdist;
pub mod frame;
mod handle;
pub(crate) mod invalidate;
pub(crate) mod peer;
pub(crate) mod suspect;
pub(crate) mod wire;

pub(crate) use handle::{Cluster, Owner};
pub(crate) use strait_lb::membership::{Member, Membership};
