//! Purge and ban, cluster-wide: the node an operator asks sends `Purge` / `Ban` to every other
//! live member at once and adds up their `Count`s.
//!
//! Contract: each peer gets [`PEER_TIMEOUT`] to answer; a peer that cannot be reached or
//! answers badly is listed in [`Outcome::failed`] with the reason (the operator retries, or the
//! object ages out there), never silently skipped. A copy can sit on a node other than the
//! current owner (the owner before a membership change), so every live member is asked, not
//! only the key's owner. Members of weight 0 are observers (directors following the cluster
//! for `backends = "cluster"`): they hold no objects and answer no peer protocol, so they are
//! not asked.

use std::time::Duration;

use futures_util::future::join_all;

use super::frame::Frame;
use super::peer::PeerError;
use super::{Cluster, Member};

/// Time one peer has to answer a `Purge` or `Ban`.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(2);

/// What the other members removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// (node id, objects removed) of each peer that answered.
    pub removed: Vec<(String, u64)>,
    /// (node id, reason) of each peer that did not.
    pub failed: Vec<(String, String)>,
}

impl Outcome {
    /// Objects removed by the peers that answered.
    pub fn total(&self) -> u64 {
        self.removed.iter().map(|(_, n)| n).sum()
    }
}

/// Sends `frame` (`Purge` or `Ban`) to every live member but this node (see the module doc).
pub async fn broadcast(cluster: &Cluster, frame: Frame) -> Outcome {
    let peers = targets(&cluster.members.members(), cluster.members.self_id());
    let asks = peers.iter().map(|m| {
        let frame = frame.clone();
        async move {
            let answer = tokio::time::timeout(PEER_TIMEOUT, ask(cluster, m.peer_addr, frame)).await;
            let answer = answer.unwrap_or(Err(PeerError::Timeout(m.peer_addr, PEER_TIMEOUT)));
            (m.id.clone(), answer)
        }
    });
    let mut out = Outcome::default();
    for (id, answer) in join_all(asks).await {
        match answer {
            Ok(n) => out.removed.push((id, n)),
            Err(e) => out.failed.push((id, e.to_string())),
        }
    }
    out
}

/// RFC 9111 §4.4 across the cluster: after a non-error answer to an unsafe request through
/// this node, the node that holds the target's object — its owner when a peer owns it, or,
/// while this node takes keys over after joining, the owner before it (whose object the
/// handover would fetch) — is sent a `Purge` for `url`, on a pooled connection, within
/// `peer_timeout`; a peer this node holds suspect of hanging is not asked. The objects it
/// removed, or why it could not be asked.
pub async fn purge_at_owner(cluster: &Cluster, url: &str) -> Result<u64, PeerError> {
    let Some(owner) = cluster.owner(url).or_else(|| cluster.previous_owner(url)) else {
        return Ok(0);
    };
    if cluster.suspects.admit(&owner.id) == super::suspect::Admit::Skip {
        return Err(PeerError::Unexpected(
            owner.addr,
            "owner suspect of hanging",
        ));
    }
    let limit = cluster.peer_timeout;
    let ask = async {
        let (mut c, _) = cluster.peers.get(owner.addr).await?;
        c.send(Frame::Purge {
            url: url.to_owned(),
        })
        .await?;
        match c.recv(limit).await? {
            Frame::Count(n) => {
                cluster.peers.put(c);
                Ok(n)
            }
            other => Err(PeerError::Unexpected(owner.addr, other.name())),
        }
    };
    tokio::time::timeout(limit, ask)
        .await
        .unwrap_or(Err(PeerError::Timeout(owner.addr, limit)))
}

/// The members a purge or ban goes to: live, not this node, not an observer (weight 0).
fn targets(members: &[Member], self_id: &str) -> Vec<Member> {
    members
        .iter()
        .filter(|m| m.state.is_live() && m.weight > 0 && m.id != self_id)
        .cloned()
        .collect()
}

async fn ask(
    cluster: &Cluster,
    addr: std::net::SocketAddr,
    frame: Frame,
) -> Result<u64, PeerError> {
    let mut c = cluster.peers.dial(addr).await?;
    c.send(frame).await?;
    match c.recv(PEER_TIMEOUT).await? {
        Frame::Count(n) => {
            cluster.peers.put(c);
            Ok(n)
        }
        other => Err(PeerError::Unexpected(addr, other.name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strait_lb::membership::MemberState;

    fn member(id: &str, weight: u32, state: MemberState) -> Member {
        Member {
            id: id.into(),
            peer_addr: "127.0.0.1:7070".parse().unwrap(),
            gossip_addr: "127.0.0.1:7946".parse().unwrap(),
            weight,
            state,
            started_ms: 0,
        }
    }

    #[test]
    fn purges_go_to_live_nodes_only_not_to_self_dead_members_or_observers() {
        let members = [
            member("a", 100, MemberState::Alive),
            member("b", 100, MemberState::Suspect),
            member("c", 100, MemberState::Dead),
            member("director", 0, MemberState::Alive),
            member("self", 100, MemberState::Alive),
        ];
        let ids: Vec<String> = targets(&members, "self")
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
    }
}
