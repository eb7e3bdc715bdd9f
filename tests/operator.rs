//! What an operator meets on day one, end to end (real `strait` processes on 127.0.20.0/24):
//! one file per concern under `tests/operator/`.
//!
//! Contract under test: a ban never empties the cache by accident and `ban --all` does it on
//! purpose; `strait ctl purge`/`ban` exit non-zero when they removed nothing (`invalidate`);
//! error bodies tell clients what went wrong, never the origin's address or the pool's name
//! (`error_bodies`); a file given to the wrong command names the right one (`config_kind`); the
//! README's node example passes `strait check` and runs (`readme`).

mod support;

#[path = "operator/config_kind.rs"]
mod config_kind;
#[path = "operator/error_bodies.rs"]
mod error_bodies;
#[path = "operator/invalidate.rs"]
mod invalidate;
#[path = "operator/readme.rs"]
mod readme;

use std::net::SocketAddr;
use std::time::Duration;

use support::{Origin, Proc, START_TIMEOUT};

/// Wait bound for conditions that should hold within a moment.
pub(crate) const SOON: Duration = Duration::from_secs(5);

/// `strait sim origin` on `ip` (in 127.0.20.0/24), a port picked by the kernel.
pub(crate) fn origin_on(ip: &str) -> Origin {
    let proc = Proc::spawn_origin_on(format!("{ip}:0").parse().expect("ip"));
    let line = proc.wait_line("listening on", START_TIMEOUT);
    let addr = line
        .split_whitespace()
        .last()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    Origin { proc, addr }
}

/// A node config listening on `ip` (client and admin, kernel-chosen ports) in front of one
/// pool named `pool` of `servers`; `pool_extra` is added to the pool's table.
pub(crate) fn node_config_on(
    ip: &str,
    pool: &str,
    servers: &[SocketAddr],
    pool_extra: &str,
) -> String {
    let servers: Vec<String> = servers
        .iter()
        .map(|a| format!("{{ addr = \"{a}\" }}"))
        .collect();
    format!(
        "[node]\nid = \"a\"\nlisten = [\"{ip}:0\"]\nadmin = \"{ip}:0\"\n\n\
         [[pool]]\nname = \"{pool}\"\nservers = [{}]\n{pool_extra}\n\n\
         [[route]]\npool = \"{pool}\"\n",
        servers.join(", ")
    )
}

/// A loopback address on `ip` with nothing listening (bound by the kernel, then released).
pub(crate) fn closed_addr_on(ip: &str) -> SocketAddr {
    let l = std::net::TcpListener::bind((ip, 0)).expect("bind");
    l.local_addr().expect("local addr")
}
