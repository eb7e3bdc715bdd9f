//! The forwarding decision for one parsed frame.
//!
//! Contract of `decide`, in order:
//! 1. Anything but a balanced flow (non-IPv4, malformed, later fragments, first fragments
//!    without ports, other protocols) is [`Verdict::Pass`]: the kernel handles it. Nothing is
//!    dropped silently.
//! 2. Every flow but an opening SYN is first looked up in the forward map, before its
//!    service is (as the XDP program's fast path does): a hit marks the entry used for the
//!    table's replacement rule (`packet::conntable`), whatever follows.
//!    A flow whose (destination, port, protocol) is a service:
//!    * an opening TCP SYN ([`Flow::opening_syn`]: SYN set, ACK clear) is always new: the
//!      connection table is not consulted, the flow is scheduled as below and its entry
//!      overwritten, as Katran does (and LVS for a new SYN on a reused tuple). A SYN opens a
//!      connection, so an entry for its 5-tuple is a previous connection's (a reused
//!      5-tuple): following it would send a new connection to a draining (weight 0) backend.
//!      A SYN retransmitted after a table change may therefore move: the half-open
//!      connection on the first backend times out there. SYN+ACK, ACK, data, FIN, RST and
//!      UDP follow the rules below;
//!    * established (in the connection table, with an index inside the backend list, on a
//!      backend that is `alive`): that backend, even if the Maglev table changed or the
//!      backend now has weight 0 (draining); the table is told ([`ConnTable::refresh`]: a
//!      synced entry is recorded here from then on, as the program's refresh of an entry of
//!      no current service version);
//!    * new: `table.lookup(flow_hash(src, dst, sport, dport, proto))`, recorded in the
//!      connection table (and, for NAT, the reply direction too), half-open
//!      (`packet::conntable`: evicted before established ones until a later packet of the
//!      flow without SYN uses the entry; a SYN+ACK's lookup keeps it half-open) if the new-flow
//!      guard admits it ([`ConnTable::admit`], `packet::ratelimit`, charged once per new
//!      flow). Over the guard's budget a DR or TUN flow is forwarded to the same pick as a
//!      new flow but not recorded (counted `new_flow_unrecorded` by the datapath; its next
//!      packet is picked again: the same backend while the table stands), and a NAT flow is
//!      [`Verdict::Drop`]`(`[`DropReason::NewFlowLimit`]`)`: without its reply entry the
//!      backend's answer could not be translated back, so forwarding it would only make
//!      the backend answer a client that never gets the answer. A flow recorded on a
//!      backend that is not alive (down) is new too: re-picked, its entry overwritten
//!      (LVS `expire_nodest_conn=1`; a TCP segment mid-stream then gets a reset from the new
//!      backend);
//!    * a new flow of a service with no backend of weight > 0 is
//!      [`Verdict::Drop`]`(`[`DropReason::NoBackend`]`)`, as LVS and Katran do: the VIP is
//!      owned by the director, so the kernel could only answer with a reset;
//!    * a TUN packet whose encapsulation would exceed 65535 bytes is dropped
//!      ([`DropReason::EncapTooBig`]) before scheduling (not recorded), as is a table entry
//!      outside the backend list ([`DropReason::BadBackendIndex`], a control-plane bug). The
//!      director's MTU is not checked here but by `process` after this step
//!      ([`super::icmp`]): a TUN flow over the MTU is scheduled and recorded like any other,
//!      then answered with ICMP or dropped ([`DropReason::TooBig`]).
//! 3. A flow matching the reply map of the connection table is a NAT reply:
//!    [`Verdict::NatReply`] with the VIP and port to restore as its source.
//! 4. Anything else is [`Verdict::Pass`].

use super::parse::{Flow, Parsed, IPV4_MIN_HLEN};
use super::service::{nat_reply, ConnTable, Mode, NatOrigin, Service, ServiceKey, Services};
use crate::abi::Counter;

/// Why a packet is dropped; each reason has one counter in the datapath.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// New flow for a service with no backend of weight > 0.
    NoBackend,
    /// The Maglev table points outside the backend list.
    BadBackendIndex,
    /// IP-in-IP encapsulation would exceed the IPv4 maximum of 65535 bytes.
    EncapTooBig,
    /// A NAT frame has no route through its egress interface (`packet::nexthop`).
    NoRoute,
    /// A NAT frame's next hop has no neighbour entry (and, forwards, no backend MAC).
    NoNeighbour,
    /// A datagram without DF over an MTU: a TUN one once encapsulated, a NAT one as it is
    /// ([`super::icmp`]; decided by `process`, after this module recorded the flow).
    TooBig,
    /// A new NAT flow over the new-flow guard's budget (see the module doc).
    NewFlowLimit,
}

impl DropReason {
    /// Stable name for counters and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::NoBackend => "no_backend",
            DropReason::BadBackendIndex => "bad_backend_index",
            DropReason::EncapTooBig => "encap_too_big",
            DropReason::NoRoute => "no_route",
            DropReason::NoNeighbour => "no_neighbour",
            DropReason::TooBig => "too_big",
            DropReason::NewFlowLimit => "new_flow_limit",
        }
    }

    /// The datapath counter of this reason.
    pub fn counter(self) -> Counter {
        match self {
            DropReason::NoBackend => Counter::DropNoBackend,
            DropReason::BadBackendIndex => Counter::DropBadBackend,
            DropReason::EncapTooBig => Counter::DropEncapTooBig,
            DropReason::NoRoute => Counter::DropNoRoute,
            DropReason::NoNeighbour => Counter::DropNoNeigh,
            DropReason::TooBig => Counter::DropTooBig,
            DropReason::NewFlowLimit => Counter::DropNewFlowLimit,
        }
    }
}

/// What to do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Hand the frame to the kernel unchanged (`XDP_PASS`).
    Pass,
    /// Drop the frame (`XDP_DROP`).
    Drop(DropReason),
    /// Send to backend `backend` (index into the service's backends) in the service's mode.
    Forward {
        /// Backend index.
        backend: u32,
        /// Whether the flow was just balanced and recorded.
        new_flow: bool,
    },
    /// A NAT reply from a backend: rewrite its source to the VIP and port.
    NatReply(NatOrigin),
}

/// The service key a flow is addressed to.
pub(crate) fn service_key(flow: &Flow) -> ServiceKey {
    ServiceKey::of(&flow.tuple)
}

/// Decides the fate of a parsed frame (see the module doc).
pub(crate) fn decide<C: ConnTable + ?Sized>(
    parsed: &Parsed,
    services: &Services,
    conns: &mut C,
) -> Verdict {
    let Some(flow) = parsed.flow() else {
        return Verdict::Pass;
    };
    // The forward entry is looked up first, service or not, as the XDP program's fast path
    // does: a hit marks the entry used (`packet::conntable`). An opening SYN skips it.
    let recorded = if flow.opening_syn {
        None
    } else if flow.syn {
        conns.get_syn(&flow.tuple)
    } else {
        conns.get(&flow.tuple)
    };
    // A FIN or RST marks the entry it used closing (the program does it in the same lookup).
    if recorded.is_some() && flow.closing {
        conns.mark_closing(&flow.tuple);
    }
    if let Some(service) = services.get(&service_key(flow)) {
        return balance(flow, service, conns, recorded);
    }
    let reply = if flow.syn {
        conns.get_reply_syn(&flow.tuple)
    } else {
        conns.get_reply(&flow.tuple)
    };
    match reply {
        Some(origin) => Verdict::NatReply(origin),
        None => Verdict::Pass,
    }
}

/// Step 2 of the module doc.
fn balance<C: ConnTable + ?Sized>(
    flow: &Flow,
    service: &Service,
    conns: &mut C,
    recorded: Option<u32>,
) -> Verdict {
    let inner_len = flow.l3_end - flow.l3_offset;
    if service.mode == Mode::Tun && inner_len + IPV4_MIN_HLEN > usize::from(u16::MAX) {
        return Verdict::Drop(DropReason::EncapTooBig);
    }
    if let Some(b) = recorded {
        if service.backends.get(b as usize).is_some_and(|be| be.alive) {
            conns.refresh(&flow.tuple);
            return Verdict::Forward {
                backend: b,
                new_flow: false,
            };
        }
    }
    let t = &flow.tuple;
    let Some(table) = &service.table else {
        return Verdict::Drop(DropReason::NoBackend);
    };
    let Some(b) = table.lookup(service.hash.of(t)) else {
        return Verdict::Drop(DropReason::NoBackend);
    };
    let Some(backend) = service.backends.get(b as usize) else {
        return Verdict::Drop(DropReason::BadBackendIndex);
    };
    if !conns.admit(t, b) {
        if service.mode == Mode::Nat {
            return Verdict::Drop(DropReason::NewFlowLimit);
        }
        return Verdict::Forward {
            backend: b,
            new_flow: true,
        };
    }
    conns.insert_half_open(*t, b);
    if flow.closing {
        conns.mark_closing(t);
    }
    if service.mode == Mode::Nat {
        let (reply, origin) = nat_reply(t, backend);
        conns.insert_reply_half_open(reply, origin);
    }
    Verdict::Forward {
        backend: b,
        new_flow: true,
    }
}

#[cfg(test)]
mod tests;
