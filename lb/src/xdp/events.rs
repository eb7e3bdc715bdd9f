//! The new-flow events of the XDP director (`flow_events` ring buffer), decoded.
//!
//! Contract:
//! * [`decode`] (pure) turns one ring item into a [`FlowEvent`]; an item of another size is
//!   `None` (skipped by the reader, never a panic).
//! * [`FlowEvents`] owns the ring buffer (taken once from the loaded object): [`try_next`]
//!   returns a queued event without waiting; [`next`] waits for one through tokio's `AsyncFd`
//!   and a timer (it must run inside a tokio runtime with I/O and time enabled; the first call
//!   registers the ring's descriptor). The program queues events without waking the reader,
//!   except when the ring fills past half (`ebpf/lib/events.h`), so [`next`] also looks at the
//!   ring every [`EVENT_POLL_INTERVAL`]: an event is returned at most that long after it was queued
//!   (sooner in a burst). Events come in the order the program queued them; events lost to a
//!   full ring are counted by the `event_lost` counter, not reported here.
//!
//! [`try_next`]: FlowEvents::try_next
//! [`next`]: FlowEvents::next

use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::abi;
use crate::datapath::NewFlow;
use crate::packet::parse::FiveTuple;
use crate::packet::service::{Mode, ServiceKey};

/// How often [`FlowEvents::next`] looks at the ring without a wakeup (see the module doc).
pub const EVENT_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// One new flow, as recorded in the connection table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowEvent {
    /// Client address and port.
    pub client: (Ipv4Addr, u16),
    /// Destination address and port (the VIP's).
    pub dst: (Ipv4Addr, u16),
    /// The service the flow belongs to.
    pub service: ServiceKey,
    /// Its forwarding mode (`None` if the program sent an unknown value).
    pub mode: Option<Mode>,
    /// The backend index inside the service.
    pub backend: u32,
}

impl From<FlowEvent> for NewFlow {
    fn from(e: FlowEvent) -> NewFlow {
        NewFlow {
            tuple: FiveTuple {
                src: e.client.0.octets(),
                dst: e.dst.0.octets(),
                sport: e.client.1,
                dport: e.dst.1,
                proto: e.service.proto,
            },
            service: e.service,
            backend: e.backend,
        }
    }
}

/// Decodes one ring item (see the module doc).
pub(crate) fn decode(item: &[u8]) -> Option<FlowEvent> {
    if item.len() != std::mem::size_of::<abi::FlowEvent>() {
        return None;
    }
    // SAFETY: the length matches and abi::FlowEvent is plain data valid for any bytes;
    // read_unaligned copes with the ring's alignment.
    let e: abi::FlowEvent = unsafe { std::ptr::read_unaligned(item.as_ptr().cast()) };
    let mode = match e.mode {
        abi::MODE_DR => Some(Mode::Dr),
        abi::MODE_TUN => Some(Mode::Tun),
        abi::MODE_NAT => Some(Mode::Nat),
        _ => None,
    };
    Some(FlowEvent {
        client: (Ipv4Addr::from(e.src), u16::from_be_bytes(e.sport)),
        dst: (Ipv4Addr::from(e.dst), u16::from_be_bytes(e.dport)),
        service: ServiceKey {
            vip: e.service.vip,
            port: u16::from_be_bytes(e.service.port),
            proto: e.service.proto,
        },
        mode,
        backend: e.backend,
    })
}

/// The reader of the ring (see the module doc).
pub struct FlowEvents {
    ring: Option<RingBuf<MapData>>,
    registered: Option<AsyncFd<RingBuf<MapData>>>,
}

impl std::fmt::Debug for FlowEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowEvents")
            .field("registered", &self.registered.is_some())
            .finish_non_exhaustive()
    }
}

/// The next decodable item of `ring`, skipping undecodable ones.
fn pop(ring: &mut RingBuf<MapData>) -> Option<FlowEvent> {
    loop {
        let item = ring.next()?;
        if let Some(e) = decode(&item) {
            return Some(e);
        }
    }
}

impl FlowEvents {
    pub(crate) fn new(ring: RingBuf<MapData>) -> FlowEvents {
        FlowEvents {
            ring: Some(ring),
            registered: None,
        }
    }

    /// A queued event, without waiting.
    pub fn try_next(&mut self) -> Option<FlowEvent> {
        match (&mut self.ring, &mut self.registered) {
            (Some(ring), _) => pop(ring),
            (None, Some(fd)) => pop(fd.get_mut()),
            (None, None) => None,
        }
    }

    /// The next event, waiting for one (see the module doc).
    pub async fn next(&mut self) -> io::Result<FlowEvent> {
        if let Some(ring) = self.ring.take() {
            // SAFETY: the ring owns its descriptor (the map's) and nothing replaces or closes
            // it while the AsyncFd owns the ring.
            let fd = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) };
            self.registered = Some(fd.map_err(io::Error::from)?);
        }
        let Some(fd) = self.registered.as_mut() else {
            return Err(io::Error::other("flow event ring lost"));
        };
        loop {
            if let Some(e) = pop(fd.get_mut()) {
                return Ok(e);
            }
            // Woken (the ring filled past half) or the timer: look again either way.
            let Ok(ready) = tokio::time::timeout(EVENT_POLL_INTERVAL, fd.readable_mut()).await
            else {
                continue;
            };
            let mut guard = ready?;
            if let Some(e) = pop(guard.get_inner_mut()) {
                return Ok(e);
            }
            guard.clear_ready();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_decode_and_other_sizes_are_refused() {
        let e = abi::FlowEvent {
            src: [192, 168, 1, 7],
            dst: [10, 0, 0, 100],
            sport: 40000u16.to_be_bytes(),
            dport: 80u16.to_be_bytes(),
            proto: 6,
            mode: abi::MODE_NAT,
            pad: [0; 2],
            service: abi::ServiceKey {
                vip: [10, 0, 0, 100],
                port: 80u16.to_be_bytes(),
                proto: 6,
                pad: 0,
            },
            backend: 2,
            pad2: 0,
        };
        // SAFETY: a #[repr(C)] struct without padding viewed as its bytes.
        let bytes: &[u8] = unsafe {
            std::slice::from_raw_parts(
                (&e as *const abi::FlowEvent).cast(),
                std::mem::size_of::<abi::FlowEvent>(),
            )
        };
        let d = decode(bytes).unwrap();
        assert_eq!(d.client, (Ipv4Addr::new(192, 168, 1, 7), 40000));
        assert_eq!(d.dst, (Ipv4Addr::new(10, 0, 0, 100), 80));
        let flow = NewFlow::from(d);
        assert_eq!(
            (
                flow.tuple.src,
                flow.tuple.dst,
                flow.tuple.sport,
                flow.tuple.dport
            ),
            ([192, 168, 1, 7], [10, 0, 0, 100], 40000, 80)
        );
        assert_eq!(
            (flow.tuple.proto, flow.service, flow.backend),
            (6, d.service, 2)
        );
        assert_eq!(
            d.service,
            ServiceKey {
                vip: [10, 0, 0, 100],
                port: 80,
                proto: 6
            }
        );
        assert_eq!((d.mode, d.backend), (Some(Mode::Nat), 2));
        assert_eq!(decode(&bytes[1..]), None);
        let mut odd = bytes.to_vec();
        odd[13] = 9;
        assert_eq!(decode(&odd).unwrap().mode, None);
    }
}
