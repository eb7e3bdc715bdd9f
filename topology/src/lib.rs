//! strait-topology: network-namespace topologies and the test origin (`strait sim origin`).
pub mod origin;
