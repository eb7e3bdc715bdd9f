//! Differential test: the decapsulation program (`ebpf/decap.bpf.c`, run with
//! `BPF_PROG_TEST_RUN`) against its model `strait_lb::decap::decapsulate`, frame by frame.
//!
//! Contract checked: for 2000 generated frames (IP-in-IP to a VIP and to other addresses,
//! with and without a VLAN tag, IP options in the outer header, trailing padding, fragments,
//! other protocols, non-IP, truncated frames and single corrupted bytes), the program always
//! returns XDP_PASS, its output equals the model's output when the model decapsulates and the
//! input otherwise, and its counters add up to the model's decisions. Needs root (BPF):
//! otherwise prints `SKIP`, and with `CI=true` fails instead.

/// Whether a skip must fail the test (CI).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn skip(test: &str, reason: &str) {
    assert!(!in_ci(), "{test} cannot run in CI: {reason}");
    println!("SKIP {test}: {reason}");
}

#[cfg(strait_no_bpf)]
#[test]
fn decap_program_matches_the_model() {
    skip("decap_program_matches_the_model", "clang not found");
}

#[cfg(not(strait_no_bpf))]
mod diff {
    use super::skip;
    use std::net::Ipv4Addr;
    use strait_lb::decap::{decapsulate, Decap, DecapCounters, PROTO_IPIP};
    use strait_lb::packet::csum::ipv4_header_checksum;

    const XDP_PASS: u32 = 2;
    const VIPS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 101)];
    const OTHER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
    const FRAMES: usize = 2000;

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    /// Xorshift64, deterministic per seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn byte(&mut self) -> u8 {
            self.next().to_le_bytes()[0]
        }
    }

    /// An IPv4 header (IHL `ihl`) for `payload` bytes, with a valid checksum.
    fn ipv4(rng: &mut Rng, ihl: u8, proto: u8, dst: Ipv4Addr, payload: usize) -> Vec<u8> {
        let hlen = usize::from(ihl) * 4;
        let total = u16::try_from(hlen + payload).expect("fits");
        let mut h = vec![0u8; hlen];
        h[0] = 0x40 | ihl;
        h[1] = rng.byte();
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[4] = rng.byte();
        h[5] = rng.byte();
        h[6] = if rng.below(2) == 0 { 0x40 } else { 0 };
        h[8] = 64;
        h[9] = proto;
        h[12..16].copy_from_slice(&[192, 168, rng.byte(), rng.byte()]);
        h[16..20].copy_from_slice(&dst.octets());
        for b in &mut h[20..] {
            *b = 1; // NOP options
        }
        let c = ipv4_header_checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h
    }

    /// One generated frame (the kinds are listed in the module doc).
    fn frame(rng: &mut Rng) -> Vec<u8> {
        let vlan = rng.below(4) == 0;
        let mut f: Vec<u8> = (0..12).map(|_| rng.byte()).collect();
        if vlan {
            f.extend_from_slice(&[0x81, 0x00, 0, rng.byte()]);
        }
        let ethertype: [u8; 2] = if rng.below(20) == 0 {
            [0x08, 0x06]
        } else {
            [0x08, 0x00]
        };
        f.extend_from_slice(&ethertype);
        let inner_dst = match rng.below(4) {
            0 => OTHER,
            1 => VIPS[1],
            _ => VIPS[0],
        };
        let inner_proto = if rng.below(2) == 0 { 6 } else { 17 };
        let payload = rng.below(64) as usize;
        let mut inner = ipv4(rng, 5, inner_proto, inner_dst, payload);
        inner.extend((0..payload).map(|_| rng.byte()));
        let outer_ihl = if rng.below(3) == 0 {
            5 + rng.below(11) as u8
        } else {
            5
        };
        let outer_proto = if rng.below(8) == 0 { 17 } else { PROTO_IPIP };
        let outer_dst = Ipv4Addr::new(10, 0, 0, 11);
        let mut outer = ipv4(rng, outer_ihl, outer_proto, outer_dst, inner.len());
        if rng.below(10) == 0 {
            // A fragment: MF or an offset, checksum kept valid.
            outer[6] = if rng.below(2) == 0 { 0x20 } else { 0x00 };
            outer[7] = if outer[6] == 0 { 1 + rng.byte() / 2 } else { 0 };
            outer[10..12].fill(0);
            let c = ipv4_header_checksum(&outer);
            outer[10..12].copy_from_slice(&c.to_be_bytes());
        }
        f.extend_from_slice(&outer);
        f.extend_from_slice(&inner);
        if rng.below(5) == 0 {
            f.extend((0..rng.below(12)).map(|_| 0u8)); // Ethernet padding
        }
        match rng.below(10) {
            0 => {
                let keep = 14 + rng.below((f.len() - 14) as u64) as usize;
                f.truncate(keep);
            }
            1 => {
                let at = rng.below(f.len() as u64) as usize;
                f[at] ^= 1 << rng.below(8);
            }
            _ => {}
        }
        f
    }

    #[test]
    fn decap_program_matches_the_model() {
        let test = "decap_program_matches_the_model";
        if !is_root() {
            skip(test, "needs root (BPF)");
            return;
        }
        let mut decap = Decap::load(&VIPS).expect("load the decapsulation program");
        let mut rng = Rng(0x5eed_decab);
        let mut expected = DecapCounters::default();
        for i in 0..FRAMES {
            let input = frame(&mut rng);
            let out = decap.test_run(&input).expect("test run");
            assert_eq!(out.action, XDP_PASS, "frame {i}: {input:02x?}");
            match decapsulate(&input, &VIPS) {
                Some(model) => {
                    expected.decapsulated += 1;
                    assert_eq!(out.frame, model, "frame {i} decapsulated: {input:02x?}");
                }
                None => {
                    expected.passed += 1;
                    assert_eq!(out.frame, input, "frame {i} passed: {input:02x?}");
                }
            }
        }
        assert_eq!(decap.counters().expect("counters"), expected);
        // Both kinds occur often enough to mean something.
        assert!(expected.decapsulated > FRAMES as u64 / 4, "{expected:?}");
        assert!(expected.passed > FRAMES as u64 / 4, "{expected:?}");
    }

    #[test]
    fn vip_lists_outside_1_to_64_are_refused() {
        let e = Decap::load(&[]).expect_err("no VIPs");
        assert!(e.to_string().contains("0 VIPs given"), "{e}");
        let many: Vec<Ipv4Addr> = (0..65u8).map(|i| Ipv4Addr::new(10, 9, 0, i)).collect();
        let e = Decap::load(&many).expect_err("65 VIPs");
        assert!(e.to_string().contains("65 VIPs given"), "{e}");
    }

    #[test]
    fn attaching_to_a_missing_interface_fails_clearly() {
        if !is_root() {
            skip(
                "attaching_to_a_missing_interface_fails_clearly",
                "needs root (BPF)",
            );
            return;
        }
        let mode = strait_lb::datapath::XdpMode::Auto;
        let e = Decap::attach("strait-nope0", &VIPS, mode).expect_err("no such interface");
        assert!(
            e.to_string()
                .starts_with("attach the decapsulation program to strait-nope0"),
            "{e}"
        );
    }
}
