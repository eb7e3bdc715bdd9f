//! Runtime control of one server (a node's origin pool) or backend (a director's service):
//! its admin state and weight override, set through the admin listener (`strait ctl server`,
//! `strait ctl backend`) instead of the file. Pure: the node's pools and the director's state
//! hold an [`Override`] each and ask it.
//!
//! Contract:
//! * `ready` (the default): scheduled as its health and weight say.
//! * `drain`: takes no new requests or flows; those in flight finish. On a director,
//!   established flows keep their backend through the connection table; on a node, a client
//!   whose persistence cookie names the server still reaches it (its session finishes there),
//!   but no new session is given to it.
//! * `maint`: no traffic at all: not scheduled, persistence cookies naming it are ignored,
//!   a director's established flows are moved on their next packet. Health checks keep
//!   running and are shown, but a passing check does not bring it back: only `ready` does.
//! * `weight N` replaces the file's weight (0..=the role's maximum) until cleared.
//! * Reload rule ([`Override::on_reload`]): a reload that leaves the server's weight in the
//!   file as it was keeps the whole override (state and weight); a reload that changes that
//!   weight clears both (the file speaks again). A server removed from the file loses its
//!   override with it; one added back starts `ready`.

use std::fmt;

/// What an operator set a server to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AdminState {
    /// Normal service.
    #[default]
    Ready,
    /// No new requests or flows; existing ones finish.
    Drain,
    /// No traffic at all; health checks do not bring it back.
    Maint,
}

impl AdminState {
    /// The name in endpoints, JSON, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Ready => "ready",
            AdminState::Drain => "drain",
            AdminState::Maint => "maint",
        }
    }

    /// Every state, in the order metrics list them.
    pub const ALL: [AdminState; 3] = [AdminState::Ready, AdminState::Drain, AdminState::Maint];

    /// `ready`, `drain` or `maint`.
    pub fn parse(s: &str) -> Option<AdminState> {
        AdminState::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for AdminState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One runtime change asked of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Set the admin state.
    State(AdminState),
    /// Override the weight.
    Weight(u32),
}

impl Command {
    /// The command of a request's `state=` or `weight=` value (exactly one of them); a
    /// weight must be a whole number from 0 to `max_weight`. The error is a sentence for the
    /// operator.
    pub fn from_query(
        state: Option<&str>,
        weight: Option<&str>,
        max_weight: u32,
    ) -> Result<Command, String> {
        match (state, weight) {
            (Some(_), Some(_)) => Err("give state= or weight=, not both".into()),
            (None, None) => {
                Err("missing state=ready|drain|maint or weight=N: nothing to change".into())
            }
            (Some(s), None) => AdminState::parse(s)
                .map(Command::State)
                .ok_or_else(|| format!("unknown state {s:?}: write ready, drain or maint")),
            (None, Some(w)) => match w.parse::<u32>() {
                Ok(n) if n <= max_weight => Ok(Command::Weight(n)),
                _ => Err(format!(
                    "bad weight {w:?}: write a whole number from 0 to {max_weight}"
                )),
            },
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::State(s) => write!(f, "state {s}"),
            Command::Weight(w) => write!(f, "weight {w}"),
        }
    }
}

/// A server's runtime override: its admin state and weight, if set (see the module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Override {
    /// The admin state.
    pub state: AdminState,
    /// The weight set at runtime; `None`: the file's.
    pub weight: Option<u32>,
}

impl Override {
    /// Applies `cmd`; returns whether anything changed.
    pub fn apply(&mut self, cmd: Command) -> bool {
        let before = *self;
        match cmd {
            Command::State(s) => self.state = s,
            Command::Weight(w) => self.weight = Some(w),
        }
        *self != before
    }

    /// The weight in effect: the override's, else the file's.
    pub fn weight(&self, file_weight: u32) -> u32 {
        self.weight.unwrap_or(file_weight)
    }

    /// The weight a scheduler sees: 0 unless `ready`, else [`Override::weight`].
    pub fn scheduled_weight(&self, file_weight: u32) -> u32 {
        match self.state {
            AdminState::Ready => self.weight(file_weight),
            AdminState::Drain | AdminState::Maint => 0,
        }
    }

    /// New requests, flows or sessions may go to it.
    pub fn takes_new(&self) -> bool {
        self.state == AdminState::Ready
    }

    /// Its existing sessions or flows may stay (all but `maint`).
    pub fn keeps_existing(&self) -> bool {
        self.state != AdminState::Maint
    }

    /// Anything set at all.
    pub fn is_set(&self) -> bool {
        *self != Override::default()
    }

    /// A reload set the file's weight from `old` to `new`: clears the override when the
    /// weight changed and it was set (the module's reload rule); returns whether it did.
    pub fn on_reload(&mut self, old: u32, new: u32) -> bool {
        if old == new || !self.is_set() {
            return false;
        }
        *self = Override::default();
        true
    }

    /// What is set, for logs and the config view: `state drain, weight 5 (file 1)`;
    /// empty when nothing is.
    pub fn describe(&self, file_weight: u32) -> String {
        let mut parts = Vec::new();
        if self.state != AdminState::Ready {
            parts.push(format!("state {}", self.state));
        }
        if let Some(w) = self.weight {
            parts.push(format!("weight {w} (file {file_weight})"));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_from_state_or_weight() {
        let q = |s, w| Command::from_query(s, w, 1000);
        assert_eq!(
            q(Some("drain"), None),
            Ok(Command::State(AdminState::Drain))
        );
        assert_eq!(
            q(Some("ready"), None),
            Ok(Command::State(AdminState::Ready))
        );
        assert_eq!(
            q(Some("maint"), None),
            Ok(Command::State(AdminState::Maint))
        );
        assert_eq!(q(None, Some("0")), Ok(Command::Weight(0)));
        assert_eq!(q(None, Some("1000")), Ok(Command::Weight(1000)));
        for bad in ["1001", "-1", "x", "", "1.5"] {
            let e = q(None, Some(bad)).unwrap_err();
            assert!(e.contains("from 0 to 1000"), "{bad:?}: {e}");
        }
        assert!(q(Some("down"), None)
            .unwrap_err()
            .contains("ready, drain or maint"));
        assert!(q(None, None).is_err());
        assert!(q(Some("drain"), Some("3")).is_err());
    }

    #[test]
    fn drain_and_maint_take_no_new_work_and_only_maint_drops_existing() {
        let mut o = Override::default();
        assert!(o.takes_new() && o.keeps_existing());
        assert_eq!(o.scheduled_weight(7), 7);
        assert!(o.apply(Command::State(AdminState::Drain)));
        assert!(!o.takes_new() && o.keeps_existing());
        assert_eq!(o.scheduled_weight(7), 0);
        assert!(o.apply(Command::State(AdminState::Maint)));
        assert!(!o.takes_new() && !o.keeps_existing());
        assert!(o.apply(Command::State(AdminState::Ready)));
        assert!(!o.apply(Command::State(AdminState::Ready)), "no change");
        assert!(!o.is_set());
    }

    #[test]
    fn a_weight_override_outlives_drain_and_ready() {
        let mut o = Override::default();
        o.apply(Command::Weight(5));
        assert_eq!((o.weight(1), o.scheduled_weight(1)), (5, 5));
        o.apply(Command::State(AdminState::Drain));
        assert_eq!((o.weight(1), o.scheduled_weight(1)), (5, 0));
        // `ready` ends the drain; the weight override stays until a reload changes the file.
        o.apply(Command::State(AdminState::Ready));
        assert_eq!(o.scheduled_weight(1), 5);
        assert_eq!(o.describe(1), "weight 5 (file 1)");
    }

    #[test]
    fn a_reload_clears_the_override_only_when_it_changes_the_files_weight() {
        let mut o = Override::default();
        o.apply(Command::State(AdminState::Maint));
        o.apply(Command::Weight(9));
        assert!(!o.on_reload(3, 3));
        assert_eq!(o.describe(3), "state maint, weight 9 (file 3)");
        assert!(o.on_reload(3, 4));
        assert_eq!(o, Override::default());
        assert!(!o.on_reload(4, 5), "nothing to clear");
    }
}
