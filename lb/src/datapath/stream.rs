//! The new-flow stream of a datapath ([`Datapath::take_new_flows`]): a bounded channel that
//! the datapath's receive path feeds without ever waiting.
//!
//! Contract: [`NewFlowStream::take`] creates the channel ([`NEW_FLOW_QUEUE`] events) once and
//! returns its receiver, `None` after that; until then [`NewFlowStream::send`] does nothing
//! (nothing is queued for nobody). From then on each flow is offered with `try_send`: a full
//! channel drops it and counts it ([`NewFlowStream::lost`], the datapath counter
//! [`SYNC_EVENTS_LOST`]); a closed one (the receiver dropped) drops it uncounted.
//!
//! [`Datapath::take_new_flows`]: super::Datapath::take_new_flows

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use tokio::sync::mpsc::{self, error::TrySendError, Receiver, Sender};

use super::NewFlow;

/// Bound of the new-flow channel, in flows (2 MiB of `NewFlow`s): about a second of a
/// director's new flows at a high rate, while the sync sender batches them.
pub const NEW_FLOW_QUEUE: usize = 65_536;

/// Name of the counter of flows dropped by a full channel.
pub const SYNC_EVENTS_LOST: &str = "sync_events_lost";

/// The channel's sending side and its loss count (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct NewFlowStream {
    tx: OnceLock<Sender<NewFlow>>,
    lost: AtomicU64,
}

impl NewFlowStream {
    /// The receiver, the first time; `None` after.
    pub(crate) fn take(&self) -> Option<Receiver<NewFlow>> {
        let (tx, rx) = mpsc::channel(NEW_FLOW_QUEUE);
        self.tx.set(tx).ok().map(|()| rx)
    }

    /// Offers `flow` to the receiver, if taken (see the module doc).
    pub(crate) fn send(&self, flow: NewFlow) {
        if let Some(tx) = self.tx.get() {
            if let Err(TrySendError::Full(_)) = tx.try_send(flow) {
                self.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Flows dropped by a full channel.
    pub(crate) fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::parse::FiveTuple;
    use crate::packet::service::ServiceKey;

    fn flow(n: u16) -> NewFlow {
        let tuple = FiveTuple {
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 100],
            sport: n,
            dport: 80,
            proto: 6,
        };
        let service = ServiceKey::of(&tuple);
        NewFlow {
            tuple,
            service,
            backend: 1,
        }
    }

    #[test]
    fn nothing_is_queued_before_the_take_and_a_full_channel_counts_its_losses() {
        let s = NewFlowStream::default();
        s.send(flow(0));
        let mut rx = s.take().expect("first take");
        assert!(s.take().is_none(), "taken once");
        assert!(rx.try_recv().is_err(), "nothing queued before the take");
        let n = NEW_FLOW_QUEUE + 10;
        for i in 0..n {
            s.send(flow(i as u16));
        }
        assert_eq!(s.lost(), 10);
        assert_eq!(rx.try_recv().unwrap(), flow(0));
        let mut got = 1;
        while rx.try_recv().is_ok() {
            got += 1;
        }
        assert_eq!(got, NEW_FLOW_QUEUE);
        drop(rx);
        s.send(flow(1));
        assert_eq!(s.lost(), 10, "a closed channel is not a loss");
    }
}
