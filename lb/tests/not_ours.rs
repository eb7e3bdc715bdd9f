//! Namespace tests of frames addressed to another host (`packet::ingress`), for the XDP and
//! the userspace datapath alike: a director forwards only frames whose Ethernet destination is
//! its interface's MAC, as on a switched LAN it also receives other hosts' unicast frames
//! (flooded while the switch does not know their MAC: an aged-out entry, the owner's port
//! down), and a backup director must not forward its master's traffic.
//!
//! Contract checked, per datapath (`*_forwards_only_frames_addressed_to_it`): a DR service
//! whose one backend's MAC is the client's own, so a forwarded segment comes back to the
//! client (destination rewritten to the backend's MAC, source the director's). The client
//! sends, from a packet socket, TCP segments of one flow to the VIP: addressed to the
//! director's MAC, the first comes back rewritten (`tx_new` 1); then addressed to another
//! host's MAC (no host has it: the bridge floods it to the director's port), to a multicast
//! group and to the broadcast address, none comes back, each is counted `pass_not_ours` by
//! the director (waited for: it proves the frame reached it) and nothing else moves; a last
//! one to the director's MAC comes back again (`tx_established` 1).
//!
//! Topology (prefix `st-tus-<tag><pid>-`, removed by a guard; nothing in the root
//! namespace): a namespace holding the bridge, and client and director namespaces with a veth
//! into it. Root only: otherwise prints `SKIP` and passes; with `CI=true` it fails instead.

mod frames;
mod userspace_support;

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use frames::{frame, Shape, ACK};
use strait_lb::datapath::Datapath;
use strait_lb::maglev::DEFAULT_TABLE_SIZE;
use strait_lb::packet::service::{Backend, Mode, Service, ServiceKey};
use userspace_support::{
    client_director_lan, counter, in_netns, may_run, open_on_lan, packet_socket, Kind,
};

/// How long a client waits for a forwarded segment before taking silence for an answer, and
/// for a counter to move.
const WAIT: Duration = Duration::from_millis(500);
/// The IPv4 EtherType.
const ETH_P_IP: u16 = 0x0800;
/// The client's source port (one flow throughout).
const SPORT: u16 = 41000;

fn mac(host: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0x0b, host]
}

/// No host on the LAN has this MAC.
const NOBODY: [u8; 6] = [2, 0, 0, 0, 0x0b, 0x99];
/// The Ethernet group of 224.0.0.1 (flooded by the bridge).
const MULTICAST: [u8; 6] = [0x01, 0, 0x5e, 0, 0, 0x01];
const BROADCAST: [u8; 6] = [0xff; 6];

/// Sends a segment of the flow to the VIP, addressed to `dest`, from the client's `eth0`;
/// returns the director's forward of it if one comes back within [`WAIT`].
fn send(cli: &str, net: u8, dest: [u8; 6]) -> Option<Vec<u8>> {
    in_netns(cli, move || {
        let vip = [10, net, 0, 100];
        let mut f = frame(&Shape::tcp([10, net, 0, 2], vip, SPORT, 80, ACK));
        f[0..6].copy_from_slice(&dest);
        f[6..12].copy_from_slice(&mac(2));
        let socket = packet_socket("eth0", ETH_P_IP);
        // SAFETY: f is valid for reads of its length.
        let sent = unsafe { libc::send(socket.as_raw_fd(), f.as_ptr().cast(), f.len(), 0) };
        assert_eq!(
            sent,
            f.len() as isize,
            "{}",
            std::io::Error::last_os_error()
        );
        let deadline = Instant::now() + WAIT;
        let mut buf = [0u8; 1514];
        while Instant::now() < deadline {
            // SAFETY: buf is valid for writes of its length.
            let n =
                unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            let Ok(n) = usize::try_from(n) else {
                continue; // the receive timeout
            };
            let got = &buf[..n];
            // The director's forward: from its MAC, the same segment to the VIP.
            if n == f.len() && got[6..12] == mac(3) && got[12..] == f[12..] {
                return Some(got.to_vec());
            }
        }
        None
    })
    .join()
    .expect("client thread")
}

/// Waits until the counter `name` exceeds `above`; its value.
fn counted(dp: &dyn Datapath, name: &str, above: u64) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let n = counter(dp, name);
        if n > above || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn forwards_only_frames_addressed_to_it(kind: Kind, tag: &str, net: u8) {
    let (_ns, _br, cli, dir) = client_director_lan(tag, net, (mac(2), mac(3)));
    let mut dp = open_on_lan(kind, &dir, net, mac(3));
    let key = ServiceKey {
        vip: [10, net, 0, 100],
        port: 80,
        proto: 6,
    };
    // The client is the backend's MAC: what the director forwards comes back to it.
    let backend = Backend {
        ip: [10, net, 0, 2],
        mac: mac(2),
        port: 80,
        weight: 100,
        alive: true,
    };
    let service = Service::new(Mode::Dr, vec![backend], DEFAULT_TABLE_SIZE).unwrap();
    dp.apply(&[(key, service)]).unwrap();

    let out = send(&cli, net, mac(3)).expect("a segment to the director's MAC is forwarded");
    assert_eq!(out[0..6], mac(2), "to the backend's MAC");
    assert_eq!(counter(dp.as_ref(), "tx_new"), 1);
    let before = counter(dp.as_ref(), "pass_not_ours");
    for (n, dest) in (1..).zip([NOBODY, MULTICAST, BROADCAST]) {
        assert_eq!(send(&cli, net, dest), None, "to {dest:02x?}: not forwarded");
        let now = counted(dp.as_ref(), "pass_not_ours", before + n - 1);
        assert!(
            now >= before + n,
            "to {dest:02x?}: pass_not_ours {now}, {before} before"
        );
    }
    assert_eq!(counter(dp.as_ref(), "tx_new"), 1);
    assert_eq!(counter(dp.as_ref(), "tx_established"), 0);
    assert!(send(&cli, net, mac(3)).is_some(), "to the director again");
    assert_eq!(counter(dp.as_ref(), "tx_established"), 1);
    dp.shutdown().unwrap();
}

#[test]
fn xdp_forwards_only_frames_addressed_to_it() {
    if may_run(Kind::Xdp, "xdp_forwards_only_frames_addressed_to_it") {
        forwards_only_frames_addressed_to_it(Kind::Xdp, "nx", 86);
    }
}

#[test]
fn userspace_forwards_only_frames_addressed_to_it() {
    if may_run(
        Kind::Userspace,
        "userspace_forwards_only_frames_addressed_to_it",
    ) {
        forwards_only_frames_addressed_to_it(Kind::Userspace, "nu", 87);
    }
}
