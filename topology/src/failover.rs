//! `strait sim run failover`, the pure parts: who is who in a two-director topology, and what
//! the measurements say (takeover on the wire, the client's longest gap, connections kept).
//!
//! Contract of [`pair_roles`]: exactly two hosts run `strait director --config FILE` (in file
//! order), at least one runs `strait node --config FILE`, and the client is found as the demo
//! finds it (`demo::roles`); anything else is a [`PairError`].
//!
//! Contract of [`analyse`] (all times from the scenario's start, one clock):
//! * `last_via_old` / `first_via_new`: the last frame a backend received through the old
//!   master, the first through the new one (told apart by the source MAC the DR rewrite
//!   writes), relative to the kill (negative: before it);
//! * `wire_gap` = `first_via_new − last_via_old`, zero when they overlap (the old master kept
//!   forwarding until the new one had taken over): the takeover as the traffic saw it;
//! * `client_gap`: the longest time between two successful probes, over the whole run (the
//!   probe period when nothing was lost);
//! * `failed_probes`: probes that got no 200 in time; `failed_after`: those of them started
//!   after the first frame through the new master (the takeover done: none should fail).

use std::fmt::Write as _;
use std::time::Duration;

use crate::demo::{self, Role, RolesError};
use crate::spec::Topology;

/// The topology `sim run failover` uses without `--topology` (relative to the repository root).
pub const DEFAULT_TOPOLOGY: &str = "topology/examples/topologies/ha.toml";

/// Why a topology cannot run the failover scenario.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    /// Not exactly two hosts run a director.
    #[error(
        "{0} hosts run `strait director --config FILE`; the failover scenario needs exactly two"
    )]
    Directors(usize),
    /// What the demo's roles say (no client, no backend).
    #[error(transparent)]
    Roles(RolesError),
}

/// The failover scenario's cast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairRoles {
    /// Host the traffic comes from.
    pub client: String,
    /// The two directors, in file order.
    pub directors: [Role; 2],
    /// The backends (hosts running `strait node`), in file order.
    pub backends: Vec<Role>,
}

/// Finds the client, the two directors and the backends (see the module contract).
pub fn pair_roles(topology: &Topology) -> Result<PairRoles, PairError> {
    let directors = demo::directors(topology);
    let [a, b]: [Role; 2] = directors
        .clone()
        .try_into()
        .map_err(|_| PairError::Directors(directors.len()))?;
    // The demo's roles with one director: reuse its client and backend rules.
    let mut one = topology.clone();
    one.hosts.retain(|h| h.name != b.host);
    let roles = demo::roles(&one).map_err(PairError::Roles)?;
    Ok(PairRoles {
        client: roles.client,
        directors: [a, b],
        backends: roles.backends,
    })
}

/// One short probe: when it started and whether it got a 200 in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Start, from the scenario's start.
    pub at: Duration,
    /// Answered 200 within its bound.
    pub ok: bool,
}

/// A frame for the VIP seen at a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// When, from the scenario's start.
    pub at: Duration,
    /// Which director forwarded it: 0 the old master, 1 the other; `None`: neither's MAC.
    pub via: Option<usize>,
}

/// What one run recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// When the master was killed, from the scenario's start.
    pub kill_at: Duration,
    /// Every short probe, in start order.
    pub probes: Vec<Probe>,
    /// Every frame seen at the backends, any order.
    pub frames: Vec<Frame>,
    /// Long-lived connections opened before the kill.
    pub long_total: usize,
    /// ... that delivered their whole response.
    pub long_survived: usize,
}

/// A time relative to the kill, in signed milliseconds.
pub type RelMs = f64;

/// What [`analyse`] found (see the module contract).
#[derive(Debug, Clone, PartialEq)]
pub struct Takeover {
    /// Last frame through the old master, ms from the kill.
    pub last_via_old: Option<RelMs>,
    /// First frame through the new master, ms from the kill.
    pub first_via_new: Option<RelMs>,
    /// The takeover on the wire (zero when the two overlapped).
    pub wire_gap: Option<Duration>,
    /// The longest time between two successful probes.
    pub client_gap: Duration,
    /// Probes in all.
    pub probes: usize,
    /// Probes without a 200 in time.
    pub failed_probes: usize,
    /// Failed probes started after the first frame through the new master.
    pub failed_after: usize,
    /// Frames through neither director's MAC.
    pub unknown_frames: usize,
}

fn rel(at: Duration, kill: Duration) -> RelMs {
    (at.as_micros() as i64 - kill.as_micros() as i64) as f64 / 1000.0
}

/// Reads a run (see the module contract).
pub fn analyse(r: &Recorded) -> Takeover {
    let last_old = r
        .frames
        .iter()
        .filter(|f| f.via == Some(0))
        .map(|f| f.at)
        .max();
    let first_new = r
        .frames
        .iter()
        .filter(|f| f.via == Some(1))
        .map(|f| f.at)
        .min();
    let wire_gap = match (last_old, first_new) {
        (Some(old), Some(new)) => Some(new.saturating_sub(old)),
        (None, Some(new)) => Some(new.saturating_sub(r.kill_at)),
        _ => None,
    };
    let mut ok: Vec<Duration> = r.probes.iter().filter(|p| p.ok).map(|p| p.at).collect();
    ok.sort();
    let client_gap = ok.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
    Takeover {
        last_via_old: last_old.map(|t| rel(t, r.kill_at)),
        first_via_new: first_new.map(|t| rel(t, r.kill_at)),
        wire_gap,
        client_gap,
        probes: r.probes.len(),
        failed_probes: r.probes.iter().filter(|p| !p.ok).count(),
        failed_after: first_new
            .map_or(0, |t| r.probes.iter().filter(|p| !p.ok && p.at > t).count()),
        unknown_frames: r.frames.iter().filter(|f| f.via.is_none()).count(),
    }
}

/// Milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn signed(v: Option<RelMs>) -> String {
    v.map_or_else(|| "none".to_owned(), |m| format!("{m:+.1} ms"))
}

/// The report's lines about the takeover and the connections; `timer` names the RFC 5798
/// timer that bounds it (e.g. `Master_Down_Interval 360.9 ms from the old master's last advert`).
pub fn report(t: &Takeover, r: &Recorded, timer: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "takeover on the wire: {} (last frame through the old master {}, first through the new \
         one {}, from the kill); the RFC's timer: {timer}",
        t.wire_gap.map_or_else(|| "not seen".to_owned(), ms),
        signed(t.last_via_old),
        signed(t.first_via_new),
    );
    let _ = writeln!(
        out,
        "new connections: {} probes, {} failed ({} after the takeover); the longest gap between \
         two answered probes {}",
        t.probes,
        t.failed_probes,
        t.failed_after,
        ms(t.client_gap)
    );
    let _ = writeln!(
        out,
        "established connections: {}/{} delivered their whole response across the failover",
        r.long_survived, r.long_total
    );
    if t.unknown_frames > 0 {
        let _ = writeln!(
            out,
            "{} frames reached the backends through neither director",
            t.unknown_frames
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn frames(old: &[u64], new: &[u64]) -> Vec<Frame> {
        old.iter()
            .map(|&t| Frame {
                at: d(t),
                via: Some(0),
            })
            .chain(new.iter().map(|&t| Frame {
                at: d(t),
                via: Some(1),
            }))
            .collect()
    }

    #[test]
    fn a_gap_on_the_wire_is_measured_from_the_last_old_frame() {
        let r = Recorded {
            kill_at: d(1000),
            frames: frames(&[900, 995, 998], &[1380, 1390]),
            probes: vec![
                Probe {
                    at: d(990),
                    ok: true,
                },
                Probe {
                    at: d(1000),
                    ok: false,
                },
                Probe {
                    at: d(1200),
                    ok: false,
                },
                Probe {
                    at: d(1390),
                    ok: true,
                },
                Probe {
                    at: d(1400),
                    ok: true,
                },
            ],
            long_total: 3,
            long_survived: 3,
        };
        let t = analyse(&r);
        assert_eq!(t.wire_gap, Some(d(382)));
        assert_eq!(t.last_via_old, Some(-2.0));
        assert_eq!(t.first_via_new, Some(380.0));
        assert_eq!(t.client_gap, d(400));
        assert_eq!((t.probes, t.failed_probes, t.unknown_frames), (5, 2, 0));
        // The new master's first frame at 1380 ms: both failures started before it.
        assert_eq!(t.failed_after, 0);
        let text = report(&t, &r, "Master_Down_Interval 361 ms");
        assert!(text.contains("takeover on the wire: 382.0 ms"), "{text}");
        assert!(text.contains("3/3 delivered"), "{text}");
    }

    #[test]
    fn an_overlap_is_no_gap() {
        let r = Recorded {
            kill_at: d(1000),
            frames: frames(&[1000, 1070], &[1060, 1080]),
            ..Recorded::default()
        };
        assert_eq!(analyse(&r).wire_gap, Some(Duration::ZERO));
        let none = Recorded {
            kill_at: d(1000),
            frames: frames(&[990], &[]),
            ..Recorded::default()
        };
        assert_eq!(analyse(&none).wire_gap, None);
        assert!(report(&analyse(&none), &none, "-").contains("not seen"));
    }

    #[test]
    fn two_directors_are_found_and_one_or_three_refused() {
        let lan = "name = \"t\"\n[[lan]]\nname = \"lan\"\nsubnet = \"10.9.0.0/24\"\n";
        let host = |n: &str, ip: u8, run: &str| {
            format!("[[host]]\nname = \"{n}\"\nlan = [{{ lan = \"lan\", addr = \"10.9.0.{ip}/24\" }}]\n{run}")
        };
        let dir = |f: &str| format!("run = [\"strait director --config {f}\"]\n");
        let node = "run = [\"strait node --config n.toml\"]\n";
        let base = format!(
            "{lan}{}{}{}{}",
            host("client", 2, ""),
            host("dir-a", 3, &dir("a.toml")),
            host("dir-b", 4, &dir("b.toml")),
            host("b1", 11, node)
        );
        let t = Topology::from_toml(&base).expect("topology");
        let r = pair_roles(&t).expect("roles");
        assert_eq!(r.client, "client");
        assert_eq!(
            [r.directors[0].host.as_str(), r.directors[1].host.as_str()],
            ["dir-a", "dir-b"]
        );
        assert_eq!(r.backends.len(), 1);
        let three = format!("{base}{}", host("dir-c", 5, &dir("c.toml")));
        assert_eq!(
            pair_roles(&Topology::from_toml(&three).expect("topology")),
            Err(PairError::Directors(3))
        );
    }
}
