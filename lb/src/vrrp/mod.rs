//! Director failover with VRRPv3 (RFC 5798, IPv4 only): the parts that touch the wire.
//!
//! Contract:
//! * [`wire`]: the advertisement's encoding and decoding, pure, with every drop reason named
//!   for the counters; checked against adverts captured from keepalived (`fixtures/`).
//! * [`garp`]: the gratuitous ARP frame a new master broadcasts for each virtual address, and
//!   the packet socket that sends it.

pub mod garp;
pub mod wire;
