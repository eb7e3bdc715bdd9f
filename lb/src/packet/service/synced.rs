//! Flows synced from the peer director in the model's table ([`MemConnTable::install_synced`],
//! the userspace datapath's `Datapath::install_synced`): the XDP datapath's rule
//! (`conntable::place`), forward entries marked synced until a packet here follows them
//! (`ConnTable::refresh`).

use super::{key_of, nat_reply, Entry, MemConnTable, Services};
use crate::abi::{DIR_FORWARD, DIR_REPLY};
use crate::datapath::{Installed, SyncedFlow};
use crate::packet::conntable::{self, Placed};
use crate::packet::parse::FiveTuple;
use crate::packet::service::{Mode, NatOrigin};
use crate::sync::FlowState;

impl MemConnTable {
    /// Installs flows synced from the peer director (`Datapath::install_synced`) at the
    /// table's clock ([`MemConnTable::set_now`]), their idle times converted at `hz` ticks per
    /// second: each flow's service must be in `services` with its backend index inside the
    /// list (else refused); its entries are placed by `conntable::place`, the XDP datapath's
    /// rule (`MemConnTable::install`).
    pub fn install_synced(
        &mut self,
        flows: &[SyncedFlow],
        services: &Services,
        hz: u32,
    ) -> Installed {
        let mut done = Installed::default();
        for f in flows {
            let Some((service, backend)) = services.get(&f.service).and_then(|s| {
                let b = s.backends.get(usize::try_from(f.backend).ok()?)?;
                Some((s, b))
            }) else {
                done.refused += 1;
                continue;
            };
            let reply = (service.mode == Mode::Nat).then(|| nat_reply(&f.tuple, backend));
            let idle = crate::datapath::ticks_of(f.idle, hz);
            let seen = conntable::synced_seen(self.now, idle, f.state == FlowState::Closing);
            let half_open = f.state == FlowState::HalfOpen;
            let (forward, reply) = self.install(&f.tuple, f.backend, reply, seen, half_open);
            done.count(forward, reply);
        }
        done
    }

    /// Installs a flow synced from the peer director (`Datapath::install_synced`) by
    /// `conntable::place`, last seen at tick `seen` (`conntable::synced_seen`, its closing
    /// mark included), half-open or not: its forward entry, marked synced, then, when that
    /// one was written, the NAT reply entry `reply` (without the closing mark). Returns both
    /// placements. Evictions are the caller's to count (not in [`MemConnTable::evicted`],
    /// which counts the packets' records, as the program's `conn_evicted`).
    pub(crate) fn install(
        &mut self,
        flow: &FiveTuple,
        backend: u32,
        reply: Option<(FiveTuple, NatOrigin)>,
        seen: u32,
        half_open: bool,
    ) -> (Placed, Option<Placed>) {
        let key = key_of(flow, DIR_FORWARD);
        let forward = self.place(key, Entry::Synced(backend), seen, half_open);
        if matches!(forward, Placed::Kept(_)) {
            return (forward, None);
        }
        let reply = reply.map(|(r, origin)| {
            let seen = seen & !conntable::SEEN_CLOSING;
            self.place(key_of(&r, DIR_REPLY), Entry::Reply(origin), seen, half_open)
        });
        (forward, reply)
    }

    fn place(&mut self, key: [u8; 16], entry: Entry, seen: u32, half_open: bool) -> Placed {
        let placed = self.table.install(key, entry, seen, half_open);
        if let Placed::Written { was, .. } = placed {
            let delta = was.forward_delta(key[13] == DIR_FORWARD);
            self.forward = self.forward.saturating_add_signed(delta as isize);
        }
        placed
    }
}
