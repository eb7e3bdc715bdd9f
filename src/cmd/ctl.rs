//! `strait ctl`.
pub fn run(_args: crate::cli::CtlArgs) -> anyhow::Result<i32> {
    anyhow::bail!("unfinished")
}
