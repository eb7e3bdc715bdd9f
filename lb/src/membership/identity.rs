//! A node's identity in gossip: what every datagram names as its sender and what the member
//! list is made of.
//!
//! Contract: members are told apart by their gossip address (`Identity::addr`). A node that
//! restarts on the same address comes back with a larger `bump` (its start time), so the
//! cluster takes the new identity over the old one; a node declared dead while it was
//! still running renews itself with `bump + 1` and rejoins.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::members::{Member, MemberState};

/// Who a gossip participant is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(super) struct NodeIdentity {
    /// `node.id`.
    pub id: String,
    /// Peer protocol address.
    pub peer: SocketAddr,
    /// Gossip address: the identity's address.
    pub gossip: SocketAddr,
    /// `cluster.weight`.
    pub weight: u32,
    /// Grows on every restart and every renewal.
    pub bump: u64,
}

impl NodeIdentity {
    /// The stand-in for a seed whose identity is not known yet: only its address counts
    /// (an announce is accepted by whichever identity holds that address).
    pub(super) fn seed(gossip: SocketAddr) -> NodeIdentity {
        NodeIdentity {
            id: String::new(),
            peer: gossip,
            gossip,
            weight: 0,
            bump: 0,
        }
    }

    /// This identity as a member in `state`.
    pub(super) fn member(&self, state: MemberState) -> Member {
        Member {
            id: self.id.clone(),
            peer_addr: self.peer,
            gossip_addr: self.gossip,
            weight: self.weight,
            state,
            started_ms: self.bump,
        }
    }
}

impl foca::Identity for NodeIdentity {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(NodeIdentity {
            bump: self.bump.wrapping_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.gossip
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        (self.bump, &self.id) > (adversary.bump, &adversary.id)
    }
}

/// A foca member state as a [`MemberState`].
pub(super) fn state_of(state: foca::State) -> MemberState {
    match state {
        foca::State::Alive => MemberState::Alive,
        foca::State::Suspect => MemberState::Suspect,
        foca::State::Down => MemberState::Dead,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Identity;

    #[test]
    fn a_restarted_or_renewed_identity_wins_its_address() {
        let addr: SocketAddr = "127.0.0.1:7946".parse().unwrap();
        let old = NodeIdentity {
            id: "a".into(),
            peer: "127.0.0.1:7070".parse().unwrap(),
            gossip: addr,
            weight: 100,
            bump: 1_000,
        };
        let renewed = old.renew().unwrap();
        assert_eq!(renewed.bump, 1_001);
        assert_eq!(renewed.addr(), old.addr());
        assert!(renewed.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&renewed));
        assert_eq!(NodeIdentity::seed(addr).addr(), addr);
        assert_eq!(state_of(foca::State::Suspect), MemberState::Suspect);
        assert_eq!(old.member(MemberState::Dead).state, MemberState::Dead);
    }
}
