//! The L4 director's packet model: pure functions over Ethernet frames, no sockets.
//!
//! Contract: this module is the reference model of the XDP program (`ebpf/director.bpf.c`) and
//! the decision core of the userspace datapath: for the same frame, service table and
//! connection table both must return the same [`Action`] (verdict and output bytes).
//!
//! Pipeline ([`process`]): [`parse::parse`] classifies the frame, [`decide::decide`] picks a
//! verdict (consulting and filling the connection table), and [`rewrite`] produces the bytes:
//! * DR and TUN forwards leave on the receiving interface ([`Action::Tx`], `XDP_TX`);
//! * NAT forwards and NAT replies leave through another interface ([`Action::Redirect`],
//!   `XDP_REDIRECT` after a route lookup; replies' MACs are the datapath's to fill).
//!
//! Known limits, shared with the XDP program: later fragments go to the kernel (with NAT they
//! therefore do not reach the backend); packets are not checked against the egress MTU.

pub mod csum;
pub mod decide;
pub mod parse;
pub mod rewrite;
pub mod service;

#[cfg(test)]
mod props;
#[cfg(test)]
pub(crate) mod testutil;

use decide::{decide, service_key, DropReason, Verdict};
use parse::parse;
use rewrite::Director;
use service::{ConnTable, Mode, Services};

/// What the datapath does with a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Hand the original frame to the kernel (`XDP_PASS`).
    Pass,
    /// Drop it (`XDP_DROP`).
    Drop(DropReason),
    /// Transmit these bytes on the receiving interface (`XDP_TX`).
    Tx(Vec<u8>),
    /// Send these bytes out of another interface (`XDP_REDIRECT`).
    Redirect(Vec<u8>),
}

/// Runs the whole model on one frame (see the module doc).
pub fn process<C: ConnTable + ?Sized>(
    frame: &[u8],
    services: &Services,
    conns: &mut C,
    director: &Director,
) -> Action {
    let parsed = parse(frame);
    let verdict = decide(&parsed, services, conns);
    let Some(flow) = parsed.flow() else {
        return Action::Pass;
    };
    match verdict {
        Verdict::Pass => Action::Pass,
        Verdict::Drop(r) => Action::Drop(r),
        Verdict::NatReply(origin) => {
            let mut out = frame.to_vec();
            rewrite::nat_source(&mut out, flow, origin.vip, origin.port);
            Action::Redirect(out)
        }
        Verdict::Forward { backend, .. } => {
            let service = services.get(&service_key(flow));
            let Some((service, b)) =
                service.and_then(|s| s.backends.get(backend as usize).map(|b| (s, b)))
            else {
                // decide only forwards to a backend of the flow's service.
                return Action::Drop(DropReason::BadBackendIndex);
            };
            match service.mode {
                Mode::Dr => {
                    let mut out = frame.to_vec();
                    rewrite::rewrite_macs(&mut out, b.mac, director.mac);
                    Action::Tx(out)
                }
                Mode::Tun => {
                    let mut out = rewrite::encapsulate(frame, flow, director, b.ip);
                    rewrite::rewrite_macs(&mut out, b.mac, director.mac);
                    Action::Tx(out)
                }
                Mode::Nat => {
                    let mut out = frame.to_vec();
                    rewrite::nat_destination(&mut out, flow, b.ip, b.port);
                    rewrite::rewrite_macs(&mut out, b.mac, director.mac);
                    Action::Redirect(out)
                }
            }
        }
    }
}
