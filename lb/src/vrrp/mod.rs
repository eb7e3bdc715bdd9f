//! Director failover with VRRPv3 (RFC 5798, IPv4 only): the parts that touch the wire.
//!
//! Contract:
//! * [`wire`]: the advertisement's encoding and decoding, pure, with every drop reason named
//!   for the counters; checked against adverts captured from keepalived (`fixtures/`).
//! * [`socket`]: the raw IP protocol 112 socket on one interface (multicast group
//!   224.0.0.18 or unicast peers), TTL 255, our address as the source.
//! * [`garp`]: the gratuitous ARP frame a new master broadcasts for each virtual address, and
//!   the packet socket that sends it.

pub mod garp;
pub mod socket;
pub mod wire;
