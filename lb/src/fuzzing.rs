//! The checks the fuzz targets (`fuzz/fuzz_targets/*.rs`, `cargo fuzz`) run on arbitrary
//! bytes, shared with the plain `cargo test` replay of saved inputs (`tests/fuzz_regressions.rs`).
//! Not part of the API.
//!
//! Contract: every `check_*` function takes any bytes, runs one parser or codec on them and
//! panics when one of its invariants fails (a panic inside the code under test is a failure
//! too); it returns normally otherwise. [`TARGETS`] names them as the fuzz targets and the
//! directories under `fuzz/corpus/` and `fuzz/regressions/` are named. The first input bytes
//! usually select a mode (a key or none, an interface, a split point); [`Input`] reads them,
//! padding with zeros when the input runs out.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use crate::config;
use crate::packet::arp::{OwnedVips, ARP_FRAME_LEN};
use crate::packet::csum::{frame_ok, ipv4_header_ok, ones_sum};
use crate::packet::decide::DropReason;
use crate::packet::nexthop::{Egress, Route, StaticNextHops};
use crate::packet::parse::{parse, Parsed, PROTO_TCP, PROTO_UDP};
use crate::packet::rewrite::Director;
use crate::packet::service::{
    Backend, FlowHash, MemConnTable, Mode, Service, ServiceKey, Services,
};
use crate::packet::{process, Action, Ingress};
use crate::sync::{self, Batch, Batcher, Body, Key, Sequencer, Window};
use crate::vrrp::wire as vrrp;

pub use crate::membership::fuzz::check_gossip_datagram;

/// A check: any bytes in, a panic when an invariant fails.
pub type Check = fn(&[u8]);

/// The lb crate's targets and their checks.
pub const TARGETS: &[(&str, Check)] = &[
    ("gossip_open", check_gossip_datagram),
    ("vrrp_decode", check_vrrp),
    ("sync_decode", check_sync),
    ("director_config", check_director_config),
    ("packet_model", check_packet),
];

/// A cursor over fuzz input: numbers and slices from the front, zeros once it is used up.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte (0 when none is left).
    pub fn byte(&mut self) -> u8 {
        let b = self.data.first().copied().unwrap_or(0);
        self.data = self.data.get(1..).unwrap_or(&[]);
        b
    }

    /// The next `N` bytes, zero-padded.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let take = self.bytes(N);
        out[..take.len()].copy_from_slice(take);
        out
    }

    /// A big-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }

    /// A big-endian u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }

    /// A big-endian u64.
    pub fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.array())
    }

    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.data.split_at(n.min(self.data.len()));
        self.data = tail;
        head
    }

    /// Bytes counted by the next byte (0..=255).
    pub fn short_bytes(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte());
        self.bytes(n)
    }

    /// Everything left.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// VRRP: `decode` on the bytes as a received IPv4 packet; an accepted advert encodes back to
/// one that decodes to itself. Then an advert built from the input (first byte, when odd)
/// goes through `encode` and `decode` unchanged (the interval clamped as `encode` does).
pub fn check_vrrp(data: &[u8]) {
    if let Ok(r) = vrrp::decode(data) {
        assert_eq!(r.ttl, vrrp::TTL);
        assert!((1..=vrrp::MAX_INTERVAL_CS).contains(&r.advert.interval_cs));
        assert!(r.advert.addrs.len() <= vrrp::MAX_ADDRS);
        let again = vrrp::decode(&ipv4_around(r.src, r.dst, &r.advert.encode(r.src, r.dst)));
        assert_eq!(again.as_ref(), Ok(&r), "re-encoded advert");
    }
    let mut input = Input::new(data);
    if input.byte() & 1 == 0 {
        return;
    }
    let src = Ipv4Addr::from(input.array::<4>());
    let dst = Ipv4Addr::from(input.array::<4>());
    let vrid = input.byte();
    let priority = input.byte();
    let interval_cs = input.u16();
    let addrs = input
        .rest()
        .chunks_exact(4)
        .map(|a| Ipv4Addr::new(a[0], a[1], a[2], a[3]))
        .collect();
    let advert = vrrp::Advert {
        vrid,
        priority,
        interval_cs,
        addrs,
    };
    let payload = advert.encode(src, dst);
    assert!(payload.len() <= vrrp::MAX_PACKET);
    let got = vrrp::decode(&ipv4_around(src, dst, &payload));
    let clamped = interval_cs.min(vrrp::MAX_INTERVAL_CS);
    if clamped == 0 {
        assert_eq!(got, Err(vrrp::Reject::Interval));
        return;
    }
    let mut want = advert;
    want.interval_cs = clamped;
    want.addrs.truncate(vrrp::MAX_ADDRS);
    let got = got.unwrap_or_else(|e| panic!("own advert refused: {e}"));
    assert_eq!((got.src, got.dst), (src, dst));
    assert_eq!(got.advert, want);
}

/// An IPv4 packet (no options, TTL 255, protocol 112) around a VRRP payload, as a raw socket
/// delivers it.
fn ipv4_around(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&u16::try_from(total).unwrap_or(u16::MAX).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, vrrp::TTL, vrrp::PROTOCOL, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// A fixed sync key, 10.0.0.1 to 10.0.0.2.
fn sync_key() -> Option<Key> {
    Key::derive(
        b"fuzzing secret, 16+ bytes",
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
    )
}

/// Connection sync: after a mode byte (bit 0: with a key), the rest is a datagram. `decode`
/// of its payload: an accepted message is encoded canonically (the same bytes) and decodes to
/// itself. `open` agrees with `decode` (and a sealed payload opens under a fresh window), and
/// the accepted records go through a [`Batcher`] and decode to the same records.
pub fn check_sync(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte();
    let datagram = input.rest();
    let key = if mode & 1 == 1 { sync_key() } else { None };
    let mut window = Window::new();
    let opened = sync::open(key.as_ref(), &mut window, datagram);
    let payload = sync::auth::open(key.as_ref(), datagram);
    match (&opened, payload) {
        (Ok(m), Ok(p)) => assert_eq!(sync::decode(p).as_ref(), Ok(m)),
        (Err(sync::Refused::Unauthenticated), Err(_)) => {}
        (Err(sync::Refused::Wire(e)), Ok(p)) => assert_eq!(sync::decode(p), Err(*e)),
        (other, p) => panic!("open {other:?} for a payload {p:?}"),
    }
    // The payload itself, whether or not a key was asked for.
    let decoded = sync::decode(datagram);
    if let Ok(m) = &decoded {
        let bytes = m.encode();
        assert_eq!(sync::decode(&bytes).as_ref(), Ok(m), "re-decoded");
        assert_eq!(bytes, datagram, "not the canonical encoding");
    }
    let sealed = sync::seal(key.as_ref(), datagram.to_vec());
    let mut fresh = Window::new();
    match (sync::open(key.as_ref(), &mut fresh, &sealed), &decoded) {
        (Ok(m), Ok(want)) => assert_eq!(&m, want),
        (Err(sync::Refused::Wire(e)), Err(want)) => assert_eq!(&e, want),
        (Err(sync::Refused::Replay(_)), Ok(_)) => {}
        (got, want) => panic!("sealed payload opened as {got:?}, decodes as {want:?}"),
    }
    let Ok(m) = decoded else {
        return;
    };
    let records = m.body.records();
    let batch = if mode & 2 == 0 {
        Batch::Records
    } else {
        Batch::Bulk { request: 7 }
    };
    let max_len = 100 + usize::from(mode >> 2) * 8;
    let Some(mut batcher) = Batcher::new(batch, max_len, sync::tag_len(key.as_ref())) else {
        return;
    };
    let mut seq = Sequencer::new(1);
    let mut out = Vec::new();
    for r in records {
        out.extend(batcher.push(r, &mut seq));
    }
    out.extend(batcher.flush(&mut seq));
    let mut again = Vec::new();
    for (i, payload) in out.iter().enumerate() {
        assert!(payload.len() + sync::tag_len(key.as_ref()) <= max_len);
        let got = sync::decode(payload).unwrap_or_else(|e| panic!("batch {i}: {e}"));
        match (&got.body, batch) {
            (Body::Records(r), Batch::Records) => again.extend_from_slice(r),
            (Body::BulkRecords { records, chunk, .. }, Batch::Bulk { .. }) => {
                assert_eq!(*chunk as usize, i);
                again.extend_from_slice(records);
            }
            (body, _) => panic!("batch {i}: {body:?}"),
        }
    }
    assert_eq!(again, records);
}

/// Director config: TOML text (invalid UTF-8 is cut at the first bad byte) to a validated
/// config or diagnostics, never a panic; every diagnostic lies inside the text (see
/// [`diagnostics_in`]).
pub fn check_director_config(data: &[u8]) {
    let Some(text) = config_text(data) else {
        return;
    };
    if let Err(diags) = config::parse(text) {
        diagnostics_in(text, &diags);
    }
}

/// The longest UTF-8 prefix of `data`, or None for texts a config check must not parse:
/// secret files are read from the paths they name, and a device or `/proc` file would make
/// the check read forever or touch the host, so texts naming such places are left out.
pub fn config_text(data: &[u8]) -> Option<&str> {
    let text = match std::str::from_utf8(data) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).ok()?,
    };
    let lower = text.to_ascii_lowercase();
    let risky = ["/dev", "/proc", "/sys", "/run", "fd/", "\\u", "/.."];
    (!risky.iter().any(|r| lower.contains(r))).then_some(text)
}

/// Every diagnostic is at a line and column of `text` (1-based; a column may be one past the
/// line's last character), says something, and renders.
pub fn diagnostics_in(text: &str, diags: &[config::Diagnostic]) {
    assert!(!diags.is_empty(), "an error without diagnostics");
    let lines: Vec<&str> = text.split('\n').collect();
    for d in diags {
        assert!(!d.message.is_empty(), "{d:?}");
        assert!(
            d.line >= 1 && d.line <= lines.len(),
            "{d:?} in {} lines",
            lines.len()
        );
        let width = lines[d.line - 1].chars().count();
        assert!(
            d.col >= 1 && d.col <= width + 1,
            "{d:?} in a line of {width}"
        );
    }
    let rendered = config::render(std::path::Path::new("fuzz.toml"), diags);
    assert!(rendered.starts_with("fuzz.toml:"), "{rendered}");
}

const DIRECTOR: Director = Director {
    mac: [0x02, 0, 0, 0, 0, 0xd1],
    ip: [10, 0, 0, 2],
    mtu: 1500,
    nat_mac: [0x02, 0, 0, 0, 0, 0xe1],
    nat_ip: [10, 0, 1, 254],
    nat_mtu: 1500,
};
const VIP: [u8; 4] = [10, 0, 0, 100];

/// The packet model's fixture: on [`VIP`], TCP and UDP, port 80 DR, 81 TUN, 82 NAT, 83 DR
/// without backends, 84 NAT source-hashed with one backend that has no neighbour and no MAC
/// and one that has no route.
fn packet_services() -> Services {
    let backend = |i: u8| Backend {
        ip: [10, 0, 1, i],
        mac: [0x02, 0, 0, 0, 0x01, i],
        port: 8000 + u16::from(i),
        weight: 100,
        alive: true,
    };
    let mut s = Services::new();
    for (port, mode) in [
        (80, Mode::Dr),
        (81, Mode::Tun),
        (82, Mode::Nat),
        (83, Mode::Dr),
        (84, Mode::Nat),
    ] {
        let mut bs: Vec<Backend> = match port {
            83 => Vec::new(),
            84 => vec![backend(4), backend(5)],
            _ => (1..=3).map(backend).collect(),
        };
        if port == 84 {
            bs[0].mac = [0; 6];
            bs[1].ip = [10, 9, 9, 9];
        }
        for proto in [PROTO_TCP, PROTO_UDP] {
            let Ok(mut svc) = Service::new(mode, bs.clone(), 251) else {
                panic!("fixture service {port}");
            };
            if port == 84 {
                svc.hash = FlowHash::Source;
            }
            s.insert(
                ServiceKey {
                    vip: VIP,
                    port,
                    proto,
                },
                svc,
            );
        }
    }
    s
}

/// Next hops: 10.0.1.0/24 on the NAT side (backends 1 to 3 with neighbour entries), the rest
/// of the world through 10.0.0.1 on the client side; 10.9.0.0/16 has no route.
fn packet_hops() -> StaticNextHops {
    let mut t = StaticNextHops::default();
    t.macs.insert(Egress::Nat, DIRECTOR.nat_mac);
    t.macs.insert(Egress::Client, [0x02, 0, 0, 0, 0, 0xe0]);
    t.routes.push(Route {
        prefix: [10, 0, 1, 0],
        len: 24,
        egress: Egress::Nat,
        via: None,
    });
    t.routes.push(Route {
        prefix: [192, 168, 0, 0],
        len: 16,
        egress: Egress::Client,
        via: Some([10, 0, 0, 1]),
    });
    for i in 1..=3 {
        t.neighbours
            .insert((Egress::Nat, [10, 0, 1, i]), [0x02, 0, 0, 0, 0x01, i]);
    }
    t.neighbours
        .insert((Egress::Client, [10, 0, 0, 1]), [0x02, 0, 0, 0, 0, 0x01]);
    t
}

/// The packet model on a sequence of frames: each is a control byte, a big-endian u16
/// length, then the frame. Control bits: 0 the frame arrives on the inner interface; 1 its
/// destination MAC is set to the receiving interface's; 2 its IPv4 header checksum and 3 its
/// TCP/UDP checksum are recomputed (so well-formed frames are reachable); 4 the VIP is owned.
/// Frames share one connection table, so replies and later segments find their flows.
///
/// Invariants, per frame ([`check_action`]): the action fits the frame's classification,
/// no forward picks a backend outside its service, output lengths add up, and every
/// checksum the model writes verifies whenever the input's did.
pub fn check_packet(data: &[u8]) {
    let services = packet_services();
    let hops = packet_hops();
    let mut conns = MemConnTable::with_seed(64, 7);
    let owned = match OwnedVips::new(&[Ipv4Addr::from(VIP)]) {
        Ok(o) => o,
        Err(e) => panic!("owned VIPs: {e:?}"),
    };
    let mut input = Input::new(data);
    for _ in 0..16 {
        if input.is_empty() {
            break;
        }
        let control = input.byte();
        let len = usize::from(input.u16()) % 2048;
        let mut frame = input.bytes(len).to_vec();
        let inner = control & 1 == 1;
        let ingress = if inner {
            Ingress::Inner
        } else if control & 16 != 0 {
            Ingress::Client(&owned)
        } else {
            Ingress::CLIENT
        };
        if control & 2 != 0 && frame.len() >= 6 {
            frame[..6].copy_from_slice(&ingress.mac(&DIRECTOR));
        }
        fix_checksums(&mut frame, control & 4 != 0, control & 8 != 0);
        let action = process(&frame, ingress, &services, &mut conns, &DIRECTOR, &hops);
        check_action(&frame, ingress, &action);
    }
}

/// The IPv4 header checksum (`ip`) and the TCP/UDP checksum of an unfragmented datagram
/// (`l4`) of `frame`, recomputed in place where the frame has them.
fn fix_checksums(frame: &mut [u8], ip: bool, l4: bool) {
    let parsed = parse(frame);
    let Some(l3) = l3_of(frame) else {
        return;
    };
    let hlen = usize::from(frame[l3] & 0x0f) * 4;
    if ip && hlen >= 20 && frame.len() >= l3 + hlen {
        frame[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
        let c = !ones_sum(0, &frame[l3..l3 + hlen]);
        frame[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    }
    let Parsed::Flow(f) = parsed else {
        return;
    };
    if !l4 {
        return;
    }
    let at = if f.tuple.proto == PROTO_TCP { 16 } else { 6 };
    let Some(segment) = frame.get_mut(f.l4_offset..f.l3_end) else {
        return;
    };
    if segment.len() < at + 2 {
        return;
    }
    segment[at..at + 2].copy_from_slice(&[0, 0]);
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&f.tuple.src);
    pseudo[4..8].copy_from_slice(&f.tuple.dst);
    pseudo[9] = f.tuple.proto;
    pseudo[10..12].copy_from_slice(&(segment.len() as u16).to_be_bytes());
    let sum = u32::from(ones_sum(0, &pseudo));
    let mut c = !ones_sum(sum, segment);
    if f.tuple.proto == PROTO_UDP && c == 0 {
        c = 0xffff;
    }
    segment[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Offset of the IPv4 header of an IPv4 frame (after an optional VLAN tag) with at least
/// its fixed header present.
fn l3_of(frame: &[u8]) -> Option<usize> {
    let l3 = match frame.get(12..14)? {
        [0x81, 0x00] if frame.get(16..18)? == [0x08, 0x00] => 18,
        [0x08, 0x00] => 14,
        _ => return None,
    };
    (frame.len() >= l3 + 20).then_some(l3)
}

/// The invariants of one frame's [`Action`] (see [`check_packet`]).
fn check_action(frame: &[u8], ingress: Ingress<'_>, action: &Action) {
    let ours = frame.len() >= 6 && frame[..6] == ingress.mac(&DIRECTOR);
    let parsed = parse(frame);
    let input_ip_ok = l3_of(frame).is_some_and(|l3| {
        let hlen = usize::from(frame[l3] & 0x0f) * 4;
        frame.get(l3..l3 + hlen).is_some_and(ipv4_header_ok)
    });
    let input_whole_ok = frame_ok(frame).is_ok();
    match action {
        Action::NotOurs => assert!(!ours, "a frame to us handed on unseen"),
        Action::ArpReply(out) => {
            assert!(
                out.len() >= ARP_FRAME_LEN,
                "ARP reply of {} bytes",
                out.len()
            );
            assert_eq!(out.len(), frame.len(), "ARP reply length");
            assert_eq!(out[12..14], [0x08, 0x06]);
        }
        Action::Pass => {}
        Action::Drop(reason) => {
            assert!(ours, "dropped a frame not ours");
            assert!(parsed.flow().is_some(), "dropped {parsed:?} ({reason:?})");
            assert_ne!(
                *reason,
                DropReason::BadBackendIndex,
                "decide picked a bad index"
            );
            assert!(!reason.as_str().is_empty());
        }
        Action::Tx(out) | Action::Redirect(out) => {
            assert!(ours, "forwarded a frame not ours");
            let flow = parsed
                .flow()
                .unwrap_or_else(|| panic!("forwarded {parsed:?}"));
            let l3 = flow.l3_offset;
            if out.len() != frame.len() {
                // TUN (DR and NAT rewrite in place): 20 bytes of outer header before the
                // datagram, which (with any Ethernet padding) is carried unchanged.
                assert_eq!(out.len(), frame.len() + 20, "TUN length");
                let inner_len = flow.l3_end - l3;
                assert_eq!(out[l3 + 9], 4, "outer protocol IP-in-IP");
                let total = usize::from(u16::from_be_bytes([out[l3 + 2], out[l3 + 3]]));
                assert_eq!(total, 20 + inner_len, "outer total length");
                assert!(ipv4_header_ok(&out[l3..l3 + 20]), "outer IPv4 checksum");
                assert_eq!(out[l3 + 20..], frame[l3..], "inner datagram");
            }
            if input_ip_ok {
                let hlen = flow.l4_offset - flow.l3_offset;
                let at = if out[l3 + 9] == 4 { l3 + 20 } else { l3 };
                assert!(
                    ipv4_header_ok(&out[at..at + hlen]),
                    "IPv4 checksum of {out:02x?}"
                );
            }
            if input_whole_ok {
                assert_eq!(frame_ok(out), Ok(()), "checksums of {out:02x?}");
            }
        }
        Action::TooBig(out) | Action::TimeExceeded(out) => {
            assert!(ours, "answered a frame not ours");
            assert!(parsed.flow().is_some(), "answered {parsed:?}");
            let l3 = l3_of(out).unwrap_or_else(|| panic!("ICMP answer {out:02x?}"));
            let hlen = usize::from(out[l3] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([out[l3 + 2], out[l3 + 3]]));
            assert_eq!(l3 + total, out.len(), "ICMP answer length");
            assert_eq!(out[l3 + 9], 1, "ICMP protocol");
            assert!(
                ipv4_header_ok(&out[l3..l3 + hlen]),
                "ICMP answer's IPv4 checksum"
            );
            assert_eq!(ones_sum(0, &out[l3 + hlen..]), 0xffff, "ICMP checksum");
        }
    }
}

/// The gossip fixtures' addresses: a member of id `fuzz` on 127.0.0.1:7946 (peer 7947).
pub(crate) const GOSSIP_SELF: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7946));
/// Its peer protocol address.
pub(crate) const GOSSIP_PEER: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7947));
/// Probe and suspicion times of the fixture's SWIM settings.
pub(crate) const GOSSIP_TIMES: (Duration, Duration) =
    (Duration::from_millis(500), Duration::from_secs(3));
