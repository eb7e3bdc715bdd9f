//! Origin pools: the servers a node forwards misses and passes to — routing (`route`),
//! scheduling (`schedule`), health (`health`, `checker`), persistence (`persist`), and the
//! pool itself (`pool`).

pub mod checker;
pub mod health;
pub mod persist;
pub mod pool;
pub mod route;
pub mod schedule;
pub mod upload;
pub use schedule::PickInput;

pub use pool::{OutBody, Pool, Server};
