//! Frames on their way to a connection's writer, and the writer's output, without copying
//! large payloads.
//!
//! A stream encodes its frames into a [`Batch`]: whole untagged frames in one buffer, except
//! the payload of a `Data` frame of [`KEEP_MIN`] bytes or more, or a `WireHit`'s inline body
//! that long, which is kept as the `Bytes` it came as (a stored object's body, shared) and
//! only the rest of its frame is encoded. The writer
//! seals batches (tags in write order, `PeerCodec::seal`) into an [`Output`]: its own small
//! bytes and the kept payloads between them, written with vectored writes. A 16 KiB body thus
//! goes from the store to the socket without being copied in user space (it was copied twice:
//! into the stream's buffer, then into the writer's).

use std::io::IoSlice;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::AsyncWrite;

use crate::cluster::frame::{Frame, FrameError, PeerCodec, WireHit};

/// `Data` payloads at least this long are kept, not copied.
pub const KEEP_MIN: usize = 4 * 1024;

/// IoSlices given to one vectored write, at most.
const MAX_SLICES: usize = 64;

/// Whole untagged frames, in order; a kept payload ends its frame, whose other bytes are in
/// `bytes`.
#[derive(Debug, Default)]
pub struct Batch {
    bytes: BytesMut,
    kept: Vec<Kept>,
}

/// A payload kept out of a batch's bytes: its frame begins at `start` in them, and the
/// payload goes at `at` (the end of the frame's other bytes).
#[derive(Debug)]
struct Kept {
    start: usize,
    at: usize,
    payload: Bytes,
}

impl Kept {
    fn shifted(self, by: isize) -> Kept {
        Kept {
            start: self.start.wrapping_add_signed(by),
            at: self.at.wrapping_add_signed(by),
            payload: self.payload,
        }
    }
}

/// A position in a [`Batch`] (for `truncate` and `split_off`).
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    bytes: usize,
    kept: usize,
}

/// One piece of a batch: whole frames with their payloads, or one frame whose payload was
/// kept (`head`: the frame's bytes before it).
pub enum Piece<'a> {
    Whole(&'a [u8]),
    Kept { head: &'a [u8], payload: &'a Bytes },
}

impl From<BytesMut> for Batch {
    fn from(bytes: BytesMut) -> Batch {
        Batch {
            bytes,
            kept: Vec::new(),
        }
    }
}

impl Batch {
    /// Whether no frame is in it (a kept payload always has its head in the bytes).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Bytes on the wire, untagged.
    pub fn len(&self) -> usize {
        self.bytes.len() + self.kept.iter().map(|k| k.payload.len()).sum::<usize>()
    }

    /// The buffer frames are encoded into.
    pub fn bytes_mut(&mut self) -> &mut BytesMut {
        &mut self.bytes
    }

    /// Encodes a `Data` frame of stream `stream`: copied when short, its payload kept
    /// otherwise (nothing when it errs).
    pub fn encode_data(
        &mut self,
        codec: &PeerCodec,
        stream: u32,
        payload: &Bytes,
    ) -> Result<(), FrameError> {
        if payload.len() < KEEP_MIN {
            self.bytes
                .reserve(crate::cluster::frame::HEAD_LEN + payload.len());
            return codec.encode_untagged(stream, &Frame::Data(payload.clone()), &mut self.bytes);
        }
        let start = self.bytes.len();
        codec.encode_data_head(stream, payload.len(), &mut self.bytes)?;
        self.keep(start, payload);
        Ok(())
    }

    /// Encodes any frame of stream `stream`: a `Data` as [`Batch::encode_data`] does, a
    /// `WireHit`'s inline body of [`KEEP_MIN`] bytes or more kept, anything else copied
    /// (nothing when it errs).
    pub fn encode(&mut self, codec: &PeerCodec, stream: u32, f: &Frame) -> Result<(), FrameError> {
        match f {
            Frame::Data(payload) => self.encode_data(codec, stream, payload),
            Frame::WireHit(h) if h.body.as_ref().is_some_and(|b| b.len() >= KEEP_MIN) => {
                self.encode_wire_hit(codec, stream, h)
            }
            f => codec.encode_untagged(stream, f, &mut self.bytes),
        }
    }

    /// A `WireHit` whose inline body is kept: the frame but for it, its length counting it.
    fn encode_wire_hit(
        &mut self,
        codec: &PeerCodec,
        stream: u32,
        h: &WireHit,
    ) -> Result<(), FrameError> {
        let start = self.bytes.len();
        codec.encode_wire_hit_head(stream, h, &mut self.bytes)?;
        if let Some(body) = &h.body {
            self.keep(start, body);
        }
        Ok(())
    }

    fn keep(&mut self, start: usize, payload: &Bytes) {
        self.kept.push(Kept {
            start,
            at: self.bytes.len(),
            payload: payload.clone(),
        });
    }

    pub fn mark(&self) -> Mark {
        Mark {
            bytes: self.bytes.len(),
            kept: self.kept.len(),
        }
    }

    /// Drops what was added after `m`.
    pub fn truncate(&mut self, m: Mark) {
        self.bytes.truncate(m.bytes);
        self.kept.truncate(m.kept);
    }

    /// What was added after `m`, taken out.
    pub fn split_off(&mut self, m: Mark) -> Batch {
        let bytes = self.bytes.split_off(m.bytes);
        let kept = self
            .kept
            .split_off(m.kept)
            .into_iter()
            .map(|k| k.shifted(-(m.bytes as isize)))
            .collect();
        Batch { bytes, kept }
    }

    /// Puts back what `split_off` took.
    pub fn unsplit(&mut self, tail: Batch) {
        let base = self.bytes.len();
        self.bytes.unsplit(tail.bytes);
        self.kept
            .extend(tail.kept.into_iter().map(|k| k.shifted(base as isize)));
    }

    /// The pieces in order.
    pub fn pieces(&self) -> impl Iterator<Item = Piece<'_>> {
        let mut from = 0;
        let mut kept = self.kept.iter();
        let mut next_kept = kept.next();
        std::iter::from_fn(move || {
            if let Some(k) = next_kept {
                if from < k.start {
                    let whole = &self.bytes[from..k.start];
                    from = k.start;
                    return Some(Piece::Whole(whole));
                }
                let head = &self.bytes[k.start..k.at];
                from = k.at;
                next_kept = kept.next();
                return Some(Piece::Kept {
                    head,
                    payload: &k.payload,
                });
            }
            if from < self.bytes.len() {
                let whole = &self.bytes[from..];
                from = self.bytes.len();
                return Some(Piece::Whole(whole));
            }
            None
        })
    }
}

/// What the writer writes next: its own bytes, with kept payloads between them.
#[derive(Debug)]
pub struct Output {
    bytes: BytesMut,
    /// (the end of the bytes that go before it, payload)
    kept: Vec<(usize, Bytes)>,
}

impl Output {
    pub fn with_capacity(n: usize) -> Output {
        Output {
            bytes: BytesMut::with_capacity(n),
            kept: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.bytes.len() + self.kept.iter().map(|(_, p)| p.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.kept.is_empty()
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.kept.clear();
    }

    /// Appends `batch`, each frame followed by its tag when `codec` authenticates.
    pub fn seal(&mut self, codec: &mut PeerCodec, batch: &Batch) {
        for piece in batch.pieces() {
            match piece {
                Piece::Whole(frames) => codec.seal(frames, &mut self.bytes),
                Piece::Kept { head, payload } => {
                    self.bytes.put_slice(head);
                    self.kept.push((self.bytes.len(), payload.clone()));
                    if let Some(tag) = codec.sign_frame(head, payload) {
                        self.bytes.put_slice(&tag);
                    }
                }
            }
        }
    }

    /// The slices of what is left after the first `skip` bytes, at most `out.len()` of them;
    /// how many.
    pub fn slices<'a>(&'a self, mut skip: usize, out: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        let mut from = 0;
        for (end, payload) in &self.kept {
            for part in [&self.bytes[from..*end], &payload[..]] {
                if !take(part, &mut skip, out, &mut n) {
                    return n;
                }
            }
            from = *end;
        }
        take(&self.bytes[from..], &mut skip, out, &mut n);
        n
    }

    /// Writes all of it.
    pub async fn write_to<W: AsyncWrite + Unpin>(&self, w: &mut W) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        if self.kept.is_empty() {
            return w.write_all(&self.bytes).await;
        }
        let total = self.len();
        let mut done = 0;
        while done < total {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let n = self.slices(done, &mut slices);
            let wrote = w.write_vectored(&slices[..n]).await?;
            if wrote == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            done += wrote;
        }
        Ok(())
    }
}

/// Adds what is left of `part` after `skip` bytes to `out` (and takes what it skipped off
/// `skip`); false once `out` is full.
fn take<'a>(part: &'a [u8], skip: &mut usize, out: &mut [IoSlice<'a>], n: &mut usize) -> bool {
    if *n == out.len() {
        return false;
    }
    if *skip >= part.len() {
        *skip -= part.len();
        return true;
    }
    out[*n] = IoSlice::new(&part[*skip..]);
    *skip = 0;
    *n += 1;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::frame::{Frame, Limits};

    fn data(n: usize, b: u8) -> Bytes {
        Bytes::from(vec![b; n])
    }

    /// A `WireHit` with an inline body of `n` bytes.
    fn wire_hit(n: usize) -> Frame {
        crate::cluster::peer::tests::wire_hit_in(&data(n + 20, 5), n)
    }

    /// What `PeerCodec::encode_on` writes for `frames`, one after the other.
    fn reference(codec: &mut PeerCodec, frames: &[(u32, Frame)]) -> Vec<u8> {
        let mut dst = BytesMut::new();
        for (s, f) in frames {
            codec.encode_on(*s, f, &mut dst).unwrap();
        }
        dst.to_vec()
    }

    fn batch_of(codec: &PeerCodec, frames: &[(u32, Frame)]) -> Batch {
        let mut b = Batch::default();
        for (s, f) in frames {
            b.encode(codec, *s, f).unwrap();
        }
        b
    }

    fn flat(out: &Output, skip: usize, max: usize) -> Vec<u8> {
        let mut slices = vec![IoSlice::new(&[]); max];
        let n = out.slices(skip, &mut slices);
        slices[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    fn frames() -> Vec<(u32, Frame)> {
        vec![
            (1, Frame::End { complete: true }),
            (3, Frame::Data(data(KEEP_MIN, 7))),
            (3, Frame::Data(data(10, 8))),
            (5, Frame::Data(data(20_000, 9))),
            (5, Frame::Data(data(KEEP_MIN + 1, 1))),
            (7, Frame::Credit(12)),
            (9, wire_hit(16_384)),
            (11, wire_hit(KEEP_MIN - 1)),
            (9, Frame::Credit(1)),
        ]
    }

    #[test]
    fn sealed_output_is_what_the_codec_writes_with_and_without_tags() {
        for auth in [false, true] {
            let mut codec = PeerCodec::new(Limits::default());
            let mut writer = codec.clone();
            let mut reference_codec = codec.clone();
            if auth {
                for c in [&mut writer, &mut reference_codec] {
                    c.enable_auth(b"secret", &[1; 16], &[2; 16], true);
                }
                codec.enable_auth(b"secret", &[1; 16], &[2; 16], true);
            }
            let frames = frames();
            let want = reference(&mut reference_codec, &frames);
            let batch = batch_of(&codec, &frames);
            assert_eq!(
                batch.kept.len(),
                4,
                "payloads and inline bodies of KEEP_MIN or more are kept"
            );
            let mut out = Output::with_capacity(16);
            out.seal(&mut writer, &batch);
            assert_eq!(out.len(), want.len());
            assert_eq!(flat(&out, 0, 64), want, "auth {auth}");
            // Every starting point, and slices limited to a few at a time.
            for skip in [1, 9, 100, KEEP_MIN + 10, want.len() - 1, want.len()] {
                assert_eq!(flat(&out, skip, 64), want[skip..], "skip {skip}");
            }
            let mut got = Vec::new();
            while got.len() < want.len() {
                let part = flat(&out, got.len(), 2);
                assert!(!part.is_empty());
                got.extend(part);
            }
            assert_eq!(got, want);
        }
    }

    #[test]
    fn split_and_unsplit_keep_the_frames_in_place() {
        let codec = PeerCodec::new(Limits::default());
        let frames = frames();
        let mut b = batch_of(&codec, &frames[..2]);
        let m = b.mark();
        for (s, f) in &frames[2..] {
            b.encode(&codec, *s, f).unwrap();
        }
        let whole_len = b.len();
        let tail = b.split_off(m);
        assert_eq!(b.len() + tail.len(), whole_len);
        b.unsplit(tail);
        let mut w1 = codec.clone();
        let mut out = Output::with_capacity(0);
        out.seal(&mut w1, &b);
        let mut w2 = codec.clone();
        let mut want = Output::with_capacity(0);
        want.seal(&mut w2, &batch_of(&codec, &frames));
        assert_eq!(flat(&out, 0, 64), flat(&want, 0, 64));
        b.truncate(m);
        assert_eq!(b.kept.len(), 1);
        assert_eq!(b.len(), batch_of(&codec, &frames[..2]).len());
    }

    #[tokio::test]
    async fn write_to_writes_everything_through_short_writes() {
        let codec = PeerCodec::new(Limits::default());
        let frames = frames();
        let mut writer = codec.clone();
        let mut out = Output::with_capacity(0);
        out.seal(&mut writer, &batch_of(&codec, &frames));
        let want = reference(&mut codec.clone(), &frames);
        // A pipe smaller than the output: the writes are partial.
        let (mut a, mut b) = tokio::io::duplex(1000);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut b, &mut got)
                .await
                .unwrap();
            got
        });
        out.write_to(&mut a).await.unwrap();
        drop(a);
        assert_eq!(reader.await.unwrap(), want);
    }
}
