//! The connection-sync datagram payload (version 1): pure encoding and decoding. The byte
//! layout is in `docs/director.md`, "Connection sync: the datagram format".
//!
//! Contract:
//! * Every payload starts with a [`HEADER_LEN`]-byte header, big-endian: magic `SY`, version
//!   1, the message [`Kind`], the sender's [`Stamp`] (boot epoch and sequence number), the
//!   record count and 16 reserved flag bits (zero). The body follows: a fixed prefix per kind
//!   (request id, chunk index or total) and `count` records of [`RECORD_LEN`] bytes.
//! * [`Batcher`] builds record datagrams that never exceed `max_len` bytes once the
//!   authentication tag is appended; [`Message::encode`] builds any one message (a body of
//!   more than `u16::MAX` records is cut to its first `u16::MAX`: use a [`Batcher`] for
//!   records).
//! * [`decode`] never panics and checks in this order: the first 4 bytes are there
//!   ([`WireError::Truncated`]), magic, version (before the rest of the header, so that
//!   another version may change its size), the whole header, kind, reserved flags, the
//!   kind's prefix ([`WireError::Truncated`]), the exact length for `count` records
//!   ([`WireError::CountMismatch`]; kinds without records need a count of 0), then each
//!   record in order ([`WireError::BadRecord`] names the first bad one).
//! * Authentication ([`super::auth`]) and replay ([`super::replay`]) are not this module's.
//!
//! [`Batcher`]: super::Batcher

use std::time::{SystemTime, UNIX_EPOCH};

pub use super::record::{FlowState, Record, RecordError, RECORD_LEN};

/// The first two bytes of every payload.
pub const MAGIC: [u8; 2] = *b"SY";
/// The version this module reads and writes.
pub const VERSION: u8 = 1;
/// Bytes of the header.
pub const HEADER_LEN: usize = 24;
/// Most records one message carries (the count is 16 bits).
pub const MAX_COUNT: usize = u16::MAX as usize;

/// Offsets of the header fields (the magic is at 0, the version at 2).
const AT_KIND: usize = 3;
const AT_EPOCH: usize = 4;
const AT_SEQ: usize = 12;
const AT_COUNT: usize = 20;
const AT_FLAGS: usize = 22;

/// The kind of a message (the header's type byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// New, refreshed or closing flows, sent as they happen (type 1).
    Records,
    /// A (re)starting director asks its peer for its whole table (type 2).
    BulkRequest,
    /// One chunk of the answer to a bulk request (type 3).
    BulkRecords,
    /// The end of the answer to a bulk request (type 4).
    BulkEnd,
    /// The sequence numbers of `Records` datagrams received, so that the sender resends the
    /// others (type 5).
    Ack,
}

impl Kind {
    /// Stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Records => "records",
            Kind::BulkRequest => "bulk_request",
            Kind::BulkRecords => "bulk_records",
            Kind::BulkEnd => "bulk_end",
            Kind::Ack => "ack",
        }
    }

    fn to_wire(self) -> u8 {
        match self {
            Kind::Records => 1,
            Kind::BulkRequest => 2,
            Kind::BulkRecords => 3,
            Kind::BulkEnd => 4,
            Kind::Ack => 5,
        }
    }

    fn from_wire(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Records),
            2 => Some(Kind::BulkRequest),
            3 => Some(Kind::BulkRecords),
            4 => Some(Kind::BulkEnd),
            5 => Some(Kind::Ack),
            _ => None,
        }
    }

    /// Bytes of the body before the records.
    pub(super) fn prefix_len(self) -> usize {
        match self {
            Kind::Records | Kind::Ack => 0,
            Kind::BulkRequest => 4,
            Kind::BulkRecords | Kind::BulkEnd => 8,
        }
    }

    /// Bytes of each of the `count` items after the prefix: a record, or an acknowledged
    /// sequence number; 0 for the kinds without items (their count must be 0).
    fn item_len(self) -> usize {
        match self {
            Kind::Records | Kind::BulkRecords => RECORD_LEN,
            Kind::Ack => 8,
            Kind::BulkRequest | Kind::BulkEnd => 0,
        }
    }
}

/// Who sent a message and when, in the sender's own order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stamp {
    /// The sender's boot epoch: chosen at each process start, larger at every restart
    /// ([`epoch_at`]).
    pub epoch: u64,
    /// The message's number within the epoch, strictly increasing.
    pub seq: u64,
}

/// The boot epoch of a process started at `start`: nanoseconds since the Unix epoch
/// (saturating), so a later start has a larger epoch as long as the clock does not go back
/// across the restart.
pub fn epoch_at(start: SystemTime) -> u64 {
    let since = start.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

/// Hands out a sender's stamps: one epoch, sequence numbers from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequencer {
    next: Stamp,
}

impl Sequencer {
    /// Stamps of the epoch `epoch`, starting at sequence number 0.
    pub fn new(epoch: u64) -> Sequencer {
        Sequencer {
            next: Stamp { epoch, seq: 0 },
        }
    }

    /// The next stamp. After sequence number `u64::MAX` the epoch goes up by one and the
    /// numbers start again at 0 (the peer sees a restart); past the last epoch, the last
    /// stamp repeats (and is refused as a replay).
    pub fn next_stamp(&mut self) -> Stamp {
        let stamp = self.next;
        self.next = match stamp.seq.checked_add(1) {
            Some(seq) => Stamp { seq, ..stamp },
            None => match stamp.epoch.checked_add(1) {
                Some(epoch) => Stamp { epoch, seq: 0 },
                None => stamp,
            },
        };
        stamp
    }
}

/// What a message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Flows as they open, refresh or close.
    Records(Vec<Record>),
    /// A request for the peer's whole table; `request` identifies its answer.
    BulkRequest {
        /// Chosen by the requester; the answer carries it back.
        request: u32,
    },
    /// One chunk of the answer to request `request`.
    BulkRecords {
        /// The request answered.
        request: u32,
        /// The chunk's position in the answer, from 0.
        chunk: u32,
        /// The flows.
        records: Vec<Record>,
    },
    /// The end of the answer to `request`.
    BulkEnd {
        /// The request answered.
        request: u32,
        /// Records sent in the answer's chunks (saturating).
        total: u32,
    },
    /// `Records` datagrams received, by sequence number.
    Ack(Vec<u64>),
}

impl Body {
    /// The body's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Body::Records(_) => Kind::Records,
            Body::BulkRequest { .. } => Kind::BulkRequest,
            Body::BulkRecords { .. } => Kind::BulkRecords,
            Body::BulkEnd { .. } => Kind::BulkEnd,
            Body::Ack(_) => Kind::Ack,
        }
    }

    /// The records the body carries (none for the kinds without).
    pub fn records(&self) -> &[Record] {
        match self {
            Body::Records(r) | Body::BulkRecords { records: r, .. } => r,
            Body::BulkRequest { .. } | Body::BulkEnd { .. } | Body::Ack(_) => &[],
        }
    }
}

/// One decoded (or to be encoded) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The sender's stamp.
    pub stamp: Stamp,
    /// What it says.
    pub body: Body,
}

impl Message {
    /// The payload (see the module doc; more than [`MAX_COUNT`] records are cut).
    pub fn encode(&self) -> Vec<u8> {
        let kind = self.body.kind();
        let records = self.body.records();
        let records = &records[..records.len().min(MAX_COUNT)];
        let acked: &[u64] = match &self.body {
            Body::Ack(seqs) => &seqs[..seqs.len().min(MAX_COUNT)],
            _ => &[],
        };
        let mut out = Vec::with_capacity(
            HEADER_LEN + kind.prefix_len() + records.len() * RECORD_LEN + acked.len() * 8,
        );
        // Lossless: at most MAX_COUNT items.
        put_header(
            &mut out,
            kind,
            self.stamp,
            (records.len() + acked.len()) as u16,
        );
        match self.body {
            Body::Records(_) => {}
            Body::BulkRequest { request } => out.extend_from_slice(&request.to_be_bytes()),
            Body::BulkRecords { request, chunk, .. } => put_pair(&mut out, request, chunk),
            Body::BulkEnd { request, total } => put_pair(&mut out, request, total),
            Body::Ack(_) => {
                for seq in acked {
                    out.extend_from_slice(&seq.to_be_bytes());
                }
            }
        }
        for r in records {
            r.write(&mut out);
        }
        out
    }
}

/// Why a payload was refused (see the module doc for the order of the checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum WireError {
    /// Shorter than the header, or than its kind's prefix.
    #[error("truncated payload")]
    Truncated,
    /// The first two bytes are not `SY`.
    #[error("bad magic")]
    BadMagic,
    /// A version other than 1.
    #[error("unknown version {0}")]
    UnknownVersion(u8),
    /// A message type other than 1..=5.
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// The header's reserved flags are not zero.
    #[error("reserved flags not zero")]
    Reserved,
    /// The length is not the one `count` records make (or `count` is not 0 for a kind
    /// without records).
    #[error("{0} records announced, the length says otherwise")]
    CountMismatch(u16),
    /// Record `index` (from 0) was refused.
    #[error("record {index}: {why}")]
    BadRecord {
        /// The record's position in the message.
        index: u16,
        /// Why it was refused.
        why: RecordError,
    },
}

/// Reads one payload (see the module doc for the checks and their order).
pub fn decode(payload: &[u8]) -> Result<Message, WireError> {
    let [m0, m1, version, ..] = *payload else {
        return Err(WireError::Truncated);
    };
    if [m0, m1] != MAGIC {
        return Err(WireError::BadMagic);
    }
    if version != VERSION {
        return Err(WireError::UnknownVersion(version));
    }
    let (header, body) = payload
        .split_first_chunk::<HEADER_LEN>()
        .ok_or(WireError::Truncated)?;
    let kind = Kind::from_wire(header[AT_KIND]).ok_or(WireError::UnknownType(header[AT_KIND]))?;
    if header[AT_FLAGS..] != [0, 0] {
        return Err(WireError::Reserved);
    }
    let stamp = Stamp {
        epoch: u64_at(header, AT_EPOCH),
        seq: u64_at(header, AT_SEQ),
    };
    let count = u16::from_be_bytes([header[AT_COUNT], header[AT_COUNT + 1]]);
    if body.len() < kind.prefix_len() {
        return Err(WireError::Truncated);
    }
    let (prefix, rest) = body.split_at(kind.prefix_len());
    let want = usize::from(count) * kind.item_len();
    if rest.len() != want || (count != 0 && kind.item_len() == 0) {
        return Err(WireError::CountMismatch(count));
    }
    let (first, second) = (u32_at(prefix, 0), u32_at(prefix, 4));
    let body = match kind {
        Kind::Records => Body::Records(read_records(rest)?),
        Kind::BulkRequest => Body::BulkRequest { request: first },
        Kind::BulkRecords => Body::BulkRecords {
            request: first,
            chunk: second,
            records: read_records(rest)?,
        },
        Kind::BulkEnd => Body::BulkEnd {
            request: first,
            total: second,
        },
        Kind::Ack => Body::Ack(
            rest.chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    u64::from_be_bytes(b)
                })
                .collect(),
        ),
    };
    Ok(Message { stamp, body })
}

/// The records of a body whose length the caller checked.
fn read_records(bytes: &[u8]) -> Result<Vec<Record>, WireError> {
    bytes
        .chunks_exact(RECORD_LEN)
        .zip(0u16..)
        .map(|(chunk, index)| {
            let b: &[u8; RECORD_LEN] = chunk.try_into().map_err(|_| WireError::Truncated)?;
            Record::read(b).map_err(|why| WireError::BadRecord { index, why })
        })
        .collect()
}

/// The big-endian `u64` at `at` of the header.
fn u64_at(header: &[u8; HEADER_LEN], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&header[at..at + 8]);
    u64::from_be_bytes(b)
}

/// The big-endian `u32` at `at` of a prefix, 0 past its end (a prefix shorter than the field
/// has no such field).
fn u32_at(prefix: &[u8], at: usize) -> u32 {
    match prefix.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// Appends a header.
pub(super) fn put_header(out: &mut Vec<u8>, kind: Kind, stamp: Stamp, count: u16) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[VERSION, kind.to_wire()]);
    out.extend_from_slice(&stamp.epoch.to_be_bytes());
    out.extend_from_slice(&stamp.seq.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
}

/// The sequence number in the header of a payload this module built (0 when too short).
pub(super) fn payload_seq(payload: &[u8]) -> u64 {
    match payload.get(AT_SEQ..AT_SEQ + 8) {
        Some(b) => {
            let mut x = [0u8; 8];
            x.copy_from_slice(b);
            u64::from_be_bytes(x)
        }
        None => 0,
    }
}

/// The record count in the header of a payload this module built (0 when too short).
pub(super) fn record_count(payload: &[u8]) -> usize {
    match payload.get(20..22) {
        Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
        _ => 0,
    }
}

/// Appends two big-endian `u32`s (a bulk prefix).
pub(super) fn put_pair(out: &mut Vec<u8>, a: u32, b: u32) {
    out.extend_from_slice(&a.to_be_bytes());
    out.extend_from_slice(&b.to_be_bytes());
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
