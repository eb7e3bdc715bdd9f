//! `strait node`.
use std::path::Path;
pub fn run(_config: &Path) -> anyhow::Result<i32> {
    anyhow::bail!("unfinished")
}
