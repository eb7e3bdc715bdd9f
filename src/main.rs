//! The `strait` binary: tracing setup and dispatch to `cmd/`.

mod cli;
mod cmd;
mod l4;

use clap::Parser;

/// mimalloc instead of glibc malloc: the hit path allocates a few small buffers per request
/// (header maps, `Cache-Status`), and glibc's malloc/free showed up as ~7% of a node's CPU in
/// `perf` on 1 KiB hits; mimalloc's thread-local free lists make that cheaper.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: 15 in the `mi_option_t` of both the v3 sources that
/// libmimalloc-sys 0.1.49 builds by default and its v2 sources (the crate's `extended` bindings
/// do not name it). Recheck when libmimalloc-sys changes; `tests/proxy/slow_readers.rs` measures
/// the memory returned after load and fails if this stops working.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// Memory freed goes back to the OS at once (`purge_delay` 0; mimalloc's default is 10 ms).
/// With the default, the pages a worker thread frees just before it goes idle are purged only
/// at its next allocation: after 100 clients of large fills left, a node stayed ~100 MB over
/// its baseline (measured: 149 MiB against 49 MiB, with 16 MiB stored); with 0 it went back
/// to its baseline plus what is stored and ~20 MB. Purges happen when whole spans are freed
/// (large buffers), not on the small allocations of the hit path.
fn return_freed_memory_at_once() {
    // SAFETY: mi_option_set only stores an option value; any option number and value is valid.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
}

fn main() {
    return_freed_memory_at_once();
    let cli = cli::Cli::parse();
    // `sim run` talks to the operator in plain lines; its own logs would only be noise.
    let default_filter = match cli.command {
        cli::Command::Sim {
            command: cli::SimCommand::Run { .. },
        } => "warn",
        _ => "info",
    };
    // Colours only on a terminal, and never with NO_COLOR set (https://no-color.org).
    let ansi = strait_lb::accesslog::colours_allowed(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRAIT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .init();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("strait: error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn run(cli: cli::Cli) -> anyhow::Result<i32> {
    match cli.command {
        cli::Command::Node { config } => cmd::node::run(&config),
        cli::Command::Director { config } => cmd::director::run(&config),
        cli::Command::Check { files } => cmd::check::run(&files),
        cli::Command::Ctl(args) => cmd::ctl::run(args),
        cli::Command::Sim { command } => match command {
            cli::SimCommand::Origin { listen } => cmd::sim::origin(listen),
            cli::SimCommand::Up { topology, logs } => cmd::sim::up(&topology, logs),
            cli::SimCommand::Down { topology } => cmd::sim::down(&topology),
            cli::SimCommand::Run {
                scenario: cli::Scenario::Demo,
                topology,
                logs,
                requests,
                ..
            } => cmd::sim::run_demo(cmd::sim::DemoArgs {
                topology,
                logs,
                requests,
            }),
            cli::SimCommand::Run {
                scenario: cli::Scenario::Soak,
                topology,
                logs,
                duration,
                seed,
                clients,
                max_rss,
                ..
            } => cmd::sim::run_soak(cmd::sim::SoakArgs {
                topology,
                logs,
                duration,
                seed,
                clients,
                max_rss,
            }),
            cli::SimCommand::Run {
                scenario: cli::Scenario::Failover,
                topology,
                logs,
                kill,
                vrrp,
                long,
                after,
                advert_interval,
                add_backend,
                no_sync,
                sync_loss,
                restart_after,
                ..
            } => cmd::sim::run_failover(cmd::sim::FailoverArgs {
                topology,
                logs,
                kill: match kill {
                    cli::KillArg::Sigkill => cmd::sim::Kill::Sigkill,
                    cli::KillArg::Sigterm => cmd::sim::Kill::Sigterm,
                    cli::KillArg::Link => cmd::sim::Kill::Link,
                },
                vrrp: match vrrp {
                    cli::VrrpArg::Strait => cmd::sim::Vrrp::Strait,
                    cli::VrrpArg::Keepalived => cmd::sim::Vrrp::Keepalived,
                },
                long,
                after,
                advert_interval,
                add_backend,
                sync: !no_sync,
                sync_loss,
                restart_after,
            }),
        },
    }
}
