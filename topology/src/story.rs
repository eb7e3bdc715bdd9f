//! `strait sim run demo` on a topology with two directors (the story), the pure parts: who is
//! who, and what the client's requests got (no I/O, no clock: every time is from the traffic's
//! start, measured by the caller).
//!
//! Contract of [`story_roles`]: the two directors and the client as `failover::pair_roles`
//! finds them; the hosts running `strait node --config FILE`, in file order, at least
//! [`MIN_NODES`]: the last one is the **joiner** (held back at the start, started when it
//! joins), the others the nodes started at once.
//!
//! Contract of [`cache_path`]: a `Cache-Status` field (RFC 9211) as strait writes it, the node
//! nearest the origin first, tells one of the cluster's four paths (`docs/cluster.md`), a pass
//! (`fwd=bypass`) or something else:
//! * one member: `hit` → local hit; `fwd=bypass` → bypass; `fwd=miss` → local miss;
//! * two or more: the first (the owner) `hit` → remote hit; `fwd=miss` → remote miss.
//!
//! Contract of [`tally`]: counts the short requests that started in `[from, to)`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::demo::Role;
use crate::failover::{self, PairError};
use crate::spec::Topology;

/// Node hosts a story needs: two started at once (one survives the node kill) and the joiner.
pub const MIN_NODES: usize = 3;

/// Why a topology cannot run the story.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoryError {
    /// Not a pair of directors with a client and nodes.
    #[error(transparent)]
    Pair(#[from] PairError),
    /// Too few node hosts.
    #[error("{0} hosts run `strait node --config FILE`; the story needs {MIN_NODES} (the last one joins)")]
    Nodes(usize),
}

/// The story's cast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoryRoles {
    /// Host the traffic comes from.
    pub client: String,
    /// The two directors, in file order.
    pub directors: [Role; 2],
    /// The nodes started at once, in file order.
    pub nodes: Vec<Role>,
    /// The node that joins later (the last node host).
    pub joiner: Role,
}

/// Finds the cast (see the module contract).
pub fn story_roles(topology: &Topology) -> Result<StoryRoles, StoryError> {
    let pair = failover::pair_roles(topology)?;
    let mut nodes = pair.backends;
    if nodes.len() < MIN_NODES {
        return Err(StoryError::Nodes(nodes.len()));
    }
    let joiner = nodes.pop().ok_or(StoryError::Nodes(0))?;
    Ok(StoryRoles {
        client: pair.client,
        directors: pair.directors,
        nodes,
        joiner,
    })
}

/// How a request was served, from its `Cache-Status` (see [`cache_path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CachePath {
    LocalHit,
    RemoteHit,
    LocalMiss,
    RemoteMiss,
    Bypass,
    Other,
}

impl CachePath {
    /// The name in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            CachePath::LocalHit => "local hit",
            CachePath::RemoteHit => "remote hit",
            CachePath::LocalMiss => "local miss",
            CachePath::RemoteMiss => "remote miss",
            CachePath::Bypass => "bypass",
            CachePath::Other => "other",
        }
    }

    /// Served from a cache (local or remote hit).
    pub fn is_hit(self) -> bool {
        matches!(self, CachePath::LocalHit | CachePath::RemoteHit)
    }
}

/// The path a `Cache-Status` field value tells (see the module contract).
pub fn cache_path(cache_status: &str) -> CachePath {
    let members: Vec<Vec<&str>> = cache_status
        .split(',')
        .map(|m| m.split(';').map(str::trim).collect())
        .filter(|m: &Vec<&str>| m.first().is_some_and(|id| !id.is_empty()))
        .collect();
    let has = |m: &Vec<&str>, p: &str| m.iter().skip(1).any(|x| *x == p);
    match members.as_slice() {
        [] => CachePath::Other,
        [one] if has(one, "hit") => CachePath::LocalHit,
        [one] if has(one, "fwd=bypass") => CachePath::Bypass,
        [one] if has(one, "fwd=miss") => CachePath::LocalMiss,
        [_] => CachePath::Other,
        [owner, ..] if has(owner, "hit") => CachePath::RemoteHit,
        [owner, ..] if has(owner, "fwd=miss") => CachePath::RemoteMiss,
        _ => CachePath::Other,
    }
}

/// What a short request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A cacheable object from the static origin (`/obj/`).
    Static,
    /// A dynamic answer (`/dyn/`), never cached.
    Dynamic,
}

/// A short request's answer: the node that answered (`Via`) and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub node: String,
    pub path: CachePath,
}

/// One short request (a new connection each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Short {
    /// When it started.
    pub at: Duration,
    /// When its answer or its failure came.
    pub ended: Duration,
    pub kind: Kind,
    /// `Err`: why it got no 200 with a `Via` node within its bounds.
    pub answer: Result<Answered, String>,
}

/// One long connection streaming for the whole run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Long {
    /// The node that answered it (`Via`); `None`: it never got a response head.
    pub node: Option<String>,
    /// When it broke (its last byte, or when it failed); `None`: still streaming at the end.
    pub lost_at: Option<Duration>,
    /// Why it broke (`None` while it streams).
    pub why: Option<String>,
}

/// The short requests of a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShortTally {
    pub answered: usize,
    /// Answers per node id.
    pub per_node: BTreeMap<String, usize>,
    /// Static answers per path.
    pub static_paths: BTreeMap<CachePath, usize>,
    pub static_answered: usize,
    pub dynamic_answered: usize,
    /// The failed ones: when each started, and why it failed.
    pub failures: Vec<(Duration, String)>,
}

impl ShortTally {
    /// Requests that failed.
    pub fn failed(&self) -> usize {
        self.failures.len()
    }

    /// Static answers served from a cache.
    pub fn static_hits(&self) -> usize {
        self.static_paths
            .iter()
            .filter(|(p, _)| p.is_hit())
            .map(|(_, n)| n)
            .sum()
    }

    /// `local hit 120, remote hit 300, ...` (paths seen only).
    pub fn paths_line(&self) -> String {
        let cells: Vec<String> = self
            .static_paths
            .iter()
            .map(|(p, n)| format!("{} {n}", p.as_str()))
            .collect();
        cells.join(", ")
    }

    /// `b1 40, b2 38, ...`.
    pub fn nodes_line(&self) -> String {
        let cells: Vec<String> = self
            .per_node
            .iter()
            .map(|(node, n)| format!("{node} {n}"))
            .collect();
        cells.join(", ")
    }
}

/// How long before a fault a failed request may have started to be the fault's: a short
/// request takes milliseconds; one that hung longer before the fault failed on its own.
pub const IN_FLIGHT: Duration = Duration::from_millis(250);

impl Short {
    /// When the request counts: when it started, but a request that failed while one of
    /// `faults` (instants a fault began: a kill) happened, having started at most
    /// [`IN_FLIGHT`] before it, counts at that fault (the first such): it was in flight when
    /// the fault hit, and the fault's step owns it.
    pub fn counted_at(&self, faults: &[Duration]) -> Duration {
        if self.answer.is_ok() {
            return self.at;
        }
        faults
            .iter()
            .copied()
            .filter(|f| *f > self.at && *f <= self.ended && *f - self.at <= IN_FLIGHT)
            .min()
            .unwrap_or(self.at)
    }
}

/// Counts the short requests that count in `[from, to)` (`Short::counted_at` with `faults`).
pub fn tally(shorts: &[Short], faults: &[Duration], from: Duration, to: Duration) -> ShortTally {
    let mut t = ShortTally::default();
    for s in shorts.iter().filter(|s| {
        let at = s.counted_at(faults);
        at >= from && at < to
    }) {
        let a = match &s.answer {
            Ok(a) => a,
            Err(why) => {
                t.failures.push((s.at, why.clone()));
                continue;
            }
        };
        t.answered += 1;
        *t.per_node.entry(a.node.clone()).or_default() += 1;
        match s.kind {
            Kind::Static => {
                t.static_answered += 1;
                *t.static_paths.entry(a.path).or_default() += 1;
            }
            Kind::Dynamic => t.dynamic_answered += 1,
        }
    }
    t
}

/// Long connections per node that answered them (`?`: none did).
fn per_node<'a>(longs: impl Iterator<Item = &'a Long>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for l in longs {
        *counts
            .entry(l.node.clone().unwrap_or_else(|| "?".into()))
            .or_default() += 1;
    }
    counts
}

/// The long connections lost in `[from, to)`, with when.
fn lost_in(
    longs: &[Long],
    from: Duration,
    to: Duration,
) -> impl Iterator<Item = (&Long, Duration)> {
    longs.iter().filter_map(move |l| {
        let at = l.lost_at.filter(|at| *at >= from && *at < to)?;
        Some((l, at))
    })
}

/// Long connections lost in `[from, to)`, per node that answered them (`?`: none did).
pub fn longs_lost(longs: &[Long], from: Duration, to: Duration) -> BTreeMap<String, usize> {
    per_node(lost_in(longs, from, to).map(|(l, _)| l))
}

/// The long connections lost in `[from, to)`: node (`?`: none answered), when, why.
pub fn longs_lost_how(longs: &[Long], from: Duration, to: Duration) -> Vec<(&str, Duration, &str)> {
    lost_in(longs, from, to)
        .map(|(l, at)| {
            (
                l.node.as_deref().unwrap_or("?"),
                at,
                l.why.as_deref().unwrap_or("?"),
            )
        })
        .collect()
}

/// Long connections per node that answered them (`?`: none did).
pub fn longs_per_node(longs: &[Long]) -> BTreeMap<String, usize> {
    per_node(longs.iter())
}

/// `b1 3, b3 6` (empty: `none`).
pub fn per_node_line(counts: &BTreeMap<String, usize>) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    let cells: Vec<String> = counts.iter().map(|(n, c)| format!("{n} {c}")).collect();
    cells.join(", ")
}

/// Origin fetches of the paths starting with `prefix` in an origin's `/_origin/stats`
/// counts: `(paths, total fetches, most fetches of one path)`.
pub fn fetches(counts: &BTreeMap<String, u64>, prefix: &str) -> (usize, u64, u64) {
    let of: Vec<u64> = counts
        .iter()
        .filter(|(p, _)| p.starts_with(prefix))
        .map(|(_, n)| *n)
        .collect();
    (
        of.len(),
        of.iter().sum(),
        of.iter().copied().max().unwrap_or(0),
    )
}

/// The objects under `prefix` fetched again between two counts: path (less the prefix) and
/// how many more times.
pub fn refetched(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    prefix: &str,
) -> Vec<(String, u64)> {
    after
        .iter()
        .filter_map(|(p, n)| {
            let name = p.strip_prefix(prefix)?;
            let more = n.saturating_sub(before.get(p).copied().unwrap_or(0));
            (more > 0).then(|| (name.to_owned(), more))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refetched_names_the_objects_fetched_again_and_how_often() {
        let counts = |cells: &[(&str, u64)]| -> BTreeMap<String, u64> {
            cells.iter().map(|(p, n)| ((*p).to_owned(), *n)).collect()
        };
        let before = counts(&[("/obj/a", 1), ("/obj/b", 1), ("/dyn/x", 4)]);
        let after = counts(&[("/obj/a", 1), ("/obj/b", 3), ("/obj/c", 1), ("/dyn/x", 9)]);
        assert_eq!(
            refetched(&before, &after, "/obj/"),
            vec![("b".to_owned(), 2), ("c".to_owned(), 1)]
        );
    }

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn cache_status_tells_the_four_paths() {
        assert_eq!(cache_path("b1; hit; ttl=590"), CachePath::LocalHit);
        assert_eq!(cache_path("b2; fwd=miss; stored"), CachePath::LocalMiss);
        assert_eq!(
            cache_path("b3; hit; ttl=598, b1; fwd=miss; detail=peer"),
            CachePath::RemoteHit
        );
        assert_eq!(
            cache_path("b4; fwd=miss, b3; fwd=miss; stored; detail=peer"),
            CachePath::RemoteMiss
        );
        assert_eq!(cache_path("b3; fwd=bypass"), CachePath::Bypass);
        assert_eq!(cache_path(""), CachePath::Other);
        assert_eq!(cache_path("b1; fwd=stale"), CachePath::Other);
        assert!(CachePath::RemoteHit.is_hit() && !CachePath::RemoteMiss.is_hit());
    }

    fn short(at: u64, kind: Kind, answer: Option<(&str, CachePath)>) -> Short {
        Short {
            at: d(at),
            ended: d(at + 5),
            kind,
            answer: answer
                .map(|(node, path)| Answered {
                    node: node.into(),
                    path,
                })
                .ok_or_else(|| "no connection within 300 ms".to_owned()),
        }
    }

    #[test]
    fn a_window_counts_answers_paths_and_failures() {
        let shorts = [
            short(0, Kind::Static, Some(("b1", CachePath::LocalMiss))),
            short(10, Kind::Static, Some(("b2", CachePath::RemoteHit))),
            short(20, Kind::Dynamic, Some(("b2", CachePath::Bypass))),
            short(30, Kind::Static, None),
            short(40, Kind::Static, Some(("b1", CachePath::LocalHit))),
        ];
        let t = tally(&shorts, &[], d(10), d(40));
        assert_eq!((t.answered, t.failed()), (2, 1));
        assert_eq!((t.static_answered, t.dynamic_answered), (1, 1));
        assert_eq!(t.nodes_line(), "b2 2");
        assert_eq!(t.paths_line(), "remote hit 1");
        assert_eq!(tally(&shorts, &[], d(0), d(50)).static_hits(), 2);
        // A fault at 32 ms, while the request of 30 ms was in flight: that one counts at the
        // fault; a fault after it ended, or an answered request, changes nothing.
        assert_eq!(tally(&shorts, &[d(32)], d(10), d(32)).failed(), 0);
        assert_eq!(tally(&shorts, &[d(32)], d(32), d(40)).failed(), 1);
        assert_eq!(tally(&shorts, &[d(36)], d(10), d(36)).failed(), 1);
        assert_eq!(shorts[4].counted_at(&[d(42)]), d(40));
        assert_eq!(shorts[3].counted_at(&[d(20), d(34), d(32)]), d(32));
        // One that hung for longer than a request takes before the fault is its own window's.
        let mut hung = short(30, Kind::Static, None);
        hung.ended = d(2030);
        assert_eq!(hung.counted_at(&[d(30) + IN_FLIGHT]), d(30) + IN_FLIGHT);
        assert_eq!(hung.counted_at(&[d(31) + IN_FLIGHT]), d(30));
    }

    #[test]
    fn lost_long_connections_are_counted_per_window_and_node() {
        let longs = [
            Long {
                node: Some("b3".into()),
                lost_at: Some(d(500)),
                why: Some("closed".into()),
            },
            Long {
                node: Some("b1".into()),
                lost_at: Some(d(700)),
                why: None,
            },
            Long {
                node: Some("b3".into()),
                lost_at: None,
                why: None,
            },
        ];
        assert_eq!(
            per_node_line(&longs_lost(&longs, d(0), d(1000))),
            "b1 1, b3 1"
        );
        assert_eq!(per_node_line(&longs_lost(&longs, d(600), d(1000))), "b1 1");
        assert_eq!(per_node_line(&longs_lost(&longs, d(0), d(100))), "none");
        assert_eq!(per_node_line(&longs_per_node(&longs)), "b1 1, b3 2");
    }

    #[test]
    fn origin_fetches_per_prefix() {
        let counts: BTreeMap<String, u64> = [("/obj/s-1", 1), ("/obj/s-2", 2), ("/dyn/a", 9)]
            .into_iter()
            .map(|(p, n)| (p.to_owned(), n))
            .collect();
        assert_eq!(fetches(&counts, "/obj/s-"), (2, 3, 2));
        assert_eq!(fetches(&counts, "/none"), (0, 0, 0));
    }

    #[test]
    fn the_last_node_host_joins() {
        let lan = "name = \"t\"\n[[lan]]\nname = \"lan\"\nsubnet = \"10.9.0.0/24\"\n";
        let host = |n: &str, ip: u8, run: &str| {
            format!("[[host]]\nname = \"{n}\"\nlan = [{{ lan = \"lan\", addr = \"10.9.0.{ip}/24\" }}]\n{run}")
        };
        let dir = |f: &str| format!("run = [\"strait director --config {f}\"]\n");
        let node = |f: &str| format!("run = [\"strait node --config {f}\"]\n");
        let two = format!(
            "{lan}{}{}{}{}{}",
            host("client", 2, ""),
            host("dir-a", 3, &dir("a.toml")),
            host("dir-b", 4, &dir("b.toml")),
            host("b1", 11, &node("1.toml")),
            host("b2", 12, &node("2.toml")),
        );
        assert_eq!(
            story_roles(&Topology::from_toml(&two).expect("topology")),
            Err(StoryError::Nodes(2))
        );
        let three = format!("{two}{}", host("b3", 13, &node("3.toml")));
        let r = story_roles(&Topology::from_toml(&three).expect("topology")).expect("roles");
        assert_eq!(r.joiner.host, "b3");
        let nodes: Vec<&str> = r.nodes.iter().map(|n| n.host.as_str()).collect();
        assert_eq!(nodes, ["b1", "b2"]);
        assert_eq!(r.client, "client");
    }
}
