//! Runtime control of a pool's servers (`POST /server`, `strait ctl server`): drain, ready,
//! maint or a new weight, without editing the file. The states and the reload rule are
//! `strait_lb::health::admin`'s; here they meet a [`Server`].
//!
//! Contract:
//! * A server's override lives on the [`Server`] itself, so it is shared by every pool
//!   generation that holds the server: in-flight requests on the pool of before a reload see
//!   it too, and a reload that keeps the server (same pool name and address) keeps it, unless
//!   the reload changed the server's weight in the file ([`Server::reloaded`]).
//! * `Server::weight` is always the weight in effect (the override's, else the file's);
//!   `file_weight` is the file's.
//! * Every change is logged at info with the pool, the server, what was asked and by whom
//!   (the admin client's address).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use strait_lb::health::admin::{Command, Override};

use super::{Pool, Server};

/// Why a change was refused (the admin answers 404 or 400 with its text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No pool of that name runs.
    #[error("no pool named {0:?}")]
    NoPool(String),
    /// The pool has no server at that address.
    #[error("pool {pool:?} has no server {addr}")]
    NoServer {
        /// The pool.
        pool: String,
        /// The address asked.
        addr: SocketAddr,
    },
}

/// What a change did: the server's override before and after, and its file weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    pub before: Override,
    pub after: Override,
    pub file_weight: u32,
}

impl Server {
    /// The server's runtime override now.
    pub fn admin(&self) -> Override {
        *self.admin.lock()
    }

    /// Applies `cmd` and updates the weight in effect; returns the override before and after.
    pub fn control(&self, cmd: Command) -> Changed {
        let mut admin = self.admin.lock();
        let before = *admin;
        admin.apply(cmd);
        let file_weight = self.file_weight.load(Ordering::Relaxed);
        self.weight
            .store(admin.weight(file_weight), Ordering::Relaxed);
        Changed {
            before,
            after: *admin,
            file_weight,
        }
    }

    /// A reload lists this server again with `file_weight`: the override is kept when the
    /// file's weight did not change and cleared (logged) when it did; the weight in effect
    /// follows.
    pub(super) fn reloaded(&self, pool: &str, file_weight: u32) {
        let mut admin = self.admin.lock();
        let old = self.file_weight.swap(file_weight, Ordering::Relaxed);
        let kept = *admin;
        if admin.on_reload(old, file_weight) {
            tracing::info!(pool = %pool, server = %self.addr, cleared = %kept.describe(old),
                old_weight = old, new_weight = file_weight,
                "reload changed the server's weight in the file: its runtime override is cleared");
        } else if admin.is_set() {
            tracing::info!(pool = %pool, server = %self.addr, kept = %admin.describe(file_weight),
                "reload kept the server's runtime override");
        }
        self.weight
            .store(admin.weight(file_weight), Ordering::Relaxed);
    }
}

/// The server `addr` of pool `pool` among `pools`.
pub fn find_server(
    pools: &[Arc<Pool>],
    pool: &str,
    addr: SocketAddr,
) -> Result<Arc<Server>, ControlError> {
    let p = pools
        .iter()
        .find(|p| p.name == pool)
        .ok_or_else(|| ControlError::NoPool(pool.to_owned()))?;
    p.servers
        .iter()
        .find(|s| s.addr == addr)
        .cloned()
        .ok_or_else(|| ControlError::NoServer {
            pool: pool.to_owned(),
            addr,
        })
}

/// Applies `cmd` to server `addr` of pool `pool` and logs it (module doc).
pub fn apply(
    pools: &[Arc<Pool>],
    pool: &str,
    addr: SocketAddr,
    cmd: Command,
    by: SocketAddr,
) -> Result<Changed, ControlError> {
    let server = find_server(pools, pool, addr)?;
    let changed = server.control(cmd);
    tracing::info!(pool = %pool, server = %addr, by = %by, asked = %cmd,
        admin_state = changed.after.state.as_str(),
        weight = changed.after.weight(changed.file_weight),
        changed = changed.before != changed.after,
        "runtime control: server set by the admin endpoint");
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strait_lb::health::admin::AdminState;

    fn server(weight: u32) -> Server {
        Server::new("127.0.23.9:80".parse().unwrap(), weight)
    }

    #[test]
    fn control_sets_the_weight_in_effect_and_a_reload_follows_the_rule() {
        let s = server(2);
        let c = s.control(Command::Weight(7));
        assert_eq!((c.before, c.file_weight), (Override::default(), 2));
        assert_eq!(s.weight.load(Ordering::Relaxed), 7);
        s.control(Command::State(AdminState::Drain));
        // The file's weight is unchanged: the override stays.
        s.reloaded("p", 2);
        assert_eq!(s.admin().state, AdminState::Drain);
        assert_eq!(s.weight.load(Ordering::Relaxed), 7);
        // The file's weight changed: the file speaks again.
        s.reloaded("p", 3);
        assert_eq!(s.admin(), Override::default());
        assert_eq!(s.weight.load(Ordering::Relaxed), 3);
    }
}
