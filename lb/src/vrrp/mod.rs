//! Director failover with VRRPv3 (RFC 5798, IPv4 only).
//!
//! Contract:
//! * [`wire`]: the advertisement's encoding and decoding, pure, with every drop reason named
//!   for the counters; checked against adverts captured from keepalived (`fixtures/`).
//! * [`machine`]: the RFC's state machine (Initialize, Backup, Master) and its timers, pure:
//!   time is passed in, actions are returned.
//! * [`socket`]: the raw IP protocol 112 socket on one interface (multicast group
//!   224.0.0.18 or unicast peers), TTL 255, our address as the source.
//! * [`garp`]: the gratuitous ARP frame a new master broadcasts for each virtual address, and
//!   the packet socket that sends it.
//! * [`runner`]: one virtual router at work: the machine fed by the socket and its timers,
//!   the VIPs owned through the datapath's ARP responder, gratuitous ARPs, `notify`.
//! * [`status`]: what `/stats.json`, the admin page and `/metrics` show of it.

pub mod garp;
pub mod machine;
pub mod runner;
pub mod socket;
pub mod status;
pub mod wire;
