//! Helpers of the datapaths' namespace tests: root check, commands, namespaces (deleted by a
//! guard), threads inside a namespace, name-answering TCP servers and clients; for tests that
//! drive either datapath, [`Kind`], [`may_run`], [`open_datapath`], [`counter`], and
//! [`packet_socket`] for the raw frames a client sends and receives.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use strait_lb::datapath::{Datapath, DatapathOptions};
use strait_lb::iface::Interface;
use strait_lb::userspace::UserspaceDatapath;

/// Connect and read timeout of the test clients.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Commands the tests run.
const TOOLS: [&str; 4] = ["ip", "nft", "ethtool", "sysctl"];

/// Whether the test may run (root, and every tool of [`TOOLS`] present); prints
/// `SKIP <test>: <reason>` when it may not, or fails instead with `CI=true`.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let missing: Vec<&str> = TOOLS
        .into_iter()
        .filter(|t| Command::new(t).arg("-V").output().is_err())
        .collect();
    let why = match (root, missing.is_empty()) {
        (true, true) => return true,
        (false, _) => "needs root".to_string(),
        (true, false) => format!("missing {}", missing.join(", ")),
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {why} (CI=true: namespace tests must run)");
    }
    eprintln!("SKIP {test}: {why}");
    false
}

/// Runs a command, panicking with its output if it fails; returns stdout.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The namespaces of one test, deleted on drop (also when the test fails).
pub struct Namespaces {
    prefix: String,
    created: Vec<String>,
}

impl Namespaces {
    pub fn new(tag: &str) -> Namespaces {
        Namespaces {
            prefix: format!("st-tus-{tag}{}-", std::process::id()),
            created: Vec::new(),
        }
    }

    pub fn name(&self, short: &str) -> String {
        format!("{}{short}", self.prefix)
    }

    pub fn add(&mut self, short: &str) -> String {
        let ns = self.name(short);
        run(&["ip", "netns", "add", &ns]);
        self.created.push(ns.clone());
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        ns
    }

    /// A host namespace with a veth `dev` into `bridge` (in namespace `br`), given MAC and
    /// address, checksum offload off.
    pub fn host(
        &mut self,
        br: &str,
        bridge: &str,
        short: &str,
        dev: &str,
        mac: [u8; 6],
        cidr: &str,
    ) -> String {
        let ns = if self.created.contains(&self.name(short)) {
            self.name(short)
        } else {
            self.add(short)
        };
        let port = format!("{short}-{dev}");
        run(&[
            "ip", "-n", br, "link", "add", &port, "type", "veth", "peer", "name", dev, "netns", &ns,
        ]);
        run(&["ip", "-n", br, "link", "set", &port, "master", bridge, "up"]);
        let mac = strait_lb::iface::format_mac(mac);
        run(&["ip", "-n", &ns, "link", "set", dev, "address", &mac]);
        run(&["ip", "-n", &ns, "addr", "add", cidr, "dev", dev]);
        run(&["ip", "-n", &ns, "link", "set", dev, "up"]);
        run(&[
            "ip", "netns", "exec", &ns, "ethtool", "-K", dev, "tx", "off",
        ]);
        ns
    }

    pub fn bridge(&self, br: &str, bridge: &str) {
        run(&["ip", "-n", br, "link", "add", bridge, "type", "bridge"]);
        run(&["ip", "-n", br, "link", "set", bridge, "up"]);
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Runs `f` on a new thread inside namespace `ns` (a thread's namespace is its own).
pub fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a namespace file we hold open; affects this thread only.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

/// TCP servers answering each connection with their name; stopped on drop.
#[derive(Default)]
pub struct Servers {
    running: Vec<(i32, std::thread::JoinHandle<()>)>,
}

impl Servers {
    pub fn start(&mut self, ns: &str, addr: SocketAddr, name: &'static str) {
        let (tx, rx) = std::sync::mpsc::channel();
        let t = in_netns(ns, move || {
            let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
            tx.send(listener.as_raw_fd()).unwrap();
            // Ends when the listener is shut down (accept then fails).
            while let Ok((mut s, _)) = listener.accept() {
                let _ = s.write_all(name.as_bytes());
            }
        });
        let fd = rx.recv().expect("server started");
        self.running.push((fd, t));
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for (fd, t) in self.running.drain(..) {
            // SAFETY: fd is the listener's, alive until its thread ends, which we await.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            let _ = t.join();
        }
    }
}

/// One connection from each client port in `ports`, from namespace `ns` to `to`:
/// (client port, answer) for each; panics on the first failure.
///
/// Fixed client ports make the 5-tuples, hence the balancing, the same on every run: with
/// ports the kernel picks, a small sample strays beyond a tight tolerance now and then.
pub fn connect_many(ns: &str, to: SocketAddr, ports: std::ops::Range<u16>) -> Vec<(u16, String)> {
    in_netns(ns, move || {
        ports
            .map(|port| {
                let answer = connect_from(port, to)
                    .unwrap_or_else(|e| panic!("connection from port {port} to {to}: {e}"));
                (port, answer)
            })
            .collect()
    })
    .join()
    .expect("client thread")
}

/// One connection from client port `port` in namespace `ns` to `to`: the answer or the error.
pub fn connect_once(ns: &str, to: SocketAddr, port: u16) -> std::io::Result<String> {
    in_netns(ns, move || connect_from(port, to))
        .join()
        .expect("client thread")
}

/// Connects from local port `port` to `to` and reads the answer to its end.
fn connect_from(port: u16, to: SocketAddr) -> std::io::Result<String> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
    s.connect_timeout(&to.into(), IO_TIMEOUT)?;
    let mut s = TcpStream::from(s);
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    Ok(answer)
}

/// The interface `name` of the calling thread's namespace, with the MAC and address we gave.
pub fn interface(name: &str, mac: [u8; 6], ip: Ipv4Addr) -> Interface {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: c is a valid NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) };
    assert_ne!(ifindex, 0, "{name}");
    Interface {
        name: name.into(),
        ifindex,
        mac,
        ip,
        mtu: mtu_of(name),
    }
}

/// The MTU of interface `name` in the calling thread's namespace (`SIOCGIFMTU`: `/sys` may
/// show another namespace's interfaces).
fn mtu_of(name: &str) -> u32 {
    // SAFETY: plain socket call; the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: SIOCGIFMTU reads ifr_name and writes ifru_mtu of the ifreq we own.
    let r = unsafe { libc::ioctl(fd, libc::SIOCGIFMTU, &mut req) };
    let e = std::io::Error::last_os_error();
    // SAFETY: fd is ours, closed once.
    unsafe { libc::close(fd) };
    assert_eq!(r, 0, "SIOCGIFMTU {name}: {e}");
    // SAFETY: the ioctl succeeded, so ifru_mtu is the field it wrote.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    u32::try_from(mtu).unwrap()
}

/// Which datapath a test drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Xdp,
    Userspace,
}

/// Whether a test of `kind` may run: [`require_root`], and for XDP a build that found clang
/// (otherwise `SKIP`, or a failure with `CI=true`).
pub fn may_run(kind: Kind, test: &str) -> bool {
    if kind == Kind::Xdp && cfg!(strait_no_bpf) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "built without clang in CI"
        );
        eprintln!("SKIP {test}: built without clang");
        return false;
    }
    require_root(test)
}

/// The LAN `10.<net>.0.0/24` in namespaces tagged `tag`: the bridge, a client (.2, MAC
/// `macs.0`) and a director (.3, `macs.1`), neither holding any VIP. Returns the namespaces
/// and the names of the bridge, client and director namespaces.
pub fn client_director_lan(
    tag: &str,
    net: u8,
    macs: ([u8; 6], [u8; 6]),
) -> (Namespaces, String, String, String) {
    let mut ns = Namespaces::new(tag);
    let br = ns.add("br");
    ns.bridge(&br, "br0");
    let cli = ns.host(
        &br,
        "br0",
        "cli",
        "eth0",
        macs.0,
        &format!("10.{net}.0.2/24"),
    );
    let dir = ns.host(
        &br,
        "br0",
        "dir",
        "eth0",
        macs.1,
        &format!("10.{net}.0.3/24"),
    );
    (ns, br, cli, dir)
}

/// Opens `kind` on `eth0` (MAC `mac`, address `10.<net>.0.3`) of the director namespace
/// `dir_ns` built by [`client_director_lan`]: generic XDP, a 1024-entry table, the default
/// ICMP budget and timeouts, no new-flow guard.
pub fn open_on_lan(kind: Kind, dir_ns: &str, net: u8, mac: [u8; 6]) -> Box<dyn Datapath> {
    use strait_lb::datapath::{ConnTimeouts, XdpMode};
    use strait_lb::packet::ratelimit::IcmpLimit;
    let opts = in_netns(dir_ns, move || DatapathOptions {
        interface: interface("eth0", mac, Ipv4Addr::new(10, net, 0, 3)),
        inner_interface: None,
        xdp_mode: XdpMode::Generic,
        max_conns: 1024,
        icmp: IcmpLimit::new(1000, 50),
        conn_timeouts: ConnTimeouts::default(),
        new_flow: IcmpLimit::NONE,
    })
    .join()
    .expect("director thread");
    open_datapath(kind, dir_ns, opts)
}

/// Opens `kind` with `opts` from a thread inside namespace `ns`.
pub fn open_datapath(kind: Kind, ns: &str, opts: DatapathOptions) -> Box<dyn Datapath> {
    in_netns(ns, move || match kind {
        Kind::Xdp => open_xdp(&opts),
        Kind::Userspace => {
            Box::new(UserspaceDatapath::open(&opts).expect("open userspace")) as Box<dyn Datapath>
        }
    })
    .join()
    .expect("director thread")
}

#[cfg(not(strait_no_bpf))]
fn open_xdp(opts: &DatapathOptions) -> Box<dyn Datapath> {
    Box::new(strait_lb::xdp::XdpDatapath::open(opts).expect("open xdp"))
}

#[cfg(strait_no_bpf)]
fn open_xdp(_: &DatapathOptions) -> Box<dyn Datapath> {
    unreachable!("skipped before: built without clang")
}

/// The datapath counter `name`.
pub fn counter(dp: &dyn Datapath, name: &str) -> u64 {
    let all: HashMap<&str, u64> = dp.counters().unwrap().into_iter().collect();
    all[name]
}

/// A packet socket for frames of EtherType `proto` on `dev` of the calling thread's namespace,
/// with a 50 ms receive timeout.
pub fn packet_socket(dev: &str, proto: u16) -> OwnedFd {
    let name = std::ffi::CString::new(dev).unwrap();
    // SAFETY: name is NUL-terminated.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    assert_ne!(index, 0, "{dev}");
    let fd = strait_lb::iface::packet_socket(index, proto.to_be())
        .unwrap_or_else(|e| panic!("packet socket on {dev}: {e}"));
    strait_lb::iface::set_recv_timeout(&fd, Duration::from_millis(50))
        .unwrap_or_else(|e| panic!("SO_RCVTIMEO: {e}"));
    fd
}
