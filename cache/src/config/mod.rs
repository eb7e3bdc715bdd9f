//! Node configuration: types (`types`), loading with `FILE:LINE:COL` diagnostics and
//! semantic validation.

mod types;

pub use types::*;
