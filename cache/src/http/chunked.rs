//! A chunked request body (RFC 9112 §7.1) that came whole with its head, read for the upload
//! lane (`upload_lane`), which sends it upstream with a `Content-Length` in the head's write.
//!
//! Contract: [`whole`] accepts only the plainest form — chunk sizes of 1 to 16 hex digits
//! followed straight by CRLF (no chunk extension, no whitespace, no bare LF), each chunk's
//! data followed by CRLF, a last chunk of zeros, an empty trailer section — wholly inside the
//! given bytes and at most `max` bytes of data. Anything else, including a body not complete
//! yet, is None: the request goes the general (hyper) way with every byte, which reads
//! extensions and trailers, waits for the rest, and refuses what is malformed. [`scan`] tells
//! a body cut short by the end of the bytes (plain so far: [`Scan::Partial`]) from one that
//! will never be taken. What [`whole`] accepts, [`copy_data`] appends, the same data, in order.

/// A whole chunked body at the front of some bytes.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Whole {
    /// Bytes of data (what `Content-Length` announces upstream).
    pub len: u64,
    /// Bytes the chunked body takes (a request pipelined after it starts there).
    pub consumed: usize,
}

/// The whole chunked body at the front of `buf`, with at most `max` bytes of data; None for
/// anything else (see the module doc).
pub fn whole(buf: &[u8], max: u64) -> Option<Whole> {
    walk(buf, max, |_| {}).ok()
}

/// What [`scan`] found at the front of some bytes.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Scan {
    Whole(Whole),
    /// Plain so far, within `max`, and not ended yet: more bytes may make it whole.
    Partial,
    /// Not the plainest form, or more than `max` bytes of data.
    Other,
}

/// [`whole`], telling a body not complete yet from one it will never take.
pub fn scan(buf: &[u8], max: u64) -> Scan {
    match walk(buf, max, |_| {}) {
        Ok(w) => Scan::Whole(w),
        Err(Short) => Scan::Partial,
        Err(Refused) => Scan::Other,
    }
}

/// Appends the data of the chunked body at the front of `buf` that [`whole`] accepted (with
/// the same `max`) to `out`.
pub fn copy_data(buf: &[u8], max: u64, out: &mut Vec<u8>) {
    let start = out.len();
    if walk(buf, max, |data| out.extend_from_slice(data)).is_err() {
        // Not what `whole` accepted: nothing appended.
        out.truncate(start);
    }
}

/// Whether the chunk-size lines at the front of `buf` (those that came so far, followed chunk
/// by chunk) declare more than `limit` bytes of data in all, or one of them has more hex
/// digits than a size may: such a body is refused with a 413 before anything goes upstream
/// (as `chunk_limit` does for hyper's). Anything else this does not follow (a line not ended
/// yet, a size that is not hex) is false: the decoder judges it as it streams.
pub fn declares_over(mut buf: &[u8], limit: u64) -> bool {
    let mut total: u64 = 0;
    loop {
        let Some(lf) = buf.iter().position(|b| *b == b'\n') else {
            return false;
        };
        let digits = buf[..lf]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        if digits > MAX_DIGITS {
            return true;
        }
        if digits == 0 {
            return false;
        }
        let size = size_of(&buf[..digits]);
        total = total.saturating_add(size);
        if total > limit {
            return true;
        }
        if size == 0 {
            return false;
        }
        // The chunk's data and its CRLF, when they came too.
        let next = usize::try_from(size)
            .ok()
            .and_then(|n| n.checked_add(lf + 3))
            .and_then(|at| buf.get(at..));
        let Some(rest) = next else {
            return false;
        };
        buf = rest;
    }
}

/// The value of a chunk size's hex digits (at most [`MAX_DIGITS`]: no overflow).
fn size_of(digits: &[u8]) -> u64 {
    digits.iter().fold(0u64, |n, &d| {
        (n << 4) | u64::from(char::from(d).to_digit(16).unwrap_or(0))
    })
}

/// Most hex digits of a chunk size (a `u64`).
const MAX_DIGITS: usize = 16;

/// Why [`walk`] did not take a body.
enum NotWhole {
    /// The bytes end before the body does (what is there is plain).
    Short,
    /// Not the plainest form, or over `max`.
    Refused,
}
use NotWhole::{Refused, Short};

fn walk(buf: &[u8], max: u64, mut data: impl FnMut(&[u8])) -> Result<Whole, NotWhole> {
    let mut at = 0usize;
    let mut len = 0u64;
    loop {
        let rest = &buf[at..];
        let digits = rest
            .iter()
            .take(MAX_DIGITS + 1)
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        if digits == rest.len() && digits <= MAX_DIGITS {
            // The size line goes on past what is here (or has not started).
            return Err(Short);
        }
        if digits == 0 || digits > MAX_DIGITS {
            return Err(Refused);
        }
        let size = size_of(&rest[..digits]);
        at += digits;
        crlf(buf, &mut at)?;
        if size == 0 {
            // The last chunk, then an empty trailer section.
            crlf(buf, &mut at)?;
            return Ok(Whole { len, consumed: at });
        }
        len = len.checked_add(size).filter(|&l| l <= max).ok_or(Refused)?;
        // `size` <= `max`, which the caller keeps far below `usize::MAX`.
        let end = usize::try_from(size)
            .ok()
            .and_then(|size| at.checked_add(size))
            .ok_or(Refused)?;
        data(buf.get(at..end).ok_or(Short)?);
        at = end;
        crlf(buf, &mut at)?;
    }
}

/// Steps over the CRLF at `at`: `Short` when the bytes end first (or within it), `Refused`
/// when something else is there.
fn crlf(buf: &[u8], at: &mut usize) -> Result<(), NotWhole> {
    let rest = &buf[*at..];
    if rest.starts_with(b"\r\n") {
        *at += 2;
        Ok(())
    } else if b"\r\n".starts_with(rest) {
        Err(Short)
    } else {
        Err(Refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_sizes_over_the_limit_are_seen_before_the_data() {
        // The first size line alone, with or without an extension.
        assert!(declares_over(b"401\r\n", 1024));
        assert!(declares_over(b"401;a=b\r\nxx", 1024));
        assert!(!declares_over(b"400\r\n", 1024));
        // Counted chunk by chunk, following the data that came.
        let two = [&b"200\r\n"[..], &[b'x'; 0x200], b"\r\n201\r\n"].concat();
        assert!(declares_over(&two, 1024));
        assert!(
            !declares_over(&two[..two.len() - 7], 1024),
            "the second line not here yet"
        );
        // A huge size, and more digits than a size may have.
        assert!(declares_over(b"FFFFFFFFFF\r\n", 1 << 20));
        assert!(declares_over(b"00000000000000001\r\n", 1 << 20));
        // What it does not follow is the decoder's to judge.
        assert!(!declares_over(b"zz\r\n", 1));
        assert!(!declares_over(b"4000", 1), "a line not ended yet");
        assert!(!declares_over(b"0\r\n\r\n", 0));
    }

    fn data(buf: &[u8], max: u64) -> Option<(Vec<u8>, usize)> {
        let w = whole(buf, max)?;
        let mut out = b"head".to_vec();
        copy_data(buf, max, &mut out);
        assert_eq!(out.len() as u64, 4 + w.len);
        Some((out[4..].to_vec(), w.consumed))
    }

    #[test]
    fn plain_bodies_are_read_whole_and_what_follows_is_left() {
        let cases: &[(&[u8], &[u8], usize)] = &[
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello", 15),
            (b"0\r\n\r\n", b"", 5),
            (
                b"3\r\nabc\r\n2\r\nde\r\n000\r\n\r\nGET / HTTP/1.1\r\n",
                b"abcde",
                22,
            ),
            (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789", 20),
            (b"00a\r\n0123456789\r\n0\r\n\r\n", b"0123456789", 22),
            (b"1\r\n\n\r\n0\r\n\r\n", b"\n", 11),
        ];
        for (raw, want, consumed) in cases {
            assert_eq!(
                data(raw, 1024),
                Some((want.to_vec(), *consumed)),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn every_cut_of_a_body_is_not_whole() {
        let raw = b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
        assert_eq!(whole(raw, 1024).map(|w| w.consumed), Some(raw.len()));
        for cut in 0..raw.len() {
            assert_eq!(whole(&raw[..cut], 1024), None, "cut at {cut}");
        }
    }

    #[test]
    fn anything_but_the_plainest_form_is_left_to_the_general_path() {
        let cases: &[&[u8]] = &[
            b"5;ext=1\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\r\n0;ext\r\n\r\n",
            b"5\r\nhello\r\n0\r\nTrailer-Field: x\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhello\r\n0\n\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"5\r\nhell\r\n0\r\n\r\n",
            b"+5\r\nhello\r\n0\r\n\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"\r\nhello\r\n0\r\n\r\n",
            b"00000000000000005\r\nhello\r\n0\r\n\r\n",
            b"ffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        ];
        for raw in cases {
            assert_eq!(whole(raw, 1024), None, "{}", String::from_utf8_lossy(raw));
            let mut out = b"kept".to_vec();
            copy_data(raw, 1024, &mut out);
            assert_eq!(out, b"kept");
        }
    }

    #[test]
    fn a_cut_body_is_partial_a_refused_one_other() {
        let raw = b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
        for cut in 0..raw.len() {
            assert_eq!(scan(&raw[..cut], 1024), Scan::Partial, "cut at {cut}");
        }
        assert!(matches!(scan(raw, 1024), Scan::Whole(_)));
        assert_eq!(scan(b"3;", 1024), Scan::Other);
        assert_eq!(scan(b"3\r\nabc\n", 1024), Scan::Other);
        assert_eq!(scan(b"3\r\nabc\r\n0\r\nT", 1024), Scan::Other);
        assert_eq!(
            scan(b"11\r\n", 16),
            Scan::Other,
            "over the limit once announced"
        );
        assert_eq!(scan(b"00000000000000000", 1024), Scan::Other);
        assert_eq!(scan(b"0000000000000000", 1024), Scan::Partial);
    }

    #[test]
    fn data_over_the_limit_is_not_taken_the_limit_itself_is() {
        let raw = b"4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n";
        assert_eq!(whole(raw, 8).map(|w| w.len), Some(8));
        assert_eq!(whole(raw, 7), None);
        assert_eq!(
            whole(b"fffffffffffffff\r\nabc", u64::MAX),
            None,
            "the data is not here"
        );
    }
}
