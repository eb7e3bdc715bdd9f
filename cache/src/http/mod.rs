//! The HTTP side of a node: listeners, the request path, responses and bodies.

mod admit;
pub mod body;
pub(crate) mod chunk_limit;
pub(crate) mod chunked;
mod conn;
mod counted;
pub mod ctx;
mod decide;
pub(crate) mod fast;
mod fill;
mod forward;
pub(crate) mod h1;
pub(crate) mod handler;
pub(crate) mod handover;
mod idle;
mod interim_io;
mod io;
mod lease;
mod linger;
pub(crate) mod lite;
mod lookup;
pub mod owner;
mod owner_inline;
mod owner_partial;
mod partial;
mod pass;
pub(crate) mod passlane;
pub(crate) mod remote;
mod respond;
pub mod server;
mod stall;
mod unshare;
mod upload_lane;

pub use forward::{ban_prefix, purge_url};
