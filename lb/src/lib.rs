//! strait-lb: load balancing, in the sense of pingora's load-balancing crate, plus the L4
//! director. The cache node (`strait-cache`) uses it; it never uses the cache.
//!
//! Shared with the cache node:
//! * [`health`]: backend health (rise/fall, passive ejection) and the TCP/HTTP probes.
//! * [`membership`]: the cluster's SWIM gossip, its member list and sealed datagrams.
//! * [`admin`]: the loopback-only admin listener and its guard (both roles' routes use it).
//! * [`config`]: besides the director config, the `FILE:LINE:COL` diagnostics and positions
//!   every strait config uses.
//! * [`select`]: backend selection: the origin pools' schedulers (roundrobin, leastconn,
//!   source, uri, random2), weighted rendezvous for cache-key ownership, and (re-exported)
//!   the director's Maglev and schedulers.
//!
//! The director:
//! * [`maglev`]: weighted Maglev lookup tables (pure; copied into the BPF map by the director)
//!   and the 5-tuple flow hash shared with the BPF C datapath.
//! * [`packet`]: the reference model of the datapath (parse, decide, rewrite).
//! * [`abi`]: `#[repr(C)]` mirrors of the BPF maps' keys and values (`ebpf/include/strait.h`).
//! * [`decap`]: the nodes' IP-in-IP decapsulation program (TUN mode) and its model.
//! * [`userspace`]: the userspace datapath (AF_PACKET sockets, nftables to keep the kernel
//!   out of balanced traffic).
//! * [`xdp`]: loads the XDP director object, fills its maps, runs it under `BPF_PROG_TEST_RUN`,
//!   and [`xdp::XdpDatapath`], the XDP implementation of [`datapath::Datapath`] (absent when
//!   the build found no clang: `cfg(strait_no_bpf)`).
//! * [`config`]: the director config (`[director]`, `[[service]]`) with `FILE:LINE:COL`
//!   diagnostics.
//! * [`sched`]: schedulers (maglev, wrr, sh) from backends to a service's table.
//! * [`vrrp`]: failover between directors with VRRPv3 (RFC 5798): the advert codec, its
//!   raw socket and gratuitous ARP.
//! * [`control`]: the running director: state with stable backend indices, health checks,
//!   MAC resolution, admin endpoints, reload; programs a [`datapath::Datapath`].

pub mod abi;
pub mod admin;
pub mod config;
pub mod control;
pub mod datapath;
pub mod decap;
pub mod health;
pub mod iface;
pub mod maglev;
pub mod membership;
pub mod napi;
pub mod neigh;
pub mod packet;
pub mod sched;
pub mod select;
pub mod userspace;
pub mod vrrp;
#[cfg(not(strait_no_bpf))]
pub mod xdp;
