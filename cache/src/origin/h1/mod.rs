//! The node's own HTTP/1.1 client for bodyless, idempotent requests to origin servers (every
//! fill and revalidation, and passes of GET/HEAD): one connection per exchange taken from the
//! server's idle list, the request head written in one write, the response head parsed from
//! the connection's buffer (`head`), and the body read from that buffer and socket as its
//! framing says (`body`, `chunked`), in the task that asked; the connection goes back to the
//! idle list when the body's end is read (`conn`).
//!
//! Requests that carry a client's body keep going through hyper's client (`pool`), which
//! streams the upload while it reads the answer.

pub mod body;
pub mod chunked;
pub mod conn;
pub mod framing;
pub mod head;

pub use body::LeanBody;
pub use conn::Idle;
pub use head::encode_request;

#[cfg(test)]
mod tests;
