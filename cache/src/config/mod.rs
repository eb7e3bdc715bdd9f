//! Node configuration: types (`types`), loading with `FILE:LINE:COL` diagnostics (`load`),
//! positions in the document (`locate`) and semantic validation (`validate`).

mod load;
mod locate;
mod types;
mod validate;

pub use load::{load, parse, render, ConfigError, ConfigKind, Diagnostic};
pub use locate::{line_col, Locator, Seg};
pub use types::*;
