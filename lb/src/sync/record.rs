//! One flow of the connection table on the wire: a fixed 36-byte record (layout in
//! `docs/director.md`, "Connection sync: the datagram format").
//!
//! Contract:
//! * The record names the backend by its **address** (IPv4 and port), never by an index:
//!   the two directors number their backends independently.
//! * [`Record::write`] appends exactly [`RECORD_LEN`] bytes, big-endian, reserved bytes zero;
//!   the age is sent in whole milliseconds, saturating at `u32::MAX` (49.7 days).
//! * [`Record::read`] never panics and refuses, each with its own [`RecordError`]: a flow or
//!   service protocol other than TCP or UDP, an unknown mode or state, a reserved byte that
//!   is not zero. Addresses and ports are not judged here: the receiver matches the record
//!   against its own services.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use crate::abi::{MODE_DR, MODE_NAT, MODE_TUN};
use crate::packet::parse::{FiveTuple, PROTO_TCP, PROTO_UDP};
use crate::packet::service::{Mode, ServiceKey};

/// Bytes of one record.
pub const RECORD_LEN: usize = 36;

/// Where a flow stands, as far as the director can tell from the client's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowState {
    /// A TCP flow recorded by its opening SYN, no packet of it seen since (wire value 0).
    HalfOpen,
    /// An established flow; every UDP flow (wire value 1).
    Open,
    /// A TCP flow whose client sent a FIN or RST (wire value 2).
    Closing,
}

impl FlowState {
    /// Stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::HalfOpen => "half_open",
            FlowState::Open => "open",
            FlowState::Closing => "closing",
        }
    }

    fn to_wire(self) -> u8 {
        match self {
            FlowState::HalfOpen => 0,
            FlowState::Open => 1,
            FlowState::Closing => 2,
        }
    }

    fn from_wire(b: u8) -> Option<FlowState> {
        match b {
            0 => Some(FlowState::HalfOpen),
            1 => Some(FlowState::Open),
            2 => Some(FlowState::Closing),
            _ => None,
        }
    }
}

/// The wire value of a mode: the datapath's `MODE_*` (`abi`, `strait.h`).
fn mode_to_wire(mode: Mode) -> u8 {
    match mode {
        Mode::Dr => MODE_DR,
        Mode::Tun => MODE_TUN,
        Mode::Nat => MODE_NAT,
    }
}

fn mode_from_wire(b: u8) -> Option<Mode> {
    match b {
        MODE_DR => Some(Mode::Dr),
        MODE_TUN => Some(Mode::Tun),
        MODE_NAT => Some(Mode::Nat),
        _ => None,
    }
}

/// One flow: where it goes, for which service, and how fresh it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Record {
    /// The client → VIP 5-tuple (protocol TCP or UDP).
    pub tuple: FiveTuple,
    /// The service the flow belongs to (usually the tuple's destination, port and protocol,
    /// carried explicitly all the same).
    pub service: ServiceKey,
    /// The backend's address and port (the NAT port; for DR and TUN the service port).
    pub backend: SocketAddrV4,
    /// The service's forwarding mode.
    pub mode: Mode,
    /// Where the flow stands.
    pub state: FlowState,
    /// Time since the flow's last packet (sent in whole milliseconds, saturating).
    pub age: Duration,
}

/// Why a record was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RecordError {
    /// The flow's protocol is neither TCP (6) nor UDP (17).
    #[error("flow protocol {0}, not TCP or UDP")]
    Proto(u8),
    /// The service's protocol is neither TCP nor UDP.
    #[error("service protocol {0}, not TCP or UDP")]
    ServiceProto(u8),
    /// A mode other than DR (0), TUN (1), NAT (2).
    #[error("unknown mode {0}")]
    Mode(u8),
    /// A state other than half-open (0), open (1), closing (2).
    #[error("unknown state {0}")]
    State(u8),
    /// A reserved byte is not zero.
    #[error("reserved byte not zero")]
    Reserved,
}

/// Offsets of the fields inside a record.
mod at {
    pub(super) const SRC: usize = 0;
    pub(super) const DST: usize = 4;
    pub(super) const SPORT: usize = 8;
    pub(super) const DPORT: usize = 10;
    pub(super) const PROTO: usize = 12;
    pub(super) const MODE: usize = 13;
    pub(super) const STATE: usize = 14;
    pub(super) const RESERVED_A: usize = 15;
    pub(super) const VIP: usize = 16;
    pub(super) const VPORT: usize = 20;
    pub(super) const VPROTO: usize = 22;
    pub(super) const RESERVED_B: usize = 23;
    pub(super) const BACKEND: usize = 24;
    pub(super) const BPORT: usize = 28;
    pub(super) const RESERVED_C: usize = 30;
    pub(super) const AGE: usize = 32;
}

impl Record {
    /// Appends the record's [`RECORD_LEN`] bytes to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let age_ms = u32::try_from(self.age.as_millis()).unwrap_or(u32::MAX);
        out.extend_from_slice(&self.tuple.src);
        out.extend_from_slice(&self.tuple.dst);
        out.extend_from_slice(&self.tuple.sport.to_be_bytes());
        out.extend_from_slice(&self.tuple.dport.to_be_bytes());
        out.extend_from_slice(&[
            self.tuple.proto,
            mode_to_wire(self.mode),
            self.state.to_wire(),
            0,
        ]);
        out.extend_from_slice(&self.service.vip);
        out.extend_from_slice(&self.service.port.to_be_bytes());
        out.extend_from_slice(&[self.service.proto, 0]);
        out.extend_from_slice(&self.backend.ip().octets());
        out.extend_from_slice(&self.backend.port().to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&age_ms.to_be_bytes());
    }

    /// Reads one record (see the module doc for what is refused, checked in field order).
    pub fn read(b: &[u8; RECORD_LEN]) -> Result<Record, RecordError> {
        let proto = b[at::PROTO];
        if !is_l4(proto) {
            return Err(RecordError::Proto(proto));
        }
        let mode = mode_from_wire(b[at::MODE]).ok_or(RecordError::Mode(b[at::MODE]))?;
        let state = FlowState::from_wire(b[at::STATE]).ok_or(RecordError::State(b[at::STATE]))?;
        let service_proto = b[at::VPROTO];
        if !is_l4(service_proto) {
            return Err(RecordError::ServiceProto(service_proto));
        }
        let reserved = [
            b[at::RESERVED_A],
            b[at::RESERVED_B],
            b[at::RESERVED_C],
            b[at::RESERVED_C + 1],
        ];
        if reserved != [0; 4] {
            return Err(RecordError::Reserved);
        }
        Ok(Record {
            tuple: FiveTuple {
                src: quad(b, at::SRC),
                dst: quad(b, at::DST),
                sport: pair(b, at::SPORT),
                dport: pair(b, at::DPORT),
                proto,
            },
            service: ServiceKey {
                vip: quad(b, at::VIP),
                port: pair(b, at::VPORT),
                proto: service_proto,
            },
            backend: SocketAddrV4::new(Ipv4Addr::from(quad(b, at::BACKEND)), pair(b, at::BPORT)),
            mode,
            state,
            age: Duration::from_millis(u64::from(u32::from_be_bytes(quad(b, at::AGE)))),
        })
    }
}

/// Whether `proto` is one the director balances.
fn is_l4(proto: u8) -> bool {
    proto == PROTO_TCP || proto == PROTO_UDP
}

/// The 4 bytes at `i` (inside the fixed-size record).
fn quad(b: &[u8; RECORD_LEN], i: usize) -> [u8; 4] {
    [b[i], b[i + 1], b[i + 2], b[i + 3]]
}

/// The big-endian `u16` at `i`.
fn pair(b: &[u8; RECORD_LEN], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}
