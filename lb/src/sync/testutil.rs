//! Records and keys the sync tests share.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use super::{FlowState, Key, Record};
use crate::packet::parse::FiveTuple;
use crate::packet::service::{Mode, ServiceKey};

/// The MASTER's and the BACKUP's addresses.
pub(super) const MASTER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub(super) const BACKUP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// A shared secret of the configured minimum length.
pub(super) const SECRET: &[u8] = b"0123456789abcdef";

/// The key of datagrams from `from` to `to` under [`SECRET`].
pub(super) fn key(from: Ipv4Addr, to: Ipv4Addr) -> Key {
    Key::derive(SECRET, from, to).expect("HMAC takes keys of any length")
}

/// Flow `i`: every mode, state and protocol in turn, addresses and ports from `i`.
pub(super) fn record(i: u32) -> Record {
    let [a, b, c, d] = i.to_be_bytes();
    let proto = if i.is_multiple_of(2) { 6 } else { 17 };
    let vip = [192, 0, 2, (i % 7) as u8];
    let port = 80 + (i % 3) as u16;
    Record {
        tuple: FiveTuple {
            src: [a ^ 10, b, c, d],
            dst: vip,
            sport: 1024 + (i % 60_000) as u16,
            dport: port,
            proto,
        },
        service: ServiceKey { vip, port, proto },
        backend: SocketAddrV4::new(Ipv4Addr::new(10, 0, 1, d), 8000 + (i % 5) as u16),
        mode: [Mode::Dr, Mode::Tun, Mode::Nat][(i % 3) as usize],
        state: [FlowState::HalfOpen, FlowState::Open, FlowState::Closing][(i % 4 % 3) as usize],
        age: Duration::from_millis(u64::from(i) * 37),
    }
}

/// Flows `0..n`.
pub(super) fn records(n: u32) -> Vec<Record> {
    (0..n).map(record).collect()
}
