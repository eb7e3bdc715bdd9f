//! Attaching the director to interfaces: which XDP modes to try, in order, and the attach
//! itself.
//!
//! Contract: [`attach_plan`] is the pure decision: `Native` tries only native (driver) mode,
//! `Generic` only generic (skb) mode, `Auto` native first and then generic. [`attach`] tries
//! the plan in order and returns the first mode that worked; every failure before the last
//! is logged as a warning naming the interface, the mode and the kernel's reason, and when
//! all fail the error names every attempt.

use aya::programs::xdp::XdpLinkId;
use aya::programs::{ProgramError, Xdp};

use crate::datapath::{DatapathError, XdpMode};

/// The mode an attachment really uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AttachMode {
    /// Native (driver) mode.
    Native,
    /// Generic (skb) mode.
    Generic,
}

impl AttachMode {
    /// Name in logs and in the datapath's name (`xdp/<mode>`).
    pub(super) fn as_str(self) -> &'static str {
        match self {
            AttachMode::Native => "native",
            AttachMode::Generic => "generic",
        }
    }

    fn aya(self) -> aya::programs::XdpMode {
        match self {
            AttachMode::Native => aya::programs::XdpMode::Driver,
            AttachMode::Generic => aya::programs::XdpMode::Skb,
        }
    }
}

/// The modes to try for a configured mode, in order (see the module doc).
pub(crate) fn attach_plan(mode: XdpMode) -> &'static [AttachMode] {
    match mode {
        XdpMode::Auto => &[AttachMode::Native, AttachMode::Generic],
        XdpMode::Native => &[AttachMode::Native],
        XdpMode::Generic => &[AttachMode::Generic],
    }
}

/// Renders an error with its sources.
fn render(e: &(dyn std::error::Error + 'static)) -> String {
    DatapathError::new("", e).detail
}

/// Attaches `program` to `iface` following [`attach_plan`] (see the module doc).
pub(crate) fn attach(
    program: &mut Xdp,
    iface: &str,
    mode: XdpMode,
) -> Result<(XdpLinkId, AttachMode), DatapathError> {
    let plan = attach_plan(mode);
    let mut failures = Vec::new();
    for (i, &m) in plan.iter().enumerate() {
        match program.attach(iface, m.aya()) {
            Ok(link) => return Ok((link, m)),
            Err(e) => {
                let reason = render(&e);
                if let Some(next) = plan.get(i + 1) {
                    tracing::warn!(
                        interface = iface,
                        failed = m.as_str(),
                        fallback = next.as_str(),
                        %reason,
                        "XDP attach failed, falling back"
                    );
                }
                failures.push(format!("{}: {reason}", m.as_str()));
            }
        }
    }
    Err(DatapathError::msg(
        format!("attach XDP to {iface} ({})", mode.as_str()),
        failures.join("; "),
    ))
}

/// Detaches one attachment; a link the kernel already dropped (interface gone) is not an error.
pub(crate) fn detach(program: &mut Xdp, link: XdpLinkId, iface: &str) -> Result<(), DatapathError> {
    match program.detach(link) {
        Ok(()) => Ok(()),
        Err(ProgramError::NotAttached) => Ok(()),
        Err(e) => {
            let gone = matches!(&e, ProgramError::SyscallError(s) if s.io_error.raw_os_error() == Some(libc::ENODEV));
            if gone {
                Ok(())
            } else {
                Err(DatapathError::new(format!("detach XDP from {iface}"), &e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_falls_back_to_generic_and_explicit_modes_do_not() {
        assert_eq!(
            attach_plan(XdpMode::Auto),
            [AttachMode::Native, AttachMode::Generic]
        );
        assert_eq!(attach_plan(XdpMode::Native), [AttachMode::Native]);
        assert_eq!(attach_plan(XdpMode::Generic), [AttachMode::Generic]);
        assert_eq!(AttachMode::Generic.as_str(), "generic");
    }
}
