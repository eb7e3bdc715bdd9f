//! The egress devmap seen from userspace: the entries NAT frames are redirected through.
//!
//! Contract: [`XdpDirector::set_egress_entry`] points the entry of an [`Egress`] at an
//! interface (`Some`) or empties it (`None`). The loader fills both entries
//! (`abi::Director::nat_ifindex`, `client_ifindex`); an empty entry makes the program's
//! redirect through it return `XDP_DROP` (`ebpf/lib/egress.h`: the flags' action), so a
//! caller that leaves only one entry filled learns from the verdict alone which entry a
//! redirect used: `BPF_PROG_TEST_RUN` reports the action, never the redirect's target.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

use super::{Error, XdpDirector};
use crate::abi;
use crate::packet::nexthop::Egress;

/// `BPF_MAP_DELETE_ELEM` (uapi `enum bpf_cmd`; aya 0.14's `DevMap` has no removal).
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;

/// The element members of uapi `union bpf_attr`.
#[repr(C)]
struct ElemAttr {
    map_fd: u32,
    pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// The devmap entry of `egress` (`STRAIT_EGRESS_*`).
fn slot(egress: Egress) -> u32 {
    match egress {
        Egress::Nat => abi::EGRESS_NAT,
        Egress::Client => abi::EGRESS_CLIENT,
    }
}

impl XdpDirector {
    /// Points the egress devmap's entry of `egress` at interface `ifindex`, or empties it
    /// (see the module doc).
    pub fn set_egress_entry(&mut self, egress: Egress, ifindex: Option<u32>) -> Result<(), Error> {
        let slot = slot(egress);
        if let Some(ifindex) = ifindex {
            return self.set_egress(slot, ifindex);
        }
        let m = abi::names::EGRESS;
        let map = self.ebpf.map(m).ok_or(Error::Missing(m))?;
        let aya::maps::Map::DevMap(data) = map else {
            return Err(Error::Missing(m));
        };
        let mut attr = ElemAttr {
            map_fd: data.fd().as_fd().as_raw_fd() as u32,
            pad: 0,
            key: &slot as *const u32 as u64,
            value: 0,
            flags: 0,
        };
        // SAFETY: the attribute names a devmap of u32 keys and points at one live u32 key;
        // the kernel only reads it.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_DELETE_ELEM,
                &mut attr as *mut ElemAttr,
                std::mem::size_of::<ElemAttr>(),
            )
        };
        let e = io::Error::last_os_error();
        // ENOENT: already empty.
        if r < 0 && e.raw_os_error() != Some(libc::ENOENT) {
            return Err(Error::Delete(m, e));
        }
        Ok(())
    }
}
