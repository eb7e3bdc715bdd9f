//! The node side of TUN mode: the IP-in-IP decapsulation XDP program (`ebpf/decap.bpf.c`)
//! and its pure reference model ([`decapsulate`]).
//!
//! Contract:
//! * [`Decap::load`] loads the embedded object, fills its `vips` map (1..=64 addresses) and
//!   verifies the program (needs `CAP_BPF`/root); nothing is attached. [`Decap::test_run`]
//!   runs it on one frame (`BPF_PROG_TEST_RUN`).
//! * [`Decap::attach`] loads and attaches it to an interface: `XdpMode::Native` (driver
//!   mode) or `XdpMode::Generic` (skb mode) exactly, or `XdpMode::Auto`: native, and when the
//!   driver refuses, generic; the refusal is kept in [`Decap::fallback`] for the caller to log
//!   as a warning. The attachment is a BPF link owned by this process: it goes away when the
//!   `Decap` is detached or dropped, and also when the process dies.
//! * [`Decap::detach`] is idempotent and also runs on drop.
//! * Builds without clang (`cfg(strait_no_bpf)`) keep the model; loading fails with a
//!   message saying so.

mod model;

use std::net::Ipv4Addr;

pub use model::{decapsulate, PROTO_IPIP};

use crate::datapath::DatapathError;

/// Most VIPs the `vips` map holds (`STRAIT_DECAP_MAX_VIPS`).
pub(crate) const MAX_VIPS: usize = 64;

/// Counter indices of the `counters` map (`STRAIT_DECAP_CNT_*` in `ebpf/decap.bpf.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
#[cfg_attr(strait_no_bpf, allow(dead_code))] // read by the loaded program only (needs clang)
pub(crate) enum Counter {
    /// Frames whose outer header was removed.
    Decapsulated = 0,
    /// Frames passed unchanged.
    Passed = 1,
}

/// The program's counters, summed over CPUs, since it was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecapCounters {
    /// Frames decapsulated.
    pub decapsulated: u64,
    /// Frames passed unchanged.
    pub passed: u64,
}

/// Checks the VIP list against the map's bounds.
fn check_vips(vips: &[Ipv4Addr]) -> Result<(), DatapathError> {
    if vips.is_empty() || vips.len() > MAX_VIPS {
        return Err(DatapathError::msg(
            "load the decapsulation program",
            format!("{} VIPs given; 1 to {MAX_VIPS} are supported", vips.len()),
        ));
    }
    Ok(())
}

/// Stand-in when the build found no clang: the same API, and no value of it can exist.
#[cfg(strait_no_bpf)]
mod loaded {
    use super::{check_vips, DecapCounters};
    use crate::datapath::{DatapathError, XdpMode};
    use std::net::Ipv4Addr;

    /// The decapsulation program; this build has none, so this type has no values.
    #[derive(Debug)]
    pub struct Decap(std::convert::Infallible);

    /// What one test run returned (as `xdp::TestRunOutput`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TestRunOutput {
        /// The XDP action.
        pub action: u32,
        /// The frame after the program.
        pub frame: Vec<u8>,
    }

    impl Decap {
        /// Fails: this build has no BPF objects.
        pub fn load(vips: &[Ipv4Addr]) -> Result<Decap, DatapathError> {
            check_vips(vips)?;
            Err(DatapathError::msg(
                "load the decapsulation program",
                "strait was built without clang, so without its BPF programs",
            ))
        }
        /// Fails: this build has no BPF objects.
        pub fn attach(_: &str, vips: &[Ipv4Addr], _: XdpMode) -> Result<Decap, DatapathError> {
            Decap::load(vips)
        }
        /// Unreachable (no value exists).
        pub fn interface(&self) -> Option<&str> {
            match self.0 {}
        }
        /// Unreachable (no value exists).
        pub fn mode(&self) -> Option<XdpMode> {
            match self.0 {}
        }
        /// Unreachable (no value exists).
        pub fn fallback(&self) -> Option<&str> {
            match self.0 {}
        }
        /// Unreachable (no value exists).
        pub fn counters(&self) -> Result<DecapCounters, DatapathError> {
            match self.0 {}
        }
        /// Unreachable (no value exists).
        pub fn test_run(&mut self, _: &[u8]) -> Result<TestRunOutput, DatapathError> {
            match self.0 {}
        }
        /// Unreachable (no value exists).
        pub fn detach(&mut self) -> Result<(), DatapathError> {
            match self.0 {}
        }
    }
}

#[cfg(not(strait_no_bpf))]
mod loaded;

pub use loaded::Decap;
