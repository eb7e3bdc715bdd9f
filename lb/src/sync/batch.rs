//! Filling record datagrams up to a size bound.
//!
//! Contract: a [`Batcher`] made for `max_len` and `tag_len` hands out payloads of at most
//! `max_len - tag_len` bytes, so that, once [`super::auth`] appends its tag, no datagram
//! exceeds `max_len`. Each payload is stamped when it is handed out (so sequence numbers
//! follow the sending order), holds at least one record, and, for a bulk answer, carries the
//! next chunk index (0, 1, 2, …).

use super::record::{Record, RECORD_LEN};
use super::wire::{put_header, put_pair, Kind, Sequencer, HEADER_LEN, MAX_COUNT};

/// Which record messages a [`Batcher`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Batch {
    /// The live stream ([`Kind::Records`]).
    Records,
    /// The chunks of the answer to bulk request `request` ([`Kind::BulkRecords`]).
    Bulk {
        /// The request answered.
        request: u32,
    },
}

/// Collects records and hands out full payloads.
#[derive(Debug, Clone)]
pub struct Batcher {
    batch: Batch,
    /// Records one payload holds.
    room: usize,
    /// The pending records, encoded.
    pending: Vec<u8>,
    /// Chunk index of the next bulk payload.
    chunk: u32,
    /// Records handed out so far (saturating).
    sent: u32,
}

impl Batcher {
    /// A batcher of payloads that, with a tag of `tag_len` bytes (`auth::tag_len`), fit
    /// `max_len` bytes (a UDP payload: 1472 for a 1500-byte MTU); `None` when not even one
    /// record fits.
    pub fn new(batch: Batch, max_len: usize, tag_len: usize) -> Option<Batcher> {
        let room = max_len
            .checked_sub(tag_len.saturating_add(HEADER_LEN + Self::kind_of(batch).prefix_len()))
            .map(|left| (left / RECORD_LEN).min(MAX_COUNT))
            .filter(|&room| room > 0)?;
        Some(Batcher {
            batch,
            room,
            pending: Vec::with_capacity(room * RECORD_LEN),
            chunk: 0,
            sent: 0,
        })
    }

    fn kind_of(batch: Batch) -> Kind {
        match batch {
            Batch::Records => Kind::Records,
            Batch::Bulk { .. } => Kind::BulkRecords,
        }
    }

    /// Records one payload holds.
    pub fn room(&self) -> usize {
        self.room
    }

    /// Records waiting for the next payload.
    pub fn len(&self) -> usize {
        self.pending.len() / RECORD_LEN
    }

    /// Whether no record is waiting.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Records handed out in payloads so far (saturating): a bulk answer's total.
    pub fn sent(&self) -> u32 {
        self.sent
    }

    /// Adds `record`; when that fills a payload, returns it, stamped by `seq`.
    pub fn push(&mut self, record: &Record, seq: &mut Sequencer) -> Option<Vec<u8>> {
        record.write(&mut self.pending);
        if self.len() >= self.room {
            self.flush(seq)
        } else {
            None
        }
    }

    /// The waiting records as one payload stamped by `seq`; `None` (and no stamp used) when
    /// none wait.
    pub fn flush(&mut self, seq: &mut Sequencer) -> Option<Vec<u8>> {
        if self.is_empty() {
            return None;
        }
        let kind = Self::kind_of(self.batch);
        let count = self.len();
        let mut out = Vec::with_capacity(HEADER_LEN + kind.prefix_len() + self.pending.len());
        // Lossless: count <= room <= MAX_COUNT.
        put_header(&mut out, kind, seq.next_stamp(), count as u16);
        if let Batch::Bulk { request } = self.batch {
            put_pair(&mut out, request, self.chunk);
            self.chunk = self.chunk.saturating_add(1);
        }
        out.append(&mut self.pending);
        self.sent = self
            .sent
            .saturating_add(u32::try_from(count).unwrap_or(u32::MAX));
        Some(out)
    }
}
