//! Property-style tests of the whole model over generated frames (test-only).
//!
//! Contract checked on ~2000 frames from a xorshift generator (fixed seed, reproducible):
//! no input panics (including random bytes, truncations and bit flips); every forwarded
//! output of a well-formed input has valid checksums; NAT forward then reverse restores the
//! original addresses and ports; replies are rewritten back to the VIP.

#[cfg(test)]
mod tests {
    use crate::packet::csum::{frame_ok, ipv4_header_ok};
    use crate::packet::parse::{parse, Parsed, PROTO_TCP, PROTO_UDP};
    use crate::packet::rewrite::nat_destination;
    use crate::packet::service::MemConnTable;
    use crate::packet::testutil::{hops, services, Rng, Spec, DIRECTOR, VIP};
    use crate::packet::Ingress;
    use crate::packet::{process, Action};

    /// A random well-formed spec: VLAN or not, options, TCP/UDP, one of the service ports or
    /// another, sometimes a first or later fragment.
    fn spec(rng: &mut Rng) -> Spec {
        let sport = 1024 + rng.below(60000) as u16;
        let dport = [80, 81, 82, 443][rng.below(4) as usize];
        let mut s = if rng.below(2) == 0 {
            Spec::tcp(sport, dport)
        } else {
            Spec::udp(sport, dport)
        };
        s.src = [192, 168, rng.below(4) as u8, rng.below(250) as u8 + 1];
        if rng.below(3) == 0 {
            s.vlan = Some(rng.below(4096) as u16);
        }
        s.options = vec![1; 4 * rng.below(11) as usize];
        let n = rng.below(80) as usize;
        s.payload = rng.bytes(n);
        s.frag = match rng.below(10) {
            0 => 0x2000,
            1 => 0x2000 | (1 + rng.below(100) as u16),
            2 => 0,
            _ => 0x4000,
        };
        s.tos = rng.next() as u8;
        s.id = rng.next() as u16;
        s.udp_no_csum = rng.below(8) == 0;
        s.padding = rng.below(3) as usize * 4;
        s.ttl = 2 + rng.below(254) as u8;
        s
    }

    fn check_output(out: &[u8], whole: bool) {
        if whole {
            assert_eq!(frame_ok(out), Ok(()), "output {out:02x?}");
        } else {
            // A first fragment: its L4 checksum covers data not in the frame; check the IPv4
            // header(s) only (outer and inner for IP-in-IP).
            let mut l3 = if out[12..14] == [0x81, 0x00] { 18 } else { 14 };
            loop {
                let hlen = usize::from(out[l3] & 0x0f) * 4;
                assert!(ipv4_header_ok(&out[l3..l3 + hlen]), "output {out:02x?}");
                if out[l3 + 9] != 4 {
                    break;
                }
                l3 += hlen;
            }
        }
    }

    #[test]
    fn generated_packets_keep_checksums_and_nat_round_trips() {
        let s = services();
        let mut conns = MemConnTable::new(4096);
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let hops = hops();
        let (mut forwarded, mut nat_checked, mut mutated) = (0, 0, 0);
        for _ in 0..2000 {
            let sp = spec(&mut rng);
            let mut frame = sp.build();
            let mutation = rng.below(4);
            match mutation {
                0 => {
                    let n = rng.below(frame.len() as u64) as usize;
                    frame.truncate(n);
                }
                1 => {
                    let i = rng.below(frame.len() as u64) as usize;
                    frame[i] ^= 1 << rng.below(8);
                }
                2 => {
                    let n = rng.below(120) as usize;
                    frame = rng.bytes(n);
                    if n > 13 && rng.below(2) == 0 {
                        frame[12..14].copy_from_slice(&[0x08, 0x00]);
                    }
                }
                _ => {}
            }
            let action = process(&frame, Ingress::CLIENT, &s, &mut conns, &DIRECTOR, &hops);
            if mutation != 3 {
                mutated += 1;
                continue;
            }
            let later_fragment = sp.frag & 0x1fff != 0;
            let whole = sp.frag & 0x2000 == 0;
            let out = match (&action, sp.dport, later_fragment) {
                (Action::Pass, _, true) | (Action::Pass, 443, false) => continue,
                (Action::Tx(out), 80 | 81, false) | (Action::Redirect(out), 82, false) => out,
                (a, port, _) => panic!("port {port} frag {:#x}: {a:?}", sp.frag),
            };
            forwarded += 1;
            check_output(out, whole);
            if sp.dport != 82 {
                continue;
            }
            // NAT forward then reverse restores the original frame from L3 on.
            let fwd = match parse(out) {
                Parsed::Flow(f) => f,
                Parsed::Fragment { flow: Some(f), .. } => f,
                other => panic!("{other:?}"),
            };
            assert_eq!(fwd.tuple.src, sp.src);
            assert_eq!(fwd.tuple.sport, sp.sport);
            let mut back = out.clone();
            nat_destination(&mut back, &fwd, VIP, 82);
            // ... but for the TTL, decremented on each pass (header checksum kept right).
            let ttl_at = fwd.l3_offset + 8;
            assert_eq!(out[ttl_at], sp.ttl - 1);
            assert_eq!(back[ttl_at], sp.ttl.wrapping_sub(2));
            check_output(&back, whole);
            let mut want = frame.clone();
            want[ttl_at] = back[ttl_at];
            want[ttl_at + 2..ttl_at + 4].copy_from_slice(&back[ttl_at + 2..ttl_at + 4]);
            assert_eq!(back[12..], want[12..]);
            // The backend's reply is rewritten back to come from the VIP.
            let mut reply = sp.clone();
            reply.src = fwd.tuple.dst;
            reply.dst = sp.src;
            reply.sport = fwd.tuple.dport;
            reply.dport = sp.sport;
            reply.frag = 0x4000;
            reply.ttl = 2 + (sp.ttl % 200);
            let rframe = reply.build();
            let Action::Redirect(rout) =
                process(&rframe, Ingress::CLIENT, &s, &mut conns, &DIRECTOR, &hops)
            else {
                panic!("reply not rewritten");
            };
            assert_eq!(frame_ok(&rout), Ok(()));
            let Parsed::Flow(r) = parse(&rout) else {
                panic!("reply output");
            };
            assert_eq!((r.tuple.src, r.tuple.sport), (VIP, 82));
            assert_eq!((r.tuple.dst, r.tuple.dport), (sp.src, sp.sport));
            assert_eq!(rout[r.l3_offset + 8], reply.ttl - 1);
            assert!(r.tuple.proto == PROTO_TCP || r.tuple.proto == PROTO_UDP);
            nat_checked += 1;
        }
        // The generator exercised every path.
        assert!(forwarded > 300, "forwarded {forwarded}");
        assert!(nat_checked > 80, "nat {nat_checked}");
        assert!(mutated > 1300, "mutated {mutated}");
    }
}
