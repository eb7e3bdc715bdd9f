//! Hot copies: small remote hits kept at the asking node for a short time (`cache.hot_ttl`), so
//! that a key many clients ask for at once is answered here from memory instead of with one
//! exchange with its owner per request.
//!
//! Contract:
//! * A copy is a small fresh object the owner sent as `WireHit` (its wire head and whole body,
//!   the [`Shared`] the lean path made), kept until the earlier of `hot_ttl` from when it came
//!   and the end of its freshness; [`Hot::get`] never returns it after that.
//! * Memory is bounded: the copies' bytes (wire head, body, key) stay under the capacity given
//!   at start (`storage.ram / 16`, see [`capacity_for`]); the least recently used go first.
//!   A copy holds bytes of its own, exact size, never a slice of a peer connection's buffer.
//! * A purge or ban on any node reaches every live member (`cluster::invalidate`), and each
//!   drops its copies with the store's: [`Hot::purge_url`], [`Hot::ban_prefix`]. What a purge
//!   cannot reach (a member it could not ask) is listed in its answer, as for stored objects.
//! * A copy is not a stored object: the cluster still stores each object once (at its owner)
//!   and fetches it from the origin once. A copy may be older than the owner's object by at
//!   most `hot_ttl` (the owner refreshed or replaced it meanwhile): the price of the feature,
//!   which is off (`hot_ttl = "0s"`) unless an operator turns it on.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use quick_cache::sync::Cache;
use quick_cache::Weighter;

use super::flights::Shared;

/// One copy and until when it may be used.
#[derive(Clone)]
struct HotCopy {
    shared: Arc<Shared>,
    until: Instant,
}

#[derive(Clone)]
struct Weigh;

impl Weighter<String, HotCopy> for Weigh {
    fn weight(&self, key: &String, c: &HotCopy) -> u64 {
        (key.len() + c.shared.wire.len()) as u64 + c.shared.body_len + 64
    }
}

/// `s` with bytes of its own, exact size: the answer as received may share the peer
/// connection's read buffer (a frame over 32 KiB is split off it, not copied), which a copy
/// kept for seconds would hold.
fn own_bytes(s: &Shared) -> Shared {
    let body = match &s.body[..] {
        [] => Vec::new(),
        chunks => {
            let mut one = Vec::with_capacity(chunks.iter().map(Bytes::len).sum());
            chunks.iter().for_each(|c| one.extend_from_slice(c));
            vec![Bytes::from(one)]
        }
    };
    Shared {
        wire: Bytes::copy_from_slice(&s.wire),
        checked: s.checked,
        meta: s.meta.clone(),
        upstream: s.upstream.as_deref().map(Bytes::copy_from_slice),
        body,
        body_len: s.body_len,
    }
}

/// The hot copies of one node.
pub struct Hot {
    copies: Cache<String, HotCopy, Weigh>,
}

/// The bytes hot copies may take on a node whose store has `ram` bytes: 1/16 of it, at least
/// 1 MiB.
pub fn capacity_for(ram: u64) -> u64 {
    (ram / 16).max(1 << 20)
}

impl Hot {
    /// Room for `capacity` bytes of copies.
    pub fn new(capacity: u64) -> Hot {
        // quick_cache sizes its tables by the items it expects: small objects, ~4 KiB each.
        let items = usize::try_from(capacity / 4096)
            .unwrap_or(usize::MAX)
            .max(64);
        Hot {
            copies: Cache::with_weighter(items, capacity, Weigh),
        }
    }

    /// Keeps `shared` (a GET's whole answer) for key `key` for `ttl` from `now`, or less when
    /// it is fresh for less; nothing when `ttl` is 0 or it is not fresh now.
    pub fn put(&self, key: &str, shared: &Arc<Shared>, ttl: Duration, now: (Instant, SystemTime)) {
        if ttl.is_zero() || shared.meta.no_cache {
            return;
        }
        let fresh_for = shared
            .meta
            .freshness_lifetime
            .saturating_sub(shared.meta.current_age(now.1));
        let keep = ttl.min(fresh_for);
        if keep.is_zero() {
            return;
        }
        self.copies.insert(
            key.to_owned(),
            HotCopy {
                shared: Arc::new(own_bytes(shared)),
                until: now.0 + keep,
            },
        );
    }

    /// The copy of `key` that may be used at `now`.
    pub fn get(&self, key: &str, now: Instant) -> Option<Arc<Shared>> {
        let c = self.copies.get(key)?;
        if now < c.until {
            return Some(c.shared);
        }
        self.copies.remove(key);
        None
    }

    /// Drops the copy of `key`; whether there was one. Copies are made on the lean path only,
    /// whose keys never carry a route's `cache_key` extension: a URL's key is all there is to
    /// drop, without a scan (an unsafe request from any client calls this).
    pub fn purge(&self, key: &str) -> bool {
        self.copies.remove(key).is_some()
    }

    /// Drops the copies of every key starting with `prefix` ("" drops all); how many.
    pub fn ban_prefix(&self, prefix: &str) -> usize {
        let before = self.copies.len();
        self.copies.retain(|k, _| !k.starts_with(prefix));
        before - self.copies.len()
    }

    /// Copies held (some may have expired and not been looked at since).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.copies.len()
    }

    /// No copy held.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.copies.is_empty()
    }

    /// Bytes the copies take (as weighed).
    #[cfg(test)]
    pub fn bytes(&self) -> u64 {
        self.copies.weight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::remote::wirecheck;
    use crate::policy::meta::StoredMeta;
    use bytes::Bytes;

    const WIRE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n";

    fn shared(lifetime: Duration, age: Duration, now: SystemTime, body: usize) -> Arc<Shared> {
        let wire = Bytes::from_static(WIRE);
        let checked = wirecheck::check(&wire, 5).expect("valid head");
        Arc::new(Shared {
            wire,
            checked,
            meta: StoredMeta {
                request_time: now,
                response_time: now,
                corrected_initial_age: age,
                freshness_lifetime: lifetime,
                no_cache: false,
                must_revalidate: false,
                stale_while_revalidate: None,
                stale_if_error: None,
            },
            upstream: None,
            body: vec![Bytes::from(vec![b'x'; body])],
            body_len: body as u64,
        })
    }

    #[test]
    fn a_copy_holds_its_own_bytes_not_the_buffer_they_arrived_in() {
        let hot = Hot::new(1 << 20);
        let (t0, s0) = (Instant::now(), SystemTime::now());
        // As a peer's read buffer: the body two slices of one large allocation.
        let buffer = Bytes::from(vec![b'y'; 64 * 1024]);
        let mut s = Arc::into_inner(shared(Duration::from_secs(60), Duration::ZERO, s0, 0))
            .expect("one owner");
        s.body = vec![buffer.slice(100..103), buffer.slice(200..202)];
        s.body_len = 5;
        hot.put("k", &Arc::new(s), Duration::from_secs(2), (t0, s0));
        let copy = hot.get("k", t0).expect("kept");
        assert_eq!(copy.body.len(), 1);
        assert_eq!(&copy.body[0][..], b"yyyyy");
        let within = |b: &Bytes| {
            let (start, end) = (
                buffer.as_ptr() as usize,
                buffer.as_ptr() as usize + buffer.len(),
            );
            (start..end).contains(&(b.as_ptr() as usize))
        };
        assert!(
            !within(&copy.body[0]),
            "the copy's body is its own allocation"
        );
        assert_eq!(&copy.wire[..], WIRE);
    }

    #[test]
    fn a_copy_lasts_hot_ttl_or_its_freshness_whichever_ends_first() {
        let hot = Hot::new(1 << 20);
        let (t0, s0) = (Instant::now(), SystemTime::now());
        let secs = Duration::from_secs;
        hot.put("long", &shared(secs(60), secs(0), s0, 5), secs(2), (t0, s0));
        hot.put(
            "short",
            &shared(secs(60), secs(59), s0, 5),
            secs(2),
            (t0, s0),
        );
        assert!(hot.get("long", t0 + Duration::from_millis(1999)).is_some());
        assert!(hot.get("long", t0 + secs(2)).is_none(), "hot_ttl over");
        assert!(hot.get("long", t0).is_none(), "an expired copy is dropped");
        assert!(hot.get("short", t0 + Duration::from_millis(999)).is_some());
        assert!(
            hot.get("short", t0 + secs(1)).is_none(),
            "its freshness over"
        );
        assert!(hot.get("other", t0).is_none());
    }

    #[test]
    fn nothing_is_kept_when_off_stale_or_no_cache() {
        let hot = Hot::new(1 << 20);
        let (t0, s0) = (Instant::now(), SystemTime::now());
        let secs = Duration::from_secs;
        hot.put("off", &shared(secs(60), secs(0), s0, 5), secs(0), (t0, s0));
        hot.put(
            "stale",
            &shared(secs(60), secs(60), s0, 5),
            secs(2),
            (t0, s0),
        );
        let mut nc = shared(secs(60), secs(0), s0, 5);
        Arc::get_mut(&mut nc).unwrap().meta.no_cache = true;
        hot.put("no-cache", &nc, secs(2), (t0, s0));
        assert!(hot.is_empty());
    }

    #[test]
    fn purge_and_ban_drop_copies_and_say_how_many() {
        let hot = Hot::new(1 << 20);
        let (t0, s0) = (Instant::now(), SystemTime::now());
        let s = shared(Duration::from_secs(60), Duration::ZERO, s0, 5);
        let ttl = Duration::from_secs(5);
        for k in ["h/a", "h/ab", "h/b", "g/c"] {
            hot.put(k, &s, ttl, (t0, s0));
        }
        assert!(hot.purge("h/a"));
        assert!(!hot.purge("h/a"), "dropped once");
        assert!(
            hot.get("h/ab", t0).is_some(),
            "another key with the same start"
        );
        assert_eq!(hot.ban_prefix("h/"), 2);
        assert_eq!(hot.len(), 1);
        assert_eq!(hot.ban_prefix(""), 1);
        assert!(hot.is_empty());
    }

    #[test]
    fn memory_stays_under_the_capacity() {
        let cap = 1 << 20;
        let hot = Hot::new(cap);
        let (t0, s0) = (Instant::now(), SystemTime::now());
        let s = shared(Duration::from_secs(60), Duration::ZERO, s0, 10_000);
        for i in 0..1000 {
            hot.put(&format!("k{i}"), &s, Duration::from_secs(5), (t0, s0));
            assert!(hot.bytes() <= cap, "{} over {cap}", hot.bytes());
        }
        assert!(hot.len() < 110, "{} copies of 10 KB in 1 MiB", hot.len());
        assert_eq!(capacity_for(256 << 20), 16 << 20);
        assert_eq!(capacity_for(4 << 20), 1 << 20);
    }
}
