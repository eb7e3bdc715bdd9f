//! Who is in the cluster: SWIM gossip over UDP (`gossip`, with the `foca` crate), a node's
//! identity in it (`identity`), per-member notes carried by gossip (`notes`), the member list as plain data (`members`), sealed datagrams
//! (`seal`), foca's timers (`timers`) and the `[cluster]` section it starts from (`section`).
//! Cache nodes are members that own keys; a director follows them as an observer of weight 0.

#[doc(hidden)]
pub(crate) mod fuzz;
mod gossip;
mod identity;
pub mod members;
pub mod notes;
mod seal;
pub mod section;
mod timers;

pub use gossip::{Membership, NoteTooLong};
pub use members::{Member, MemberState};
pub use notes::Note;
pub use section::{ClusterSection, Secret};
