//! `strait node --config FILE`: run a cache node in the foreground.

use std::path::Path;

use anyhow::Context;

/// Load the config, build the runtime (one worker per usable CPU unless `workers` says
/// otherwise; a current-thread runtime for one worker) and run until SIGTERM.
pub fn run(config: &Path) -> anyhow::Result<i32> {
    let cfg = strait_cache::config::load(config)?;
    let workers = strait_cache::node::worker_threads(&cfg);
    let rt = if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
    .context("cannot start the async runtime")?;
    rt.block_on(strait_cache::node::run(config, cfg))?;
    Ok(0)
}
