//! The HTTP side of a node: listeners, the request path, responses and bodies.

pub mod body;
mod conn;
pub mod ctx;
mod fast;
mod fetch;
mod handler;
mod io;
pub mod object;
mod respond;
mod rewind;
pub mod server;

pub use fetch::purge_url;
