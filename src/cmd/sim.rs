//! `strait sim`.
pub fn origin(_listen: std::net::SocketAddr) -> anyhow::Result<i32> {
    anyhow::bail!("unfinished")
}
