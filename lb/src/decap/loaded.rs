//! [`Decap`]: the decapsulation program loaded with aya (see the contract in [`super`]).

use std::net::Ipv4Addr;

use aya::maps::{HashMap, PerCpuArray};
use aya::programs::xdp::XdpLinkId;
use aya::programs::{ProgramError, Xdp};
use aya::{Ebpf, EbpfLoader};

use super::{check_vips, Counter, DecapCounters};
use crate::datapath::{DatapathError, XdpMode};
use crate::xdp::{test_run_timed, TestRunOutput};

/// The program's symbol name.
const PROGRAM: &str = "strait_decap";
/// The VIP map's symbol name.
const VIPS: &str = "vips";
/// The counter map's symbol name.
const COUNTERS: &str = "counters";

/// The compiled decapsulation object.
pub(super) fn object() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/decap.bpf.o"))
}

/// Where the program is attached.
#[derive(Debug)]
struct Attached {
    iface: String,
    mode: XdpMode,
    link: XdpLinkId,
}

/// The loaded decapsulation program, attached to at most one interface.
pub struct Decap {
    ebpf: Ebpf,
    attached: Option<Attached>,
    fallback: Option<String>,
}

impl std::fmt::Debug for Decap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decap")
            .field("attached", &self.attached)
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

fn err(what: &str) -> impl Fn(&(dyn std::error::Error + 'static)) -> DatapathError + '_ {
    move |e| DatapathError::new(what, e)
}

impl Decap {
    /// Loads the program with these VIPs, not attached (see the module doc).
    pub fn load(vips: &[Ipv4Addr]) -> Result<Decap, DatapathError> {
        check_vips(vips)?;
        let what = "load the decapsulation program";
        let mut ebpf = EbpfLoader::new()
            .load(object())
            .map_err(|e| err(what)(&e))?;
        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| DatapathError::msg(what, format!("the object has no {PROGRAM}")))?
            .try_into()
            .map_err(|e: ProgramError| err(what)(&e))?;
        program.load().map_err(|e| err(what)(&e))?;
        let map = ebpf
            .map_mut(VIPS)
            .ok_or_else(|| DatapathError::msg(what, format!("the object has no map {VIPS}")))?;
        let mut map: HashMap<_, u32, u8> = HashMap::try_from(map).map_err(|e| err(what)(&e))?;
        for vip in vips {
            // The key is the address in network order, as in the header.
            map.insert(u32::from_ne_bytes(vip.octets()), 1, 0)
                .map_err(|e| err(what)(&e))?;
        }
        Ok(Decap {
            ebpf,
            attached: None,
            fallback: None,
        })
    }

    /// Loads the program and attaches it to `iface` (see the module doc for `mode`).
    pub fn attach(iface: &str, vips: &[Ipv4Addr], mode: XdpMode) -> Result<Decap, DatapathError> {
        let mut decap = Decap::load(vips)?;
        let what = format!("attach the decapsulation program to {iface}");
        let program = decap.program_mut(&what)?;
        let mut fallback = None;
        let (link, used) = match mode {
            XdpMode::Native => (
                program_attach(program, iface, aya::programs::XdpMode::Driver)
                    .map_err(|e| err(&what)(&e))?,
                XdpMode::Native,
            ),
            XdpMode::Generic => (
                program_attach(program, iface, aya::programs::XdpMode::Skb)
                    .map_err(|e| err(&what)(&e))?,
                XdpMode::Generic,
            ),
            XdpMode::Auto => match program_attach(program, iface, aya::programs::XdpMode::Driver) {
                Ok(link) => (link, XdpMode::Native),
                Err(e @ ProgramError::UnknownInterface { .. }) => return Err(err(&what)(&e)),
                Err(native_error) => {
                    fallback = Some(DatapathError::new("native mode", &native_error).to_string());
                    let link = program_attach(program, iface, aya::programs::XdpMode::Skb)
                        .map_err(|e| err(&what)(&e))?;
                    (link, XdpMode::Generic)
                }
            },
        };
        decap.fallback = fallback;
        decap.attached = Some(Attached {
            iface: iface.to_owned(),
            mode: used,
            link,
        });
        Ok(decap)
    }

    fn program_mut(&mut self, what: &str) -> Result<&mut Xdp, DatapathError> {
        self.ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| DatapathError::msg(what, format!("the object has no {PROGRAM}")))?
            .try_into()
            .map_err(|e: ProgramError| err(what)(&e))
    }

    /// The interface it is attached to.
    pub fn interface(&self) -> Option<&str> {
        self.attached.as_ref().map(|a| a.iface.as_str())
    }

    /// The mode it is attached in: `Native` or `Generic` (never `Auto`).
    pub fn mode(&self) -> Option<XdpMode> {
        self.attached.as_ref().map(|a| a.mode)
    }

    /// Why `XdpMode::Auto` fell back to generic mode, if it did.
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// The counters, summed over CPUs.
    pub fn counters(&self) -> Result<DecapCounters, DatapathError> {
        let what = "read the decapsulation counters";
        let map = self
            .ebpf
            .map(COUNTERS)
            .ok_or_else(|| DatapathError::msg(what, format!("the object has no map {COUNTERS}")))?;
        let map: PerCpuArray<_, u64> = PerCpuArray::try_from(map).map_err(|e| err(what)(&e))?;
        let read = |c: Counter| -> Result<u64, DatapathError> {
            let values = map.get(&(c as u32), 0).map_err(|e| err(what)(&e))?;
            Ok(values.iter().sum())
        };
        Ok(DecapCounters {
            decapsulated: read(Counter::Decapsulated)?,
            passed: read(Counter::Passed)?,
        })
    }

    /// Runs the program once on `frame` (`BPF_PROG_TEST_RUN`; at least 14 bytes).
    pub fn test_run(&mut self, frame: &[u8]) -> Result<TestRunOutput, DatapathError> {
        let what = "test-run the decapsulation program";
        let program = self.program_mut(what)?;
        let run = test_run_timed(program, frame, 1).map_err(|e| err(what)(&e))?;
        Ok(TestRunOutput {
            action: run.action,
            frame: run.frame,
        })
    }

    /// Detaches the program from its interface; does nothing when it is not attached.
    pub fn detach(&mut self) -> Result<(), DatapathError> {
        let Some(attached) = self.attached.take() else {
            return Ok(());
        };
        let what = format!("detach the decapsulation program from {}", attached.iface);
        let program = self.program_mut(&what)?;
        program.detach(attached.link).map_err(|e| err(&what)(&e))
    }
}

fn program_attach(
    program: &mut Xdp,
    iface: &str,
    mode: aya::programs::XdpMode,
) -> Result<XdpLinkId, ProgramError> {
    program.attach(iface, mode)
}

impl Drop for Decap {
    fn drop(&mut self) {
        let _ = self.detach();
    }
}
