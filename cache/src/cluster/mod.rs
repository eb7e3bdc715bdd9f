//! The cache cluster: who is in it (`members`, `identity`, `seal`, `gossip`).

pub mod gossip;
pub mod identity;
pub mod members;
pub mod seal;
mod timers;

pub use gossip::Membership;
pub use members::{Member, MemberState};
