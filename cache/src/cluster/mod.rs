//! The cache cluster's pure building blocks: which node owns a key (`rendezvous`) and the
//! peer protocol's frames and authentication (`frame`, `auth`).

pub mod auth;
pub mod frame;
pub mod rendezvous;
