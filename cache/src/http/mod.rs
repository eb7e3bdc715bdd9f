//! The HTTP side of a node: listeners, the request path, responses and bodies.

pub mod body;
pub mod ctx;
mod fetch;
mod handler;
pub mod object;
mod respond;
pub mod server;
