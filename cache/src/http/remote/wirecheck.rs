//! A `WireHit`'s head, checked before any of it reaches a client, and the answer written
//! from it (pure: no I/O).
//!
//! Contract: [`check`] accepts only what an owner's store keeps as a wire head — one
//! complete HTTP/1.1 status line (200..=599, not 304) and header lines, nothing after the
//! blank line, exactly one `Content-Length` equal to the body announced, none of the fields
//! that frame or route a connection (`Transfer-Encoding`, `Connection`, …) and none of those
//! the asking node writes itself (`Age`, `Cache-Status`) or that stop an object from having a
//! wire form (`Vary`). Anything else is an error naming what was wrong, and the request takes
//! the general path. [`write_answer`] writes what the general path's remote hit sends: the
//! stored head, this node's `Via` entry after the others, `Age`, `Cache-Status` (the owner's
//! member then this node's), `Connection: close` when asked.

use crate::policy::headers::plain_length;

/// Most header lines a wire head may hold (the store keeps at most 64).
const MAX_LINES: usize = 96;

/// Fields a wire head never holds.
const REFUSED: &[&str] = &[
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
    "trailer",
    "age",
    "cache-status",
    "vary",
];

/// What [`check`] found in a wire head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub status: u16,
    /// Offset just past the last `Via` value, when there is one: this node's entry goes there.
    pub via_end: Option<usize>,
}

/// Checks `wire` against the body length announced with it (see the module doc).
pub fn check(wire: &[u8], body_len: u64) -> Result<Checked, &'static str> {
    // Filled by httparse as it parses (nothing to initialise first).
    let mut lines = [std::mem::MaybeUninit::uninit(); MAX_LINES];
    let mut resp = httparse::Response::new(&mut []);
    match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, wire, &mut lines)
    {
        Ok(httparse::Status::Complete(n)) if n == wire.len() => {}
        Ok(httparse::Status::Complete(_)) => return Err("bytes after the head"),
        Ok(httparse::Status::Partial) => return Err("an incomplete head"),
        Err(_) => return Err("not an HTTP/1.1 response head"),
    }
    if resp.version != Some(1) {
        return Err("not HTTP/1.1");
    }
    let status = resp.code.unwrap_or(0);
    if !(200..=599).contains(&status) || status == 304 {
        return Err("a status a stored object cannot have");
    }
    // httparse accepts bare LF line ends; a wire head has CRLF only: every line ends right
    // before a field name (or at the blank line, the head's last four bytes), and no value
    // holds a line end (httparse refuses one).
    let base = wire.as_ptr() as usize;
    let crlf_before = |at: usize| at >= 2 && &wire[at - 2..at] == b"\r\n";
    if !wire.ends_with(b"\r\n\r\n")
        || resp
            .headers
            .iter()
            .any(|h| !crlf_before(h.name.as_ptr() as usize - base))
    {
        return Err("a bare LF");
    }
    let mut length = None;
    let mut via_end = None;
    for h in resp.headers.iter() {
        let name = h.name;
        if REFUSED.iter().any(|r| name.eq_ignore_ascii_case(r)) {
            return Err("a field a wire head never holds");
        }
        if name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return Err("two Content-Length fields");
            }
            // Only the spelling this node's store writes: a peer's head with another is
            // refused, never passed on to be read two ways.
            length = Some(plain_length(h.value).ok_or("a Content-Length that is no length")?);
        } else if name.eq_ignore_ascii_case("via") {
            let at = h.value.as_ptr() as usize - wire.as_ptr() as usize;
            via_end = Some(at + h.value.len());
        }
    }
    match length {
        Some(n) if n == body_len => Ok(Checked { status, via_end }),
        Some(_) => Err("a Content-Length other than the body's"),
        None => Err("no Content-Length"),
    }
}

/// Slots in a [`Verdicts`] memo.
const VERDICT_SLOTS: usize = 4096;
/// Longest head a [`Verdicts`] memo keeps (longer ones are checked every time).
const VERDICT_MAX_HEAD: usize = 2048;

/// [`check`]'s verdicts on the heads it accepted, remembered: an owner sends the same wire
/// head for every hit on one stored object, and parsing it again is most of what a remote
/// hit costs the asking node. A verdict is a pure function of the head's bytes and the body
/// length, so one kept for exactly those bytes (compared whole, not by hash) is the verdict
/// `check` would give again.
///
/// Bounded: [`VERDICT_SLOTS`] slots, one head each (a copy of at most [`VERDICT_MAX_HEAD`]
/// bytes, never a slice of a peer's buffer that would keep it alive: 8 MiB at most). A head
/// may sit in either of two slots chosen by a hash seeded per process; a new one takes the
/// first of them that is empty, else the first. A peer sending many distinct heads only
/// makes itself misses.
pub struct Verdicts {
    hasher: foldhash::fast::RandomState,
    slots: Box<[parking_lot::Mutex<Option<Verdict>>]>,
}

struct Verdict {
    wire: Box<[u8]>,
    body_len: u64,
    checked: Checked,
}

impl Default for Verdicts {
    fn default() -> Self {
        Verdicts {
            hasher: Default::default(),
            slots: (0..VERDICT_SLOTS).map(|_| Default::default()).collect(),
        }
    }
}

impl Verdicts {
    /// [`check`], answered from the memo when it holds this head.
    pub fn check(&self, wire: &[u8], body_len: u64) -> Result<Checked, &'static str> {
        if wire.len() > VERDICT_MAX_HEAD {
            return check(wire, body_len);
        }
        use std::hash::BuildHasher;
        let h = self.hasher.hash_one(wire);
        let slots = [h as u32, (h >> 32) as u32].map(|i| &self.slots[i as usize % VERDICT_SLOTS]);
        for slot in slots {
            if let Some(v) = &*slot.lock() {
                if v.body_len == body_len && *v.wire == *wire {
                    return Ok(v.checked);
                }
            }
        }
        let checked = check(wire, body_len)?;
        let verdict = Some(Verdict {
            wire: wire.into(),
            body_len,
            checked,
        });
        let mut first = slots[0].lock();
        if first.is_none() {
            *first = verdict;
        } else {
            drop(first);
            let mut second = slots[1].lock();
            if second.is_none() {
                *second = verdict;
            } else {
                drop(second);
                *slots[0].lock() = verdict;
            }
        }
        Ok(checked)
    }
}

/// The answer's head, written to `out`: see the module doc. `via` is this node's entry
/// (`1.1 a (strait)`), `cache_status` the whole field value in pieces written one after the
/// other (no string of the value made per answer). Returns where the `Cache-Status` value
/// sits in `out`.
pub fn write_answer(
    out: &mut Vec<u8>,
    wire: &[u8],
    checked: &Checked,
    age_secs: u64,
    via: &str,
    cache_status: &[&[u8]],
    close: bool,
) -> std::ops::Range<usize> {
    // The wire head ends with the blank line: the added fields go before it.
    let head = &wire[..wire.len() - 2];
    match checked.via_end {
        Some(end) => {
            out.extend_from_slice(&head[..end]);
            out.extend_from_slice(b", ");
            out.extend_from_slice(via.as_bytes());
            out.extend_from_slice(&head[end..]);
        }
        None => {
            out.extend_from_slice(head);
            out.extend_from_slice(b"via: ");
            out.extend_from_slice(via.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"age: ");
    out.extend_from_slice(itoa::Buffer::new().format(age_secs).as_bytes());
    out.extend_from_slice(b"\r\ncache-status: ");
    let start = out.len();
    for piece in cache_status {
        out.extend_from_slice(piece);
    }
    let cs = start..out.len();
    if close {
        out.extend_from_slice(b"\r\nconnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
    cs
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIRE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\nvia: 1.1 b (strait)\r\nx-a: 1\r\n\r\n";

    #[test]
    fn verdicts_remember_only_accepted_heads_for_their_exact_bytes_and_length() {
        let v = Verdicts::default();
        let remembered = |v: &Verdicts| v.slots.iter().filter(|s| s.lock().is_some()).count();
        assert_eq!(v.check(WIRE, 5), check(WIRE, 5));
        assert_eq!(remembered(&v), 1);
        // Again: the same verdict, from the memo.
        assert_eq!(v.check(WIRE, 5), check(WIRE, 5));
        assert_eq!(remembered(&v), 1);
        // The same bytes with another body length: checked, and refused.
        assert_eq!(
            v.check(WIRE, 6),
            Err("a Content-Length other than the body's")
        );
        // A refused head is never remembered; nor is one past the size bound.
        let bad = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nage: 3\r\n\r\n";
        assert!(v.check(bad, 5).is_err());
        assert!(v.check(bad, 5).is_err());
        let mut long = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-pad: ".to_vec();
        long.resize(long.len() + VERDICT_MAX_HEAD, b'a');
        long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(v.check(&long, 5), check(&long, 5));
        assert!(v.check(&long, 5).is_ok());
        assert_eq!(remembered(&v), 1);
        // One byte changed: not the remembered head.
        let mut other = WIRE.to_vec();
        *other.iter_mut().rev().nth(5).unwrap() = b'2';
        assert_eq!(v.check(&other, 5), check(&other, 5));
        assert_eq!(remembered(&v), 2);
    }

    #[test]
    fn a_stored_head_passes_and_the_answer_adds_via_age_and_cache_status() {
        let c = check(WIRE, 5).expect("valid");
        assert_eq!(c.status, 200);
        let mut out = Vec::new();
        let cs = write_answer(
            &mut out,
            WIRE,
            &c,
            7,
            "1.1 a (strait)",
            &[b"b; hit; ttl=3", b", ", b"a; fwd=miss; detail=peer"],
            true,
        );
        let text = String::from_utf8(out.clone()).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\
             via: 1.1 b (strait), 1.1 a (strait)\r\nx-a: 1\r\nage: 7\r\n\
             cache-status: b; hit; ttl=3, a; fwd=miss; detail=peer\r\nconnection: close\r\n\r\n"
        );
        assert_eq!(&out[cs], b"b; hit; ttl=3, a; fwd=miss; detail=peer");
        // The answer parses as one response head with everything in it.
        let mut lines = [httparse::EMPTY_HEADER; 16];
        let mut r = httparse::Response::new(&mut lines);
        assert_eq!(
            r.parse(&out).unwrap(),
            httparse::Status::Complete(out.len())
        );
    }

    #[test]
    fn without_via_this_node_adds_the_field() {
        let wire = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        let c = check(wire, 0).expect("valid");
        let mut out = Vec::new();
        write_answer(&mut out, wire, &c, 0, "1.1 a (strait)", &[b"b; hit"], false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nvia: 1.1 a (strait)\r\nage: 0\r\ncache-status: b; hit\r\n\r\n"
        );
    }

    #[test]
    fn anything_a_store_would_not_keep_is_refused() {
        let cases: &[(&[u8], u64, &str)] = &[
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
                5,
                "bytes after the head",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n",
                5,
                "an incomplete head",
            ),
            (
                b"HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\n",
                5,
                "not HTTP/1.1",
            ),
            (
                b"HTTP/1.1 101 Switching\r\ncontent-length: 5\r\n\r\n",
                5,
                "a status a stored object cannot have",
            ),
            (
                b"HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n",
                5,
                "a status a stored object cannot have",
            ),
            (b"HTTP/1.1 200 OK\ncontent-length: 5\n\n", 5, "a bare LF"),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\nx: y\r\n\r\n",
                5,
                "a bare LF",
            ),
            (
                b"HTTP/1.1 200 OK\ncontent-length: 5\r\n\r\n",
                5,
                "a bare LF",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\n",
                5,
                "a bare LF",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n",
                5,
                "a field a wire head never holds",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nConnection: close\r\n\r\n",
                5,
                "a field a wire head never holds",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nage: 3\r\n\r\n",
                5,
                "a field a wire head never holds",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nvary: accept\r\n\r\n",
                5,
                "a field a wire head never holds",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\n",
                5,
                "two Content-Length fields",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\n",
                5,
                "a Content-Length that is no length",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 05\r\n\r\n",
                5,
                "a Content-Length that is no length",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n",
                5,
                "a Content-Length other than the body's",
            ),
            (b"HTTP/1.1 200 OK\r\nx: y\r\n\r\n", 5, "no Content-Length"),
            (
                b"HTTP/1.1 200 OK\r\nx: a\rb\r\ncontent-length: 5\r\n\r\n",
                5,
                "not an HTTP/1.1 response head",
            ),
            (b"garbage", 5, "not an HTTP/1.1 response head"),
        ];
        for (wire, len, why) in cases {
            assert_eq!(
                check(wire, *len),
                Err(*why),
                "{}",
                String::from_utf8_lossy(wire)
            );
        }
    }
}
