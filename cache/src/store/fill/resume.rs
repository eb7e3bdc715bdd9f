//! Resuming a fill mid-body: a new writer takes over a fill whose first writer went away (a
//! fill lease holder that died or stalled, `http::lease`), with a new response for the same
//! key, and continues the body at the byte where it stopped.
//!
//! Contract:
//! * The offset is the fill's own: [`FillWriter::pushed`], the bytes already pushed. Every
//!   reader is at or before it (storing mode keeps every byte; streaming mode keeps what the
//!   slowest live reader has not read), so continuing the same writer at that byte gives every
//!   reader one continuous body, whatever it had read.
//! * The new response continues the fill only if it is the same representation as the head the
//!   readers were given ([`same_representation`]): the same status; no differing
//!   `Content-Length`; and either both `ETag`s strong and equal, or (no `ETag` on either side)
//!   both `Last-Modified` equal and both `Content-Length` present and equal. A weak or missing
//!   validator on one side is a refusal: a weak tag promises equivalence, not the same bytes.
//! * Its first `offset` bytes are skipped ([`Skip`]): the new request is a plain GET for the
//!   whole object, so this works with any origin.
//! * [`resume`] ends the fill either way: whole (every byte, as long as announced, within the
//!   limit) → `finish` runs (the caller stores it); refused, cut, too long or too short → the
//!   fill is aborted, so every reader gets the bytes it had and then [`FollowError::Aborted`]
//!   (`super::FollowError`): a body is never completed with another representation's bytes.

use bytes::Bytes;
use http::header::{ETAG, LAST_MODIFIED};
use http::{HeaderMap, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;

use super::FillWriter;
use crate::policy::headers::content_length;

/// Why a new response is the same representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Same {
    /// Both carry the same strong `ETag`.
    StrongEtag,
    /// Neither carries an `ETag`; `Last-Modified` and `Content-Length` are equal.
    LastModifiedAndLength,
}

/// Why a new response may not continue the fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the status differs")]
    Status,
    #[error("the Content-Length differs")]
    Length,
    #[error("the ETag differs or is weak")]
    Etag,
    #[error("no validator shows it is the same representation")]
    NoValidator,
}

impl Refused {
    /// Stable name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Status => "status",
            Refused::Length => "length",
            Refused::Etag => "etag",
            Refused::NoValidator => "no_validator",
        }
    }
}

/// Whether `new` (a fresh answer for the key) is the representation `old` (the head the fill's
/// readers were given) announced, so its bytes may continue `old`'s body. See the module doc.
pub fn same_representation(
    old_status: StatusCode,
    old: &HeaderMap,
    new_status: StatusCode,
    new: &HeaderMap,
) -> Result<Same, Refused> {
    if old_status != new_status {
        return Err(Refused::Status);
    }
    let (old_len, new_len) = (content_length(old), content_length(new));
    if let (Some(a), Some(b)) = (old_len, new_len) {
        if a != b {
            return Err(Refused::Length);
        }
    }
    match (old.get(ETAG), new.get(ETAG)) {
        (Some(a), Some(b)) => {
            let strong = !a.as_bytes().starts_with(b"W/") && a.as_bytes().starts_with(b"\"");
            if strong && a == b {
                Ok(Same::StrongEtag)
            } else {
                Err(Refused::Etag)
            }
        }
        (Some(_), None) | (None, Some(_)) => Err(Refused::Etag),
        (None, None) => {
            let same_date = match (old.get(LAST_MODIFIED), new.get(LAST_MODIFIED)) {
                (Some(a), Some(b)) => a == b || same_http_date(a.as_bytes(), b.as_bytes()),
                _ => false,
            };
            if same_date && old_len.is_some() && old_len == new_len {
                Ok(Same::LastModifiedAndLength)
            } else {
                Err(Refused::NoValidator)
            }
        }
    }
}

fn same_http_date(a: &[u8], b: &[u8]) -> bool {
    let parse = |v: &[u8]| {
        std::str::from_utf8(v)
            .ok()
            .and_then(crate::policy::date::parse)
    };
    matches!((parse(a), parse(b)), (Some(x), Some(y)) if x == y)
}

/// Drops the first `n` bytes of a body that arrives in chunks.
#[derive(Debug)]
pub struct Skip {
    left: u64,
}

impl Skip {
    pub fn new(n: u64) -> Self {
        Self { left: n }
    }

    /// The part of `chunk` past the skipped bytes (None while still skipping).
    pub fn take(&mut self, chunk: Bytes) -> Option<Bytes> {
        let len = chunk.len() as u64;
        if len <= self.left {
            self.left -= len;
            return None;
        }
        // `left < len`, a chunk's length: fits in usize.
        let rest = chunk.slice(self.left as usize..);
        self.left = 0;
        (!rest.is_empty()).then_some(rest)
    }

    /// Bytes still to skip.
    pub fn left(&self) -> u64 {
        self.left
    }
}

/// How a [`resume`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resumed {
    /// The body went on at `from` and is whole: `total` bytes. `finish` ran.
    Whole { from: u64, total: u64, by: Same },
    /// Another representation: nothing of it was pushed; the fill was aborted at `from`.
    Refused { from: u64, why: Refused },
    /// The new body failed, ended before the fill was whole, or ran past the announced length
    /// or `limit`: the fill was aborted after `total` bytes.
    Cut { from: u64, total: u64 },
}

/// Continues the fill `w` (head published, [`FillWriter::pushed`] bytes of body pushed) with
/// the new response (`new_status`, `new`, `body`), if it is the representation `old_status`
/// and `old` announced; then ends it: `finish(w)` when whole, else an abort. See the module doc.
pub async fn resume<H, B>(
    mut w: FillWriter<H>,
    (old_status, old): (StatusCode, &HeaderMap),
    (new_status, new): (StatusCode, &HeaderMap),
    mut body: B,
    limit: u64,
    finish: impl FnOnce(FillWriter<H>),
) -> Resumed
where
    H: Send + Sync + 'static,
    B: Body<Data = Bytes> + Unpin,
{
    let from = w.pushed();
    let by = match same_representation(old_status, old, new_status, new) {
        Ok(by) => by,
        Err(why) => {
            w.abort();
            return Resumed::Refused { from, why };
        }
    };
    let expect = content_length(old);
    let mut skip = Skip::new(from);
    let mut total = from;
    let cut = |w: FillWriter<H>, total| {
        w.abort();
        Resumed::Cut { from, total }
    };
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let Some(rest) = skip.take(data) else {
                    continue;
                };
                total += rest.len() as u64;
                if total > limit || expect.is_some_and(|n| total > n) {
                    return cut(w, total);
                }
                w.push(rest).await;
            }
            Some(Err(_)) => return cut(w, total),
            None => break,
        }
    }
    if skip.left() > 0 || expect.is_some_and(|n| total != n) {
        return cut(w, total);
    }
    finish(w);
    Resumed::Whole { from, total, by }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use http::HeaderValue;
    use http_body::Frame;

    use super::super::tests::{follow, head, lead, read_all, WAIT};
    use super::super::{Fills, FollowError};
    use super::*;

    fn headers(fields: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in fields {
            h.insert(*name, HeaderValue::from_static(value));
        }
        h
    }

    const LM: &str = "Thu, 01 Jan 2026 00:00:00 GMT";

    #[test]
    fn a_strong_etag_or_last_modified_and_length_is_the_same_representation() {
        let ok = StatusCode::OK;
        let tagged = headers(&[("etag", "\"v1\""), ("content-length", "6")]);
        assert_eq!(
            same_representation(ok, &tagged, ok, &tagged),
            Ok(Same::StrongEtag)
        );
        let dated = headers(&[("last-modified", LM), ("content-length", "6")]);
        assert_eq!(
            same_representation(ok, &dated, ok, &dated),
            Ok(Same::LastModifiedAndLength)
        );
        // The same date written another way (obsolete RFC 850 form) is the same date.
        let rfc850 = headers(&[
            ("last-modified", "Thursday, 01-Jan-26 00:00:00 GMT"),
            ("content-length", "6"),
        ]);
        assert_eq!(
            same_representation(ok, &dated, ok, &rfc850),
            Ok(Same::LastModifiedAndLength)
        );
    }

    #[test]
    fn anything_less_is_refused() {
        let ok = StatusCode::OK;
        let v1 = headers(&[("etag", "\"v1\""), ("content-length", "6")]);
        let cases: [(StatusCode, HeaderMap, HeaderMap, Refused); 7] = [
            (
                StatusCode::NOT_FOUND,
                v1.clone(),
                v1.clone(),
                Refused::Status,
            ),
            (
                ok,
                v1.clone(),
                headers(&[("etag", "\"v2\"")]),
                Refused::Etag,
            ),
            (
                ok,
                v1.clone(),
                headers(&[("etag", "\"v1\""), ("content-length", "7")]),
                Refused::Length,
            ),
            (
                ok,
                headers(&[("etag", "W/\"v1\"")]),
                headers(&[("etag", "W/\"v1\"")]),
                Refused::Etag,
            ),
            (
                ok,
                v1.clone(),
                headers(&[("content-length", "6")]),
                Refused::Etag,
            ),
            (
                ok,
                headers(&[("last-modified", LM)]),
                headers(&[("last-modified", LM)]),
                Refused::NoValidator,
            ),
            (
                ok,
                headers(&[("last-modified", LM), ("content-length", "6")]),
                headers(&[
                    ("last-modified", "Fri, 02 Jan 2026 00:00:00 GMT"),
                    ("content-length", "6"),
                ]),
                Refused::NoValidator,
            ),
        ];
        for (new_status, old, new, why) in cases {
            assert_eq!(
                same_representation(ok, &old, new_status, &new),
                Err(why),
                "{old:?} → {new_status} {new:?}"
            );
        }
    }

    #[test]
    fn skip_drops_the_first_bytes_across_chunks() {
        let mut s = Skip::new(5);
        assert_eq!(s.take(Bytes::from_static(b"abc")), None);
        assert_eq!(s.take(Bytes::from_static(b"de")), None);
        assert_eq!(s.left(), 0);
        assert_eq!(
            s.take(Bytes::from_static(b"fg")),
            Some(Bytes::from_static(b"fg"))
        );
        let mut s = Skip::new(2);
        assert_eq!(
            s.take(Bytes::from_static(b"abcd")),
            Some(Bytes::from_static(b"cd"))
        );
        let mut none = Skip::new(0);
        assert_eq!(none.take(Bytes::new()), None);
        assert_eq!(
            none.take(Bytes::from_static(b"x")),
            Some(Bytes::from_static(b"x"))
        );
    }

    /// A body of the given chunks, then an error if `fail`.
    struct Chunks {
        chunks: VecDeque<&'static [u8]>,
        fail: bool,
    }

    fn body(chunks: &[&'static [u8]], fail: bool) -> Chunks {
        Chunks {
            chunks: chunks.iter().copied().collect(),
            fail,
        }
    }

    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            match self.chunks.pop_front() {
                Some(c) => Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(c))))),
                None if self.fail => {
                    self.fail = false;
                    Poll::Ready(Some(Err(std::io::Error::other("cut"))))
                }
                None => Poll::Ready(None),
            }
        }
    }

    /// A fill whose first writer pushed "abc" of a 6-byte body tagged "v1", a follower that
    /// read "ab" of it and one that joined later; the first writer is gone (its writer is
    /// handed to `resume`).
    async fn broken_fill(
        fills: &Fills<String>,
    ) -> (
        FillWriter<String>,
        HeaderMap,
        [super::super::FillReader<String>; 2],
    ) {
        let mut w = lead(fills, "/k");
        let mut early = follow(fills, "/k");
        w.publish(head("200"), true);
        w.push(Bytes::from_static(b"ab")).await;
        assert_eq!(early.head(WAIT).await.ok(), Some(head("200")));
        assert_eq!(
            early.next_chunk().await,
            Some(Ok(Bytes::from_static(b"ab")))
        );
        w.push(Bytes::from_static(b"c")).await;
        let late = follow(fills, "/k");
        let old = headers(&[("etag", "\"v1\""), ("content-length", "6")]);
        (w, old, [early, late])
    }

    #[tokio::test]
    async fn the_same_representation_continues_every_reader_at_its_byte() {
        let fills = Fills::new();
        let (w, old, [mut early, mut late]) = broken_fill(&fills).await;
        let stored = Arc::new(parking_lot::Mutex::new(None));
        let keep = Arc::clone(&stored);
        let ok = StatusCode::OK;
        let got = resume(
            w,
            (ok, &old),
            (ok, &old),
            body(&[b"a", b"bcd", b"ef"], false),
            1024,
            move |w| *keep.lock() = w.finish(),
        )
        .await;
        let by = Same::StrongEtag;
        assert_eq!(
            got,
            Resumed::Whole {
                from: 3,
                total: 6,
                by
            }
        );
        assert_eq!(stored.lock().as_deref(), Some(&b"abcdef"[..]), "finish ran");
        assert_eq!(read_all(&mut early).await, (b"cdef".to_vec(), None));
        assert_eq!(read_all(&mut late).await, (b"abcdef".to_vec(), None));
    }

    #[tokio::test]
    async fn another_representation_is_refused_and_the_body_ends_incomplete() {
        let fills = Fills::new();
        let (w, old, [mut early, mut late]) = broken_fill(&fills).await;
        let new = headers(&[("etag", "\"v2\""), ("content-length", "6")]);
        let ok = StatusCode::OK;
        let got = resume(
            w,
            (ok, &old),
            (ok, &new),
            body(&[b"ABCDEF"], false),
            1024,
            |_| panic!("a refused resume never finishes the fill"),
        )
        .await;
        let why = Refused::Etag;
        assert_eq!(got, Resumed::Refused { from: 3, why });
        let aborted = Some(FollowError::Aborted);
        assert_eq!(read_all(&mut early).await, (b"c".to_vec(), aborted));
        assert_eq!(read_all(&mut late).await, (b"abc".to_vec(), aborted));
        assert_eq!(fills.in_flight(), 0, "the key is free for a new fill");
    }

    #[tokio::test]
    async fn a_new_body_that_fails_or_runs_short_or_long_cuts_the_fill() {
        let ok = StatusCode::OK;
        let cases: [(Chunks, u64, u64); 4] = [
            (body(&[b"abcd"], true), 1024, 4),
            (body(&[b"abcde"], false), 1024, 5),
            (body(&[b"ab"], false), 1024, 3),
            (body(&[b"abcdefg"], false), 1024, 7),
        ];
        for (new_body, limit, total) in cases {
            let fills = Fills::new();
            let (w, old, [mut early, _late]) = broken_fill(&fills).await;
            let got = resume(w, (ok, &old), (ok, &old), new_body, limit, |_| {
                panic!("never whole")
            })
            .await;
            assert_eq!(got, Resumed::Cut { from: 3, total });
            let (_, end) = read_all(&mut early).await;
            assert_eq!(end, Some(FollowError::Aborted));
        }
        // Past the limit (no length announced): cut too.
        let fills = Fills::new();
        let (w, _, [mut early, _late]) = broken_fill(&fills).await;
        let dated = headers(&[("last-modified", LM), ("content-length", "6")]);
        let got = resume(
            w,
            (ok, &dated),
            (ok, &dated),
            body(&[b"abcdef"], false),
            5,
            |_| panic!("never whole"),
        )
        .await;
        assert_eq!(got, Resumed::Cut { from: 3, total: 6 });
        assert_eq!(read_all(&mut early).await.1, Some(FollowError::Aborted));
    }
}
