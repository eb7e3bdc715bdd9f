//! Storage: the RAM tier and single-flight fills.
//!
//! * [`ram`]: the size-bounded, scan-resistant RAM tier ([`RamStore`]) holding immutable objects
//!   by primary key, with up to `MAX_VARIANTS` Vary variants per key.
//! * [`pieces`]: the byte runs a partial object holds (RFC 9111 §3.3).
//! * [`fill`]: request coalescing: one origin fetch per key, every concurrent request reads
//!   the body while it is written.
//!
//! Generic code: the store does not know HTTP; the caller supplies the object type ([`Entry`]).

mod eviction;
pub mod fill;
pub mod object;
pub mod pieces;
pub mod ram;
pub mod uncacheable;
