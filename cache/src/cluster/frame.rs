//! The peer protocol: the frames cache nodes exchange over TCP, and their codec
//! ([`PeerCodec`], a `tokio_util` `Decoder` + `Encoder<Frame>` for `Framed<TcpStream, _>`).
//!
//! # Connection
//! A connection carries many exchanges at once, one per stream (`cluster::peer`): every
//! frame names its stream; the dialling side opens streams (ids 1, 2, …), the accepting side
//! answers on them. Each side sends [`Frame::Hello`] first (stream 0). With a shared secret
//! both sides then call [`PeerCodec::enable_auth`] (see `cluster::auth`) and every later
//! frame carries a tag, in the order frames are written on the connection.
//!
//! # Wire format
//! ```text
//! u32 BE length    type byte + payload (neither the stream id nor the tag is counted)
//! u8 type          the frame type, below
//! u32 BE stream    the stream (exchange) the frame belongs to; 0 for `Hello`
//! payload          fields in order; integers big-endian
//! [16-byte tag]    only once authentication is on
//! ```
//! Field encodings: `str` and `bytes` are a `u32` byte length then the bytes (`str` is
//! UTF-8); `bool` is one byte, 0 or 1; `opt u64` is a `bool` then the `u64` when true; a
//! list is a `u16` count then the entries; `headers` is a list of (`bytes` name, `bytes`
//! value) pairs, in order, repeated names allowed.
//!
//! # Frames
//! | type | frame | direction | payload |
//! |---|---|---|---|
//! | 1 | `Hello` | both, first | `u8` version, `str` node id, 16-byte nonce; never tagged |
//! | 2 | `Lookup` | requester → owner | `str` key, `u8` method (0 GET, 1 HEAD), `str` uri, `headers`, `u8` hops, `u8` flags |
//! | 3 | `Hit` | owner → requester | an object head; then `Data`* and `End` |
//! | 4 | `Miss` | owner → requester | `opt u64` lease, `str` cache status |
//! | 5 | `Push` | requester → owner | `str` key, `u64` lease, an object head; then `Data`* and `End`; a complete one is answered with `Count` once stored |
//! | 6 | `Data` | either | the rest of the frame is one body chunk |
//! | 7 | `End` | either | `bool` complete (false: the body was aborted; discard it) |
//! | 8 | `Purge` | either | `str` url; answered with `Count` |
//! | 9 | `Ban` | either | `str` prefix; answered with `Count` |
//! | 10 | `Count` | either | `u64` objects removed (`Purge`, `Ban`, `BanAll`), or body bytes stored (`Push`) |
//! | 11 | `Error` | either | `u16` code, `str` message |
//! | 12 | `Answer` | owner → requester | `u16` status, `headers`, `u64` body length; then `Data`* and `End` |
//! | 13 | `ConfigGet` | either | `u64` version, 32-byte hash: ask for the shared config a member announced (`cluster::confdist`) |
//! | 14 | `Config` | either | `u64` version, 32-byte hash, `text` shared config (canonical TOML); the answer to `ConfigGet` (else `Error`) |
//! | 15 | `Wait` | owner → requester | empty: the owner works on the `Lookup` (follows a fill, asks the origin or the previous owner); its answer follows |
//! | 16 | `Reset` | either | empty: the sender closed the stream mid-exchange (dropped it, or the other side sent `Data` beyond the credit it was given); the receiver closes its end |
//! | 17 | `Credit` | either | `u32` bytes: the sender's reader took that many more `Data` payload bytes of the stream; the receiver may send as many more (flow control, `cluster::peer`) |
//! | 18 | `BanAll` | either | empty: remove every stored object (an operator's `ban --all`); answered with `Count` |
//! | 19 | `WireHit` | owner → requester | `bytes` wire head, meta, `u64` body length, `bytes` cache status, then the body inline or nothing; without it, for a GET, `Data` frames of exactly that many bytes follow, and no `End` (version 9; only to a `Lookup` with [`Lookup::WIRE`]) |
//!
//! An object head is: `u16` status (100..=999), `headers`, meta (`u64` request time,
//! `u64` response time — both ms since the UNIX epoch —, `u64` corrected initial age,
//! `u64` freshness lifetime — ms —, `bool` no-cache, `bool` must-revalidate, `opt u64`
//! stale-while-revalidate, `opt u64` stale-if-error — ms), a list of `str` Vary field names,
//! `bytes` variant id, `bool` has-targeted, `u64` body length, `str` cache status (the
//! sender's `Cache-Status` member, e.g. `b; hit; ttl=30`).
//!
//! `Lookup.flags`: bit 0 ([`Lookup::MAY_LEASE`]) the requester may take the fill lease;
//! bit 1 ([`Lookup::PROBE`]) probe only — the previous owner after a join answers `Hit` or
//! `Miss` at once, never waits on a fill and never grants a lease; bit 2
//! ([`Lookup::WIRE`]) the requester takes `WireHit`: a fresh object the owner keeps in its
//! HTTP/1.1 wire form is answered with that form (status line and stored header lines, as
//! its own fast path writes them, ending with the blank line) instead of a `Hit` with a
//! header list; and it never sends `Wait` — where the answer would need a slow step first
//! (a stale object, a handover probe, a fill to follow) the owner answers `Miss` without a
//! lease at once, and the requester asks again without the bit; bit 3 ([`Lookup::RANGE`],
//! version 8) a range request under `cache.partial`: the owner sends `Wait`, then answers
//! the request as it would for a client of its own (`Answer`: from its complete object, from
//! its partial object, or fetching the missing bytes from its origin and keeping them),
//! never `Hit` or `Miss`. Other bits are rejected.
//! `WireHit`: the meta is encoded as in an object head; the requester checks the wire head
//! (`http::remote::wirecheck`) before it writes any of it to a client. What follows the
//! cache status to the frame's end is the body inline (version 10: exactly the announced
//! length, and nothing follows the frame; any other length is an error) or nothing (the
//! body, if any, follows as `Data`). The owner inlines the body of a GET's small object, so
//! a remote hit is one frame each way.
//! `Miss.lease`: `Some(id)` the requester fetches from the origin and `Push`es the object
//! under that lease; `None` it fetches and does not push.
//! `Answer`: the owner answered the request itself, as it would answer a client of its own
//! (a stale object served under stale-while-revalidate or stale-if-error, a revalidation, an
//! error): status and headers as sent to a client, its `Cache-Status` member included; the
//! requester relays it and stores nothing. Body length `u64::MAX`: not known in advance.
//! `Config.text` is a `str` bounded by the frame length ([`Limits::max_frame`]), not by
//! [`Limits::max_field`].
//! `Wait`: the owner answers every `Lookup` with its first frame at once (within the
//! requester's `peer_timeout`), except when the answer needs something slow first (waiting on
//! a fill of the key, revalidating with the origin, probing the previous owner): then it sends
//! `Wait` at once and the answer later, and the requester allows the longer wait. So a
//! requester tells a hung owner (no first frame in time) from a busy one.
//!
//! # Limits
//! Every length is checked against [`Limits`] before anything is allocated for it, on
//! decode and on encode (so a node never sends what its peer would refuse): the frame length
//! ([`DEFAULT_MAX_DATA_FRAME`] for `Data`, [`DEFAULT_MAX_FRAME`] for the rest), header and
//! Vary counts ([`DEFAULT_MAX_HEADERS`]), each string or header field
//! ([`DEFAULT_MAX_FIELD`]) and the node id ([`DEFAULT_MAX_NODE_ID`]). Decoding never panics;
//! every malformed input is a [`FrameError`] naming the frame and field, after which the
//! connection must be closed.

mod codec;
mod meta;
mod object;
mod wire;

#[cfg(test)]
mod tests;

use bytes::Bytes;

pub use codec::PeerCodec;
pub(crate) use codec::HEAD_LEN;

/// Protocol version carried in `Hello`; nodes of another version refuse each other. 2: a
/// complete `Push` is answered with `Count` once stored (1 did not answer it). 3: an owner
/// that will answer a `Lookup` only after a slow step sends `Wait` first. 4: every frame
/// carries a stream id, and one connection carries many exchanges at once (`Reset`). 5: per
/// stream flow control: `Data` is sent only within the credit the receiver gave (`Credit`).
/// 6: `BanAll` (an operator's `ban --all`; a `Ban` never empties the cache). 7: `WireHit`
/// and [`Lookup::WIRE`] (remote hits in the owner's HTTP/1.1 wire form). 8:
/// [`Lookup::RANGE`] (the owner answers a range from its partial object). 9: a `WireHit`'s
/// body ends at its announced length, without `End` (one frame less per remote hit). 10: a
/// `WireHit` may carry its body inline (one frame per small remote hit).
pub const VERSION: u8 = 10;
/// Default bound of a `Data` frame's length (type byte + chunk).
pub const DEFAULT_MAX_DATA_FRAME: usize = 1024 * 1024;
/// Default bound of any other frame's length.
pub const DEFAULT_MAX_FRAME: usize = 256 * 1024;
/// Default bound of the header fields of a `Lookup` or an object head, and of Vary names.
pub const DEFAULT_MAX_HEADERS: usize = 256;
/// Default bound of one string, bytes field, header name or header value.
pub const DEFAULT_MAX_FIELD: usize = 64 * 1024;
/// Default bound of a node id in `Hello`.
pub const DEFAULT_MAX_NODE_ID: usize = 255;

/// The bounds a codec enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest `Data` frame (type byte + chunk).
    pub max_data_frame: usize,
    /// Longest frame of any other type (type byte + payload).
    pub max_frame: usize,
    /// Most header fields in one list, and most Vary names.
    pub max_headers: usize,
    /// Longest string, bytes field, header name or header value.
    pub max_field: usize,
    /// Longest node id.
    pub max_node_id: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_data_frame: DEFAULT_MAX_DATA_FRAME,
            max_frame: DEFAULT_MAX_FRAME,
            max_headers: DEFAULT_MAX_HEADERS,
            max_field: DEFAULT_MAX_FIELD,
            max_node_id: DEFAULT_MAX_NODE_ID,
        }
    }
}

impl Limits {
    /// Largest body chunk one `Data` frame can carry: senders split bodies to this size.
    pub fn max_data_chunk(&self) -> usize {
        self.max_data_frame.saturating_sub(1)
    }
}

/// One protocol frame. The large heads (`Hit`, `WireHit`, `Push`) are boxed: a frame is
/// moved several times on its way (decoded, queued, taken, matched), and unboxed they made
/// every frame, a `Data` or `Credit` too, 224 bytes to copy each time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// First frame each way: protocol version, the sender's node id and its nonce for the
    /// authentication keys. Never tagged.
    Hello {
        /// Protocol version, [`VERSION`]; a node drops a peer whose `Hello` carries another.
        version: u8,
        /// The sender's node id (its `[node] id`), at most [`Limits::max_node_id`] bytes.
        node: String,
        /// 16 random bytes, fresh per connection; with a shared secret, both sides' nonces key
        /// the frame tags.
        nonce: [u8; 16],
    },
    /// Requester → owner: look up (and maybe lease the fill of) one object.
    Lookup(Lookup),
    /// Owner → requester: the object's head; its body follows as `Data`* then `End`.
    Hit(Box<ObjectHead>),
    /// Owner → requester, to a `Lookup` with [`Lookup::WIRE`]: a fresh object's head in its
    /// HTTP/1.1 wire form; its body follows as `Data`* then `End`.
    WireHit(Box<WireHit>),
    /// Owner → requester: not stored; what the requester does instead.
    Miss(Miss),
    /// Requester → owner: an object filled under a lease; its body follows as `Data`* then
    /// `End`.
    Push(Box<Push>),
    /// A body chunk.
    Data(Bytes),
    /// The body is finished; `complete: false` means it was aborted and is discarded.
    End {
        /// true: the body is whole; false: the sender aborted it and the receiver discards it.
        complete: bool,
    },
    /// Remove the objects of one URL; answered with `Count`.
    Purge {
        /// The URL's primary cache key (`http://host/path?query`); the objects stored under
        /// its route's `cache_key` extensions go too.
        url: String,
    },
    /// Remove the objects whose URL starts with `prefix`; answered with `Count`.
    Ban {
        /// A cache key prefix (`http://host/...`); one that would ban every object (a prefix
        /// of `http://`) is refused with `Error` 400.
        prefix: String,
    },
    /// Remove every stored object, on an operator's explicit request (`ban --all`); answered
    /// with `Count`. A `Ban` can never mean this.
    BanAll,
    /// How many objects a `Purge`, `Ban` or `BanAll` removed, or how many body bytes the owner
    /// stored for a `Push`.
    Count(u64),
    /// The request failed; the connection stays usable for the next exchange.
    Error {
        /// An HTTP status code saying whose fault it is (400: the request was malformed or
        /// not allowed).
        code: u16,
        /// What went wrong, for the requester's logs; at most [`Limits::max_field`] bytes.
        message: String,
    },
    /// Owner → requester: the owner's own answer to the request; its body follows as
    /// `Data`* then `End`.
    Answer(Answer),
    /// Ask a member for the shared config version it announced; answered with `Config`, or
    /// `Error` 404 when it does not run that version (any more).
    ConfigGet {
        /// The version number.
        version: u64,
        /// Its SHA-256 content hash.
        hash: [u8; 32],
    },
    /// A shared config version (`cluster::confdist`): canonical TOML of the shared sections.
    Config {
        /// The version number.
        version: u64,
        /// SHA-256 of `text` (the receiver checks it).
        hash: [u8; 32],
        /// The canonical text.
        text: String,
    },
    /// Owner → requester: the answer to the `Lookup` follows after a slow step (see the
    /// module doc); the requester waits longer for it.
    Wait,
    /// Either way: the sender dropped its end of the stream mid-exchange (or the other side
    /// sent `Data` beyond its credit); the receiver's end is closed too.
    Reset,
    /// Either way: the sender's reader took this many more `Data` payload bytes of the
    /// stream out of its queue, so the receiver may send as many more (flow control).
    Credit(u32),
}

impl Frame {
    /// The frame's type byte on the wire.
    pub fn type_byte(&self) -> u8 {
        self.kind() as u8
    }

    pub(crate) fn kind(&self) -> Kind {
        match self {
            Frame::Hello { .. } => Kind::Hello,
            Frame::Lookup(_) => Kind::Lookup,
            Frame::Hit(_) => Kind::Hit,
            Frame::WireHit(_) => Kind::WireHit,
            Frame::Miss(_) => Kind::Miss,
            Frame::Push(_) => Kind::Push,
            Frame::Data(_) => Kind::Data,
            Frame::End { .. } => Kind::End,
            Frame::Purge { .. } => Kind::Purge,
            Frame::Ban { .. } => Kind::Ban,
            Frame::BanAll => Kind::BanAll,
            Frame::Count(_) => Kind::Count,
            Frame::Error { .. } => Kind::Error,
            Frame::Answer(_) => Kind::Answer,
            Frame::ConfigGet { .. } => Kind::ConfigGet,
            Frame::Config { .. } => Kind::Config,
            Frame::Wait => Kind::Wait,
            Frame::Reset => Kind::Reset,
            Frame::Credit(_) => Kind::Credit,
        }
    }

    /// The frame's name (`Hit`, `Miss`, …), for errors and logs.
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }
}

/// Frame types, numbered as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Hello = 1,
    Lookup = 2,
    Hit = 3,
    Miss = 4,
    Push = 5,
    Data = 6,
    End = 7,
    Purge = 8,
    Ban = 9,
    Count = 10,
    Error = 11,
    Answer = 12,
    ConfigGet = 13,
    Config = 14,
    Wait = 15,
    Reset = 16,
    Credit = 17,
    BanAll = 18,
    WireHit = 19,
}

impl Kind {
    pub(crate) fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::Lookup,
            3 => Kind::Hit,
            4 => Kind::Miss,
            5 => Kind::Push,
            6 => Kind::Data,
            7 => Kind::End,
            8 => Kind::Purge,
            9 => Kind::Ban,
            10 => Kind::Count,
            11 => Kind::Error,
            12 => Kind::Answer,
            13 => Kind::ConfigGet,
            14 => Kind::Config,
            15 => Kind::Wait,
            16 => Kind::Reset,
            17 => Kind::Credit,
            18 => Kind::BanAll,
            19 => Kind::WireHit,
            _ => return None,
        })
    }

    /// The frame's name, as used in error messages.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Hello => "Hello",
            Kind::Lookup => "Lookup",
            Kind::Hit => "Hit",
            Kind::Miss => "Miss",
            Kind::Push => "Push",
            Kind::Data => "Data",
            Kind::End => "End",
            Kind::Purge => "Purge",
            Kind::Ban => "Ban",
            Kind::Count => "Count",
            Kind::Error => "Error",
            Kind::Answer => "Answer",
            Kind::ConfigGet => "ConfigGet",
            Kind::Config => "Config",
            Kind::Wait => "Wait",
            Kind::Reset => "Reset",
            Kind::Credit => "Credit",
            Kind::BanAll => "BanAll",
            Kind::WireHit => "WireHit",
        }
    }
}

/// The request method a `Lookup` serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupMethod {
    /// `GET` (0 on the wire): a `Hit` carries the body.
    Get,
    /// `HEAD` (1 on the wire): a `Hit` carries the head only, and a `Miss` never a lease.
    Head,
}

impl LookupMethod {
    /// The method's name, `GET` or `HEAD`.
    pub fn as_str(self) -> &'static str {
        match self {
            LookupMethod::Get => "GET",
            LookupMethod::Head => "HEAD",
        }
    }
}

/// A `Lookup` to send, its fields borrowed: encoded exactly as [`Frame::Lookup`] of the same
/// fields would be, with nothing copied first (the lean remote hit's, straight from the
/// client's raw head).
#[derive(Debug, Clone, Copy)]
pub struct LookupOut<'a> {
    /// [`Lookup::key`].
    pub key: &'a str,
    /// [`Lookup::method`].
    pub method: LookupMethod,
    /// [`Lookup::uri`].
    pub uri: &'a str,
    /// [`Lookup::headers`].
    pub headers: Fields<'a>,
    /// [`Lookup::hops`].
    pub hops: u8,
    /// [`Lookup::flags`].
    pub flags: u8,
}

/// Where a [`LookupOut`]'s header fields come from.
#[derive(Debug, Clone, Copy)]
pub enum Fields<'a> {
    /// Name and value pairs.
    Pairs(&'a [(Bytes, Bytes)]),
    /// A request head as it came (request line, field lines, empty line): its field lines,
    /// as `policy::headers::request_fields` reads them.
    Raw(&'a [u8]),
}

impl Lookup {
    /// This lookup, borrowed for encoding.
    pub fn out(&self) -> LookupOut<'_> {
        LookupOut {
            key: &self.key,
            method: self.method,
            uri: &self.uri,
            headers: Fields::Pairs(&self.headers),
            hops: self.hops,
            flags: self.flags,
        }
    }
}

/// An already-parsed client request, sent to the key's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The cache key.
    pub key: String,
    /// The client's method.
    pub method: LookupMethod,
    /// The request target as the client sent it.
    pub uri: String,
    /// The request's header fields (what Vary selection and conditionals need).
    pub headers: Vec<(Bytes, Bytes)>,
    /// Peer hops taken so far (loop guard).
    pub hops: u8,
    /// [`Lookup::MAY_LEASE`] | [`Lookup::PROBE`] | [`Lookup::WIRE`] | [`Lookup::RANGE`].
    pub flags: u8,
}

impl Lookup {
    /// The requester may take the fill lease.
    pub const MAY_LEASE: u8 = 1;
    /// Probe only: answer `Hit` or `Miss` at once, never wait, never lease.
    pub const PROBE: u8 = 2;
    /// The requester takes a fresh object as `WireHit` when the owner keeps its wire form.
    pub const WIRE: u8 = 4;
    /// A range request under `cache.partial`: the owner answers it itself (`Answer`), from
    /// its complete or partial object or fetching what is missing, never with a lease.
    pub const RANGE: u8 = 8;
    /// Every defined flag bit.
    pub const KNOWN_FLAGS: u8 = Lookup::MAY_LEASE | Lookup::PROBE | Lookup::WIRE | Lookup::RANGE;

    /// Whether [`Lookup::MAY_LEASE`] is set.
    pub fn may_lease(&self) -> bool {
        self.flags & Lookup::MAY_LEASE != 0
    }

    /// Whether [`Lookup::PROBE`] is set.
    pub fn is_probe(&self) -> bool {
        self.flags & Lookup::PROBE != 0
    }

    /// Whether [`Lookup::WIRE`] is set.
    pub fn wants_wire(&self) -> bool {
        self.flags & Lookup::WIRE != 0
    }

    /// Whether [`Lookup::RANGE`] is set.
    pub fn wants_range(&self) -> bool {
        self.flags & Lookup::RANGE != 0
    }
}

/// A fresh object's head in its HTTP/1.1 wire form (`WireHit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireHit {
    /// Status line and stored header lines, ending with the blank line (the object's
    /// `store::object::Object::wire`).
    pub wire: Bytes,
    /// The times and directives freshness is computed from.
    pub meta: WireMeta,
    /// Length of the body (never unknown: stored objects are whole).
    pub body_len: u64,
    /// The sender's `Cache-Status` member, e.g. `b; hit; ttl=30`, as bytes: not checked here
    /// (the requester emits it only when it is visible ASCII, `upstream_member_bytes`).
    pub cache_status: Bytes,
    /// The body itself, `body_len` bytes, when it travels in this frame; None: for a GET it
    /// follows as `Data` frames (nothing follows for a HEAD). An empty body inline is the
    /// same bytes as none, and decodes as None.
    pub body: Option<Bytes>,
}

/// A stored object's head as it travels between nodes (`Hit`, `Push`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// Response status, 100..=999.
    pub status: u16,
    /// End-to-end header fields as stored.
    pub headers: Vec<(Bytes, Bytes)>,
    /// The times and directives freshness is computed from.
    pub meta: WireMeta,
    /// Selecting header field names (from `Vary`), lowercase.
    pub vary: Vec<String>,
    /// This variant's values of the Vary fields.
    pub variant_id: Bytes,
    /// The headers hold a targeted cache-control field that must not go downstream.
    pub has_targeted: bool,
    /// Length of the body that follows as `Data` frames; `u64::MAX` (`wire::UNKNOWN_LEN`):
    /// not known in advance (an origin's chunked answer), the `End` frame completes it.
    pub body_len: u64,
    /// The sender's `Cache-Status` member, e.g. `b; hit; ttl=30`.
    pub cache_status: String,
}

/// `policy::meta::StoredMeta` on the wire: times as ms since the UNIX epoch, durations in
/// ms (sub-millisecond parts are dropped). See `frame/meta.rs` for the conversions, and
/// `frame/object.rs` for [`ObjectHead::of_object`] and [`ObjectHead::into_object`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireMeta {
    /// When the request that filled the object was sent, ms since the UNIX epoch.
    pub request_time_ms: u64,
    /// When its response was received, ms since the UNIX epoch.
    pub response_time_ms: u64,
    /// The response's age on arrival (RFC 9111 §4.2.3 `corrected_initial_age`), ms.
    pub corrected_initial_age_ms: u64,
    /// How long the response is fresh (RFC 9111 §4.2.1), ms; 0: always stale.
    pub freshness_lifetime_ms: u64,
    /// The response said `no-cache`: revalidate before every reuse.
    pub no_cache: bool,
    /// The response said `must-revalidate`, `proxy-revalidate` or `s-maxage`: never serve it
    /// stale.
    pub must_revalidate: bool,
    /// The response's `stale-while-revalidate` window (RFC 5861), ms; `None`: none given.
    pub stale_while_revalidate_ms: Option<u64>,
    /// The response's `stale-if-error` window (RFC 5861), ms; `None`: none given.
    pub stale_if_error_ms: Option<u64>,
}

/// The owner's answer when it does not hold the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    /// `Some(id)`: fetch from the origin and `Push` under this lease; `None`: fetch, do not
    /// push.
    pub lease: Option<u64>,
    /// The owner's `Cache-Status` member.
    pub cache_status: String,
}

/// An object filled by the requester under a lease, sent to the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The cache key, as in the `Lookup` that got the lease.
    pub key: String,
    /// The lease id from the owner's `Miss`.
    pub lease: u64,
    /// The filled object's head; its body follows as `Data`* then `End`.
    pub head: ObjectHead,
}

/// The owner's own answer to a request (`Frame::Answer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Response status, 100..=999.
    pub status: u16,
    /// The headers as sent to a client (the owner's `Cache-Status` member, `Age`, `Via`).
    pub headers: Vec<(Bytes, Bytes)>,
    /// Length of the body that follows as `Data` frames; `u64::MAX`: not known in advance.
    pub body_len: u64,
}

/// Why a frame could not be decoded or encoded. Any of these ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The type byte names no frame.
    #[error("frame type {0} unknown")]
    UnknownType(u8),
    /// A frame length of 0: not even a type byte.
    #[error("frame length 0: no type byte")]
    Empty,
    /// A frame longer than its type's bound ([`Limits::max_data_frame`] or
    /// [`Limits::max_frame`]).
    #[error("{frame} frame: {len} bytes over the {limit} limit")]
    FrameTooLong {
        /// The frame's name.
        frame: &'static str,
        /// Its length (type byte + payload), bytes.
        len: usize,
        /// The bound it crossed, bytes.
        limit: usize,
    },
    /// A string or bytes field longer than its bound ([`Limits::max_field`], or
    /// [`Limits::max_node_id`] for `Hello.node`).
    #[error("{frame}.{field}: {len} bytes over the {limit} limit")]
    FieldTooLong {
        /// The frame's name.
        frame: &'static str,
        /// The field's name.
        field: &'static str,
        /// The field's length, bytes.
        len: usize,
        /// The bound it crossed, bytes.
        limit: usize,
    },
    /// A header or Vary list with more entries than [`Limits::max_headers`].
    #[error("{frame}.{field}: {count} entries over the {limit} limit")]
    TooMany {
        /// The frame's name.
        frame: &'static str,
        /// The list's name.
        field: &'static str,
        /// Its entries.
        count: usize,
        /// The bound it crossed.
        limit: usize,
    },
    /// The payload ended inside a field.
    #[error("truncated {frame} frame at {frame}.{field}")]
    Truncated {
        /// The frame's name.
        frame: &'static str,
        /// The field it ended in.
        field: &'static str,
    },
    /// Bytes left over after the last field of the payload.
    #[error("{count} trailing bytes after the {frame} payload")]
    Trailing {
        /// The frame's name.
        frame: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// A `str` field that is not UTF-8.
    #[error("bad UTF-8 in {frame}.{field}")]
    Utf8 {
        /// The frame's name.
        frame: &'static str,
        /// The field's name.
        field: &'static str,
    },
    /// A field whose value is out of its range: a method, a flag set, a `bool`, a status.
    #[error("{frame}.{field}: {value} is not {expected}")]
    BadValue {
        /// The frame's name.
        frame: &'static str,
        /// The field's name.
        field: &'static str,
        /// The value found.
        value: u64,
        /// What the field allows, e.g. `a status code (100..=999)`.
        expected: &'static str,
    },
    /// A time in an object head that this platform's `SystemTime` cannot hold.
    #[error("{field}: {ms} ms is not a representable time")]
    Time {
        /// The meta field, e.g. `meta.response_time`.
        field: &'static str,
        /// Its value, ms since the UNIX epoch.
        ms: u64,
    },
    /// An object head that makes no valid object ([`ObjectHead::into_object`]).
    #[error("object head: invalid {what}")]
    BadHead {
        /// What is invalid: `status`, `header name`, `header value` or `Vary name`.
        what: &'static str,
    },
    /// A body of another length than its object head announced.
    #[error("object head announced {announced} body bytes, got {got}")]
    BodyLength {
        /// The head's `body_len`, bytes.
        announced: u64,
        /// The body's length, bytes.
        got: u64,
    },
    /// A frame whose tag is not the one the shared secret gives: altered, replayed or sent by
    /// a node without the secret.
    #[error("tag mismatch")]
    TagMismatch,
    /// A `Hello` sent or received once authentication is on.
    #[error("Hello after the handshake")]
    HelloAfterHandshake,
    /// The connection ended with part of a frame buffered (its byte count).
    #[error("connection closed inside a frame ({0} bytes buffered)")]
    ClosedMidFrame(usize),
    /// Reading or writing the connection failed.
    #[error("peer connection I/O")]
    Io(#[from] std::io::Error),
}
