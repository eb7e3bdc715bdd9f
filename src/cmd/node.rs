//! `strait node --config FILE`: run a cache node in the foreground.
//!
//! Order: load the config, apply its `[l4]` section (`crate::l4`: VIPs on `lo`, ARP sysctls,
//! TUN decapsulation; an error there exits 1 before anything is served), run the node until
//! SIGTERM has drained it, then undo what `[l4]` added (also when the node failed to start).

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
    let l4 = cfg.l4.as_ref().map(crate::l4::apply).transpose()?;
    // Gives freed memory back to the system while the node is idle (`crate::alloc`).
    rt.spawn(crate::alloc::collector());
    let served = rt.block_on(strait_cache::node::run(config, cfg));
    drop(l4);
    served?;
    Ok(0)
}
