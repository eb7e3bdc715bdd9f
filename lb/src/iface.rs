//! Network interfaces of the current network namespace: index, MAC, IPv4 address and MTU.
//!
//! Contract: [`Interface::by_name`] reads `/sys/class/net/<name>/{ifindex,address,mtu}` and the
//! interface's first IPv4 address (`getifaddrs`), or fails with a message naming the interface
//! and what is missing. `parse_mac` and [`format_mac`] are the text forms used in logs,
//! stats and `/sys`.

use std::ffi::CStr;
use std::net::Ipv4Addr;

/// One interface as the director needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Name, e.g. `eth0`.
    pub name: String,
    /// Kernel interface index.
    pub ifindex: u32,
    /// Hardware address.
    pub mac: [u8; 6],
    /// First IPv4 address.
    pub ip: Ipv4Addr,
    /// MTU (`/sys/class/net/<name>/mtu`).
    pub mtu: u32,
}

/// A failure to describe an interface.
#[derive(Debug, thiserror::Error)]
#[error("interface {name}: {detail}")]
pub struct IfaceError {
    /// The interface asked for.
    pub name: String,
    /// What went wrong.
    pub detail: String,
}

impl Interface {
    /// Describes `name` (see the module doc).
    pub fn by_name(name: &str) -> Result<Interface, IfaceError> {
        let err = |detail: String| IfaceError {
            name: name.to_owned(),
            detail,
        };
        if name.is_empty() || name.contains('/') || name.len() > 15 {
            return Err(err("not a valid interface name".into()));
        }
        let dir = format!("/sys/class/net/{name}");
        if !std::path::Path::new(&dir).exists() {
            return Err(err("no such interface in this network namespace".into()));
        }
        let read = |file: &str| {
            std::fs::read_to_string(format!("{dir}/{file}"))
                .map(|s| s.trim().to_owned())
                .map_err(|e| err(format!("{dir}/{file}: {e}")))
        };
        let ifindex = read("ifindex")?
            .parse::<u32>()
            .map_err(|e| err(format!("ifindex: {e}")))?;
        let mac_text = read("address")?;
        let mac = parse_mac(&mac_text).ok_or_else(|| err(format!("MAC {mac_text:?}")))?;
        let mtu = read("mtu")?
            .parse::<u32>()
            .map_err(|e| err(format!("mtu: {e}")))?;
        let ip = first_ipv4(name)
            .map_err(|e| err(format!("getifaddrs: {e}")))?
            .ok_or_else(|| err("has no IPv4 address".into()))?;
        Ok(Interface {
            name: name.to_owned(),
            ifindex,
            mac,
            ip,
            mtu,
        })
    }
}

/// An `AF_PACKET` raw socket for `protocol` (an `ETH_P_*` in network byte order; 0: no frame
/// is ever queued to it, for a send-only socket), bound to interface `ifindex` (not 0, which
/// would bind to every interface and send on none).
pub fn packet_socket(ifindex: u32, protocol_be: u16) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let index = libc::c_int::try_from(ifindex)
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "interface index"))?;
    // SAFETY: plain socket(2) call; the result is checked before use.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::c_int::from(protocol_be),
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh descriptor we own from here on.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol_be;
    addr.sll_ifindex = index;
    // SAFETY: addr is a valid sockaddr_ll of the length given.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// Makes a blocking receive on `fd` give up after `timeout` (`SO_RCVTIMEO`; `EAGAIN` then).
pub fn set_recv_timeout(
    fd: &std::os::fd::OwnedFd,
    timeout: std::time::Duration,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: tv is a valid timeval of the length given.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `aa:bb:cc:dd:ee:ff` → bytes.
pub(crate) fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Bytes → `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// The first IPv4 address of interface `name`, from `getifaddrs`.
fn first_ipv4(name: &str) -> std::io::Result<Option<Ipv4Addr>> {
    Ok(ipv4_addresses()?
        .into_iter()
        .find(|(ifname, _)| ifname == name)
        .map(|(_, ip)| ip))
}

/// Every IPv4 address of every interface in this network namespace, as `(interface,
/// address)`, in `getifaddrs` order.
pub fn ipv4_addresses() -> std::io::Result<Vec<(String, Ipv4Addr)>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut found = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list getifaddrs returned, alive until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points at a sockaddr of at least sa_family.
        let family = unsafe { (*ifa.ifa_addr).sa_family };
        if i32::from(family) != libc::AF_INET {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let ifname = unsafe { CStr::from_ptr(ifa.ifa_name) };
        // SAFETY: family AF_INET means the sockaddr is a sockaddr_in.
        let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
        found.push((
            ifname.to_string_lossy().into_owned(),
            Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
        ));
    }
    // SAFETY: head came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_round_trip_and_bad_ones_are_refused() {
        let mac = parse_mac("02:00:0a:ff:00:0B").unwrap();
        assert_eq!(mac, [2, 0, 10, 255, 0, 11]);
        assert_eq!(format_mac(mac), "02:00:0a:ff:00:0b");
        for bad in [
            "",
            "02:00:0a:ff:00",
            "02:00:0a:ff:00:0b:01",
            "2:00:0a:ff:00:0b",
            "zz:00:0a:ff:00:0b",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn loopback_is_described_and_unknown_names_fail_clearly() {
        let lo = Interface::by_name("lo").unwrap();
        assert_eq!(lo.ip, Ipv4Addr::LOCALHOST);
        assert!(lo.ifindex >= 1);
        assert_eq!(lo.mac, [0; 6]);
        let mtu = std::fs::read_to_string("/sys/class/net/lo/mtu").unwrap();
        assert_eq!(lo.mtu.to_string(), mtu.trim());
        assert!(lo.mtu >= 68, "{}", lo.mtu);
        let e = Interface::by_name("nonexistent0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "interface nonexistent0: no such interface in this network namespace"
        );
        assert!(Interface::by_name("a/b").is_err());
    }
}
