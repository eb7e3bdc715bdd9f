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
    /// Admin address of the node or director: ip:port, or host:port resolved here (an IPv4
    /// address first), e.g. localhost:9090. Before or after the subcommand.
    #[arg(long, global = true, default_value = "127.0.0.1:9090",
          value_parser = crate::cmd::ctl::control::admin_addr)]
    pub admin: SocketAddr,
    /// Print JSON instead of a human table. Before or after the subcommand.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Runtime control (`server`, `backend`) and `show config`.
    #[command(flatten)]
    Runtime(RuntimeCommand),
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
    /// Remove one URL's object(s) from the cache (exit 1 when nothing was removed).
    Purge {
        /// Absolute URL, e.g. http://example.com/a.png
        url: String,
    },
    /// Re-read the node's config file (an invalid one is refused and the running config stays).
    Reload,
    /// Invalidate every object whose key starts with PREFIX, an absolute URL prefix (an empty
    /// or relative one is refused, exit 2); `--all` empties the whole cache on purpose. Exit 1
    /// when nothing was removed.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["prefix", "all"])))]
    Ban {
        /// Key prefix, e.g. http://example.com/img/
        prefix: Option<String>,
        /// Remove every stored object (on every node of the cluster).
        #[arg(long)]
        all: bool,
    },
}

/// `strait ctl server|backend|show`: runtime control without editing the file (kept until a
/// reload changes that server's weight in the file), and the configuration in effect.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum RuntimeCommand {
    /// Node: set one origin server of a pool to drain, ready, maint or a new weight.
    Server {
        /// The pool (`[[pool]] name`).
        pool: String,
        /// The server's ip:port, as in the file.
        addr: String,
        #[command(subcommand)]
        action: Action,
    },
    /// Director: set one backend of a service to drain, ready, maint or a new weight.
    Backend {
        /// The service's VIP:PORT.
        service: String,
        /// The backend's ip:port, or its ip when only one backend of the service has it.
        addr: String,
        /// tcp or udp, when the VIP:PORT has both.
        #[arg(long)]
        proto: Option<String>,
        #[command(subcommand)]
        action: Action,
    },
    /// Show what runs.
    Show {
        #[command(subcommand)]
        what: ShowWhat,
    },
}

/// What `strait ctl server|backend` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Action {
    /// No new requests or flows; those in flight finish (node: clients a persistence cookie
    /// pins keep it; director: established flows keep it).
    Drain,
    /// Back to normal.
    Ready,
    /// No traffic at all; health checks keep running but do not bring it back.
    Maint,
    /// A new weight (node 0..=1000, director 0..=65535).
    Weight {
        /// The weight.
        weight: u32,
    },
}

/// What `strait ctl show` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum ShowWhat {
    /// The configuration in effect: the file's TOML text as applied (start or last reload),
    /// runtime overrides listed after it as comments.
    Config,
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
    /// Run a scenario end to end and tear it down (root). `demo`: on a topology with two
    /// directors (the default, topology/examples/topologies/story.toml), the story: traffic
    /// while a node joins the cache cluster, the master director is killed, a node is killed and
    /// the director returns, then what each step proved; exit 0 if every step held. On a
    /// topology with one director: drive traffic through the VIP, print the director's table,
    /// kill a backend, drive traffic again, report; exit 0 if every request was answered.
    /// `failover`: two directors sharing the VIP (default topology
    /// topology/examples/topologies/ha.toml), long and short connections through it, the master
    /// killed (`--kill`), and a report of the takeover and what survived. `soak` (default
    /// topology topology/examples/topologies/soak.toml): `--duration` of load through the VIP
    /// while nodes and origins are killed and restarted at random (`--seed` replays a run),
    /// every body checked; exit 0 if no body was wrong or cut, nothing panicked or outgrew
    /// `--max-rss`.
    Run {
        /// The scenario.
        scenario: Scenario,
        /// The topology TOML file [default for demo: topology/examples/topologies/story.toml,
        /// relative to the current directory, i.e. run from the repository root].
        #[arg(long)]
        topology: Option<PathBuf>,
        /// Where the processes' logs go (default: /tmp/strait-sim/<topology name>).
        #[arg(long)]
        logs: Option<PathBuf>,
        /// demo with one director: HTTP GETs per traffic phase (1 to 10000), each a new
        /// connection.
        #[arg(long, default_value_t = 600,
              value_parser = clap::value_parser!(u16).range(1..=10_000))]
        requests: u16,
        /// failover: how the master dies.
        #[arg(long, value_enum, default_value_t = KillArg::Sigkill)]
        kill: KillArg,
        /// failover: which VRRP moves the VIP (keepalived: strait directors without [ha],
        /// keepalived configured from their [ha]).
        #[arg(long, value_enum, default_value_t = VrrpArg::Strait)]
        vrrp: VrrpArg,
        /// failover: long-lived connections streaming through the VIP (0 to 1000).
        #[arg(long, default_value_t = 20,
              value_parser = clap::value_parser!(u16).range(0..=1000))]
        long: u16,
        /// failover: traffic after the kill (e.g. "3s"; 1s to 60s).
        #[arg(long, default_value = "3s", value_parser = after_duration)]
        after: std::time::Duration,
        /// failover: both directors' [ha] advert_interval instead of their files' (e.g. "20ms").
        #[arg(long, value_parser = advert_duration)]
        advert_interval: Option<std::time::Duration>,
        /// failover: start without the first service's last backend and add it on both
        /// directors before the kill (a flow moved by it survives the kill only by sync).
        #[arg(long)]
        add_backend: bool,
        /// failover: run the directors with connection sync off (`[ha] sync = false`), to see
        /// what sync saves.
        #[arg(long)]
        no_sync: bool,
        /// failover: drop this percentage (0 to 100) of the sync datagrams reaching the backup
        /// (an nftables rule on its host).
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
        sync_loss: Option<u8>,
        /// failover: restart the killed master this long after the kill (e.g. "2s"): it
        /// catches up from the new master, then preempts it (traffic must last longer:
        /// `--after`).
        #[arg(long, value_parser = after_duration)]
        restart_after: Option<std::time::Duration>,
        /// soak: how long the load and the faults last (10s to 24h).
        #[arg(long, default_value = "60s", value_parser = soak_duration)]
        duration: std::time::Duration,
        /// soak: the seed of the faults and the requests (default: drawn and printed).
        #[arg(long)]
        seed: Option<u64>,
        /// soak: concurrent client loops (1 to 32).
        #[arg(long, default_value_t = 4,
              value_parser = clap::value_parser!(u16).range(1..=32))]
        clients: u16,
        /// soak: largest RSS allowed per process (e.g. "512MiB").
        #[arg(long, default_value = "512MiB", value_parser = rss_size)]
        max_rss: u64,
    },
}

/// `--duration` of the soak: 10 s to 24 h.
fn soak_duration(text: &str) -> Result<std::time::Duration, String> {
    let d = strait_lb::config::units::parse_duration(text, "write e.g. \"120s\" or \"2h\"")?;
    if !(std::time::Duration::from_secs(10)..=std::time::Duration::from_secs(86_400)).contains(&d) {
        return Err("must be 10s to 24h".into());
    }
    Ok(d)
}

/// `--max-rss`: a size.
fn rss_size(text: &str) -> Result<u64, String> {
    strait_lb::config::units::Size::parse(text)
        .map(|s| s.as_u64())
        .map_err(|e| e.to_string())
}

/// `--after`: a duration from 1 s to 60 s.
fn after_duration(text: &str) -> Result<std::time::Duration, String> {
    let d = strait_lb::config::units::parse_duration(text, "write e.g. \"5s\"")?;
    if !(std::time::Duration::from_secs(1)..=std::time::Duration::from_secs(60)).contains(&d) {
        return Err("must be 1s to 60s".into());
    }
    Ok(d)
}

/// `--advert-interval`: a duration (the director config checks its bounds).
fn advert_duration(text: &str) -> Result<std::time::Duration, String> {
    strait_lb::config::units::parse_duration(text, "write e.g. \"100ms\" or \"1s\"")
}

/// `--kill` of `sim run failover`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KillArg {
    /// SIGKILL to every process on the master's host.
    Sigkill,
    /// SIGTERM to every process on the master's host (graceful).
    Sigterm,
    /// The master's client interface set down (its processes run on).
    Link,
}

/// `--vrrp` of `sim run failover`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VrrpArg {
    /// strait's own [ha].
    Strait,
    /// keepalived (Debian's package), configured from the same [ha].
    Keepalived,
}

/// Scenarios of `strait sim run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// The story (two directors, a cache cluster: a join, a failover, a node loss, a return),
    /// or with one director: traffic, a killed node, a report.
    Demo,
    /// Two directors sharing the VIP: the master killed under traffic, the takeover measured.
    Failover,
    /// Load through the VIP while nodes and origins are killed and restarted at random; every
    /// body checked against the origin's size and SHA-256.
    Soak,
}
