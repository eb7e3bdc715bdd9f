//! strait-lb: the L4 director.
//!
//! Contents:
//! * [`maglev`]: weighted Maglev lookup tables (pure; copied into the BPF map by the director)
//!   and the 5-tuple flow hash shared with the BPF C datapath.
//!
//! The datapaths, connection tracking, health checks and HA sync arrive with the director
//! issue (#4).

pub mod maglev;
pub mod packet;
