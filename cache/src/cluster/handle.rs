//! What a node's request path needs of the cluster: who owns a key, and connections to peers.
//!
//! Contract: [`Cluster::owner`] hashes the key over the live members (alive and suspect, with
//! their weights: `rendezvous::owner`) and answers None when this node owns it (or is the only
//! live member), else the owning peer's id and peer address. Every node with the same view of
//! the membership picks the same owner. [`Cluster::ranked`] lists the runners-up in the order
//! they would take the key over.
//! Members of weight 0 (observers: directors following the cluster) are never ranked
//! (`rendezvous`), so they never own a key and are never a previous owner.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::{ArcSwap, Guard};

use strait_lb::select::rendezvous::{self, Node};

use super::frame::Limits;
use super::peer::Pool;
use super::suspect::Suspects;
use super::{Member, Membership};

/// The peer that owns a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub id: Arc<str>,
    pub addr: SocketAddr,
}

/// The live members as [`Cluster::owner`] ranks them, made once per membership list: each
/// id hashed and shared once, not at every request.
struct Ring {
    /// The list this was made from (compared by pointer: gossip publishes a new list for
    /// every change).
    from: Arc<Vec<Member>>,
    nodes: Vec<RingNode>,
}

struct RingNode {
    id: Arc<str>,
    id_hash: u64,
    weight: u32,
    addr: SocketAddr,
}

impl Ring {
    fn of(from: Arc<Vec<Member>>) -> Ring {
        let nodes = from
            .iter()
            .filter(|m| m.state.is_live())
            .map(|m| RingNode {
                id: m.id.as_str().into(),
                id_hash: rendezvous::id_hash(&m.id),
                weight: m.weight,
                addr: m.peer_addr,
            })
            .collect();
        Ring { from, nodes }
    }
}

/// A node's cluster: membership, peer connections, the shared secret.
pub struct Cluster {
    pub members: Membership,
    pub peers: Pool,
    pub secret: Option<Arc<[u8]>>,
    pub limits: Limits,
    /// The shared config version this node runs (`confdist`).
    pub config: super::confdist::ConfigDist,
    /// How long a request waits for a peer's first frame, or its handshake.
    pub peer_timeout: std::time::Duration,
    /// Peers that did not answer within `peer_timeout` lately (`suspect`).
    pub suspects: Suspects,
    self_id: String,
    /// The ranking [`Cluster::owner`] uses, remade when the membership list changes.
    ring: ArcSwap<Ring>,
    /// When this node joined (its membership started).
    joined: Instant,
}

impl Cluster {
    pub fn new(
        self_id: &str,
        members: Membership,
        secret: Option<Arc<[u8]>>,
        connect_timeout: std::time::Duration,
        config: super::confdist::ConfigDist,
        peer_timeout: std::time::Duration,
    ) -> Cluster {
        let limits = Limits::default();
        // A connection is of no use until its handshake is done: both within peer_timeout.
        let dial_timeout = connect_timeout.min(peer_timeout);
        Cluster {
            peers: Pool::new(self_id, secret.clone(), limits, dial_timeout),
            members,
            secret,
            limits,
            config,
            peer_timeout,
            suspects: Suspects::new(peer_timeout),
            self_id: self_id.to_owned(),
            ring: ArcSwap::from_pointee(Ring::of(Arc::default())),
            joined: Instant::now(),
        }
    }

    /// The peer owning `key`, or None when this node owns it (see the module doc).
    pub fn owner(&self, key: &str) -> Option<Owner> {
        // As `ranked(key, 1)`, without building the ranking (every request asks this).
        let ring = self.ring();
        let nodes = ring.nodes.iter().map(|n| {
            let node = Node {
                id: &n.id,
                weight: n.weight,
            };
            (node, n.id_hash)
        });
        let n = &ring.nodes[rendezvous::owner_in(key, nodes)?];
        (*n.id != *self.self_id).then(|| Owner {
            id: n.id.clone(),
            addr: n.addr,
        })
    }

    /// The ranking for the current membership list: the one made for it, or one made now.
    fn ring(&self) -> Guard<Arc<Ring>> {
        let ring = self.ring.load();
        if self.members.is_current(&ring.from) {
            return ring;
        }
        drop(ring);
        self.ring.store(Arc::new(Ring::of(self.members.members())));
        self.ring.load()
    }

    /// The member that owned `key` before this node joined, while this node owns it and
    /// joined less than `handover_window` ago (`handover`): the runner-up, a peer that had been
    /// running for `handover_min_lead` when this node started (nodes that start together have
    /// nothing to hand over to each other).
    pub fn previous_owner(&self, key: &str) -> Option<Owner> {
        let settings = self.members.settings();
        if self.joined.elapsed() >= settings.handover_window {
            return None;
        }
        let all = self.members.members();
        match self.by_rank(&all, key)[..] {
            [me, prev, ..] if me.id == self.self_id => {
                let lead = me.started_ms.saturating_sub(prev.started_ms);
                (u128::from(lead) >= settings.handover_min_lead.as_millis())
                    .then(|| Owner::of(prev))
            }
            _ => None,
        }
    }

    /// The first `n` live members by rendezvous rank for `key` (the owner first, then the
    /// node that owns it when the owner is gone, …): None stands for this node.
    pub fn ranked(&self, key: &str, n: usize) -> Vec<Option<Owner>> {
        let all = self.members.members();
        self.by_rank(&all, key)
            .into_iter()
            .take(n)
            .map(|m| (m.id != self.self_id).then(|| Owner::of(m)))
            .collect()
    }

    /// The live members of `all` that may own keys, in rendezvous order for `key`.
    fn by_rank<'a>(&self, all: &'a [Member], key: &str) -> Vec<&'a Member> {
        let live: Vec<&Member> = all.iter().filter(|m| m.state.is_live()).collect();
        let nodes: Vec<Node> = live
            .iter()
            .map(|m| Node {
                id: &m.id,
                weight: m.weight,
            })
            .collect();
        rendezvous::ranked(key, &nodes)
            .into_iter()
            .map(|i| live[i])
            .collect()
    }
}

impl Owner {
    fn of(m: &Member) -> Owner {
        Owner {
            id: m.id.as_str().into(),
            addr: m.peer_addr,
        }
    }
}
