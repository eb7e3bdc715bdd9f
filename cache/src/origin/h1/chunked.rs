//! The chunked transfer coding (RFC 9112 §7.1), decoded as bytes arrive: pure, no I/O.
//!
//! Strict where a lax reading could shift the body's end: a chunk size is 1 to 16 hex digits,
//! every line ends in CRLF, a chunk's data is followed by CRLF. Extensions are skipped, the
//! trailer section is read and dropped; both are bounded so a sender cannot make the node keep
//! an endless line.

use bytes::{Buf, Bytes, BytesMut};

/// Bytes a chunk-size line (with its extensions) may take.
const MAX_SIZE_LINE: usize = 4096;
/// Bytes the trailer section may take.
const MAX_TRAILERS: usize = 16 * 1024;

/// One step of decoding.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Body bytes.
    Data(Bytes),
    /// The buffer holds no complete next piece: read more.
    More,
    /// The last chunk and the trailers are read; the body ended cleanly.
    Done,
}

/// Why a chunked body is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkError {
    Size,
    LineTooLong,
    MissingCrlf,
    TrailersTooLarge,
    /// The chunk sizes declared so far add up to more than the decoder's limit.
    OverLimit,
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChunkError::Size => "invalid chunk size",
            ChunkError::LineTooLong => "chunk-size line too long",
            ChunkError::MissingCrlf => "chunk not followed by CRLF",
            ChunkError::TrailersTooLarge => "trailer section too large",
            ChunkError::OverLimit => "chunk sizes declare more than the body may take",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data: this many bytes left.
    Data(u64),
    /// After a chunk's data: expecting CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one; bytes of trailers seen.
    Trailers(usize),
    Done,
}

/// A chunked body's decoder.
#[derive(Debug)]
pub struct Decoder {
    state: State,
    /// The chunk sizes declared so far, and how much they may add up to.
    declared: u64,
    limit: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::with_limit(u64::MAX)
    }
}

impl Decoder {
    /// A decoder that refuses ([`ChunkError::OverLimit`]) a size line that takes the sizes
    /// declared so far past `limit`, before any of that chunk's data.
    pub fn with_limit(limit: u64) -> Decoder {
        Decoder {
            state: State::Size,
            declared: 0,
            limit,
        }
    }

    /// Decode what `buf` holds, consuming it; `Data` slices share `buf`'s memory.
    pub fn step(&mut self, buf: &mut BytesMut) -> Result<Step, ChunkError> {
        loop {
            match self.state {
                State::Done => return Ok(Step::Done),
                State::Size => {
                    let Some(line) = take_line(buf, MAX_SIZE_LINE)? else {
                        return Ok(More);
                    };
                    let size = parse_size(&line)?;
                    self.declared = self.declared.saturating_add(size);
                    if self.declared > self.limit {
                        return Err(ChunkError::OverLimit);
                    }
                    self.state = if size == 0 {
                        State::Trailers(0)
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(More);
                    }
                    let n = (left.min(buf.len() as u64)) as usize;
                    let data = buf.split_to(n).freeze();
                    self.state = if left == n as u64 {
                        State::DataEnd
                    } else {
                        State::Data(left - n as u64)
                    };
                    return Ok(Step::Data(data));
                }
                State::DataEnd => {
                    if buf.len() < 2 {
                        if buf.first().is_some_and(|b| *b != b'\r') {
                            return Err(ChunkError::MissingCrlf);
                        }
                        return Ok(More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(ChunkError::MissingCrlf);
                    }
                    buf.advance(2);
                    self.state = State::Size;
                }
                State::Trailers(seen) => {
                    let room = MAX_TRAILERS.saturating_sub(seen);
                    let Some(line) = take_line(buf, room).map_err(|e| match e {
                        ChunkError::LineTooLong => ChunkError::TrailersTooLarge,
                        e => e,
                    })?
                    else {
                        return Ok(More);
                    };
                    self.state = if line.is_empty() {
                        State::Done
                    } else {
                        State::Trailers(seen + line.len() + 2)
                    };
                }
            }
        }
    }
}

use Step::More;

/// The next CRLF-terminated line (without its CRLF), or None when it has not all arrived; a
/// bare LF or a line longer than `max` is an error.
fn take_line(buf: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, ChunkError> {
    match buf.iter().position(|b| *b == b'\n') {
        Some(i) => {
            if i == 0 || buf[i - 1] != b'\r' {
                return Err(ChunkError::MissingCrlf);
            }
            if i - 1 > max {
                return Err(ChunkError::LineTooLong);
            }
            let mut line = buf.split_to(i + 1);
            line.truncate(i - 1);
            Ok(Some(line))
        }
        None if buf.len() > max + 1 => Err(ChunkError::LineTooLong),
        None => Ok(None),
    }
}

/// `1*HEXDIG [ chunk-ext ]`: at most 16 digits; extensions (after `;`, or whitespace then `;`)
/// are ignored.
fn parse_size(line: &[u8]) -> Result<u64, ChunkError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(ChunkError::Size);
    }
    let rest = &line[digits..];
    let rest_ok = rest.is_empty()
        || rest
            .iter()
            .find(|b| !matches!(b, b' ' | b'\t'))
            .is_some_and(|b| *b == b';');
    if !rest_ok {
        return Err(ChunkError::Size);
    }
    let text = std::str::from_utf8(&line[..digits]).map_err(|_| ChunkError::Size)?;
    u64::from_str_radix(text, 16).map_err(|_| ChunkError::Size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_refuses_the_size_line_that_passes_it_before_its_data() {
        let mut d = Decoder::with_limit(10);
        let mut buf = BytesMut::from(&b"6\r\nabcdef\r\n4\r\nghij\r\n1\r\n"[..]);
        let mut got = Vec::new();
        let err = loop {
            match d.step(&mut buf) {
                Ok(Step::Data(b)) => got.extend_from_slice(&b),
                Ok(other) => panic!("{other:?}"),
                Err(e) => break e,
            }
        };
        assert_eq!((err, &got[..]), (ChunkError::OverLimit, &b"abcdefghij"[..]));
        // Exactly the limit passes.
        let mut d = Decoder::with_limit(10);
        let mut buf = BytesMut::from(&b"a\r\n0123456789\r\n0\r\n\r\n"[..]);
        assert!(matches!(d.step(&mut buf), Ok(Step::Data(b)) if b.len() == 10));
        assert_eq!(d.step(&mut buf), Ok(Step::Done));
    }

    /// Decode `raw` fed `piece` bytes at a time: the body, or the error.
    fn decode(raw: &[u8], piece: usize) -> Result<(Vec<u8>, bool), ChunkError> {
        let mut d = Decoder::default();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match d.step(&mut buf)? {
                Step::Data(b) => body.extend_from_slice(&b),
                Step::Done => return Ok((body, buf.is_empty())),
                Step::More if fed >= raw.len() => return Ok((body, false)),
                Step::More => {
                    let end = (fed + piece).min(raw.len());
                    buf.extend_from_slice(&raw[fed..end]);
                    fed = end;
                }
            }
        }
    }

    #[test]
    fn every_split_of_a_body_decodes_the_same() {
        let raw =
            b"5\r\nhello\r\n1;ext=\"a b\"\r\n \r\nA \t;x\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";
        for piece in 1..raw.len() {
            let (body, clean) = decode(raw, piece).unwrap();
            assert_eq!(body, b"hello 0123456789", "piece {piece}");
            assert!(clean);
        }
    }

    #[test]
    fn an_unfinished_body_never_reports_done() {
        let (body, done) = decode(b"5\r\nhello\r\n", 100).unwrap();
        assert_eq!(body, b"hello");
        assert!(!done);
        let (_, done) = decode(b"5\r\nhello\r\n0\r\n", 100).unwrap();
        assert!(!done, "the trailer section's end is missing");
    }

    #[test]
    fn bytes_after_the_end_stay_in_the_buffer() {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(&b"0\r\n\r\nHTTP/1.1"[..]);
        assert_eq!(d.step(&mut buf).unwrap(), Step::Done);
        assert_eq!(&buf[..], b"HTTP/1.1");
    }

    #[test]
    fn malformed_framing_is_refused() {
        for (raw, want) in [
            (&b"x\r\n"[..], ChunkError::Size),
            (b"\r\n", ChunkError::Size),
            (b"-1\r\n", ChunkError::Size),
            (b"5 5\r\nhello\r\n", ChunkError::Size),
            (b"11111111111111111\r\n", ChunkError::Size),
            (b"5\nhello\r\n", ChunkError::MissingCrlf),
            (b"5\r\nhelloXX", ChunkError::MissingCrlf),
            (b"5\r\nhello\n", ChunkError::MissingCrlf),
        ] {
            assert_eq!(
                decode(raw, 1).unwrap_err(),
                want,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let long = format!("5;{}\r\n", "x".repeat(MAX_SIZE_LINE));
        assert_eq!(
            decode(long.as_bytes(), 64).unwrap_err(),
            ChunkError::LineTooLong
        );
        let trailers = format!("0\r\n{}", "T: x\r\n".repeat(MAX_TRAILERS / 6 + 2));
        assert_eq!(
            decode(trailers.as_bytes(), 64).unwrap_err(),
            ChunkError::TrailersTooLarge
        );
    }

    #[test]
    fn the_largest_size_is_sixteen_digits() {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(&b"ffffffffffffffff\r\nab"[..]);
        assert_eq!(
            d.step(&mut buf).unwrap(),
            Step::Data(Bytes::from_static(b"ab"))
        );
    }
}
