//! One AF_PACKET socket bound to one interface: raw Ethernet frames in and out.
//!
//! Contract:
//! * [`PacketSocket::open`] binds a `SOCK_RAW` packet socket for every protocol (`ETH_P_ALL`)
//!   to one interface index, with `PACKET_IGNORE_OUTGOING` (Linux ≥ 4.20) so that frames this
//!   host transmits, our own forwards included, are never read back and re-forwarded; a
//!   receive timeout of [`RECV_TIMEOUT`] so a reader notices shutdown promptly; and a receive
//!   buffer of [`RCVBUF_BYTES`].
//! * [`PacketSocket::recv`] returns the frame length and its `sll_pkttype` (`PACKET_HOST`,
//!   `PACKET_BROADCAST`, …), `Ok(None)` on timeout; a frame longer than the buffer is
//!   reported with its full length (`MSG_TRUNC`) so the caller can skip it.
//! * [`PacketSocket::send`] transmits one whole frame on the bound interface.
//!
//! Why libc and not pnet's datalink: pnet's Linux channel has no way to set
//! `PACKET_IGNORE_OUTGOING` and its receiver does not report `sll_pkttype`, so it would hand
//! us our own transmitted frames (an endless forwarding loop) with no way to tell them apart.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

/// How long a blocking receive waits before returning `Ok(None)`.
pub(super) const RECV_TIMEOUT: Duration = Duration::from_millis(100);

/// Kernel receive buffer requested per socket (frames queued while a reader is busy).
pub(super) const RCVBUF_BYTES: usize = 4 << 20;

/// `sll_pkttype` of a frame addressed to this host.
pub(super) const PACKET_HOST: u8 = 0;
/// `sll_pkttype` of a frame sent to the link's broadcast address.
pub(super) const PACKET_BROADCAST: u8 = 1;
/// `sll_pkttype` of a frame sent to a multicast group.
pub(super) const PACKET_MULTICAST: u8 = 2;
/// `sll_pkttype` of a frame addressed to another host (seen when a switch floods it to us).
pub(super) const PACKET_OTHERHOST: u8 = 3;

/// Socket option number of `PACKET_IGNORE_OUTGOING` (`linux/if_packet.h`).
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// A packet socket bound to one interface (see the module doc).
#[derive(Debug)]
pub(super) struct PacketSocket {
    fd: OwnedFd,
}

/// `ETH_P_ALL` in network byte order, as `socket(2)` and `sockaddr_ll` want it.
fn eth_p_all_be() -> u16 {
    (libc::ETH_P_ALL as u16).to_be()
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: value points at a live T of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl PacketSocket {
    /// Opens and binds a socket on interface `ifindex` (see the module doc).
    pub(super) fn open(ifindex: u32) -> io::Result<PacketSocket> {
        let fd = crate::iface::packet_socket(ifindex, eth_p_all_be())?;
        let one: libc::c_int = 1;
        setsockopt(&fd, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, &one)?;
        crate::iface::set_recv_timeout(&fd, RECV_TIMEOUT)?;
        let rcvbuf = RCVBUF_BYTES as libc::c_int;
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &rcvbuf)?;
        Ok(PacketSocket { fd })
    }

    /// Receives one frame into `buf`: `(full length, sll_pkttype)`, `None` on timeout.
    pub(super) fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(usize, u8)>> {
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: buf and from are valid for writes of the lengths given.
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        Ok(Some((n as usize, from.sll_pkttype)))
    }

    /// Transmits `frame` on the bound interface.
    pub(super) fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: frame is valid for reads of its length.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_is_in_network_order() {
        assert_eq!(eth_p_all_be().to_ne_bytes(), [0x00, 0x03]);
    }

    /// Runs `f` in a thread inside a fresh, anonymous network namespace with `lo` up; `None`
    /// when this process may not create one (not root).
    fn in_private_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        std::thread::spawn(move || {
            // SAFETY: unshare affects only this thread's network namespace.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return None;
            }
            let up = std::process::Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status()
                .ok()?;
            assert!(up.success());
            Some(f())
        })
        .join()
        .unwrap()
    }

    #[test]
    fn own_transmissions_are_not_read_back() {
        let seen = in_private_netns(|| {
            let tx = PacketSocket::open(1).unwrap();
            let rx = PacketSocket::open(1).unwrap();
            let mut frame = [0u8; 60];
            frame[12..14].copy_from_slice(&[0x88, 0xb5]); // local experimental EtherType
            frame[20] = 0x5a;
            tx.send(&frame).unwrap();
            let mut buf = [0u8; 2048];
            let mut seen = Vec::new();
            while let Some((n, kind)) = rx.recv(&mut buf).unwrap() {
                seen.push((buf[..n].to_vec(), kind));
            }
            seen
        });
        let Some(seen) = seen else {
            eprintln!("SKIP own_transmissions_are_not_read_back: needs root");
            return;
        };
        // lo hands the frame back as received (PACKET_HOST); the outgoing copy that a packet
        // socket would also see without PACKET_IGNORE_OUTGOING must be absent.
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].1, PACKET_HOST);
        assert_eq!(seen[0].0[20], 0x5a);
    }
}
