//! The cache cluster: who is in it (`members`, `identity`, `seal`, `gossip`), which node owns
//! a key (`rendezvous`, `handle`), and the peer protocol (`frame`, `auth`; connections in
//! `peer`, the owner's side in `serve`, objects to and from frames in `wire`).

pub mod auth;
pub mod frame;
pub mod gossip;
mod handle;
pub mod handover;
pub mod identity;
pub mod invalidate;
pub mod members;
pub mod peer;
pub mod rendezvous;
pub mod seal;
pub mod serve;
mod timers;
pub mod wire;

pub use gossip::Membership;
pub use handle::{Cluster, Owner};
pub use members::{Member, MemberState};
