//! The node's own HTTP/1.1 client for requests to origin servers (every fill and revalidation,
//! passes of GET/HEAD, every request that carries a client's body, and any other): one connection per exchange taken from the
//! server's idle list, the request head written in one write, the response head parsed from
//! the connection's buffer (`head`), and the body read from that buffer and socket as its
//! framing says (`body`, `chunked`), in the task that asked; the connection goes back to the
//! idle list when the body's end is read (`conn`).
//!
//! A request's body is streamed while the answer is read (`upload`); so is a bodyless request
//! of a method that is not idempotent, which that path never sends twice once it may have
//! been acted on.

pub mod body;
pub mod chunked;
pub mod conn;
pub mod framing;
pub mod head;
pub mod upload;

pub use body::LeanBody;
pub use conn::Idle;
pub use head::encode_request;
pub use upload::BodyFraming;

#[cfg(test)]
mod tests;
