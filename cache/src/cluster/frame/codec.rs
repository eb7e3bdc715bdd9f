//! [`PeerCodec`]: frames ⇄ bytes for `tokio_util::codec::Framed`, with the limits checked
//! before any buffer grows and, once enabled, a tag after every frame (`cluster::auth`).
//!
//! Contract: `decode` returns `Ok(None)` until a whole frame (and its tag) is buffered, and
//! errs as soon as the first 5 bytes show an unknown type or a length over the limit, having
//! reserved nothing for it. Every frame carries the stream it belongs to (a `u32` after the
//! type byte; `encode_on`/`decode_on`); the `Encoder`/`Decoder` impls use stream 0 and drop
//! the id. A tag is verified before the payload is parsed. `encode` writes
//! nothing when it errs. After any error the connection must be closed: the two ends'
//! sequence numbers no longer agree.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::wire::{decode_payload, encode_lookup, encode_payload, encode_wire_hit_head};
use super::{Frame, FrameError, Kind, Limits, LookupOut, WireHit};
use crate::cluster::auth::{FrameAuth, NONCE_LEN, TAG_LEN};

/// Length (4 bytes), type (1 byte) and stream id (4 bytes).
pub(crate) const HEAD_LEN: usize = 9;

/// The peer protocol's codec: one per connection end.
#[derive(Debug, Clone, Default)]
pub struct PeerCodec {
    limits: Limits,
    auth: Option<FrameAuth>,
}

impl PeerCodec {
    /// A codec enforcing `limits`, without authentication.
    pub fn new(limits: Limits) -> PeerCodec {
        PeerCodec { limits, auth: None }
    }

    /// The bounds this codec enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Tags every frame sent and requires a tag on every frame received from now on. Call it
    /// on both ends once the `Hello`s are exchanged (before decoding anything after the
    /// peer's `Hello`), with the nonces of the client's and the server's `Hello`; `is_client`
    /// tells which end this is.
    pub fn enable_auth(
        &mut self,
        secret: &[u8],
        client_nonce: &[u8; NONCE_LEN],
        server_nonce: &[u8; NONCE_LEN],
        is_client: bool,
    ) {
        self.auth = Some(FrameAuth::new(
            secret,
            client_nonce,
            server_nonce,
            is_client,
        ));
    }

    /// Whether frames are tagged.
    pub fn is_authenticated(&self) -> bool {
        self.auth.is_some()
    }

    fn limit_of(&self, kind: Kind) -> usize {
        if kind == Kind::Data {
            self.limits.max_data_frame
        } else {
            self.limits.max_frame
        }
    }

    fn tag_len(&self) -> usize {
        if self.auth.is_some() {
            TAG_LEN
        } else {
            0
        }
    }

    /// [`Encoder::encode`] by reference (stream 0).
    pub fn encode_frame(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode_on(0, frame, dst)
    }

    /// Appends `frame` of stream `stream` to `dst`, tagged when authentication is on
    /// (nothing when it errs).
    pub fn encode_on(
        &mut self,
        stream: u32,
        frame: &Frame,
        dst: &mut BytesMut,
    ) -> Result<(), FrameError> {
        let start = dst.len();
        self.encode_untagged(stream, frame, dst)?;
        if let Some(auth) = &mut self.auth {
            let (head, payload) = dst[start..].split_at(HEAD_LEN);
            let tag = auth.sign(head, payload);
            dst.put_slice(&tag);
        }
        Ok(())
    }

    /// Appends `frame` of stream `stream` to `dst` without its tag, with every limit
    /// checked (nothing when it errs): the part of encoding that does not depend on the
    /// order of frames on the connection, so any task can do it; [`PeerCodec::seal`] then
    /// adds the tag in write order.
    pub fn encode_untagged(
        &self,
        stream: u32,
        frame: &Frame,
        dst: &mut BytesMut,
    ) -> Result<(), FrameError> {
        let kind = frame.kind();
        if kind == Kind::Hello && self.auth.is_some() {
            return Err(FrameError::HelloAfterHandshake);
        }
        let limit = self.limit_of(kind);
        let too_long = |len| FrameError::FrameTooLong {
            frame: kind.as_str(),
            len,
            limit,
        };
        if let Frame::Data(chunk) = frame {
            // Checked before anything is copied.
            if chunk.len().saturating_add(1) > limit {
                return Err(too_long(chunk.len().saturating_add(1)));
            }
            dst.reserve(HEAD_LEN + chunk.len() + self.tag_len());
        }
        self.encode_with(stream, kind, 0, dst, |dst, limits| {
            encode_payload(frame, dst, limits)
        })
    }

    /// [`PeerCodec::encode_untagged`] of a `WireHit` with an inline body, but for the body:
    /// the frame's length counts it, and the caller sends it right after (kept out of the
    /// buffer, `peer::batch`). Checked against the frame limit with the body (nothing
    /// appended when it errs).
    pub fn encode_wire_hit_head(
        &self,
        stream: u32,
        h: &WireHit,
        dst: &mut BytesMut,
    ) -> Result<(), FrameError> {
        let body = h.body.as_ref().map_or(0, Bytes::len);
        self.encode_with(stream, Kind::WireHit, body, dst, |dst, limits| {
            encode_wire_hit_head(h, dst, limits)
        })
    }

    /// [`PeerCodec::encode_untagged`] of a `Lookup` whose fields are borrowed: the same bytes
    /// as `Frame::Lookup` of the same fields.
    pub fn encode_lookup(
        &self,
        stream: u32,
        lookup: &LookupOut<'_>,
        dst: &mut BytesMut,
    ) -> Result<(), FrameError> {
        self.encode_with(stream, Kind::Lookup, 0, dst, |dst, limits| {
            encode_lookup(lookup, dst, limits)
        })
    }

    /// The frame head, then the payload `payload` appends, then the length (with `tail` more
    /// payload bytes the caller adds) patched in and checked (nothing appended when anything
    /// errs).
    fn encode_with(
        &self,
        stream: u32,
        kind: Kind,
        tail: usize,
        dst: &mut BytesMut,
        payload: impl FnOnce(&mut BytesMut, &Limits) -> Result<(), FrameError>,
    ) -> Result<(), FrameError> {
        let limit = self.limit_of(kind);
        let start = dst.len();
        dst.put_u32(0);
        dst.put_u8(kind as u8);
        dst.put_u32(stream);
        if let Err(e) = payload(dst, &self.limits) {
            dst.truncate(start);
            return Err(e);
        }
        // The length counts the type byte and the payload (not the stream id), so the limits
        // mean what they meant before streams.
        let len = (dst.len() - start - HEAD_LEN + 1).saturating_add(tail);
        let wire_len = match u32::try_from(len) {
            Ok(l) if len <= limit => l,
            _ => {
                dst.truncate(start);
                return Err(FrameError::FrameTooLong {
                    frame: kind.as_str(),
                    len,
                    limit,
                });
            }
        };
        dst[start..start + 4].copy_from_slice(&wire_len.to_be_bytes());
        Ok(())
    }

    /// Appends the head of a `Data` frame of stream `stream` whose payload is `len` bytes
    /// long, checked against the limits (nothing when it errs); its payload goes after it.
    pub fn encode_data_head(
        &self,
        stream: u32,
        len: usize,
        dst: &mut BytesMut,
    ) -> Result<(), FrameError> {
        let limit = self.limits.max_data_frame;
        // The length counts the type byte and the payload.
        let wire_len = len.saturating_add(1);
        let wire = match u32::try_from(wire_len) {
            Ok(l) if wire_len <= limit => l,
            _ => {
                return Err(FrameError::FrameTooLong {
                    frame: Kind::Data.as_str(),
                    len: wire_len,
                    limit,
                })
            }
        };
        dst.put_u32(wire);
        dst.put_u8(Kind::Data as u8);
        dst.put_u32(stream);
        Ok(())
    }

    /// The tag of the next frame written, when authentication is on (see [`PeerCodec::seal`]).
    pub fn sign_frame(&mut self, head: &[u8], payload: &[u8]) -> Option<[u8; TAG_LEN]> {
        self.auth.as_mut().map(|auth| auth.sign(head, payload))
    }

    /// Appends `untagged` (whole frames from [`PeerCodec::encode_untagged`], in order) to
    /// `dst`, each followed by its tag when authentication is on.
    pub fn seal(&mut self, untagged: &[u8], dst: &mut BytesMut) {
        let Some(auth) = &mut self.auth else {
            dst.extend_from_slice(untagged);
            return;
        };
        let mut rest = untagged;
        while rest.len() >= HEAD_LEN {
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let end = (HEAD_LEN + len - 1).min(rest.len());
            let (frame, tail) = rest.split_at(end);
            let (head, payload) = frame.split_at(HEAD_LEN);
            let tag = auth.sign(head, payload);
            dst.extend_from_slice(frame);
            dst.put_slice(&tag);
            rest = tail;
        }
    }
}

impl PeerCodec {
    /// The bytes the frame at the start of `src` takes on the wire (head, payload, tag), once
    /// its length is buffered; unchecked: [`PeerCodec::decode_on`] checks it.
    pub fn wire_len(&self, src: &[u8]) -> Option<usize> {
        let len = src.get(..4)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        Some(4 + 4 + len + self.tag_len())
    }

    /// The bytes `src` still lacks for the frame begun at its start: 0 until its length and
    /// type are buffered, or when they are invalid (`decode_on` refuses the frame then);
    /// never more than the frame's kind allows.
    pub fn still_needed(&self, src: &[u8]) -> usize {
        let (Some(len), Some(kind)) = (self.wire_len(src), src.get(4)) else {
            return 0;
        };
        match Kind::from_byte(*kind) {
            Some(kind) if len - 8 - self.tag_len() <= self.limit_of(kind) => {
                len.saturating_sub(src.len())
            }
            _ => 0,
        }
    }

    /// The next whole frame in `src` and its stream id (see [`Decoder::decode`]).
    pub fn decode_on(&mut self, src: &mut BytesMut) -> Result<Option<(u32, Frame)>, FrameError> {
        let Some(len) = src.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len == 0 {
            return Err(FrameError::Empty);
        }
        let Some(&type_byte) = src.get(4) else {
            return Ok(None);
        };
        let kind = Kind::from_byte(type_byte).ok_or(FrameError::UnknownType(type_byte))?;
        if kind == Kind::Hello && self.auth.is_some() {
            return Err(FrameError::HelloAfterHandshake);
        }
        let limit = self.limit_of(kind);
        if len > limit {
            return Err(FrameError::FrameTooLong {
                frame: kind.as_str(),
                len,
                limit,
            });
        }
        let body_end = 4 + 4 + len;
        let total = body_end + self.tag_len();
        if src.len() < total {
            // The caller keeps room for it ([`PeerCodec::wire_len`]): reserving here could
            // reallocate a buffer whose front is still shared with frames split off it.
            return Ok(None);
        }
        let mut frame = src.split_to(total);
        if let Some(auth) = &mut self.auth {
            let (head, rest) = frame.split_at(HEAD_LEN);
            let (payload, tag) = rest.split_at(len - 1);
            if !auth.verify(head, payload, tag) {
                return Err(FrameError::TagMismatch);
            }
            frame.truncate(body_end);
        }
        let stream = u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]);
        frame.advance(HEAD_LEN);
        decode_payload(kind, frame.freeze(), &self.limits).map(|f| Some((stream, f)))
    }

    /// [`Decoder::decode_eof`] with the stream id.
    pub fn decode_eof_on(
        &mut self,
        src: &mut BytesMut,
    ) -> Result<Option<(u32, Frame)>, FrameError> {
        match self.decode_on(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::ClosedMidFrame(src.len())),
        }
    }
}

impl Decoder for PeerCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        Ok(self.decode_on(src)?.map(|(_, f)| f))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::ClosedMidFrame(src.len())),
        }
    }
}

impl Encoder<Frame> for PeerCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode_frame(&frame, dst)
    }
}

impl Encoder<&Frame> for PeerCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode_frame(frame, dst)
    }
}
