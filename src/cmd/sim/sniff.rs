//! Watching which director forwarded each frame, at a backend: an `AF_PACKET` socket in the
//! backend's namespace records, for every IPv4 TCP frame to the VIP's port addressed to the
//! backend's MAC (`PACKET_HOST`: not a flooded frame for another host), when it arrived and
//! its source MAC (the DR rewrite writes the forwarding director's).
//!
//! Contract: [`start`] spawns the watcher on its own thread (in the namespace) and returns at
//! once; it polls `stop` every [`POLL`] and returns what it saw, at most [`MAX_FRAMES`]
//! frames (later ones are counted but not kept). Times are from the caller's `t0`.

use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use strait_topology::netns;

use super::probe::in_netns;

/// How often the watcher looks at `stop`.
const POLL: Duration = Duration::from_millis(50);
/// Most frames kept per watcher.
pub const MAX_FRAMES: usize = 1_000_000;
const ETH_P_IP: u16 = 0x0800;

/// What one watcher saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// `(time from t0, source MAC)` of each frame kept.
    pub frames: Vec<(Duration, [u8; 6])>,
    /// Frames past [`MAX_FRAMES`].
    pub dropped: u64,
}

/// `Some(source MAC)` if `frame` is IPv4 TCP to `dst` (address and port).
pub fn matches(frame: &[u8], dst: SocketAddrV4) -> Option<[u8; 6]> {
    if frame.len() < 34 || frame[12..14] != ETH_P_IP.to_be_bytes() || frame[14] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let tcp = 14 + ihl;
    if ihl < 20 || frame[23] != 6 || frame[30..34] != dst.ip().octets() {
        return None;
    }
    let port = frame.get(tcp + 2..tcp + 4)?;
    if port != dst.port().to_be_bytes() {
        return None;
    }
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&frame[6..12]);
    Some(mac)
}

/// Starts a watcher on `interface` in namespace `netns` (see the module doc).
pub fn start(
    netns: String,
    interface: String,
    dst: SocketAddrV4,
    t0: Instant,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<anyhow::Result<Seen>> {
    std::thread::spawn(move || {
        in_netns(&netns.clone(), move || async move {
            let fd = open(&interface)?;
            let mut seen = Seen::default();
            let mut buf = vec![0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
                let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                // SAFETY: buf is valid for writes of its length; from and len describe a
                // sockaddr_ll the kernel may fill.
                let n = unsafe {
                    libc::recvfrom(
                        fd.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0,
                        (&mut from as *mut libc::sockaddr_ll).cast(),
                        &mut len,
                    )
                };
                if n < 0 {
                    let e = std::io::Error::last_os_error();
                    match e.kind() {
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => {
                            continue
                        }
                        _ => return Err(e).context("receiving frames"),
                    }
                }
                let at = t0.elapsed();
                // Only frames addressed to this backend: a flooded frame for another host's
                // MAC (the dead master's, while the switch still floods it) is not forwarded.
                if from.sll_pkttype != libc::PACKET_HOST {
                    continue;
                }
                if let Some(mac) = matches(&buf[..n as usize], dst) {
                    if seen.frames.len() < MAX_FRAMES {
                        seen.frames.push((at, mac));
                    } else {
                        seen.dropped += 1;
                    }
                }
            }
            Ok(seen)
        })
    })
}

/// A packet socket receiving the IPv4 frames of `interface`, with a [`POLL`] timeout (the
/// backend's own frames do not match: their destination is the client, not the VIP).
fn open(interface: &str) -> anyhow::Result<OwnedFd> {
    let name = std::ffi::CString::new(interface).context("interface name")?;
    // SAFETY: name is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        bail!("no interface {interface}");
    }
    let fd = strait_lb::iface::packet_socket(index, ETH_P_IP.to_be())
        .with_context(|| format!("packet socket on {interface}"))?;
    strait_lb::iface::set_recv_timeout(&fd, POLL).context("SO_RCVTIMEO")?;
    Ok(fd)
}

/// The MAC of `interface` in namespace `netns`.
pub fn mac(netns: &str, interface: &str) -> anyhow::Result<[u8; 6]> {
    let out = netns::exec(netns, "cat")
        .arg(format!("/sys/class/net/{interface}/address"))
        .output()
        .context("reading a MAC")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut mac = [0u8; 6];
    let parts: Vec<&str> = text.trim().split(':').collect();
    if parts.len() != 6 {
        bail!("no MAC for {interface} in {netns}: {text:?}");
    }
    for (byte, part) in mac.iter_mut().zip(parts) {
        *byte = u8::from_str_radix(part, 16).with_context(|| format!("MAC {text:?}"))?;
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tcp_to_the_vip_port_matches() {
        let dst: SocketAddrV4 = "10.80.0.100:80".parse().unwrap();
        let mut f = vec![0u8; 54];
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 3]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[23] = 6;
        f[30..34].copy_from_slice(&[10, 80, 0, 100]);
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        assert_eq!(matches(&f, dst), Some([2, 0, 0, 0, 0, 3]));
        let mut udp = f.clone();
        udp[23] = 17;
        assert_eq!(matches(&udp, dst), None);
        let mut other_port = f.clone();
        other_port[37] = 81;
        assert_eq!(matches(&other_port, dst), None);
        let mut other_ip = f.clone();
        other_ip[33] = 101;
        assert_eq!(matches(&other_ip, dst), None);
        assert_eq!(matches(&f[..35], dst), None);
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(matches(&arp, dst), None);
    }
}
