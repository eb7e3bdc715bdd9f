//! `strait director --config FILE`: run an L4 director in the foreground.
//!
//! Contract: the datapath named by `datapath` in the config is opened by [`open_datapath`];
//! the control plane (`strait_lb::control::run`) does the rest. Exit 0 after SIGTERM/SIGINT
//! (everything detached); an error (bad config, missing interface, datapath that cannot be
//! opened) is printed by `main` and exits 1.

use std::path::Path;

use anyhow::Context;
use strait_lb::config::{DatapathKind, DirectorConfig};
use strait_lb::datapath::{Datapath, DatapathError, DatapathOptions};

/// Runs the director until SIGTERM or SIGINT.
pub fn run(config: &Path) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(strait_lb::control::run(config, &open_datapath))?;
    Ok(0)
}

/// Opens the configured datapath.
pub fn open_datapath(
    config: &DirectorConfig,
    options: DatapathOptions,
) -> Result<Box<dyn Datapath>, DatapathError> {
    match config.datapath {
        DatapathKind::Xdp => strait_lb::datapath::open_xdp(&options),
        DatapathKind::Userspace => strait_lb::userspace::UserspaceDatapath::open(&options)
            .map(|d| Box::new(d) as Box<dyn Datapath>),
    }
}
