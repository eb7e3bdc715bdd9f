//! Origin pools: the servers a node forwards misses and passes to — routing (`route`),
//! scheduling (`strait_lb::select::schedule`), the health probe a pool asks for (`probe`; the probes and the
//! rise/fall state are `strait_lb::health`), persistence (`persist`), and the pool itself
//! (`pool`).

pub mod persist;
pub mod pool;
pub mod probe;
pub mod route;
pub mod upload;
pub use strait_lb::select::schedule::PickInput;

pub use pool::{OutBody, Pool, Server};
