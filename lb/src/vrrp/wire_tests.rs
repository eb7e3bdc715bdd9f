//! Tests of the VRRPv3 codec: keepalived's adverts (fixtures/README.md) read exactly and
//! reproduced byte for byte, each reject reason and the RFC's order of checks, IPv4 options,
//! and no panic on any truncation, bit flip or noise.

use super::*;

const SRC: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

/// One keepalived capture: the whole IPv4 packet and what it must decode to.
struct Fixture {
    name: &'static str,
    packet: &'static [u8],
    dst: Ipv4Addr,
    vrid: u8,
    priority: u8,
    interval_cs: u16,
    addrs: &'static [Ipv4Addr],
}

const VIP0: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);
const VIPS3: [Ipv4Addr; 3] = [
    Ipv4Addr::new(10, 77, 0, 101),
    Ipv4Addr::new(10, 77, 0, 102),
    Ipv4Addr::new(192, 0, 2, 7),
];
const VIP3: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 103);
const VIP4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 104);

fn fixtures() -> Vec<Fixture> {
    let f = |name, packet, dst, vrid, priority, interval_cs, addrs| Fixture {
        name,
        packet,
        dst,
        vrid,
        priority,
        interval_cs,
        addrs,
    };
    vec![
        f(
            "multicast_1vip",
            include_bytes!("fixtures/multicast_1vip.bin").as_slice(),
            GROUP,
            51,
            150,
            100,
            &[VIP0][..],
        ),
        f(
            "multicast_3vip",
            include_bytes!("fixtures/multicast_3vip.bin"),
            GROUP,
            52,
            200,
            100,
            &VIPS3,
        ),
        f(
            "multicast_10cs",
            include_bytes!("fixtures/multicast_10cs.bin"),
            GROUP,
            53,
            254,
            10,
            &[VIP3],
        ),
        f(
            "unicast",
            include_bytes!("fixtures/unicast.bin"),
            PEER,
            54,
            120,
            200,
            &[VIP4],
        ),
        f(
            "stop_multicast_1vip",
            include_bytes!("fixtures/stop_multicast_1vip.bin"),
            GROUP,
            51,
            0,
            100,
            &[VIP0],
        ),
        f(
            "stop_multicast_3vip",
            include_bytes!("fixtures/stop_multicast_3vip.bin"),
            GROUP,
            52,
            0,
            100,
            &VIPS3,
        ),
        f(
            "stop_multicast_10cs",
            include_bytes!("fixtures/stop_multicast_10cs.bin"),
            GROUP,
            53,
            0,
            10,
            &[VIP3],
        ),
        f(
            "stop_unicast",
            include_bytes!("fixtures/stop_unicast.bin"),
            PEER,
            54,
            0,
            200,
            &[VIP4],
        ),
    ]
}

/// A whole IPv4 packet around `vrrp`, as the kernel would build it (no options).
fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, vrrp: &[u8]) -> Vec<u8> {
    with_options(src, dst, ttl, &[], vrrp)
}

fn with_options(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, options: &[u8], vrrp: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let ihl = 20 + options.len();
    let mut p = vec![0u8; ihl];
    p[0] = 0x40 | (ihl / 4) as u8;
    p[1] = 0xc0;
    p[2..4].copy_from_slice(&((ihl + vrrp.len()) as u16).to_be_bytes());
    p[8] = ttl;
    p[9] = PROTOCOL;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    p[20..].copy_from_slice(options);
    let sum = crate::packet::csum::ipv4_header_checksum(&p);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(vrrp);
    p
}

fn advert() -> Advert {
    Advert {
        vrid: 7,
        priority: 200,
        interval_cs: 100,
        addrs: vec![VIP0, VIP3],
    }
}

/// Recomputes the VRRP checksum of `vrrp` after a test edited it.
fn fix_checksum(src: Ipv4Addr, dst: Ipv4Addr, vrrp: &mut [u8]) {
    if vrrp.len() < HEADER_LEN {
        return;
    }
    let sum = l4_checksum(src.octets(), dst.octets(), PROTOCOL, vrrp, CHECKSUM_AT);
    vrrp[CHECKSUM_AT..CHECKSUM_AT + 2].copy_from_slice(&sum.to_be_bytes());
}

#[test]
fn keepalived_adverts_decode_exactly() {
    for f in fixtures() {
        let r = decode(f.packet).unwrap_or_else(|e| panic!("{}: {e}", f.name));
        assert_eq!(r.src, SRC, "{}", f.name);
        assert_eq!(r.dst, f.dst, "{}", f.name);
        assert_eq!(r.ttl, 255, "{}", f.name);
        let want = Advert {
            vrid: f.vrid,
            priority: f.priority,
            interval_cs: f.interval_cs,
            addrs: f.addrs.to_vec(),
        };
        assert_eq!(r.advert, want, "{}", f.name);
    }
}

#[test]
fn encode_reproduces_keepalived_byte_for_byte() {
    for f in fixtures() {
        let r = decode(f.packet).unwrap();
        let header_len = usize::from(f.packet[0] & 0x0f) * 4;
        let ours = r.advert.encode(r.src, r.dst);
        assert_eq!(ours, &f.packet[header_len..], "{}", f.name);
    }
}

#[test]
fn encode_follows_the_rfc_layout() {
    // RFC 5798 §5.1: version 3 and type 1 in the first byte, VRID, priority, count, 4 zero
    // bits and the 12-bit interval, the checksum, then the addresses.
    let bytes = advert().encode(SRC, GROUP);
    assert_eq!(bytes.len(), 8 + 2 * 4);
    assert_eq!(&bytes[..6], &[0x31, 7, 200, 2, 0x00, 100]);
    assert_eq!(&bytes[8..12], &VIP0.octets());
    assert_eq!(&bytes[12..], &VIP3.octets());
    // The largest interval, 40.95 s, fills the 12 bits and leaves the reserved ones zero.
    let slow = Advert {
        interval_cs: 4095,
        ..advert()
    };
    assert_eq!(&slow.encode(SRC, GROUP)[4..6], &[0x0f, 0xff]);
    // The checksum covers the IPv4 pseudo-header: another destination, another checksum.
    assert_ne!(
        advert().encode(SRC, GROUP)[6..8],
        advert().encode(SRC, PEER)[6..8]
    );
    let r = decode(&ipv4(SRC, PEER, 255, &advert().encode(SRC, PEER))).unwrap();
    assert_eq!(r.advert, advert());
}

#[test]
fn encode_clamps_fields_it_cannot_carry() {
    let big = Advert {
        interval_cs: 5000,
        addrs: (0..300u32).map(Ipv4Addr::from).collect(),
        ..advert()
    };
    let bytes = big.encode(SRC, GROUP);
    assert_eq!(bytes.len(), 8 + 4 * 255);
    let r = decode(&ipv4(SRC, GROUP, 255, &bytes)).unwrap();
    assert_eq!(r.advert.interval_cs, 4095);
    assert_eq!(r.advert.addrs, big.addrs[..255]);
}

#[test]
fn reserved_bits_are_ignored_on_receipt() {
    // RFC 5798 §5.2.6: "MUST be set to zero on transmission and ignored on reception".
    let mut vrrp = advert().encode(SRC, GROUP);
    vrrp[4] |= 0xf0;
    fix_checksum(SRC, GROUP, &mut vrrp);
    assert_eq!(
        decode(&ipv4(SRC, GROUP, 255, &vrrp)).unwrap().advert,
        advert()
    );
}

#[test]
fn ipv4_options_and_trailing_bytes_are_handled() {
    let vrrp = advert().encode(SRC, GROUP);
    // Router Alert (RFC 2113), 4 bytes: IHL 6.
    let p = with_options(SRC, GROUP, 255, &[0x94, 0x04, 0, 0], &vrrp);
    assert_eq!(p[0], 0x46);
    assert_eq!(decode(&p).unwrap().advert, advert());
    // Bytes after Total Length (link padding) are not part of the packet.
    let mut padded = ipv4(SRC, GROUP, 255, &vrrp);
    padded.extend_from_slice(&[0xaa; 10]);
    assert_eq!(decode(&padded).unwrap().advert, advert());
    // A Total Length beyond the buffer is a truncated packet.
    let whole = ipv4(SRC, GROUP, 255, &vrrp);
    assert_eq!(decode(&whole[..whole.len() - 1]), Err(Reject::Truncated));
}

#[test]
fn each_reason_is_reported() {
    let good = advert().encode(SRC, GROUP);
    let packet = ipv4(SRC, GROUP, 255, &good);
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut p = packet.clone();
        f(&mut p);
        decode(&p)
    };
    let edit_vrrp = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = good.clone();
        f(&mut v);
        fix_checksum(SRC, GROUP, &mut v);
        decode(&ipv4(SRC, GROUP, 255, &v))
    };
    assert_eq!(decode(&[]), Err(Reject::Truncated));
    assert_eq!(decode(&packet[..19]), Err(Reject::Truncated));
    assert_eq!(edit(&|p| p[0] = 0x65), Err(Reject::NotIpv4(6)));
    assert_eq!(edit(&|p| p[0] = 0x44), Err(Reject::IpHeader));
    assert_eq!(
        edit(&|p| p[2..4].copy_from_slice(&[0, 19])),
        Err(Reject::IpHeader)
    );
    assert_eq!(edit(&|p| p[0] = 0x4f), Err(Reject::IpHeader)); // 60 > Total Length 36
    assert_eq!(edit(&|p| p[9] = 17), Err(Reject::Protocol(17)));
    assert_eq!(edit(&|p| p[8] = 254), Err(Reject::Ttl(254)));
    assert_eq!(
        edit(&|p| p[2..4].copy_from_slice(&[0, 20])),
        Err(Reject::Truncated)
    );
    assert_eq!(edit_vrrp(&|v| v[0] = 0x21), Err(Reject::Version(2)));
    assert_eq!(edit_vrrp(&|v| v[0] = 0x32), Err(Reject::Type(2)));
    assert_eq!(edit_vrrp(&|v| v.truncate(7)), Err(Reject::Truncated));
    assert_eq!(edit_vrrp(&|v| v[3] = 3), Err(Reject::Count(3)));
    assert_eq!(edit_vrrp(&|v| v[3] = 1), Err(Reject::Count(1)));
    assert_eq!(edit_vrrp(&|v| v.truncate(12)), Err(Reject::Count(2)));
    assert_eq!(edit(&|p| p[27] ^= 1), Err(Reject::Checksum));
    assert_eq!(
        edit_vrrp(&|v| v[4..6].copy_from_slice(&[0xf0, 0])),
        Err(Reject::Interval)
    );
    // A count of 0 is well formed here: the caller compares address lists.
    let none = Advert {
        addrs: vec![],
        ..advert()
    };
    let r = decode(&ipv4(SRC, GROUP, 255, &none.encode(SRC, GROUP))).unwrap();
    assert_eq!(r.advert, none);
}

#[test]
fn checks_run_in_the_rfc_order() {
    // RFC 5798 §7.1: TTL, then version, then the complete packet, then the checksum.
    let mut vrrp = advert().encode(SRC, GROUP);
    vrrp[0] = 0x21; // version 2
    vrrp[3] = 9; // count disagrees
    vrrp[6] ^= 0xff; // checksum broken
    assert_eq!(decode(&ipv4(SRC, GROUP, 64, &vrrp)), Err(Reject::Ttl(64)));
    assert_eq!(
        decode(&ipv4(SRC, GROUP, 255, &vrrp)),
        Err(Reject::Version(2))
    );
    vrrp[0] = 0x31;
    assert_eq!(decode(&ipv4(SRC, GROUP, 255, &vrrp)), Err(Reject::Count(9)));
    vrrp[3] = 2;
    assert_eq!(decode(&ipv4(SRC, GROUP, 255, &vrrp)), Err(Reject::Checksum));
    // A checksum computed without the pseudo-header (VRRPv2 style) is refused.
    let mut v2_style = advert().encode(SRC, GROUP);
    v2_style[6..8].copy_from_slice(&[0, 0]);
    let sum = !ones_sum(0, &v2_style);
    v2_style[6..8].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(
        decode(&ipv4(SRC, GROUP, 255, &v2_style)),
        Err(Reject::Checksum)
    );
    // A broken checksum is reported before an interval of 0.
    let mut zero = advert().encode(SRC, GROUP);
    zero[4..6].copy_from_slice(&[0, 0]);
    assert_eq!(decode(&ipv4(SRC, GROUP, 255, &zero)), Err(Reject::Checksum));
}

#[test]
fn no_input_panics_and_every_bit_flip_that_matters_is_caught() {
    for f in fixtures() {
        for n in 0..f.packet.len() {
            assert!(decode(&f.packet[..n]).is_err(), "{} cut at {n}", f.name);
        }
        let want = decode(f.packet).unwrap();
        for byte in 0..f.packet.len() {
            for bit in 0..8 {
                let mut p = f.packet.to_vec();
                p[byte] ^= 1 << bit;
                let got = decode(&p);
                // TOS, Total Length's effect aside, ID, flags and fragment offset, and the
                // header checksum (the kernel checked it) do not change what is read.
                match byte {
                    1 | 4..=7 | 10 | 11 => assert_eq!(got, Ok(want.clone()), "{}", f.name),
                    _ => assert!(got.is_err(), "{} byte {byte} bit {bit}: {got:?}", f.name),
                }
            }
        }
    }
    // Noise of every length up to a bit past the largest packet.
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    for round in 0..20_000usize {
        let len = round % (MAX_PACKET + 16);
        let noise: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let _ = decode(&noise);
        // The same noise behind a valid IPv4/VRRP prefix reaches the deeper checks.
        let mut p = ipv4(SRC, GROUP, 255, &advert().encode(SRC, GROUP));
        p.truncate(28);
        p.extend_from_slice(&noise);
        let _ = decode(&p);
    }
}

#[test]
fn every_reason_has_one_stable_counter_name() {
    let all = [
        Reject::Truncated,
        Reject::NotIpv4(6),
        Reject::IpHeader,
        Reject::Protocol(6),
        Reject::Ttl(1),
        Reject::Version(2),
        Reject::Type(2),
        Reject::Count(0),
        Reject::Checksum,
        Reject::Interval,
    ];
    let reasons: Vec<_> = all.iter().map(|r| (r.index(), r.as_str())).collect();
    crate::admin::metrics::assert_counter_names(Reject::NAMES, &reasons);
    assert_eq!(Reject::Ttl(64).to_string(), "TTL 64, not 255");
}
