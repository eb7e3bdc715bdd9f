//! Command-line types (clap derive only; the work lives in `cmd/`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// strait: L4 director, HTTP cache cluster and topology simulator in one binary.
#[derive(Debug, Parser)]
#[command(name = "strait", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a cache node in the foreground (SIGHUP reloads, SIGTERM drains and exits).
    Node {
        /// The node's TOML config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run an L4 director in the foreground (SIGHUP reloads, SIGTERM/SIGINT detach and exit).
    Director {
        /// The director's TOML config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate config files; exit 0, or exit 2 printing `FILE:LINE:COL: message` per problem.
    Check {
        /// Config files to validate.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Talk to a running node's or director's admin endpoint.
    Ctl(CtlArgs),
    /// Simulation helpers.
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
}

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// Admin address of the node or director.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub admin: SocketAddr,
    /// Print JSON instead of a human table.
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// One line: node id, uptime, requests, hit ratio (director: one line per service).
    Status,
    /// Counters and pools (director: counters and one backend table per service).
    Stats,
    /// A node's view of its cache cluster: members, addresses, states, weights.
    Cluster,
    /// A director's connection table.
    Conns {
        /// Most connections listed.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Remove one URL's object(s) from the cache.
    Purge {
        /// Absolute URL, e.g. http://example.com/a.png
        url: String,
    },
    /// Re-read the node's config file (an invalid one is refused and the running config stays).
    Reload,
    /// Invalidate every object whose key starts with PREFIX.
    Ban {
        /// Key prefix, e.g. http://example.com/img/
        prefix: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// A small origin server for demos and tests.
    Origin {
        /// Address to listen on (port 0 picks one; the chosen address is printed on stdout).
        #[arg(long)]
        listen: SocketAddr,
    },
    /// Build a topology of network namespaces and start its hosts' commands (root).
    Up {
        /// The topology TOML file.
        #[arg(long)]
        topology: PathBuf,
        /// Where each command's output goes (default: /tmp/strait-sim/<topology name>).
        #[arg(long)]
        logs: Option<PathBuf>,
    },
    /// Stop a topology's processes and remove its namespaces (also after a crash).
    Down {
        /// The topology TOML file.
        #[arg(long)]
        topology: PathBuf,
    },
    /// Run a scenario end to end and tear it down (root). `demo`: build the topology, wait for
    /// the director to see every backend, drive traffic through the VIP, print the director's
    /// table, kill a backend, drive traffic again, report; exit 0 if every request was answered.
    Run {
        /// The scenario.
        scenario: Scenario,
        /// The topology TOML file [default: topology/examples/topologies/dr.toml, relative to
        /// the current directory, i.e. run from the repository root].
        #[arg(long)]
        topology: Option<PathBuf>,
        /// Where the processes' logs go (default: /tmp/strait-sim/<topology name>).
        #[arg(long)]
        logs: Option<PathBuf>,
        /// HTTP GETs per traffic phase (1 to 10000), each a new connection.
        #[arg(long, default_value_t = 600,
              value_parser = clap::value_parser!(u16).range(1..=10_000))]
        requests: u16,
    },
}

/// Scenarios of `strait sim run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// A director in front of cache nodes: traffic, a killed node, a report.
    Demo,
}
