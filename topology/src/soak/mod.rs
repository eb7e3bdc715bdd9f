//! The pure parts of `strait sim run soak`: a seeded generator ([`rng`]), the fault schedule
//! and the record of what was down when ([`schedule`]), the request mix ([`workload`]), the
//! verdict on each answer ([`verdict`]) and the tally and its report ([`report`]). The I/O
//! (namespaces, processes, sockets) is in the binary's `cmd::sim::soak`.

pub mod report;
pub mod rng;
pub mod schedule;
pub mod verdict;
pub mod workload;
