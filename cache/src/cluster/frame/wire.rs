//! Payload encoding of each frame (the layouts in the `frame` module doc), over a bounded
//! reader and writer: every length is checked against the [`Limits`] before it is used, and
//! every read checks what is left, so malformed input is an error and never a panic or a
//! large allocation.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{
    Answer, Fields, Frame, FrameError, Kind, Limits, Lookup, LookupMethod, LookupOut, Miss,
    ObjectHead, Push, WireHit, WireMeta,
};
use crate::policy::headers::request_fields;

type Result<T> = std::result::Result<T, FrameError>;

/// Reads one frame's payload; slices of it (header fields, `Data`) share its buffer.
struct Reader<'l> {
    buf: Bytes,
    frame: &'static str,
    limits: &'l Limits,
}

impl Reader<'_> {
    fn need(&self, n: usize, field: &'static str) -> Result<()> {
        if self.buf.remaining() < n {
            return Err(FrameError::Truncated {
                frame: self.frame,
                field,
            });
        }
        Ok(())
    }

    fn u8(&mut self, field: &'static str) -> Result<u8> {
        self.need(1, field)?;
        Ok(self.buf.get_u8())
    }

    fn u16(&mut self, field: &'static str) -> Result<u16> {
        self.need(2, field)?;
        Ok(self.buf.get_u16())
    }

    fn u32(&mut self, field: &'static str) -> Result<u32> {
        self.need(4, field)?;
        Ok(self.buf.get_u32())
    }

    fn u64(&mut self, field: &'static str) -> Result<u64> {
        self.need(8, field)?;
        Ok(self.buf.get_u64())
    }

    fn bad(&self, field: &'static str, value: u64, expected: &'static str) -> FrameError {
        FrameError::BadValue {
            frame: self.frame,
            field,
            value,
            expected,
        }
    }

    fn bool(&mut self, field: &'static str) -> Result<bool> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(self.bad(field, v.into(), "a boolean (0 or 1)")),
        }
    }

    fn opt_u64(&mut self, field: &'static str) -> Result<Option<u64>> {
        Ok(if self.bool(field)? {
            Some(self.u64(field)?)
        } else {
            None
        })
    }

    fn bytes(&mut self, field: &'static str, limit: usize) -> Result<Bytes> {
        self.need(4, field)?;
        let len = self.buf.get_u32() as usize;
        if len > limit {
            return Err(FrameError::FieldTooLong {
                frame: self.frame,
                field,
                len,
                limit,
            });
        }
        self.need(len, field)?;
        Ok(self.buf.split_to(len))
    }

    fn string(&mut self, field: &'static str, limit: usize) -> Result<String> {
        let b = self.bytes(field, limit)?;
        match std::str::from_utf8(&b) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(FrameError::Utf8 {
                frame: self.frame,
                field,
            }),
        }
    }

    fn field(&mut self, field: &'static str) -> Result<String> {
        self.string(field, self.limits.max_field)
    }

    fn count(&mut self, field: &'static str) -> Result<usize> {
        let count = usize::from(self.u16(field)?);
        let limit = self.limits.max_headers;
        if count > limit {
            return Err(FrameError::TooMany {
                frame: self.frame,
                field,
                count,
                limit,
            });
        }
        Ok(count)
    }

    fn headers(&mut self, field: &'static str) -> Result<Vec<(Bytes, Bytes)>> {
        let n = self.count(field)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.bytes(field, self.limits.max_field)?;
            let value = self.bytes(field, self.limits.max_field)?;
            out.push((name, value));
        }
        Ok(out)
    }

    fn finish(self) -> Result<()> {
        match self.buf.remaining() {
            0 => Ok(()),
            count => Err(FrameError::Trailing {
                frame: self.frame,
                count,
            }),
        }
    }
}

/// Appends one frame's payload, refusing what a peer with the same limits would refuse.
struct Writer<'a> {
    buf: &'a mut BytesMut,
    frame: &'static str,
    limits: &'a Limits,
}

impl Writer<'_> {
    fn bytes(&mut self, field: &'static str, b: &[u8], limit: usize) -> Result<()> {
        if b.len() > limit {
            return Err(FrameError::FieldTooLong {
                frame: self.frame,
                field,
                len: b.len(),
                limit,
            });
        }
        // limit <= u32::MAX is not guaranteed by Limits; the length prefix is.
        let len = u32::try_from(b.len()).map_err(|_| FrameError::FieldTooLong {
            frame: self.frame,
            field,
            len: b.len(),
            limit: u32::MAX as usize,
        })?;
        self.buf.put_u32(len);
        self.buf.put_slice(b);
        Ok(())
    }

    fn field(&mut self, field: &'static str, s: &str) -> Result<()> {
        self.bytes(field, s.as_bytes(), self.limits.max_field)
    }

    fn count(&mut self, field: &'static str, count: usize) -> Result<()> {
        let count = self.checked_count(field, count)?;
        self.buf.put_u16(count);
        Ok(())
    }

    /// `count` entries of a list, checked against [`Limits::max_headers`].
    fn checked_count(&self, field: &'static str, count: usize) -> Result<u16> {
        let limit = self.limits.max_headers.min(usize::from(u16::MAX));
        if count > limit {
            return Err(FrameError::TooMany {
                frame: self.frame,
                field,
                count,
                limit,
            });
        }
        Ok(count as u16)
    }

    fn headers(&mut self, field: &'static str, headers: &[(Bytes, Bytes)]) -> Result<()> {
        self.count(field, headers.len())?;
        for (name, value) in headers {
            self.bytes(field, name, self.limits.max_field)?;
            self.bytes(field, value, self.limits.max_field)?;
        }
        Ok(())
    }

    /// The field lines of a raw request head, as [`Writer::headers`] writes pairs (the count
    /// first: written once they are counted).
    fn raw_fields(&mut self, field: &'static str, raw: &[u8]) -> Result<()> {
        let at = self.buf.len();
        self.buf.put_u16(0);
        let mut count = 0usize;
        for (name, value) in request_fields(raw) {
            self.bytes(field, name, self.limits.max_field)?;
            self.bytes(field, value, self.limits.max_field)?;
            count += 1;
        }
        let count = self.checked_count(field, count)?;
        self.buf[at..at + 2].copy_from_slice(&count.to_be_bytes());
        Ok(())
    }

    fn bool(&mut self, b: bool) {
        self.buf.put_u8(u8::from(b));
    }

    fn opt_u64(&mut self, v: Option<u64>) {
        self.bool(v.is_some());
        if let Some(v) = v {
            self.buf.put_u64(v);
        }
    }
}

/// Appends a `WireHit`'s payload but for its inline body to `buf` (the body, when there is
/// one, checked against the announced length: the caller appends it).
pub(super) fn encode_wire_hit_head(h: &WireHit, buf: &mut BytesMut, limits: &Limits) -> Result<()> {
    let mut w = Writer {
        buf,
        frame: Kind::WireHit.as_str(),
        limits,
    };
    write_wire_hit_head(&mut w, h)
}

fn write_wire_hit_head(w: &mut Writer<'_>, h: &WireHit) -> Result<()> {
    w.bytes("wire", &h.wire, w.limits.max_field)?;
    write_meta(w, &h.meta);
    if h.body_len == UNKNOWN_BODY_LEN {
        return Err(FrameError::BadValue {
            frame: w.frame,
            field: "body_len",
            value: h.body_len,
            expected: "a known body length",
        });
    }
    w.buf.put_u64(h.body_len);
    w.bytes("cache_status", &h.cache_status, w.limits.max_field)?;
    if let Some(body) = &h.body {
        check_inline_body(h.body_len, body.len())?;
    }
    Ok(())
}

/// A `WireHit`'s inline body must be exactly the length its head announces.
pub(super) fn check_inline_body(announced: u64, got: usize) -> Result<()> {
    if announced == got as u64 {
        return Ok(());
    }
    Err(FrameError::BodyLength {
        announced,
        got: got as u64,
    })
}

/// Appends a `Lookup` frame's payload to `buf` (see [`encode_payload`]).
pub(super) fn encode_lookup(l: &LookupOut<'_>, buf: &mut BytesMut, limits: &Limits) -> Result<()> {
    let mut w = Writer {
        buf,
        frame: Kind::Lookup.as_str(),
        limits,
    };
    write_lookup(&mut w, l)
}

fn write_lookup(w: &mut Writer<'_>, l: &LookupOut<'_>) -> Result<()> {
    w.field("key", l.key)?;
    w.buf.put_u8(match l.method {
        LookupMethod::Get => 0,
        LookupMethod::Head => 1,
    });
    w.field("uri", l.uri)?;
    match l.headers {
        Fields::Pairs(pairs) => w.headers("headers", pairs)?,
        Fields::Raw(raw) => w.raw_fields("headers", raw)?,
    }
    w.buf.put_u8(l.hops);
    if l.flags & !Lookup::KNOWN_FLAGS != 0 {
        return Err(FrameError::BadValue {
            frame: w.frame,
            field: "flags",
            value: l.flags.into(),
            expected: "a set of known flags (bits 0 to 3)",
        });
    }
    w.buf.put_u8(l.flags);
    Ok(())
}

/// Appends `frame`'s payload (no length, type or tag) to `buf`. On error `buf` may hold a
/// partial payload; the caller truncates it.
pub(super) fn encode_payload(frame: &Frame, buf: &mut BytesMut, limits: &Limits) -> Result<()> {
    let mut w = Writer {
        buf,
        frame: frame.kind().as_str(),
        limits,
    };
    match frame {
        Frame::Hello {
            version,
            node,
            nonce,
        } => {
            w.buf.put_u8(*version);
            w.bytes("node", node.as_bytes(), limits.max_node_id)?;
            w.buf.put_slice(nonce);
        }
        Frame::Lookup(l) => write_lookup(&mut w, &l.out())?,
        Frame::Hit(head) => write_head(&mut w, head)?,
        Frame::WireHit(h) => {
            write_wire_hit_head(&mut w, h)?;
            if let Some(body) = &h.body {
                w.buf.put_slice(body);
            }
        }
        Frame::Miss(m) => {
            w.opt_u64(m.lease);
            w.field("cache_status", &m.cache_status)?;
        }
        Frame::Push(p) => {
            w.field("key", &p.key)?;
            w.buf.put_u64(p.lease);
            write_head(&mut w, &p.head)?;
        }
        Frame::Data(chunk) => w.buf.put_slice(chunk),
        Frame::End { complete } => w.bool(*complete),
        Frame::Purge { url } => w.field("url", url)?,
        Frame::Ban { prefix } => w.field("prefix", prefix)?,
        Frame::Count(n) => w.buf.put_u64(*n),
        Frame::Error { code, message } => {
            w.buf.put_u16(*code);
            w.field("message", message)?;
        }
        Frame::Answer(a) => {
            write_status(&mut w, a.status)?;
            w.headers("headers", &a.headers)?;
            w.buf.put_u64(a.body_len);
        }
        Frame::ConfigGet { version, hash } => {
            w.buf.put_u64(*version);
            w.buf.put_slice(hash);
        }
        Frame::Config {
            version,
            hash,
            text,
        } => {
            w.buf.put_u64(*version);
            w.buf.put_slice(hash);
            w.bytes("text", text.as_bytes(), w.limits.max_frame)?;
        }
        Frame::Wait | Frame::Reset | Frame::BanAll => {}
        Frame::Credit(n) => w.buf.put_u32(*n),
    }
    Ok(())
}

fn write_status(w: &mut Writer, status: u16) -> Result<()> {
    if !(100..=999).contains(&status) {
        return Err(FrameError::BadValue {
            frame: w.frame,
            field: "status",
            value: status.into(),
            expected: "a status code (100..=999)",
        });
    }
    w.buf.put_u16(status);
    Ok(())
}

/// `body_len` of a body of unknown length (`cluster::wire::UNKNOWN_LEN`).
const UNKNOWN_BODY_LEN: u64 = u64::MAX;

fn write_meta(w: &mut Writer, m: &WireMeta) {
    w.buf.put_u64(m.request_time_ms);
    w.buf.put_u64(m.response_time_ms);
    w.buf.put_u64(m.corrected_initial_age_ms);
    w.buf.put_u64(m.freshness_lifetime_ms);
    w.bool(m.no_cache);
    w.bool(m.must_revalidate);
    w.opt_u64(m.stale_while_revalidate_ms);
    w.opt_u64(m.stale_if_error_ms);
}

fn read_meta(r: &mut Reader) -> Result<WireMeta> {
    Ok(WireMeta {
        request_time_ms: r.u64("meta.request_time")?,
        response_time_ms: r.u64("meta.response_time")?,
        corrected_initial_age_ms: r.u64("meta.corrected_initial_age")?,
        freshness_lifetime_ms: r.u64("meta.freshness_lifetime")?,
        no_cache: r.bool("meta.no_cache")?,
        must_revalidate: r.bool("meta.must_revalidate")?,
        stale_while_revalidate_ms: r.opt_u64("meta.stale_while_revalidate")?,
        stale_if_error_ms: r.opt_u64("meta.stale_if_error")?,
    })
}

fn write_head(w: &mut Writer, h: &ObjectHead) -> Result<()> {
    write_status(w, h.status)?;
    w.headers("headers", &h.headers)?;
    write_meta(w, &h.meta);
    w.count("vary", h.vary.len())?;
    for name in &h.vary {
        w.field("vary", name)?;
    }
    w.bytes("variant_id", &h.variant_id, w.limits.max_field)?;
    w.bool(h.has_targeted);
    w.buf.put_u64(h.body_len);
    w.field("cache_status", &h.cache_status)
}

/// Decodes the payload of a frame of type `kind` (length, type and tag already removed).
pub(super) fn decode_payload(kind: Kind, payload: Bytes, limits: &Limits) -> Result<Frame> {
    let mut r = Reader {
        buf: payload,
        frame: kind.as_str(),
        limits,
    };
    let frame = match kind {
        Kind::Hello => {
            let version = r.u8("version")?;
            let node = r.string("node", limits.max_node_id)?;
            r.need(16, "nonce")?;
            let mut nonce = [0u8; 16];
            r.buf.copy_to_slice(&mut nonce);
            Frame::Hello {
                version,
                node,
                nonce,
            }
        }
        Kind::Lookup => {
            let key = r.field("key")?;
            let method = match r.u8("method")? {
                0 => LookupMethod::Get,
                1 => LookupMethod::Head,
                v => return Err(r.bad("method", v.into(), "a method (0 GET, 1 HEAD)")),
            };
            let uri = r.field("uri")?;
            let headers = r.headers("headers")?;
            let hops = r.u8("hops")?;
            let flags = r.u8("flags")?;
            if flags & !Lookup::KNOWN_FLAGS != 0 {
                return Err(r.bad("flags", flags.into(), "a set of known flags (bits 0 to 3)"));
            }
            Frame::Lookup(Lookup {
                key,
                method,
                uri,
                headers,
                hops,
                flags,
            })
        }
        Kind::Hit => Frame::Hit(Box::new(read_head(&mut r)?)),
        Kind::WireHit => {
            let wire = r.bytes("wire", limits.max_field)?;
            let meta = read_meta(&mut r)?;
            let body_len = r.u64("body_len")?;
            if body_len == UNKNOWN_BODY_LEN {
                return Err(r.bad("body_len", body_len, "a known body length"));
            }
            let cache_status = r.bytes("cache_status", limits.max_field)?;
            // The rest of the frame: the body inline, or nothing.
            let body = if r.buf.is_empty() {
                None
            } else {
                check_inline_body(body_len, r.buf.len())?;
                Some(r.buf.split_to(r.buf.len()))
            };
            Frame::WireHit(Box::new(WireHit {
                wire,
                meta,
                body_len,
                cache_status,
                body,
            }))
        }
        Kind::Miss => Frame::Miss(Miss {
            lease: r.opt_u64("lease")?,
            cache_status: r.field("cache_status")?,
        }),
        Kind::Push => Frame::Push(Box::new(Push {
            key: r.field("key")?,
            lease: r.u64("lease")?,
            head: read_head(&mut r)?,
        })),
        Kind::Data => Frame::Data(r.buf.split_to(r.buf.len())),
        Kind::End => Frame::End {
            complete: r.bool("complete")?,
        },
        Kind::Purge => Frame::Purge {
            url: r.field("url")?,
        },
        Kind::Ban => Frame::Ban {
            prefix: r.field("prefix")?,
        },
        Kind::Count => Frame::Count(r.u64("count")?),
        Kind::Error => Frame::Error {
            code: r.u16("code")?,
            message: r.field("message")?,
        },
        Kind::Answer => Frame::Answer(Answer {
            status: read_status(&mut r)?,
            headers: r.headers("headers")?,
            body_len: r.u64("body_len")?,
        }),
        Kind::ConfigGet => Frame::ConfigGet {
            version: r.u64("version")?,
            hash: read_hash(&mut r)?,
        },
        Kind::Config => Frame::Config {
            version: r.u64("version")?,
            hash: read_hash(&mut r)?,
            text: r.string("text", limits.max_frame)?,
        },
        Kind::Wait => Frame::Wait,
        Kind::Reset => Frame::Reset,
        Kind::BanAll => Frame::BanAll,
        Kind::Credit => Frame::Credit(r.u32("bytes")?),
    };
    r.finish()?;
    Ok(frame)
}

fn read_hash(r: &mut Reader) -> Result<[u8; 32]> {
    r.need(32, "hash")?;
    let mut hash = [0u8; 32];
    r.buf.copy_to_slice(&mut hash);
    Ok(hash)
}

fn read_status(r: &mut Reader) -> Result<u16> {
    let status = r.u16("status")?;
    if !(100..=999).contains(&status) {
        return Err(r.bad("status", status.into(), "a status code (100..=999)"));
    }
    Ok(status)
}

fn read_head(r: &mut Reader) -> Result<ObjectHead> {
    let status = read_status(r)?;
    let headers = r.headers("headers")?;
    let meta = read_meta(r)?;
    let n = r.count("vary")?;
    let mut vary = Vec::with_capacity(n);
    for _ in 0..n {
        vary.push(r.field("vary")?);
    }
    Ok(ObjectHead {
        status,
        headers,
        meta,
        vary,
        variant_id: r.bytes("variant_id", r.limits.max_field)?,
        has_targeted: r.bool("has_targeted")?,
        body_len: r.u64("body_len")?,
        cache_status: r.field("cache_status")?,
    })
}
