//! strait-lb: load balancing, in the sense of pingora's load-balancing crate, plus the L4
//! director. The cache node (`strait-cache`) uses it; it never uses the cache.
//!
//! What it offers other crates, module by module (a module is public only when another crate,
//! the `strait` binary or a test needs it; inside each, what no other crate uses is private):
//!
//! Shared with the cache node:
//! * [`select`]: backend selection, pure: the origin pools' schedulers (roundrobin,
//!   leastconn, source, uri, random2) and weighted rendezvous for cache-key ownership; it
//!   re-exports [`maglev`] and [`sched`].
//! * [`health`]: backend health: the rise/fall record, passive ejection, the TCP/HTTP probes.
//! * [`membership`]: the cluster's SWIM gossip ([`membership::Membership`]), its member list
//!   ([`membership::members`]) and the `[cluster]` membership keys
//!   ([`membership::section`]).
//! * [`admin`]: the loopback-only admin listener (accept loop, guard, replies) and the
//!   Prometheus [`admin::metrics`] both roles' routes use.
//! * [`accesslog`]: the `[log]` table, the access line formats and the bounded writer both
//!   roles' access logs use.
//! * [`config`]: the `FILE:LINE:COL` diagnostics and positions every strait config uses, and
//!   the director config (`[director]`, `[[service]]`, `[cluster]`, `[ha]`).
//!
//! The director (the binary runs it; the tests and benches drive its parts):
//! * [`control`]: the running director ([`control::run`], [`control::Director`]): state with
//!   stable backend indices, health checks, MAC resolution, admin endpoints, reload.
//! * [`vrrp`]: failover between two directors with VRRPv3 (RFC 5798): the advert codec, the
//!   state machine, the raw socket, gratuitous ARP, and the router that runs them (`[ha]`).
//! * [`sync`]: connection sync between the two directors: the datagram format (flow records,
//!   bulk dumps), its authentication and the replay window (pure; no sockets yet).
//! * [`datapath`]: the seam (one trait, [`datapath::Datapath`]) between the control plane
//!   and a datapath; [`xdp`] and [`userspace`] are its two implementations.
//! * [`xdp`]: loads the XDP director object, fills its maps, runs it under
//!   `BPF_PROG_TEST_RUN` (absent when the build found no clang: `cfg(strait_no_bpf)`).
//! * [`userspace`]: the AF_PACKET datapath (nftables keeps the kernel out of balanced
//!   traffic).
//! * [`packet`]: the pure reference model of both datapaths (parse, decide, rewrite; bytes
//!   in, bytes and a verdict out).
//! * [`maglev`]: weighted Maglev tables and the 5-tuple flow hash shared with the BPF C
//!   program; [`sched`]: maglev, wrr and sh, from backends to a service's table.
//! * [`abi`]: `#[repr(C)]` mirrors of the BPF maps' keys and values
//!   (`ebpf/include/strait.h`).
//! * [`decap`]: the nodes' IP-in-IP decapsulation program (TUN mode) and its model.
//! * [`iface`]: network interfaces (index, MAC, IPv4 address, MTU).
//!
//! Private to the crate: `neigh` (the kernel's ARP table, for MAC resolution) and `napi`
//! (threaded NAPI on the director's interfaces).

#![warn(missing_docs)]

pub mod abi;
pub mod accesslog;
pub mod admin;
pub mod config;
pub mod control;
pub mod datapath;
pub mod decap;
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod iface;
pub mod maglev;
pub mod membership;
mod napi;
mod neigh;
pub mod packet;
pub mod sched;
pub mod select;
pub mod sync;
/// Scratch directories for tests (this crate's and `strait-cache`'s): not part of the API.
#[doc(hidden)]
pub mod test_dir;
pub mod userspace;
pub mod vrrp;
#[cfg(not(strait_no_bpf))]
pub mod xdp;
