//! Connection sync between the two directors of a VRRP pair, so that a failover keeps every
//! flow: the MASTER sends each new flow from its first packet (batched), periodic refreshes
//! and closing marks; a (re)starting director asks its peer for a bulk dump. The byte layout
//! and the rules are in `docs/director.md`, "Connection sync: the datagram format".
//!
//! This module is the pure part, bytes in and out, no sockets:
//! * [`wire`]: the versioned datagram payload: [`Message`] ([`Stamp`] and [`Body`]),
//!   [`decode`], [`Sequencer`] for a sender's stamps; [`Record`] is one flow (its backend by
//!   address, never by index).
//! * [`Batcher`]: fills record datagrams up to a size bound, tag included.
//! * [`auth`]: `payload || tag`, HMAC-SHA256 truncated to 16 bytes, with a key per direction
//!   ([`Key::derive`]); no key, no tag.
//! * [`replay`]: the per-peer [`Window`] of (epoch, sequence number) stamps.
//!
//! Contract of [`open`]: authenticate first, then decode, then check and record the stamp, so
//! a forged or broken datagram never moves the window; every refusal is a [`Refused`] with a
//! stable counter name. [`seal`] is the sending side's last step.

pub mod auth;
mod batch;
pub mod host;
mod record;
pub mod replay;
pub mod runner;
pub mod status;
pub mod wire;

pub use auth::{seal, tag_len, Key, TAG_LEN};
pub use batch::{Batch, Batcher};
pub use record::{FlowState, Record, RecordError, RECORD_LEN};
pub use replay::{Replay, Window, WINDOW};
pub use wire::{decode, epoch_at, Body, Kind, Message, Sequencer, Stamp, WireError};

/// Why a received datagram was dropped: the failed step's error, counted under one of
/// [`Refused::NAMES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Refused {
    /// The tag is missing or wrong (a key is set): `unauthenticated`.
    #[error("unauthenticated")]
    Unauthenticated,
    /// The payload was refused: `truncated`, `bad_magic`, `unknown_version`, `unknown_type`,
    /// or `malformed` (reserved flags set, a count that disagrees with the length, a refused
    /// record).
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The stamp is not new: `stale` (an older epoch), `replayed` (already accepted),
    /// `too_old` (below the window).
    #[error(transparent)]
    Replay(#[from] Replay),
}

impl Refused {
    /// Every counter name, in [`Refused::index`] order.
    pub const NAMES: &'static [&'static str] = &[
        "unauthenticated",
        "truncated",
        "bad_magic",
        "unknown_version",
        "unknown_type",
        "malformed",
        "stale",
        "replayed",
        "too_old",
    ];

    /// Position of this reason in [`Refused::NAMES`] (an index into a counter array).
    pub fn index(self) -> usize {
        match self {
            Refused::Unauthenticated => 0,
            Refused::Wire(WireError::Truncated) => 1,
            Refused::Wire(WireError::BadMagic) => 2,
            Refused::Wire(WireError::UnknownVersion(_)) => 3,
            Refused::Wire(WireError::UnknownType(_)) => 4,
            Refused::Wire(
                WireError::Reserved | WireError::CountMismatch(_) | WireError::BadRecord { .. },
            ) => 5,
            Refused::Replay(Replay::Stale) => 6,
            Refused::Replay(Replay::Duplicate) => 7,
            Refused::Replay(Replay::TooOld) => 8,
        }
    }

    /// The counter name: snake_case and stable.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self.index()]
    }
}

/// The message in a datagram received from the peer whose key (towards us) is `key` and
/// whose stamps `window` has seen; the stamp is recorded only when everything else checks.
pub fn open(key: Option<&Key>, window: &mut Window, datagram: &[u8]) -> Result<Message, Refused> {
    let payload = auth::open(key, datagram).map_err(|_| Refused::Unauthenticated)?;
    let message = decode(payload)?;
    window.accept(message.stamp)?;
    Ok(message)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;
