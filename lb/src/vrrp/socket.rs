//! The VRRP socket: raw IP protocol 112 on one interface, read and written through tokio.
//!
//! Contract:
//! * [`VrrpSocket::open`] opens a raw IPv4 socket of protocol 112 bound to the interface
//!   (`SO_BINDTODEVICE`), nonblocking, registered with the current tokio runtime (outside
//!   one it fails; call it in the interface's network namespace). It sends with TTL 255, unicast and
//!   multicast (RFC 5798 §5.1.1.3), TOS 0xc0 (network control, as keepalived), multicast out
//!   of the interface with loopback off, so our own multicast adverts never come back. With
//!   no `peers` it joins [`GROUP`] on the interface (by index); with peers it joins nothing
//!   and receives what is addressed to this host.
//! * [`VrrpSocket::recv`] returns the length of one whole IPv4 packet (header included) for
//!   [`wire::decode`](super::wire::decode); a buffer of [`MAX_PACKET`] bytes never truncates a
//!   valid advert (a longer packet is cut to the buffer and then fails to decode). Every
//!   protocol-112 packet reaching the interface is delivered: the caller checks VRID, source
//!   ([`VrrpSocket::source`] is ours) and the rest.
//! * [`VrrpSocket::send`] encodes `advert` once per destination (the checksum covers the
//!   destination) with [`VrrpSocket::source`] as the source and sends it to [`GROUP`], or to
//!   each peer in turn; one peer failing does not stop the others, and the first error is
//!   returned after all were tried.
//! * The source is the interface's address, always: the checksum's pseudo-header uses it, so
//!   each datagram carries it in an `IP_PKTINFO` control message (`ipi_spec_dst`) rather than
//!   leaving the kernel to pick one (which a virtual address on the same interface, or a
//!   route's preferred source, could change). The socket is not bound to that address: a
//!   bound raw socket would receive only packets addressed to it, never the group's.

use std::io::{self, IoSlice, Read};
use std::net::{Ipv4Addr, SocketAddrV4};

use socket2::{Domain, MsgHdr, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

pub use super::wire::MAX_PACKET;
use super::wire::{Advert, GROUP, PROTOCOL, TTL};
use crate::iface::Interface;

/// TOS byte of our adverts: DSCP CS6 (network control), as keepalived sends.
pub const TOS: u32 = 0xc0;

/// A control buffer for one `IP_PKTINFO` message, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct Control([u8; 64]);

/// A VRRP socket on one interface (see the module doc).
#[derive(Debug)]
pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    source: Ipv4Addr,
    ifindex: u32,
    /// The destinations of every advert: the group, or the peers.
    destinations: Vec<Ipv4Addr>,
}

impl VrrpSocket {
    /// Opens the socket on `iface`; multicast when `peers` is empty, else unicast to them.
    pub fn open(iface: &Interface, peers: &[Ipv4Addr]) -> io::Result<VrrpSocket> {
        let socket = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(PROTOCOL))),
        )?;
        socket.bind_device(Some(iface.name.as_bytes()))?;
        socket.set_nonblocking(true)?;
        socket.set_ttl(u32::from(TTL))?;
        socket.set_multicast_ttl_v4(u32::from(TTL))?;
        socket.set_multicast_if_v4(&iface.ip)?;
        socket.set_multicast_loop_v4(false)?;
        socket.set_tos(TOS)?;
        if peers.is_empty() {
            socket.join_multicast_v4_n(
                &GROUP,
                &socket2::InterfaceIndexOrAddress::Index(iface.ifindex),
            )?;
        }
        let destinations = if peers.is_empty() {
            vec![GROUP]
        } else {
            peers.to_vec()
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other("VrrpSocket::open needs a tokio runtime"));
        }
        // SAFETY: the Socket owns its descriptor, and nothing closes or replaces it while the
        // AsyncFd owns the Socket.
        let fd = unsafe { AsyncFd::register(socket) }.map_err(io::Error::from)?;
        Ok(VrrpSocket {
            fd,
            source: iface.ip,
            ifindex: iface.ifindex,
            destinations,
        })
    }

    /// Our source address (the interface's): packets from it are our own.
    pub fn source(&self) -> Ipv4Addr {
        self.source
    }

    /// Receives one whole IPv4 packet into `buf`; returns its length (see the module doc).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd
            .async_io(Interest::READABLE, |socket| {
                let mut reader: &Socket = socket;
                reader.read(buf)
            })
            .await
    }

    /// Sends `advert` to the group or to every peer (see the module doc).
    pub async fn send(&self, advert: &Advert) -> io::Result<()> {
        let control = self.pktinfo();
        let mut first_error = None;
        for &dst in &self.destinations {
            let payload = advert.encode(self.source, dst);
            let addr = SockAddr::from(SocketAddrV4::new(dst, 0));
            let sent = self
                .fd
                .async_io(Interest::WRITABLE, |socket| {
                    let bufs = [IoSlice::new(&payload)];
                    let msg = MsgHdr::new()
                        .with_addr(&addr)
                        .with_buffers(&bufs)
                        .with_control(control.as_slice());
                    socket.sendmsg(&msg, 0)
                })
                .await;
            match sent {
                Ok(n) if n == payload.len() => {}
                Ok(_) => {
                    let short = io::Error::new(io::ErrorKind::WriteZero, "short VRRP write");
                    first_error.get_or_insert(short);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The `IP_PKTINFO` control message that pins our source address and interface.
    fn pktinfo(&self) -> PktInfo {
        PktInfo::new(self.source, self.ifindex)
    }
}

/// One encoded `IP_PKTINFO` control message.
struct PktInfo {
    buf: Control,
    len: usize,
}

impl PktInfo {
    fn new(source: Ipv4Addr, ifindex: u32) -> PktInfo {
        let info = libc::in_pktinfo {
            ipi_ifindex: libc::c_int::try_from(ifindex).unwrap_or(0),
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from(source).to_be(),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        let mut buf = Control([0; 64]);
        let data_len = std::mem::size_of::<libc::in_pktinfo>() as libc::c_uint;
        // SAFETY: CMSG_SPACE is arithmetic on its argument.
        let len = unsafe { libc::CMSG_SPACE(data_len) } as usize;
        // SAFETY: msghdr is plain old data; all-zero is a valid value.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_control = buf.0.as_mut_ptr().cast();
        hdr.msg_controllen = len as _;
        // SAFETY: the control buffer is aligned for cmsghdr and `len` (CMSG_SPACE of an
        // in_pktinfo, 32 bytes on 64-bit Linux) fits its 64 bytes, so CMSG_FIRSTHDR is
        // non-null and CMSG_DATA points at room for one in_pktinfo inside it.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&hdr);
            (*cmsg).cmsg_level = libc::IPPROTO_IP;
            (*cmsg).cmsg_type = libc::IP_PKTINFO;
            (*cmsg).cmsg_len = libc::CMSG_LEN(data_len) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in_pktinfo>(), info);
        }
        PktInfo { buf, len }
    }

    fn as_slice(&self) -> &[u8] {
        &self.buf.0[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pktinfo_carries_source_and_interface() {
        let p = PktInfo::new(Ipv4Addr::new(10, 77, 0, 1), 7);
        let bytes = p.as_slice();
        let hdr = std::mem::size_of::<libc::cmsghdr>();
        assert_eq!(bytes.len() % std::mem::align_of::<libc::cmsghdr>(), 0);
        assert!(bytes.len() >= hdr + std::mem::size_of::<libc::in_pktinfo>());
        // cmsg_level and cmsg_type follow cmsg_len (a size_t on Linux).
        let word = std::mem::size_of::<usize>();
        let level = i32::from_ne_bytes(bytes[word..word + 4].try_into().unwrap());
        let kind = i32::from_ne_bytes(bytes[word + 4..word + 8].try_into().unwrap());
        assert_eq!((level, kind), (libc::IPPROTO_IP, libc::IP_PKTINFO));
        // in_pktinfo: ifindex, then ipi_spec_dst, then ipi_addr.
        let data = &bytes[hdr..];
        assert_eq!(i32::from_ne_bytes(data[0..4].try_into().unwrap()), 7);
        assert_eq!(&data[4..8], &[10, 77, 0, 1]);
        assert_eq!(&data[8..12], &[0, 0, 0, 0]);
    }

    fn loopback() -> Interface {
        Interface {
            name: "lo".into(),
            ifindex: 1,
            mac: [0; 6],
            ip: Ipv4Addr::LOCALHOST,
            mtu: 65536,
        }
    }

    #[test]
    fn opening_outside_a_runtime_is_an_error_not_a_panic() {
        assert!(VrrpSocket::open(&loopback(), &[Ipv4Addr::LOCALHOST]).is_err());
    }

    /// As root, on `lo` with 127.0.0.1 as the peer: what we send comes back to us whole, from
    /// our address, with TTL 255. Not root: opening fails with an error, not a panic.
    #[test]
    fn loopback_round_trip_as_root() {
        let lo = loopback();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let opened = VrrpSocket::open(&lo, &[Ipv4Addr::LOCALHOST]);
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } != 0 {
                assert!(opened.is_err());
                return;
            }
            let s = opened.unwrap();
            assert_eq!(s.source(), Ipv4Addr::LOCALHOST);
            // Other tests on this host may use VRRP on `lo` too: look for our own advert.
            let advert = Advert {
                vrid: 250,
                priority: (std::process::id() % 200) as u8 + 1,
                interval_cs: 4001,
                addrs: vec![Ipv4Addr::new(192, 0, 2, 250)],
            };
            s.send(&advert).await.unwrap();
            let mut buf = [0u8; MAX_PACKET];
            let found = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                loop {
                    let n = s.recv(&mut buf).await.unwrap();
                    if let Ok(r) = super::super::wire::decode(&buf[..n]) {
                        if r.advert == advert {
                            return r;
                        }
                    }
                }
            })
            .await
            .expect("our advert back on lo");
            assert_eq!(found.src, Ipv4Addr::LOCALHOST);
            assert_eq!(found.dst, Ipv4Addr::LOCALHOST);
            assert_eq!(found.ttl, 255);
        });
    }
}
