//! The demo never leaves its topology behind: a [`Teardown`] guard and a signal watcher.
//!
//! Contract:
//! * [`Teardown::finish`] (or, on an early return or a panic, `Drop`) stops the topology's
//!   processes (SIGTERM, bounded by `supervisor::STOP_GRACE`, then SIGKILL) and deletes every
//!   namespace with the topology's prefix — what `strait sim down` does.
//! * [`watch_signals`]: the first SIGINT or SIGTERM sets a flag that every wait and traffic
//!   loop checks ([`check`] returns [`Interrupted`]), so the demo unwinds through the guard
//!   within one request timeout; a second one removes the namespaces at once and exits 130.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context};
use strait_topology::spec::Topology;
use strait_topology::{netns, plan, supervisor};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Exit code after an interrupt (128 + SIGINT).
pub const INTERRUPTED_EXIT: i32 = 130;

/// The demo was interrupted (Ctrl-C or SIGTERM).
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// `Err(Interrupted)` once a signal arrived.
pub fn check() -> Result<(), Interrupted> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err(Interrupted)
    } else {
        Ok(())
    }
}

/// Whether `e` (or its cause) is [`Interrupted`].
pub fn is_interrupted(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Interrupted>())
}

/// Watches SIGINT and SIGTERM from now on (see the module contract); `prefix` is what a second
/// signal removes.
pub fn watch_signals(prefix: String) -> anyhow::Result<()> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.into()));
                    return;
                }
            };
            runtime.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let watched = signal(SignalKind::interrupt())
                    .and_then(|i| Ok((i, signal(SignalKind::terminate())?)));
                let (mut int, mut term) = match watched {
                    Ok(pair) => {
                        let _ = ready_tx.send(Ok(()));
                        pair
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                let mut seen = 0;
                loop {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                    seen += 1;
                    if seen == 1 {
                        INTERRUPTED.store(true, Ordering::SeqCst);
                        eprintln!("interrupted: stopping, then tearing the topology down");
                    } else {
                        eprintln!("interrupted again: removing the topology now");
                        let _ = netns::down(&prefix);
                        std::process::exit(INTERRUPTED_EXIT);
                    }
                }
            });
        })
        .context("cannot start the signal thread")?;
    ready_rx
        .recv()
        .context("the signal thread stopped")?
        .context("cannot watch SIGINT and SIGTERM")
}

/// Tears a topology down when finished or dropped.
pub struct Teardown {
    prefix: String,
    done: bool,
}

impl Teardown {
    /// Guards the topology whose names start with `prefix`.
    pub fn new(prefix: String) -> Teardown {
        Teardown {
            prefix,
            done: false,
        }
    }

    /// Stops the processes and removes the namespaces; returns how many namespaces went.
    pub fn finish(mut self) -> anyhow::Result<usize> {
        self.done = true;
        teardown(&self.prefix)
    }
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = teardown(&self.prefix) {
                eprintln!(
                    "cannot tear down {}*: {e:#}; run `strait sim down`",
                    self.prefix
                );
            }
        }
    }
}

/// Runs `scenario` on `topology` (file `path`) under a [`Teardown`] and the signal watcher,
/// after checking the programs the build needs; returns the exit code: 0 when the scenario
/// says it held, 1 when not, [`INTERRUPTED_EXIT`] after Ctrl-C; an error as is.
pub fn guarded(
    topology: &Topology,
    path: &std::path::Path,
    scenario: impl FnOnce() -> anyhow::Result<bool>,
) -> anyhow::Result<i32> {
    let missing = netns::missing_tools(&plan::up(topology));
    if !missing.is_empty() {
        bail!(
            "missing programs: {} (iproute2, ethtool)",
            missing.join(", ")
        );
    }
    let prefix = topology.prefix();
    watch_signals(prefix.clone())?;
    let teardown = Teardown::new(prefix);
    let result = scenario();
    match teardown.finish() {
        Ok(n) => say!(
            "topology {} torn down ({n} namespaces removed)",
            topology.name
        ),
        Err(e) => eprintln!(
            "cannot tear the topology down: {e:#}; run `strait sim down --topology {}`",
            path.display()
        ),
    }
    match result {
        Ok(true) => Ok(0),
        Ok(false) => Ok(1),
        // An interrupt also kills short-lived helpers (`ip`) in our process group: whatever
        // failed then, the cause was the interrupt.
        Err(e) if is_interrupted(&e) || check().is_err() => Ok(INTERRUPTED_EXIT),
        Err(e) => Err(e),
    }
}

/// Sleeps `d` in short steps, stopping early with [`Interrupted`] after Ctrl-C.
pub fn pause(d: std::time::Duration) -> Result<(), Interrupted> {
    let until = std::time::Instant::now() + d;
    loop {
        check()?;
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(std::time::Duration::from_millis(50)));
    }
}

fn teardown(prefix: &str) -> anyhow::Result<usize> {
    supervisor::stop(prefix).context("cannot stop the topology's processes")?;
    let removed = netns::down(prefix).context("cannot remove the topology's namespaces")?;
    Ok(removed.len())
}
