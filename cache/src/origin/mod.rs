//! Origin pools: the servers a node forwards misses and passes to — their config sections
//! (`section`: `[[pool]]` and `[[route]]`, re-exported by `crate::config`), routing (`route`),
//! the health probe a pool asks for (`probe`; the probes and the rise/fall state are
//! `strait_lb::health`), persistence (`persist`), runtime control of servers (`control`), and the pool itself (`pool`; its scheduler is
//! `strait_lb::select::schedule`). Requests go out on the node's own client (`h1`), the client's
//! body (`upload`) streamed by it too; the answer's body is `body`.
//!
//! `origin` imports nothing from `crate::config`; the config imports the sections from here.

pub mod body;
pub mod control;
pub mod h1;
pub mod persist;
pub mod pool;
pub mod probe;
pub mod raw_body;
pub mod route;
pub mod section;
pub mod upload;
pub use strait_lb::select::schedule::PickInput;

pub use pool::{Pool, Server};
