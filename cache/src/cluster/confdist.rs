//! Configuration distribution: the cluster-wide part of the config (`config::shared`: pools
//! and routes) changed by a reload on one node reaches every live member, which applies it
//! or refuses it with the reason.
//!
//! Contract:
//! * Each node runs one shared [`Version`] (`applied`): at start version 0, its own file's;
//!   a reload whose file changed the shared part since the file was last read makes version
//!   `max(seen) + 1` (every version any member announced, applied or refused, counts) and
//!   applies it; a reload that did not change the file's shared part keeps the running
//!   shared part (maybe a distributed one) and applies the file's node-local keys under it.
//! * Each node publishes a [`ConfigNote`] as its gossip note (`strait_lb::membership::notes`,
//!   foca custom broadcasts): the version it runs and, if it refused a newer one, that
//!   version and the reason. Version 0 is never taken from another member.
//! * A node that sees a live member (weight above 0) announce a version above its own, and
//!   above the one it last refused, asks that member for it with `ConfigGet` over the peer
//!   protocol (authenticated like every frame), checks the content hash and the canonical
//!   form, merges the shared sections into its own file (`config::shared::merge`), validates
//!   the result like a reload would, and applies it through the same path as a reload. If
//!   that fails, it keeps the running config and announces the refusal; a refused version is
//!   not tried again, a newer one is. Of two versions with the same number the larger hash
//!   wins (the conflict is logged).
//! * Nothing is written to disk: the file stays as the operator wrote it (see docs/cluster.md).
//!
//! The pure rules, the notes and the fetch are here; the task that applies versions
//! (`node::shared_config`) belongs to the node, which owns the runtime they install into.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use strait_lb::membership::{Member, Note};

use crate::config::shared::{self, Hash, SharedPart, Version};

use super::frame::Frame;
use super::peer::PeerError;
use super::Cluster;

/// How long a member has to answer a `ConfigGet`.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the distribution task looks again without a note change (a fetch that failed
/// is retried then).
pub const RECHECK: Duration = Duration::from_secs(1);
/// Longest refusal reason carried in a note (bytes; longer ones are cut at a character).
pub const MAX_REASON: usize = 400;
/// Note encoding format.
const FORMAT: u8 = 1;

/// What a node announces about its config (its gossip note).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigNote {
    /// The version it runs.
    pub applied: Version,
    /// The last version it refused, with the reason, if newer than `applied`.
    pub refused: Option<(Version, String)>,
}

impl ConfigNote {
    /// `u8` format (1), `u64` number, 32-byte hash, `u8` refused (0/1), then if refused:
    /// `u64` number, 32-byte hash, `u16` reason length, reason (UTF-8, at most
    /// [`MAX_REASON`] bytes).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT];
        put_version(&mut out, &self.applied);
        match &self.refused {
            None => out.push(0),
            Some((v, reason)) => {
                out.push(1);
                put_version(&mut out, v);
                let reason = cut(reason, MAX_REASON);
                out.extend_from_slice(&(reason.len() as u16).to_be_bytes());
                out.extend_from_slice(reason.as_bytes());
            }
        }
        out
    }

    /// The inverse of [`ConfigNote::encode`]; None for anything else.
    pub fn decode(b: &[u8]) -> Option<ConfigNote> {
        let (&FORMAT, rest) = b.split_first()? else {
            return None;
        };
        let (applied, rest) = get_version(rest)?;
        let (&flag, rest) = rest.split_first()?;
        let refused = match flag {
            0 if rest.is_empty() => None,
            1 => {
                let (v, rest) = get_version(rest)?;
                let (len, rest) = rest.split_first_chunk::<2>()?;
                let len = usize::from(u16::from_be_bytes(*len));
                if rest.len() != len || len > MAX_REASON {
                    return None;
                }
                Some((v, std::str::from_utf8(rest).ok()?.to_owned()))
            }
            _ => return None,
        };
        Some(ConfigNote { applied, refused })
    }
}

fn put_version(out: &mut Vec<u8>, v: &Version) {
    out.extend_from_slice(&v.number.to_be_bytes());
    out.extend_from_slice(&v.hash);
}

fn get_version(b: &[u8]) -> Option<(Version, &[u8])> {
    let (number, rest) = b.split_first_chunk::<8>()?;
    let (hash, rest) = rest.split_first_chunk::<32>()?;
    Some((
        Version {
            number: u64::from_be_bytes(*number),
            hash: *hash,
        },
        rest,
    ))
}

/// `s` cut to at most `max` bytes at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The highest version any member announced (applied or refused) and `own`: what a new
/// local version must exceed.
pub fn max_seen(own: &ConfigNote, others: &[ConfigNote]) -> u64 {
    std::iter::once(own)
        .chain(others)
        .flat_map(|n| {
            std::iter::once(n.applied.number).chain(n.refused.as_ref().map(|r| r.0.number))
        })
        .max()
        .unwrap_or(0)
}

/// The version this node should fetch, if any: the highest version a live member runs, when
/// it is above version 0, above what this node runs and above what it refused.
pub fn wanted(own: &ConfigNote, offers: &[Version]) -> Option<Version> {
    let best = offers.iter().copied().filter(|v| v.number > 0).max()?;
    if best <= own.applied {
        return None;
    }
    if own.refused.as_ref().is_some_and(|(r, _)| best <= *r) {
        return None;
    }
    Some(best)
}

/// The members' config notes: `(member, note)` for every live member of weight above 0 that
/// published one, this node excepted.
pub fn offers(
    self_id: &str,
    members: &[Member],
    notes: &std::collections::BTreeMap<String, Note>,
) -> Vec<(Member, ConfigNote)> {
    members
        .iter()
        .filter(|m| m.state.is_live() && m.weight > 0 && m.id != self_id)
        .filter_map(|m| {
            let note = ConfigNote::decode(&notes.get(&m.id)?.data)?;
            Some((m.clone(), note))
        })
        .collect()
}

/// This node's config distribution state.
pub struct ConfigDist {
    state: Mutex<State>,
}

/// What this node runs and last read.
pub struct State {
    /// The shared version running.
    pub applied: Version,
    /// Its canonical text.
    pub applied_text: Arc<str>,
    /// The last newer version refused, and why.
    pub refused: Option<(Version, String)>,
    /// The node's file as last read (its node-local keys are merged under every version).
    pub file_text: String,
    /// The hash of that file's shared part.
    pub file_hash: Hash,
    /// The last equal-number conflict logged (logged once).
    pub conflict_logged: Option<Version>,
}

impl State {
    /// The note this state announces.
    pub fn note(&self) -> ConfigNote {
        ConfigNote {
            applied: self.applied,
            refused: self.refused.clone(),
        }
    }
}

impl ConfigDist {
    /// Version 0: the node's file `file_text`, with shared part `shared`.
    pub fn new(file_text: String, shared: SharedPart) -> ConfigDist {
        ConfigDist {
            state: Mutex::new(State {
                applied: Version {
                    number: 0,
                    hash: shared.hash,
                },
                applied_text: Arc::from(shared.text),
                refused: None,
                file_text,
                file_hash: shared.hash,
                conflict_logged: None,
            }),
        }
    }

    /// Lock the state (held while a version is validated and applied).
    pub fn lock(&self) -> parking_lot::MutexGuard<'_, State> {
        self.state.lock()
    }

    /// The running version and its text.
    pub fn applied(&self) -> (Version, Arc<str>) {
        let s = self.state.lock();
        (s.applied, Arc::clone(&s.applied_text))
    }
}

/// Publish this node's note from `state`.
pub fn announce(cluster: &Cluster, state: &State) {
    if let Err(e) = cluster.members.set_note(state.note().encode()) {
        tracing::error!(error = %e, "config version not announced");
    }
}

/// Ask `member` for `want`; the text is checked against the hash and the canonical form.
pub async fn fetch(cluster: &Cluster, member: &Member, want: Version) -> Result<String, String> {
    let ask = async {
        let mut c = cluster.peers.dial(member.peer_addr).await?;
        c.send(Frame::ConfigGet {
            version: want.number,
            hash: want.hash,
        })
        .await?;
        let answer = c.recv(FETCH_TIMEOUT).await?;
        if matches!(answer, Frame::Config { .. } | Frame::Error { .. }) {
            cluster.peers.put(c);
        }
        Ok::<Frame, PeerError>(answer)
    };
    let answer = tokio::time::timeout(FETCH_TIMEOUT, ask)
        .await
        .map_err(|_| format!("no answer within {FETCH_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
    match answer {
        Frame::Config {
            version,
            hash,
            text,
        } if version == want.number && hash == want.hash => {
            let part = shared::parse_shared(&text)?;
            if part.hash != want.hash {
                return Err(format!(
                    "content hash {} is not the announced {}",
                    shared::short_hex(&part.hash),
                    shared::short_hex(&want.hash)
                ));
            }
            Ok(text)
        }
        Frame::Config { version, hash, .. } => Err(format!(
            "sent v{version} ({}) instead",
            shared::short_hex(&hash)
        )),
        Frame::Error { code, message } => Err(format!("error {code}: {message}")),
        other => Err(format!("unexpected {} frame", other.name())),
    }
}

/// The `Config` answer to `ConfigGet { version, hash }`: the running version's text, or an
/// `Error` 404 when this node does not run that version.
pub fn answer(dist: &ConfigDist, version: u64, hash: Hash) -> Frame {
    let (applied, text) = dist.applied();
    if applied.number == version && applied.hash == hash {
        return Frame::Config {
            version,
            hash,
            text: text.to_string(),
        };
    }
    Frame::Error {
        code: 404,
        message: format!(
            "this node runs {}, not v{version} ({})",
            applied.label(),
            shared::short_hex(&hash)
        ),
    }
}

/// Validation problems of a merged config, for a refusal: their messages (positions in a
/// merged text mean nothing to an operator), joined by `; `.
pub fn reasons(diagnostics: &[crate::config::Diagnostic]) -> String {
    let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
    messages.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use strait_lb::membership::MemberState;

    fn v(number: u64, h: u8) -> Version {
        Version {
            number,
            hash: [h; 32],
        }
    }

    fn note(applied: Version, refused: Option<(Version, &str)>) -> ConfigNote {
        ConfigNote {
            applied,
            refused: refused.map(|(v, r)| (v, r.to_owned())),
        }
    }

    #[test]
    fn notes_round_trip_and_long_reasons_are_cut() {
        for n in [
            note(v(0, 1), None),
            note(v(7, 2), Some((v(8, 3), "route 1: bad regex"))),
        ] {
            assert_eq!(ConfigNote::decode(&n.encode()), Some(n));
        }
        let long = "é".repeat(MAX_REASON);
        let n = note(v(1, 1), Some((v(2, 2), &long)));
        let back = ConfigNote::decode(&n.encode()).unwrap();
        let reason = back.refused.unwrap().1;
        assert!(reason.len() <= MAX_REASON && long.starts_with(&reason));
        assert!(n.encode().len() <= strait_lb::membership::notes::MAX_NOTE_DATA);
        let e = note(v(1, 1), None).encode();
        for bad in [&b""[..], &e[..e.len() - 1], &[2][..]] {
            assert_eq!(ConfigNote::decode(bad), None);
        }
        let mut trailing = e.clone();
        trailing.push(0);
        assert_eq!(ConfigNote::decode(&trailing), None);
    }

    #[test]
    fn a_node_wants_the_highest_newer_version_it_did_not_refuse() {
        let own = note(v(2, 5), None);
        // Nothing newer, or version 0 (a file never distributed): nothing to fetch.
        assert_eq!(wanted(&own, &[v(1, 9), v(2, 5)]), None);
        assert_eq!(wanted(&note(v(0, 1), None), &[v(0, 9)]), None);
        // The highest newer one.
        assert_eq!(wanted(&own, &[v(3, 1), v(4, 0), v(1, 9)]), Some(v(4, 0)));
        // The same number with a larger hash wins; a smaller one does not.
        assert_eq!(wanted(&own, &[v(2, 6)]), Some(v(2, 6)));
        assert_eq!(wanted(&own, &[v(2, 4)]), None);
        // A refused version is not tried again; a newer one is.
        let refused = note(v(2, 5), Some((v(3, 1), "no")));
        assert_eq!(wanted(&refused, &[v(3, 1)]), None);
        assert_eq!(wanted(&refused, &[v(3, 2)]), Some(v(3, 2)));
        assert_eq!(wanted(&refused, &[v(4, 0)]), Some(v(4, 0)));
        // A new local version exceeds every version seen, refused ones included.
        assert_eq!(max_seen(&refused, &[note(v(1, 1), None)]), 3);
        assert_eq!(max_seen(&own, &[note(v(1, 1), Some((v(6, 0), "x")))]), 6);
    }

    #[test]
    fn offers_come_from_live_key_owning_members_other_than_self() {
        let m = |id: &str, weight, state| Member {
            id: id.into(),
            peer_addr: "127.0.0.1:7070".parse().unwrap(),
            gossip_addr: "127.0.0.1:7946".parse().unwrap(),
            weight,
            state,
            started_ms: 0,
        };
        let members = [
            m("a", 1, MemberState::Alive),
            m("b", 1, MemberState::Dead),
            m("d", 0, MemberState::Alive),
            m("me", 1, MemberState::Alive),
            m("s", 1, MemberState::Suspect),
            m("x", 1, MemberState::Alive),
        ];
        let n = |applied| Note {
            epoch: 1,
            seq: 1,
            data: Arc::from(note(applied, None).encode()),
        };
        let mut notes = std::collections::BTreeMap::new();
        for id in ["a", "b", "d", "me", "s"] {
            notes.insert(id.to_owned(), n(v(1, 1)));
        }
        notes.insert(
            "x".into(),
            Note {
                epoch: 1,
                seq: 1,
                data: Arc::from(&b"garbage"[..]),
            },
        );
        let ids: Vec<String> = offers("me", &members, &notes)
            .into_iter()
            .map(|(m, _)| m.id)
            .collect();
        assert_eq!(ids, ["a", "s"]);
    }

    #[test]
    fn a_member_answers_only_the_version_it_runs() {
        let part = shared::shared_part("[[pool]]\nname = \"p\"\nservers = []\n").unwrap();
        let dist = ConfigDist::new(String::new(), part.clone());
        assert_eq!(
            answer(&dist, 0, part.hash),
            Frame::Config {
                version: 0,
                hash: part.hash,
                text: part.text.clone()
            }
        );
        assert!(matches!(
            answer(&dist, 1, part.hash),
            Frame::Error { code: 404, .. }
        ));
        assert!(matches!(
            answer(&dist, 0, [0; 32]),
            Frame::Error { code: 404, .. }
        ));
    }
}
