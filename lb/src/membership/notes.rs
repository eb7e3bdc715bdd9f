//! Per-member notes: a small opaque state each member publishes about itself, carried by
//! gossip as foca custom broadcasts (the cache nodes put their config version in it,
//! `strait_cache::cluster::confdist`; a director publishes none and only relays).
//!
//! Contract:
//! * A note is `(member id, epoch, seq, data)`: `epoch` is the publishing process's start
//!   (milliseconds since the UNIX epoch), `seq` grows on every change of the data, so
//!   `(epoch, seq)` orders a member's notes across restarts. A note invalidates every older
//!   note of the same member in foca's dissemination backlog, and is disseminated (relayed)
//!   only when it is newer than what this node holds: stale or repeated notes stop here.
//! * This node's own note is re-added every [`NOTE_REFRESH`] with the same `(epoch, seq)`, so
//!   members that joined after it was first sent (or missed it) receive it; a member that
//!   already holds it does not relay it again.
//! * At most [`MAX_NOTES`] members' notes are kept; beyond that a new member's note is
//!   dropped (it is not in the cluster's member list anyway: a cluster that large would be
//!   a misconfiguration) until the list shrinks.
//! * Encoding: `u8` format (1), `u16` id length, id (UTF-8), `u64` epoch, `u64` seq, then
//!   the data to the end; everything big-endian. The whole item must fit in one gossip
//!   datagram with foca's own updates ([`MAX_NOTE_DATA`] bounds the data).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// How often this node re-adds its own note to the dissemination backlog.
pub const NOTE_REFRESH: Duration = Duration::from_secs(2);
/// Most members' notes kept.
pub const MAX_NOTES: usize = 4096;
/// Largest note data (bytes); a larger one is refused by [`Membership::set_note`](super::Membership::set_note).
pub const MAX_NOTE_DATA: usize = 768;
/// Encoding format byte.
const FORMAT: u8 = 1;
/// Longest member id in a note.
const MAX_ID: usize = 255;

/// A member's published note, as this node holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Start of the publishing process (ms since the UNIX epoch).
    pub epoch: u64,
    /// Grows with every change of `data` within one epoch.
    pub seq: u64,
    /// What the member published.
    pub data: Arc<[u8]>,
}

/// One broadcast item, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Item {
    pub id: String,
    pub note: Note,
}

/// Why a broadcast item was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    /// Not a note of this format.
    #[error("malformed member note")]
    Malformed,
}

impl Item {
    pub(super) fn encode(&self) -> Vec<u8> {
        let id = self.id.as_bytes();
        let mut out = Vec::with_capacity(19 + id.len() + self.note.data.len());
        out.push(FORMAT);
        out.extend_from_slice(&(id.len() as u16).to_be_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(&self.note.epoch.to_be_bytes());
        out.extend_from_slice(&self.note.seq.to_be_bytes());
        out.extend_from_slice(&self.note.data);
        out
    }

    pub(super) fn decode(b: &[u8]) -> Result<Item, NoteError> {
        let (&format, rest) = b.split_first().ok_or(NoteError::Malformed)?;
        if format != FORMAT {
            return Err(NoteError::Malformed);
        }
        let (len, rest) = rest.split_first_chunk::<2>().ok_or(NoteError::Malformed)?;
        let len = usize::from(u16::from_be_bytes(*len));
        if len == 0 || len > MAX_ID || rest.len() < len + 16 {
            return Err(NoteError::Malformed);
        }
        let (id, rest) = rest.split_at(len);
        let id = std::str::from_utf8(id).map_err(|_| NoteError::Malformed)?;
        let (epoch, rest) = rest.split_first_chunk::<8>().ok_or(NoteError::Malformed)?;
        let (seq, data) = rest.split_first_chunk::<8>().ok_or(NoteError::Malformed)?;
        if data.len() > MAX_NOTE_DATA {
            return Err(NoteError::Malformed);
        }
        Ok(Item {
            id: id.to_owned(),
            note: Note {
                epoch: u64::from_be_bytes(*epoch),
                seq: u64::from_be_bytes(*seq),
                data: Arc::from(data),
            },
        })
    }
}

/// foca's key for a note in its backlog: a newer (or the same) note of a member replaces the
/// queued one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteKey {
    id: String,
    order: (u64, u64),
}

impl foca::Invalidates for NoteKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.id == other.id && self.order >= other.order
    }
}

/// The notes this node holds, shared by the broadcast handler and the gossip task.
#[derive(Debug, Default)]
pub(super) struct Book {
    notes: BTreeMap<String, Note>,
    /// Set when a note was added or replaced since the last [`Book::take_changed`].
    changed: bool,
}

impl Book {
    /// Take `item` if it is newer than what is held for its member; whether it was.
    pub(super) fn offer(&mut self, item: &Item) -> bool {
        let order = (item.note.epoch, item.note.seq);
        match self.notes.get(&item.id) {
            Some(held) if (held.epoch, held.seq) >= order => return false,
            None if self.notes.len() >= MAX_NOTES => return false,
            _ => {}
        }
        self.notes.insert(item.id.clone(), item.note.clone());
        self.changed = true;
        true
    }

    pub(super) fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    pub(super) fn snapshot(&self) -> BTreeMap<String, Note> {
        self.notes.clone()
    }
}

/// foca's broadcast handler for notes.
pub(super) struct NoteHandler {
    pub(super) book: Arc<Mutex<Book>>,
    /// This node's id: notes about it from others are old ones of a previous process.
    pub(super) self_id: String,
}

impl<T> foca::BroadcastHandler<T> for NoteHandler {
    type Key = NoteKey;
    type Error = NoteError;

    fn receive_item(
        &mut self,
        data: &[u8],
        sender: Option<&T>,
    ) -> Result<Option<NoteKey>, NoteError> {
        let item = Item::decode(data)?;
        let key = NoteKey {
            id: item.id.clone(),
            order: (item.note.epoch, item.note.seq),
        };
        if sender.is_none() {
            // Our own, added (or re-added) here: always disseminated.
            self.book.lock().offer(&item);
            return Ok(Some(key));
        }
        if item.id == self.self_id {
            return Ok(None);
        }
        Ok(self.book.lock().offer(&item).then_some(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::{BroadcastHandler, Invalidates};

    fn item(id: &str, epoch: u64, seq: u64, data: &[u8]) -> Item {
        Item {
            id: id.into(),
            note: Note {
                epoch,
                seq,
                data: Arc::from(data),
            },
        }
    }

    #[test]
    fn notes_round_trip_and_malformed_ones_are_refused() {
        let i = item("node-a", 1_700_000_000_000, 3, b"state");
        assert_eq!(Item::decode(&i.encode()), Ok(i.clone()));
        let e = i.encode();
        // The data runs to the end: without it, the note is empty, not malformed.
        assert_eq!(
            Item::decode(&e[..e.len() - 5]),
            Ok(item("node-a", 1_700_000_000_000, 3, b""))
        );
        for bad in [&b""[..], &[2, 0, 1, b'a'][..], &e[..10], &[1, 0, 0][..]] {
            assert_eq!(Item::decode(bad), Err(NoteError::Malformed), "{bad:?}");
        }
        let mut big = item("a", 1, 1, &[0; MAX_NOTE_DATA + 1]).encode();
        assert_eq!(Item::decode(&big), Err(NoteError::Malformed));
        big.pop();
        assert!(Item::decode(&big).is_ok());
    }

    #[test]
    fn a_newer_note_invalidates_older_ones_of_the_same_member_only() {
        let k = |id: &str, e, s| NoteKey {
            id: id.into(),
            order: (e, s),
        };
        assert!(k("a", 1, 2).invalidates(&k("a", 1, 1)));
        assert!(k("a", 1, 2).invalidates(&k("a", 1, 2)));
        assert!(k("a", 2, 0).invalidates(&k("a", 1, 9)));
        assert!(!k("a", 1, 1).invalidates(&k("a", 1, 2)));
        assert!(!k("b", 1, 2).invalidates(&k("a", 1, 1)));
    }

    #[test]
    fn only_newer_notes_are_taken_and_relayed() {
        let book = Arc::new(Mutex::new(Book::default()));
        let mut h = NoteHandler {
            book: Arc::clone(&book),
            self_id: "me".into(),
        };
        let from = 7u8;
        let recv = |h: &mut NoteHandler, i: &Item| {
            BroadcastHandler::<u8>::receive_item(h, &i.encode(), Some(&from))
        };
        assert!(recv(&mut h, &item("b", 1, 1, b"x")).unwrap().is_some());
        assert!(book.lock().take_changed());
        // The same note again, or an older one: not taken, not relayed.
        assert!(recv(&mut h, &item("b", 1, 1, b"x")).unwrap().is_none());
        assert!(recv(&mut h, &item("b", 0, 9, b"old")).unwrap().is_none());
        assert!(!book.lock().take_changed());
        // A newer one replaces it.
        assert!(recv(&mut h, &item("b", 1, 2, b"y")).unwrap().is_some());
        assert_eq!(&*book.lock().snapshot()["b"].data, b"y");
        // Our own id from someone else: an old process's note, ignored.
        assert!(recv(&mut h, &item("me", 9, 9, b"z")).unwrap().is_none());
        // Our own, added locally: always disseminated, even unchanged.
        let mine = item("me", 1, 1, b"m").encode();
        for _ in 0..2 {
            assert!(BroadcastHandler::<u8>::receive_item(&mut h, &mine, None)
                .unwrap()
                .is_some());
        }
        assert_eq!(&*book.lock().snapshot()["me"].data, b"m");
        assert_eq!(
            BroadcastHandler::<u8>::receive_item(&mut h, b"junk", Some(&from)),
            Err(NoteError::Malformed)
        );
    }
}
