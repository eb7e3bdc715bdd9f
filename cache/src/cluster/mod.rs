//! The cache cluster: who is in it (`members`, `identity`, `seal`, `gossip`), which node owns
//! a key (`rendezvous`), and the peer protocol (`frame`, `auth`, `peer`, `serve`, `wire`).

pub mod auth;
pub mod frame;
pub mod gossip;
pub mod identity;
pub mod members;
pub mod rendezvous;
pub mod seal;
mod timers;

pub use gossip::Membership;
pub use members::{Member, MemberState};
