//! Director failover with VRRPv3 (RFC 5798, IPv4).
//!
//! * [`machine`]: the RFC's state machine, pure (time passed in, actions returned).
//! * [`status`]: what `/stats.json`, the admin page and `/metrics` show of it.
//! * [`runner`]: one virtual router at work: sockets, timers, ownership of the VIPs,
//!   gratuitous ARPs, the notify command.
pub mod machine;
pub mod runner;
pub mod status;
