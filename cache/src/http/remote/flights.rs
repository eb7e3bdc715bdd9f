//! Lean remote hits for one key at the same time share one exchange with the owner: the
//! first request for a key leads (asks the owner), the others follow it and answer their
//! clients from what it got — a small object's wire head and body, shared, not copied.
//!
//! Contract: [`Flights::join`] makes the first caller for a key the [`Leader`] and every
//! later caller, until the leader lands, a follower holding a [`Landing`] receiver. A leader
//! lands once: [`Landing::Hit`] (the shared answer) or [`Landing::General`] (followers take
//! the general path, where the fill table coalesces them); a leader dropped without landing
//! lands `General`. The key is free for a new leader as soon as its leader lands or drops.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::hash_table::{Entry, HashTable};
use parking_lot::Mutex;
use tokio::sync::watch;

use super::wirecheck::Checked;
use crate::policy::meta::StoredMeta;

/// A small remote hit as the owner sent it: every follower writes its answer from it.
pub struct Shared {
    pub wire: Bytes,
    pub checked: Checked,
    pub meta: StoredMeta,
    /// The owner's `Cache-Status` member, made safe to emit.
    pub upstream: Option<Bytes>,
    pub body: Vec<Bytes>,
    pub body_len: u64,
}

/// How a leader's exchange ended, for its followers.
#[derive(Clone)]
pub enum Landing {
    Hit(Arc<Shared>),
    General,
}

type Slot = watch::Receiver<Option<Landing>>;

/// One key's flight: the channel its followers wait on, made by the first of them (a flight
/// nobody follows, the common case, costs no channel).
struct Flight {
    key: Box<str>,
    hash: u64,
    tx: Option<watch::Sender<Option<Landing>>>,
}

/// The keys with a lean lookup out, and where their followers wait.
#[derive(Default)]
pub struct Flights {
    /// SipHash (std's), keyed per process: the keys are the clients'. Hashed once per flight
    /// (the leader keeps the hash to free the key).
    hasher: RandomState,
    map: Mutex<HashTable<Flight>>,
}

/// What [`Flights::join`] made of a caller.
pub enum Join<'a> {
    Lead(Leader<'a>),
    Follow(Slot),
}

/// The request that asks the owner for a key; see the module doc.
pub struct Leader<'a> {
    flights: &'a Flights,
    key: &'a str,
    hash: u64,
    landed: bool,
}

impl Flights {
    /// Leads the key's flight, or follows the one out.
    pub fn join<'a>(&'a self, key: &'a str) -> Join<'a> {
        let hash = self.hasher.hash_one(key);
        let mut map = self.map.lock();
        match map.entry(hash, |f| &*f.key == key, |f| f.hash) {
            Entry::Occupied(mut o) => {
                let f = o.get_mut();
                let rx = match &f.tx {
                    Some(tx) => tx.subscribe(),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        f.tx = Some(tx);
                        rx
                    }
                };
                Join::Follow(rx)
            }
            Entry::Vacant(v) => {
                v.insert(Flight {
                    key: key.into(),
                    hash,
                    tx: None,
                });
                Join::Lead(Leader {
                    flights: self,
                    key,
                    hash,
                    landed: false,
                })
            }
        }
    }

    /// Keys with a flight out now.
    #[cfg(test)]
    pub fn keys_out(&self) -> usize {
        self.map.lock().len()
    }
}

impl Leader<'_> {
    /// Tells the followers how it ended, and frees the key.
    pub fn land(mut self, landing: Landing) {
        self.finish(landing);
    }

    fn finish(&mut self, landing: Landing) {
        if std::mem::replace(&mut self.landed, true) {
            return;
        }
        let flight = {
            let mut map = self.flights.map.lock();
            let found = map.find_entry(self.hash, |f| &*f.key == self.key);
            found.ok().map(|e| e.remove().0)
        };
        if let Some(Flight { tx: Some(tx), .. }) = flight {
            let _ = tx.send(Some(landing));
        }
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.finish(Landing::General);
    }
}

/// Waits for the leader's landing; `General` when it does not come in `within`.
pub async fn follow(mut rx: Slot, within: std::time::Duration) -> Landing {
    let landed = tokio::time::timeout(within, rx.wait_for(Option::is_some)).await;
    match landed {
        Ok(Ok(v)) => v.clone().unwrap_or(Landing::General),
        _ => Landing::General,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            wire: Bytes::from_static(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"),
            checked: Checked {
                status: 200,
                via_end: None,
            },
            meta: StoredMeta {
                request_time: std::time::UNIX_EPOCH,
                response_time: std::time::UNIX_EPOCH,
                corrected_initial_age: Duration::ZERO,
                freshness_lifetime: Duration::from_secs(60),
                no_cache: false,
                must_revalidate: false,
                stale_while_revalidate: None,
                stale_if_error: None,
            },
            upstream: Some(Bytes::from_static(b"b; hit")),
            body: vec![Bytes::from_static(b"hi")],
            body_len: 2,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn followers_get_the_leaders_answer_and_the_key_is_free_after() {
        let f = Flights::default();
        let Join::Lead(lead) = f.join("k") else {
            panic!("first is the leader")
        };
        let Join::Follow(rx1) = f.join("k") else {
            panic!("second follows")
        };
        let Join::Follow(rx2) = f.join("k") else {
            panic!("third follows")
        };
        assert!(matches!(f.join("other"), Join::Lead(_)));
        let waiting = tokio::spawn(follow(rx1, Duration::from_secs(5)));
        lead.land(Landing::Hit(shared()));
        assert_eq!(f.keys_out(), 0);
        for landing in [
            waiting.await.unwrap(),
            follow(rx2, Duration::from_secs(5)).await,
        ] {
            let Landing::Hit(s) = landing else {
                panic!("not the hit")
            };
            assert_eq!(s.body_len, 2);
        }
        assert!(
            matches!(f.join("k"), Join::Lead(_)),
            "the key is free again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_dropped_or_late_sends_followers_the_general_way() {
        let f = Flights::default();
        let lead = f.join("k");
        let Join::Follow(rx) = f.join("k") else {
            panic!("follows")
        };
        drop(lead);
        assert!(matches!(
            follow(rx, Duration::from_secs(5)).await,
            Landing::General
        ));
        let _lead = f.join("k");
        let Join::Follow(rx) = f.join("k") else {
            panic!("follows")
        };
        let started = tokio::time::Instant::now();
        assert!(matches!(
            follow(rx, Duration::from_secs(2)).await,
            Landing::General
        ));
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }
}
