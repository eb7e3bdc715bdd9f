//! The VRRPv3 state machine of one virtual router (RFC 5798 §6.4), pure: time is passed in,
//! and what to do is returned as [`Action`]s for the caller (the runner) to carry out.
//!
//! Contract:
//! * States are the RFC's: [`State::Initialize`], [`State::Backup`], [`State::Master`].
//!   [`Machine::start`] leaves Initialize: an address owner (priority 255) becomes Master at
//!   once, any other router Backup with `Master_Down_Timer = Master_Down_Interval`.
//! * Timers (RFC 5798 §6.1): `Skew_Time = ((256 − Priority) × Master_Adver_Interval) / 256`,
//!   `Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time`, computed in
//!   microseconds. `Master_Adver_Interval` starts as the configured advert interval and, in
//!   Backup, is learned from every advert accepted (§6.4.2).
//! * Backup: the Master_Down_Timer firing makes it Master (send an advert, gratuitous ARPs).
//!   An advert with priority 0 (the master resigns) sets the timer to `Skew_Time`. Any other
//!   advert is accepted (interval learned, timer reset) when preemption is off or its priority
//!   is at least ours; a lower-priority advert with preemption on is discarded, so the timer
//!   runs out and we take over — but only after `preempt_delay` has passed since we first heard
//!   that lower-priority master (until then its adverts are accepted as if preemption were
//!   off; keepalived's `preempt_delay` means the same).
//! * Master: the Adver_Timer sends an advert every configured interval. A priority-0 advert
//!   is answered at once with ours. An advert with a higher priority, or the same priority
//!   from a higher primary address (compared as unsigned 32-bit numbers), makes it Backup
//!   (interval learned, `Master_Down_Timer = Master_Down_Interval`); others are discarded.
//! * [`Machine::shutdown`] in Master sends an advert with priority 0 (the backup takes over
//!   after its `Skew_Time`); from any state it goes to Initialize and stops every timer.
//! * Nothing here validates adverts (TTL, checksum, VRID, address list): the caller drops
//!   those before they reach [`Machine::advert`].

use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// A virtual router's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started, or stopped.
    Initialize,
    /// Watching the master; takes over when it goes quiet.
    Backup,
    /// Owns the virtual addresses and advertises.
    Master,
}

impl State {
    /// Name in logs, stats, metrics and the notify command's argument.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initialize => "init",
            State::Backup => "backup",
            State::Master => "master",
        }
    }

    /// Every state, in the order metrics list them.
    pub const ALL: [State; 3] = [State::Initialize, State::Backup, State::Master];
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a transition happened (logged with it, shown in stats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `start` with priority 255: the address owner is master at once.
    Owner,
    /// `start`: every other router begins as backup.
    Startup,
    /// No advert from the master for `Master_Down_Interval`.
    MasterDown {
        /// The interval that ran out.
        after: Duration,
    },
    /// The master resigned (advert with priority 0) and `Skew_Time` passed.
    MasterResigned {
        /// The skew time waited.
        after: Duration,
    },
    /// A better router advertised while we were master.
    Preempted {
        /// Its address.
        by: Ipv4Addr,
        /// Its priority.
        priority: u8,
    },
    /// [`Machine::shutdown`].
    Shutdown,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Owner => f.write_str("address owner (priority 255)"),
            Reason::Startup => f.write_str("startup"),
            Reason::MasterDown { after } => {
                write!(
                    f,
                    "no advert from the master for {:.3} s",
                    after.as_secs_f64()
                )
            }
            Reason::MasterResigned { after } => write!(
                f,
                "the master resigned (priority 0), skew time {:.3} s",
                after.as_secs_f64()
            ),
            Reason::Preempted { by, priority } => {
                write!(f, "preempted by {by} with priority {priority}")
            }
            Reason::Shutdown => f.write_str("shutdown"),
        }
    }
}

/// What the caller must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send an advert with this priority (ours, or 0 when resigning).
    Send {
        /// The advertised priority.
        priority: u8,
    },
    /// The state changed: own the addresses (Master) or stop owning them (any other state);
    /// on Master also send the gratuitous ARPs.
    Transition {
        /// The state left.
        from: State,
        /// The state entered.
        to: State,
        /// Why.
        reason: Reason,
    },
}

/// A virtual router's settings (`[ha]`), as the machine needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// 1–255; 255 only for the owner of the addresses.
    pub priority: u8,
    /// The configured `Advertisement_Interval` (a multiple of 10 ms, 10 ms – 40.95 s).
    pub advert_interval: Duration,
    /// Whether a higher-priority backup takes over from a lower-priority master.
    pub preempt: bool,
    /// How long a higher-priority backup waits, once it hears a lower-priority master,
    /// before it preempts.
    pub preempt_delay: Duration,
    /// Our primary address (the adverts' source; the tie-break between equal priorities).
    pub address: Ipv4Addr,
}

/// `Skew_Time` for `priority` and `interval` (RFC 5798 §6.1), to the microsecond.
pub fn skew_time(priority: u8, interval: Duration) -> Duration {
    let us = interval.as_micros() as u64 * (256 - u64::from(priority)) / 256;
    Duration::from_micros(us)
}

/// `Master_Down_Interval` for `priority` and `interval` (RFC 5798 §6.1).
pub fn master_down_interval(priority: u8, interval: Duration) -> Duration {
    interval * 3 + skew_time(priority, interval)
}

/// One virtual router (see the module doc).
#[derive(Debug, Clone)]
pub struct Machine {
    settings: Settings,
    state: State,
    /// `Master_Adver_Interval`: ours as master, the master's as backup.
    master_interval: Duration,
    /// Adver_Timer (Master) or Master_Down_Timer (Backup); `None` in Initialize.
    deadline: Option<Instant>,
    /// Why the Backup's timer is running: `Some(skew)` after the master resigned.
    resigned: Option<Duration>,
    /// Backup with preemption: since when a lower-priority master has been heard.
    lower_since: Option<Instant>,
    /// The master's address as last heard (ours when Master).
    master: Option<Ipv4Addr>,
}

impl Machine {
    /// A router in Initialize.
    pub fn new(settings: Settings) -> Machine {
        Machine {
            master_interval: settings.advert_interval,
            settings,
            state: State::Initialize,
            deadline: None,
            resigned: None,
            lower_since: None,
            master: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// When [`Machine::tick`] must next be called (`None`: no timer runs).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The master as last heard (ourselves when Master; `None` before any advert).
    pub fn master(&self) -> Option<Ipv4Addr> {
        self.master
    }

    /// `Master_Adver_Interval` now.
    pub fn master_interval(&self) -> Duration {
        self.master_interval
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// `Master_Down_Interval` now (from the learned interval).
    pub fn master_down_interval(&self) -> Duration {
        master_down_interval(self.settings.priority, self.master_interval)
    }

    /// The `Startup` event (see the module doc). Does nothing unless in Initialize.
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        if self.state != State::Initialize {
            return Vec::new();
        }
        if self.settings.priority == 255 {
            self.become_master(now, Reason::Owner)
        } else {
            self.master_interval = self.settings.advert_interval;
            self.become_backup(now, Reason::Startup)
        }
    }

    /// A timer ran out if `now` is at or past [`Machine::deadline`].
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        match self.deadline {
            Some(d) if now >= d => {}
            _ => return Vec::new(),
        }
        match self.state {
            State::Initialize => Vec::new(),
            State::Master => {
                self.deadline = Some(now + self.settings.advert_interval);
                vec![Action::Send {
                    priority: self.settings.priority,
                }]
            }
            State::Backup => {
                let reason = match self.resigned {
                    Some(after) => Reason::MasterResigned { after },
                    None => Reason::MasterDown {
                        after: self.master_down_interval(),
                    },
                };
                self.become_master(now, reason)
            }
        }
    }

    /// A valid advert for our virtual router from `from` (not from ourselves).
    pub fn advert(
        &mut self,
        now: Instant,
        from: Ipv4Addr,
        priority: u8,
        interval: Duration,
    ) -> Vec<Action> {
        match self.state {
            State::Initialize => Vec::new(),
            State::Backup => {
                self.master = Some(from);
                if priority == 0 {
                    let skew = skew_time(self.settings.priority, self.master_interval);
                    self.resigned = Some(skew);
                    self.deadline = Some(now + skew);
                    return Vec::new();
                }
                let lower = priority < self.settings.priority;
                if self.settings.preempt && lower {
                    let since = *self.lower_since.get_or_insert(now);
                    if now.duration_since(since) >= self.settings.preempt_delay {
                        // Discarded: the timer runs out and we preempt.
                        return Vec::new();
                    }
                } else {
                    self.lower_since = None;
                }
                self.master_interval = interval;
                self.resigned = None;
                self.deadline = Some(now + self.master_down_interval());
                Vec::new()
            }
            State::Master => {
                if priority == 0 {
                    self.deadline = Some(now + self.settings.advert_interval);
                    return vec![Action::Send {
                        priority: self.settings.priority,
                    }];
                }
                let better = priority > self.settings.priority
                    || (priority == self.settings.priority
                        && u32::from(from) > u32::from(self.settings.address));
                if !better {
                    return Vec::new();
                }
                self.master_interval = interval;
                self.master = Some(from);
                self.become_backup(now, Reason::Preempted { by: from, priority })
            }
        }
    }

    /// The `Shutdown` event (see the module doc).
    pub fn shutdown(&mut self) -> Vec<Action> {
        let from = self.state;
        let mut out = Vec::new();
        if from == State::Master {
            out.push(Action::Send { priority: 0 });
        }
        self.deadline = None;
        self.resigned = None;
        self.lower_since = None;
        self.master = None;
        self.state = State::Initialize;
        if from != State::Initialize {
            out.push(Action::Transition {
                from,
                to: State::Initialize,
                reason: Reason::Shutdown,
            });
        }
        out
    }

    fn become_master(&mut self, now: Instant, reason: Reason) -> Vec<Action> {
        let from = self.state;
        self.state = State::Master;
        self.master_interval = self.settings.advert_interval;
        self.deadline = Some(now + self.settings.advert_interval);
        self.resigned = None;
        self.lower_since = None;
        self.master = Some(self.settings.address);
        vec![
            Action::Send {
                priority: self.settings.priority,
            },
            Action::Transition {
                from,
                to: State::Master,
                reason,
            },
        ]
    }

    fn become_backup(&mut self, now: Instant, reason: Reason) -> Vec<Action> {
        let from = self.state;
        self.state = State::Backup;
        self.deadline = Some(now + self.master_down_interval());
        self.resigned = None;
        self.lower_since = None;
        vec![Action::Transition {
            from,
            to: State::Backup,
            reason,
        }]
    }
}

#[cfg(test)]
mod tests;
