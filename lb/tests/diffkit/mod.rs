//! What the differential tests of the XDP director share: the fixture director, loading the
//! program inside the next-hop namespace, installing services in both datapaths, comparing
//! one frame's outputs and the counters a model action moves, the program's forward entries;
//! `perframe`: what one frame moved and where it was redirected; `seed`: the run's seed.
#![allow(dead_code)]

pub mod perframe;
pub mod seed;

use std::collections::{HashMap, HashSet};

use crate::netns::{nexthops, require_root, Netns};
use strait_lb::abi::{self, Counter};
use strait_lb::packet::nexthop::StaticNextHops;
use strait_lb::packet::parse::FiveTuple;
use strait_lb::packet::rewrite::Director;
use strait_lb::packet::service::{Service, ServiceKey, Services};
use strait_lb::packet::Action;
use strait_lb::xdp::{TestRunOutput, XdpDirector};

/// XDP verdicts.
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const XDP_REDIRECT: u32 = 4;
pub const DIRECTOR: Director = Director {
    mac: [0x02, 0, 0, 0, 0, 0xd1],
    ip: [10, 0, 0, 2],
    mtu: MTU,
    nat_mac: nexthops::IN_MAC,
    nat_ip: nexthops::IN_IP,
    nat_mtu: NAT_MTU,
};
/// The director's MTU: small, so that frames around it stay small.
pub const MTU: u32 = 600;
/// The inner interface's MTU (NAT forwards): smaller still, so NAT replies between the two
/// are forwarded and NAT forwards of that size are not.
pub const NAT_MTU: u32 = 560;

/// The program with the fixture director and the namespace's egress interfaces (the
/// test run only returns XDP_REDIRECT, nothing is sent), and the model's next hops.
pub fn load() -> (XdpDirector, StaticNextHops) {
    load_bounded(1 << 16)
}

/// [`load`] with a connection table bounded at `max_conns` entries.
pub fn load_bounded(max_conns: u32) -> (XdpDirector, StaticNextHops) {
    load_with(bpf_director(), max_conns)
}

/// The program's global for [`DIRECTOR`] (no ICMP budget: every error sent, as the model).
pub fn bpf_director() -> abi::Director {
    abi::Director {
        mtu: DIRECTOR.mtu,
        nat_mtu: DIRECTOR.nat_mtu,
        ..nexthops::director(DIRECTOR.mac, DIRECTOR.ip)
    }
}

/// The program with the global `director` and a table of `max_conns` entries, and the
/// model's next hops.
pub fn load_with(director: abi::Director, max_conns: u32) -> (XdpDirector, StaticNextHops) {
    (
        XdpDirector::load(director, max_conns).unwrap(),
        nexthops::table(),
    )
}

/// Installs `list` in both datapaths; service `i` uses Maglev slot `2 i + generation`.
pub fn install(
    xdp: &mut XdpDirector,
    model: &mut Services,
    list: &[(ServiceKey, Service)],
    generation: u32,
) {
    for (i, (key, svc)) in (0u32..).zip(list) {
        xdp.install_service(key, svc, 2 * i + generation, 3 * i)
            .unwrap();
        model.insert(*key, svc.clone());
    }
}

/// Asserts that the program's output for frame `n` is the model's action.
pub fn check(n: usize, input: &[u8], model: &Action, got: &TestRunOutput) {
    match model {
        Action::Pass | Action::NotOurs => {
            assert_eq!(got.action, XDP_PASS, "frame {n}: {input:02x?}");
            assert_eq!(got.frame, input, "frame {n}: passed frames are unmodified");
        }
        Action::Drop(_) => assert_eq!(got.action, XDP_DROP, "frame {n}: {input:02x?}"),
        Action::Tx(want) => {
            assert_eq!(got.action, XDP_TX, "frame {n}: {input:02x?}");
            assert_eq!(&got.frame, want, "frame {n}: {input:02x?}");
        }
        Action::Redirect(want) => {
            assert_eq!(got.action, XDP_REDIRECT, "frame {n}: {input:02x?}");
            assert_eq!(&got.frame, want, "frame {n}: {input:02x?}");
        }
        Action::TooBig(want) | Action::TimeExceeded(want) | Action::ArpReply(want) => {
            assert_eq!(got.action, XDP_TX, "frame {n}: {input:02x?}");
            assert_eq!(&got.frame, want, "frame {n}: {input:02x?}");
        }
    }
}

/// The counters a model action moves (`new`: the action recorded a new flow). A frame passed
/// for its class (`pass_not_ipv4`, …) moves none here: the callers compare those as a sum.
pub fn expect(action: &Action, to_vip: bool, new: bool, counts: &mut HashMap<Counter, u64>) {
    if *action == Action::Pass {
        return;
    }
    let c = perframe::moved_by(action, &[], to_vip, new);
    *counts.entry(c).or_default() += 1;
}

/// The forward entries of the program's table, as the model lists them.
pub fn forward_entries(xdp: &XdpDirector) -> HashSet<(FiveTuple, u32)> {
    let listed = xdp.conns(usize::MAX).unwrap();
    listed
        .iter()
        .map(|(k, c)| {
            let t = FiveTuple {
                src: k.src,
                dst: k.dst,
                sport: u16::from_be_bytes(k.sport),
                dport: u16::from_be_bytes(k.dport),
                proto: k.proto,
            };
            (t, u32::from(c.backend))
        })
        .collect()
}

/// Re-runs `test` inside a namespace with the next-hop fixture.
pub fn in_netns(test: &str) {
    if !require_root(test) {
        return;
    }
    let ns = Netns::new("st-txd-");
    nexthops::setup(&ns);
    ns.run_test(test);
}

/// Pins the calling thread to `cpu` (best effort: the test stays valid unpinned).
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}
