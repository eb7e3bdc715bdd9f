//! `strait check`.
use std::path::PathBuf;
pub fn run(_files: &[PathBuf]) -> anyhow::Result<i32> {
    anyhow::bail!("unfinished")
}
