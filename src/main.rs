//! The `strait` binary: tracing setup and dispatch to `cmd/`.

mod alloc;
mod cli;
mod cmd;
mod l4;

use clap::Parser;

fn main() {
    alloc::configure();
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
