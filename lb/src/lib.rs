//! strait-lb: the L4 director.
//!
//! Contents:
//! * [`maglev`]: weighted Maglev lookup tables (pure; copied into the BPF map by the director)
//!   and the 5-tuple flow hash shared with the BPF C datapath.
//! * [`packet`]: the reference model of the datapath (parse, decide, rewrite).
//! * [`abi`]: `#[repr(C)]` mirrors of the BPF maps' keys and values (`ebpf/include/strait.h`).
//! * [`xdp`]: loads the XDP director object, fills its maps, runs it under `BPF_PROG_TEST_RUN`,
//!   and [`xdp::XdpDatapath`], the XDP implementation of [`datapath::Datapath`] (absent when
//!   the build found no clang: `cfg(strait_no_bpf)`).
//!
//! The datapaths, connection tracking, health checks and HA sync arrive with the director
//! issue (#4).

pub mod abi;
pub mod datapath;
pub mod iface;
pub mod maglev;
pub mod neigh;
pub mod packet;
#[cfg(not(strait_no_bpf))]
pub mod xdp;
