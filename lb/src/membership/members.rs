//! The member list as plain data: states, the sorted snapshot every reader shares, the live
//! set ownership hashes over, and the `/cluster.json` view. No I/O; `gossip` feeds it.
//!
//! Contract: a snapshot lists this node and every member gossip still remembers, sorted by
//! id (then gossip address). A member is *alive* while it answers probes, *suspect* once a
//! probe went unanswered (it has `suspect_timeout` to refute), *dead* after that or when it
//! left; dead members stay listed until gossip forgets them (`gossip::DEAD_RETENTION`).
//! Suspect members count as live: a suspicion is often a lost datagram or a pause, and
//! moving a share of the keys away and back on every blip costs more cache misses than a
//! few requests to a node that is really gone (those fail over to the next candidate).
//! A member of weight 0 is an observer (an L4 director with `backends = "cluster"`): listed
//! like any member, but it owns no key, serves no peer protocol and is not asked to purge.

use std::net::SocketAddr;

use serde_json::{json, Value};

/// What the cluster believes about a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemberState {
    /// Answers probes.
    Alive,
    /// Missed a probe; still counted live until it is declared dead.
    Suspect,
    /// Declared dead, or left the cluster.
    Dead,
}

impl MemberState {
    /// Every state, in the order shown in metrics.
    pub const ALL: [MemberState; 3] = [MemberState::Alive, MemberState::Suspect, MemberState::Dead];

    /// Name in JSON, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Alive => "alive",
            MemberState::Suspect => "suspect",
            MemberState::Dead => "dead",
        }
    }

    /// Counts for ownership (alive or suspect).
    pub fn is_live(self) -> bool {
        !matches!(self, MemberState::Dead)
    }
}

/// One node of the cluster, as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `node.id` of that node.
    pub id: String,
    /// Its peer protocol address.
    pub peer_addr: SocketAddr,
    /// Its gossip address.
    pub gossip_addr: SocketAddr,
    /// Its `cluster.weight`: its relative share of the keys (0..=`MAX_CLUSTER_WEIGHT`; 0 is
    /// an observer, such as a director, that owns none).
    pub weight: u32,
    /// What this node's gossip last learnt of it: alive, suspect (still counted live) or dead
    /// (listed until gossip forgets it).
    pub state: MemberState,
    /// When that node started (its identity's `bump`: milliseconds since the UNIX epoch by
    /// its clock, plus one per renewal).
    pub started_ms: u64,
}

/// Sort a member list the way every snapshot is sorted: by id, then gossip address.
pub(crate) fn sort(members: &mut [Member]) {
    members.sort_by(|a, b| (&a.id, a.gossip_addr).cmp(&(&b.id, b.gossip_addr)));
}

/// The live members (alive and suspect), in snapshot order.
pub(crate) fn live(members: &[Member]) -> Vec<Member> {
    members
        .iter()
        .filter(|m| m.state.is_live())
        .cloned()
        .collect()
}

/// Whether the live sets of two snapshots differ (ids, addresses or weights): what the
/// change counter of `Membership::subscribe` counts. A suspect turning alive is no change.
pub(crate) fn live_set_changed(before: &[Member], after: &[Member]) -> bool {
    let key = |m: &Member| (m.id.clone(), m.peer_addr, m.gossip_addr, m.weight);
    let a: Vec<_> = before
        .iter()
        .filter(|m| m.state.is_live())
        .map(key)
        .collect();
    let b: Vec<_> = after
        .iter()
        .filter(|m| m.state.is_live())
        .map(key)
        .collect();
    a != b
}

/// How many members are in each state, in [`MemberState::ALL`] order.
pub fn count_by_state(members: &[Member]) -> [(MemberState, usize); 3] {
    MemberState::ALL.map(|s| (s, members.iter().filter(|m| m.state == s).count()))
}

/// `{"self": id, "members": [{"id", "addr", "gossip", "state", "weight"}]}`.
pub fn to_json(self_id: &str, members: &[Member]) -> Value {
    let list: Vec<Value> = members
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "addr": m.peer_addr.to_string(),
                "gossip": m.gossip_addr.to_string(),
                "state": m.state.as_str(),
                "weight": m.weight,
            })
        })
        .collect();
    json!({ "self": self_id, "members": list })
}

/// The view of a node without `[cluster]`: itself alone, alive, with no cluster addresses.
pub fn single_node_json(self_id: &str) -> Value {
    json!({
        "self": self_id,
        "members": [{
            "id": self_id, "addr": null, "gossip": null, "state": "alive",
            "weight": super::section::DEFAULT_CLUSTER_WEIGHT,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str, port: u16, state: MemberState) -> Member {
        Member {
            id: id.into(),
            peer_addr: SocketAddr::from(([127, 0, 0, 1], port)),
            gossip_addr: SocketAddr::from(([127, 0, 0, 1], port + 1)),
            weight: 100,
            state,
            started_ms: 0,
        }
    }

    #[test]
    fn snapshots_sort_by_id_and_live_keeps_alive_and_suspect() {
        let mut list = vec![
            m("c", 30, MemberState::Dead),
            m("a", 10, MemberState::Alive),
            m("b", 20, MemberState::Suspect),
        ];
        sort(&mut list);
        let ids: Vec<&str> = list.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        let live_ids: Vec<String> = live(&list).into_iter().map(|m| m.id).collect();
        assert_eq!(live_ids, ["a", "b"]);
        assert_eq!(
            count_by_state(&list),
            [
                (MemberState::Alive, 1),
                (MemberState::Suspect, 1),
                (MemberState::Dead, 1)
            ]
        );
    }

    #[test]
    fn the_live_set_changes_on_join_death_and_weight_not_on_suspicion() {
        let before = vec![
            m("a", 10, MemberState::Alive),
            m("b", 20, MemberState::Alive),
        ];
        let mut suspect = before.clone();
        suspect[1].state = MemberState::Suspect;
        assert!(!live_set_changed(&before, &suspect));
        let mut dead = before.clone();
        dead[1].state = MemberState::Dead;
        assert!(live_set_changed(&suspect, &dead));
        let mut joined = before.clone();
        joined.push(m("c", 30, MemberState::Alive));
        assert!(live_set_changed(&before, &joined));
        let mut heavier = before.clone();
        heavier[0].weight = 200;
        assert!(live_set_changed(&before, &heavier));
        let mut dead_gone = dead.clone();
        dead_gone.pop();
        assert!(!live_set_changed(&dead, &dead_gone));
    }

    #[test]
    fn the_json_view_names_every_field() {
        let list = vec![
            m("a", 10, MemberState::Alive),
            m("b", 20, MemberState::Dead),
        ];
        assert_eq!(
            to_json("a", &list),
            json!({"self": "a", "members": [
                {"id": "a", "addr": "127.0.0.1:10", "gossip": "127.0.0.1:11", "state": "alive",
                 "weight": 100},
                {"id": "b", "addr": "127.0.0.1:20", "gossip": "127.0.0.1:21", "state": "dead",
                 "weight": 100},
            ]})
        );
        let single = single_node_json("solo");
        assert_eq!(single["members"][0]["state"], "alive");
        assert_eq!(single["members"][0]["id"], "solo");
        assert_eq!(single["self"], "solo");
    }
}
