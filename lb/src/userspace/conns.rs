//! The userspace datapath's connection table, and what one decision did to it.
//!
//! Contract:
//! * [`Conns`] holds the one [`MemConnTable`] the decisions use (its set hash keyed by a
//!   random seed, as the XDP table's; its clock in milliseconds since the table was made,
//!   idle timeouts in milliseconds) and lists its forward entries not idle past their
//!   timeout (set by set), with their idle time.
//! * [`Conns::observe`] runs `packet::process` on one frame as received on `ingress` and
//!   reports, besides the action, what the decision consulted and recorded ([`Observed`]):
//!   the flow's 5-tuple, the backend of an established flow, the backend of a new one,
//!   whether it was a NAT reply, whether a new flow went unrecorded (over the caller's
//!   new-flow guard, `packet::decide`).
//! * [`Conns::install`] installs flows synced from the peer director at the table's clock
//!   (`MemConnTable::install_synced`), idle times in milliseconds.

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::worker::Budget;
use crate::datapath::{ConnEntry, ConnTimeouts, Installed, SyncedFlow};
use crate::packet::conntable;
use crate::packet::nexthop::NextHops;
use crate::packet::parse::FiveTuple;
use crate::packet::rewrite::Director;
use crate::packet::service::{ConnTable, MemConnTable, NatOrigin, Services};
use crate::packet::{process, Action, Ingress};

/// What one decision consulted and recorded (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Observed {
    /// The balanced flow's 5-tuple (set when a service's connection entry was consulted).
    pub flow: Option<FiveTuple>,
    /// Backend of the flow in the table before the decision.
    pub established: Option<u32>,
    /// Backend recorded for a new flow.
    pub(crate) new_flow: Option<u32>,
    /// The frame was a NAT reply.
    pub nat_reply: bool,
    /// A new flow over the new-flow guard: not recorded (`new_flow` is its pick all the same).
    pub unrecorded: bool,
}

/// When a frame arrived, and the new-flow guard of the worker that received it.
pub(super) struct Arrival<'a> {
    /// The receive time.
    pub at: Instant,
    /// The worker's new-flow guard.
    pub guard: &'a mut Budget,
}

/// The decision's connection table (see the module doc).
#[derive(Debug)]
pub(super) struct Conns {
    table: MemConnTable,
    /// Tick 0 of the table's clock (milliseconds).
    epoch: Instant,
}

/// A [`ConnTable`] that notes what `decide` does with the real one.
struct Recorder<'a> {
    conns: &'a mut Conns,
    flow: Cell<Option<FiveTuple>>,
    established: Cell<Option<u32>>,
    new_flow: Option<u32>,
    nat_reply: Cell<bool>,
    guard: &'a mut Budget,
    at: Instant,
    unrecorded: bool,
}

impl Recorder<'_> {
    /// Every flow but an opening SYN is looked up, service or not (`packet::decide`): only a
    /// hit is noted (a new flow is noted by `insert`).
    fn note_hit(&self, flow: &FiveTuple, b: Option<u32>) -> Option<u32> {
        if b.is_some() {
            self.flow.set(Some(*flow));
            self.established.set(b);
        }
        b
    }
}

impl ConnTable for Recorder<'_> {
    fn get(&mut self, flow: &FiveTuple) -> Option<u32> {
        let b = self.conns.table.get(flow);
        self.note_hit(flow, b)
    }

    fn get_syn(&mut self, flow: &FiveTuple) -> Option<u32> {
        let b = self.conns.table.get_syn(flow);
        self.note_hit(flow, b)
    }

    fn insert(&mut self, flow: FiveTuple, backend: u32) {
        self.conns.table.insert(flow, backend);
        self.flow.set(Some(flow));
        self.new_flow = Some(backend);
    }

    fn insert_half_open(&mut self, flow: FiveTuple, backend: u32) {
        self.conns.table.insert_half_open(flow, backend);
        self.flow.set(Some(flow));
        self.new_flow = Some(backend);
    }

    fn insert_reply_half_open(&mut self, reply: FiveTuple, origin: NatOrigin) {
        self.conns.table.insert_reply_half_open(reply, origin);
    }

    fn admit(&mut self, flow: &FiveTuple, backend: u32) -> bool {
        if self.guard.allow(self.at) {
            return true;
        }
        self.flow.set(Some(*flow));
        self.new_flow = Some(backend);
        self.unrecorded = true;
        false
    }

    fn get_reply(&mut self, reply: &FiveTuple) -> Option<NatOrigin> {
        let o = self.conns.table.get_reply(reply);
        self.nat_reply.set(o.is_some());
        o
    }

    fn get_reply_syn(&mut self, reply: &FiveTuple) -> Option<NatOrigin> {
        let o = self.conns.table.get_reply_syn(reply);
        self.nat_reply.set(o.is_some());
        o
    }

    fn insert_reply(&mut self, reply: FiveTuple, origin: NatOrigin) {
        self.conns.table.insert_reply(reply, origin);
    }

    fn mark_closing(&mut self, flow: &FiveTuple) {
        self.conns.table.mark_closing(flow);
    }

    fn refresh(&mut self, flow: &FiveTuple) {
        self.conns.table.refresh(flow);
    }
}

impl Conns {
    /// Empty tables bounded at `capacity` entries per direction, without idle timeouts.
    #[cfg(test)]
    pub(super) fn new(capacity: usize) -> Conns {
        Conns::with_timeouts(capacity, ConnTimeouts::default())
    }

    /// Empty tables bounded at `capacity` entries whose forward entries expire after
    /// `timeouts` unused.
    pub(super) fn with_timeouts(capacity: usize, timeouts: ConnTimeouts) -> Conns {
        let table = MemConnTable::with_seed(capacity, conntable::random_seed());
        Conns {
            table: table.with_timeouts(timeouts.ticks(1000)),
            epoch: Instant::now(),
        }
    }

    /// The table's tick (milliseconds since it was made, wrapping) at `at`.
    fn tick(&self, at: Instant) -> u32 {
        at.saturating_duration_since(self.epoch).as_millis() as u32
    }

    /// Runs the packet model on `frame`, received at `at` (see the module doc).
    pub(super) fn observe(
        &mut self,
        frame: &[u8],
        ingress: Ingress<'_>,
        services: &Services,
        director: &Director,
        hops: &dyn NextHops,
        arrival: Arrival<'_>,
    ) -> (Action, Observed) {
        let Arrival { at, guard } = arrival;
        let now = self.tick(at);
        self.table.set_now(now);
        let mut r = Recorder {
            conns: self,
            flow: Cell::new(None),
            established: Cell::new(None),
            new_flow: None,
            nat_reply: Cell::new(false),
            guard,
            at,
            unrecorded: false,
        };
        let action = process(frame, ingress, services, &mut r, director, hops);
        let seen = Observed {
            flow: r.flow.get(),
            established: r.established.get(),
            new_flow: r.new_flow,
            nat_reply: r.nat_reply.get(),
            unrecorded: r.unrecorded,
        };
        (action, seen)
    }

    /// Number of forward entries.
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    /// Entries (either direction) replaced as least recently used of a full set.
    pub(super) fn evicted(&self) -> u64 {
        self.table.evicted()
    }

    /// Of [`Conns::evicted`]: half-open entries (`packet::conntable`).
    pub(super) fn evicted_half_open(&self) -> u64 {
        self.table.evicted_half_open()
    }

    /// Forward entries found idle past their timeout (each scheduled anew).
    pub(super) fn expired(&self) -> u64 {
        self.table.expired()
    }

    /// Up to `limit` forward entries not idle past their timeout at `at`, set by set.
    pub(super) fn entries(&self, limit: usize, at: Instant) -> Vec<ConnEntry> {
        self.table
            .live_forward_entries(self.tick(at))
            .into_iter()
            .take(limit)
            .map(|e| ConnEntry {
                client: (e.flow.src.into(), e.flow.sport),
                vip: (e.flow.dst.into(), e.flow.dport),
                proto: e.flow.proto,
                backend: e.backend,
                idle: Some(Duration::from_millis(u64::from(e.idle))),
                closing: e.closing,
                half_open: e.half_open,
                synced: e.synced,
            })
            .collect()
    }

    /// Installs flows synced from the peer director at `at` (`Datapath::install_synced`,
    /// `MemConnTable::install_synced` in milliseconds).
    pub(super) fn install(
        &mut self,
        flows: &[SyncedFlow],
        services: &Services,
        at: Instant,
    ) -> Installed {
        let now = self.tick(at);
        self.table.set_now(now);
        let idle = self.table.idle_timeouts();
        let live: Vec<SyncedFlow> = flows
            .iter()
            .filter(|f| !idle.past(f, 1000))
            .copied()
            .collect();
        let mut done = self.table.install_synced(&live, services, 1000);
        done.refused += (flows.len() - live.len()) as u64;
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::decide::DropReason;
    use crate::packet::nexthop::NextHop;
    use crate::packet::parse::PROTO_TCP;
    use crate::packet::ratelimit::IcmpLimit;
    use crate::packet::service::{Backend, Mode, Service, ServiceKey};

    /// `c.observe` of `frame` now, on the client interface owning no VIP, as [`DIRECTOR`]
    /// with every next hop known and no new-flow guard.
    fn observe_now(c: &mut Conns, frame: &[u8], services: &Services) -> (Action, Observed) {
        c.observe(
            frame,
            Ingress::CLIENT,
            services,
            &DIRECTOR,
            &AllKnown,
            Arrival {
                at: Instant::now(),
                guard: &mut Budget::new(IcmpLimit::NONE),
            },
        )
    }

    fn tuple(n: u32) -> FiveTuple {
        FiveTuple {
            src: [10, 0, (n >> 8) as u8, n as u8],
            dst: [10, 0, 0, 100],
            sport: 1000 + (n % 7) as u16,
            dport: 80,
            proto: PROTO_TCP,
        }
    }

    #[test]
    fn listed_entries_are_exactly_the_tables() {
        // A bound of 50: 16 sets of 8 ways.
        let mut conns = Conns::new(50);
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            // A small LCG: repeats keys often, so re-inserts and evictions interleave.
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            conns.table.insert(tuple((x >> 16) % 400), x % 3);
        }
        let listed = conns.entries(usize::MAX, conns.epoch);
        assert_eq!(listed.len(), conns.len());
        // About 400 keys over 128 ways: every set full, or nearly.
        assert!((120..=128).contains(&conns.len()), "{}", conns.len());
        for e in &listed {
            let t = FiveTuple {
                src: e.client.0.octets(),
                dst: e.vip.0.octets(),
                sport: e.client.1,
                dport: e.vip.1,
                proto: e.proto,
            };
            assert_eq!(conns.table.peek(&t), Some(e.backend));
        }
        assert_eq!(conns.entries(3, conns.epoch), listed[..3].to_vec());
    }

    /// An Ethernet/IPv4/TCP frame from `src`:`sport` to `dst`:`dport`.
    fn frame(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 3]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&40u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = PROTO_TCP;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        let tcp = &mut f[34..54];
        tcp[0..2].copy_from_slice(&sport.to_be_bytes());
        tcp[2..4].copy_from_slice(&dport.to_be_bytes());
        tcp[12] = 0x50;
        f
    }

    /// Every next hop known, one MAC for all.
    struct AllKnown;

    impl NextHops for AllKnown {
        fn resolve(&self, _: crate::packet::nexthop::Egress, _: [u8; 4], _: [u8; 4]) -> NextHop {
            NextHop::Found {
                dmac: [2, 0, 0, 0, 9, 9],
                smac: [2, 0, 0, 0, 0, 3],
            }
        }
    }

    const DIRECTOR: Director = Director {
        mac: [2, 0, 0, 0, 0, 3],
        ip: [10, 0, 0, 3],
        mtu: 1500,
        nat_mac: [2, 0, 0, 0, 0, 4],
        nat_ip: [10, 0, 1, 3],
        nat_mtu: 1500,
    };

    /// One service, TCP 10.0.0.100:80 in `mode`, with one backend (returned too).
    fn one_service(mode: Mode) -> (Services, ServiceKey, Backend) {
        let backend = Backend {
            ip: [10, 0, 1, 11],
            mac: [2, 0, 0, 0, 1, 11],
            port: 8080,
            weight: 1,
            alive: true,
        };
        let key = ServiceKey {
            vip: [10, 0, 0, 100],
            port: 80,
            proto: PROTO_TCP,
        };
        let mut services = Services::new();
        services.insert(key, Service::new(mode, vec![backend.clone()], 7).unwrap());
        (services, key, backend)
    }

    #[test]
    fn observe_reports_new_established_and_nat_reply() {
        let (services, key, backend) = one_service(Mode::Nat);
        let director = DIRECTOR;
        let mut c = Conns::new(16);
        let client = [10, 0, 0, 1];
        let f = frame(client, 5555, key.vip, 80);
        let (a, seen) = observe_now(&mut c, &f, &services);
        assert!(matches!(a, Action::Redirect(_)), "{a:?}");
        assert_eq!(seen.new_flow, Some(0));
        assert_eq!(seen.established, None);
        assert_eq!(seen.flow.map(|t| t.sport), Some(5555));
        let (_, seen) = observe_now(&mut c, &f, &services);
        assert_eq!((seen.new_flow, seen.established), (None, Some(0)));
        let reply = frame(backend.ip, 8080, client, 5555);
        let (a, seen) = observe_now(&mut c, &reply, &services);
        assert!(matches!(a, Action::Redirect(_)), "{a:?}");
        assert!(seen.nat_reply);
        assert_eq!(seen.flow, None);
        // TTL 1 (the worker sends these on the receiving socket, counted icmp_time_exceeded):
        // a reply is answered from the inner interface, a forward from the receiving one.
        let mut expiring = reply.clone();
        expiring[22] = 1;
        let (a, seen) = observe_now(&mut c, &expiring, &services);
        let Action::TimeExceeded(out) = a else {
            panic!("{a:?}");
        };
        assert!(seen.nat_reply);
        assert_eq!(
            (out[6..12].to_vec(), out[26..30].to_vec()),
            (director.nat_mac.to_vec(), director.nat_ip.to_vec())
        );
        let mut expiring = f.clone();
        expiring[22] = 1;
        let (a, seen) = observe_now(&mut c, &expiring, &services);
        let Action::TimeExceeded(out) = a else {
            panic!("{a:?}");
        };
        assert_eq!((seen.new_flow, seen.established), (None, Some(0)));
        assert_eq!(
            (out[6..12].to_vec(), out[26..30].to_vec()),
            (director.mac.to_vec(), director.ip.to_vec())
        );
        let other = frame(client, 5555, key.vip, 81);
        let (a, seen) = observe_now(&mut c, &other, &services);
        assert_eq!((a, seen), (Action::Pass, Observed::default()));
        assert_eq!(c.len(), 1);
        let e = c.entries(10, Instant::now());
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].client, (client.into(), 5555));
        assert_eq!(e[0].vip, (key.vip.into(), 80));
    }

    #[test]
    fn over_the_new_flow_guard_dr_is_forwarded_unrecorded_and_nat_dropped() {
        // A burst of 2 and no refill in the test's time (one new flow a day).
        let day = IcmpLimit {
            cost_ns: 86_400 * 1_000_000_000,
            cap_ns: 2 * 86_400 * 1_000_000_000,
        };
        for mode in [Mode::Dr, Mode::Nat] {
            let (services, key, _) = one_service(mode);
            let mut c = Conns::new(16);
            let mut guard = Budget::new(day);
            let mut run = |c: &mut Conns, sport: u16| {
                let f = frame([10, 0, 0, 1], sport, key.vip, 80);
                c.observe(
                    &f,
                    Ingress::CLIENT,
                    &services,
                    &DIRECTOR,
                    &AllKnown,
                    Arrival {
                        at: Instant::now(),
                        guard: &mut guard,
                    },
                )
            };
            for sport in [1, 2] {
                let (a, seen) = run(&mut c, sport);
                assert!(matches!(a, Action::Tx(_) | Action::Redirect(_)), "{a:?}");
                assert_eq!((seen.new_flow, seen.unrecorded), (Some(0), false));
            }
            // Established flows are not charged.
            assert_eq!(run(&mut c, 1).1.established, Some(0));
            let (a, seen) = run(&mut c, 3);
            assert_eq!((seen.new_flow, seen.unrecorded), (Some(0), true));
            if mode == Mode::Nat {
                assert_eq!(a, Action::Drop(DropReason::NewFlowLimit));
            } else {
                assert!(matches!(a, Action::Tx(_)), "{a:?}");
            }
            assert_eq!(c.len(), 2, "{mode:?}: the third flow is not recorded");
        }
    }

    #[test]
    fn an_idle_flow_expires_and_is_scheduled_anew() {
        let (services, key, _) = one_service(Mode::Dr);
        let director = DIRECTOR;
        let timeouts = ConnTimeouts {
            tcp: Duration::from_millis(100),
            tcp_fin: Duration::from_millis(30),
            udp: Duration::from_secs(1),
        };
        let mut c = Conns::with_timeouts(16, timeouts);
        let t0 = c.epoch;
        let ms = |n| t0 + Duration::from_millis(n);
        let f = frame([10, 0, 0, 1], 5555, key.vip, 80);
        let mut fin = f.clone();
        fin[34 + 13] = 0x11; // FIN+ACK
        let at = |c: &mut Conns, frame: &[u8], when| {
            c.observe(
                frame,
                Ingress::CLIENT,
                &services,
                &director,
                &AllKnown,
                Arrival {
                    at: when,
                    guard: &mut Budget::new(IcmpLimit::NONE),
                },
            )
            .1
        };
        assert_eq!(at(&mut c, &f, t0).new_flow, Some(0));
        // Every 90 ms: kept alive, established.
        for n in [90, 180, 270] {
            assert_eq!(at(&mut c, &f, ms(n)).established, Some(0), "{n} ms");
        }
        // 102 ms of silence (ticks are even: bit 0 is the closing mark): expired, a new flow
        // recorded over it.
        let seen = at(&mut c, &f, ms(373));
        assert_eq!((seen.new_flow, seen.established), (Some(0), None));
        assert_eq!((c.expired(), c.len()), (1, 1));
        // Listed with its idle time while live, left out once idle past the timeout.
        let listed = c.entries(10, ms(422));
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].idle, Some(Duration::from_millis(50)));
        assert!(!listed[0].closing);
        assert!(c.entries(10, ms(474)).is_empty());
        assert_eq!(c.len(), 1, "held until reused or evicted");
        // A FIN (here after the entry expired: a new flow, marked closing at once) brings the
        // closing timeout: 20 ms keep it, 32 ms expire it.
        assert_eq!(at(&mut c, &fin, ms(500)).new_flow, Some(0));
        assert_eq!(at(&mut c, &f, ms(520)).established, Some(0));
        let listed = c.entries(10, ms(540));
        assert!(listed[0].closing, "{listed:?}");
        assert_eq!(at(&mut c, &f, ms(552)).new_flow, Some(0));
        assert_eq!(c.expired(), 3, "at 373 ms, at the FIN, at 552 ms");
    }
}
