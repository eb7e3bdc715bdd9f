//! strait-topology: network-namespace topologies and the test origin (`strait sim origin`).
pub mod demo;
pub mod demo_report;
pub mod failover;
pub mod netns;
pub mod origin;
pub mod plan;
pub mod soak;
pub mod spec;
pub mod story;
pub mod story_report;
pub mod supervisor;
pub mod xdp_pass;
