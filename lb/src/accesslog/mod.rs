//! Access logs, for both roles: the `[log]` settings (`settings`), the line formats
//! (`line`: logfmt text or JSON lines) and the writer (`writer`: a bounded queue to one
//! thread; full means dropped and counted, never a blocked request).
//!
//! A role defines its records ([`Record`]): the node one per client request, the director one
//! per backend state change and per reload (`crate::control::events`).

mod line;
mod settings;
mod writer;

pub use line::{Line, Value};
pub use settings::{
    Destination, Format, LogSection, QueueLen, DEFAULT_ACCESS_QUEUE, MAX_ACCESS_QUEUE,
};
pub use writer::{AccessLog, OpenError, Record};

/// Whether coloured (ANSI) output suits a stream: only a terminal, and never when `NO_COLOR`
/// is set to anything but the empty string (<https://no-color.org>).
pub fn colours_allowed(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(colours_allowed(true, None));
        assert!(colours_allowed(true, Some(OsStr::new(""))));
        assert!(!colours_allowed(true, Some(OsStr::new("1"))));
        assert!(!colours_allowed(false, None));
    }
}
