//! The kernel's IPv4 neighbour (ARP) table: who has which MAC on which interface.
//!
//! Contract:
//! * [`parse_arp`] reads the text of `/proc/net/arp` (pure): complete entries only (flag
//!   `ATF_COM` 0x2 set, MAC not all zero); malformed lines are skipped.
//! * [`lookup`] reads the current table for one address on one interface.
//! * [`resolve`] returns the MAC at once if known; otherwise it makes the kernel ask (one UDP
//!   datagram to port 9, "discard", sent through the interface) and polls the table every 10 ms
//!   until `timeout`. An address nobody answers for yields `None`, never an error, so callers
//!   treat such a backend as unreachable.
//! * Addresses must be on-link on the interface: the table holds next hops, and a datagram to
//!   an off-link address resolves the gateway instead.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// Flag of a complete entry in `/proc/net/arp`.
const ATF_COM: u32 = 0x2;

/// One complete neighbour entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Neighbour {
    /// Its IPv4 address.
    pub ip: Ipv4Addr,
    /// Its MAC.
    pub mac: [u8; 6],
    /// The interface it was learnt on.
    pub(crate) device: String,
}

/// Complete entries of a `/proc/net/arp` text (see the module doc).
pub(crate) fn parse_arp(text: &str) -> Vec<Neighbour> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 6 {
                return None;
            }
            let ip = f[0].parse().ok()?;
            let flags = u32::from_str_radix(f[2].trim_start_matches("0x"), 16).ok()?;
            let mac = crate::iface::parse_mac(f[3])?;
            (flags & ATF_COM != 0 && mac != [0; 6]).then(|| Neighbour {
                ip,
                mac,
                device: f[5].to_owned(),
            })
        })
        .collect()
}

/// The MAC of `ip` on `device`, if the kernel has a complete entry for it now, in the calling
/// thread's network namespace (`/proc/thread-self/net/arp`; `/proc/net` would follow the
/// process's main thread).
pub(crate) fn lookup(ip: Ipv4Addr, device: &str) -> std::io::Result<Option<[u8; 6]>> {
    let text = std::fs::read_to_string("/proc/thread-self/net/arp")?;
    Ok(parse_arp(&text)
        .into_iter()
        .find(|n| n.ip == ip && n.device == device)
        .map(|n| n.mac))
}

/// The MAC of `ip` on `device`, asking the network if needed (see the module doc).
pub(crate) fn resolve(
    ip: Ipv4Addr,
    device: &str,
    timeout: Duration,
) -> std::io::Result<Option<[u8; 6]>> {
    if let Some(mac) = lookup(ip, device)? {
        return Ok(Some(mac));
    }
    provoke(ip, device)?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(mac) = lookup(ip, device)? {
            return Ok(Some(mac));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends one empty UDP datagram to `ip:9` through `device`, so the kernel resolves `ip`.
fn provoke(ip: Ipv4Addr, device: &str) -> std::io::Result<()> {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    socket.bind_device(Some(device.as_bytes()))?;
    let socket: UdpSocket = socket.into();
    match socket.send_to(&[], SocketAddrV4::new(ip, 9)) {
        // An unreachable or refused send still made the kernel ask (or it knows better).
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(e),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
IP address       HW type     Flags       HW address            Mask     Device
10.0.0.11        0x1         0x2         02:00:0a:00:00:0b     *        eth0
10.0.0.12        0x1         0x0         00:00:00:00:00:00     *        eth0
10.0.1.11        0x1         0x6         02:00:0a:00:01:0b     *        eth1
garbage line
10.0.0.13        0x1         0x2         not-a-mac             *        eth0
";

    #[test]
    fn only_complete_well_formed_entries_are_read() {
        let n = parse_arp(SAMPLE);
        assert_eq!(
            n,
            vec![
                Neighbour {
                    ip: Ipv4Addr::new(10, 0, 0, 11),
                    mac: [2, 0, 10, 0, 0, 11],
                    device: "eth0".into()
                },
                Neighbour {
                    ip: Ipv4Addr::new(10, 0, 1, 11),
                    mac: [2, 0, 10, 0, 1, 11],
                    device: "eth1".into()
                },
            ]
        );
        assert!(parse_arp("").is_empty());
    }

    #[test]
    fn loopback_has_no_neighbours() {
        assert_eq!(lookup(Ipv4Addr::LOCALHOST, "lo").unwrap(), None);
    }
}
