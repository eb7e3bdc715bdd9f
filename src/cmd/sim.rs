//! `strait sim`: simulation helpers.
//!
//! `strait sim origin --listen ADDR` binds ADDR (port 0 picks a free port), prints exactly one
//! line `strait-origin listening on <actual address>` on stdout (flushed, so a parent process
//! can read the port), then serves the test origin (`strait_topology::origin`) until SIGTERM
//! or ctrl-c, and exits 0.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;

/// Runs the test origin on `listen` until SIGTERM or ctrl-c.
pub fn origin(listen: SocketAddr) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let local = listener.local_addr().context("listener address")?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "strait-origin listening on {local}")?;
            out.flush()?;
        }
        tracing::info!(addr = %local, "origin serving");
        tokio::select! {
            served = strait_topology::origin::serve(listener) => {
                served.context("origin stopped accepting connections")?;
            }
            signal = shutdown_signal() => {
                signal?;
                tracing::info!("origin stopping");
            }
        }
        Ok(0)
    })
}

/// Resolves on the first SIGTERM or ctrl-c (SIGINT).
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        tokio::select! {
            _ = term.recv() => Ok(()),
            interrupted = tokio::signal::ctrl_c() => interrupted.context("cannot watch ctrl-c"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("cannot watch ctrl-c")
    }
}
