//! The nftables table that keeps the kernel out of balanced traffic.
//!
//! Why: an AF_PACKET socket receives a copy of each frame; the kernel still gets the original.
//! Left alone, the kernel would answer a connection to a VIP it holds (a TCP reset racing the
//! backend's answer), forward VIP traffic when forwarding is on, and forward NAT replies from
//! the backends un-NATed to the clients. One table per datapath, `ip strait_us_<pid>`, in the
//! datapath's network namespace, drops exactly that traffic:
//! * chain `input` (hook input) and chain `forward` (hook forward): every service's
//!   `ip daddr VIP <proto> dport PORT`;
//! * chain `forward` also: for every NAT service and backend, `ip saddr BACKEND <proto> sport
//!   BACKEND_PORT` (the replies the datapath rewrites itself).
//!
//! Contract: [`script`] (pure) renders the whole table as one `nft -f` transaction that
//! replaces its previous content atomically; [`Nft`] runs `nft -f -` inside the network
//! namespace captured when it was created, whichever thread calls it, and fails with a clear
//! error when `nft` is missing or refuses the script. [`Nft::sweep_stale`] deletes the tables
//! that killed datapaths left in the namespace ([`stale_tables`]: their pid is gone).

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::datapath::DatapathError;
use crate::packet::parse::{PROTO_TCP, PROTO_UDP};
use crate::packet::service::{Mode, Service, ServiceKey};

/// Priority of the two base chains: before the default filter chains (0), so a drop here is
/// not undone by their accepts (a drop in any base chain is final anyway).
pub(super) const CHAIN_PRIORITY: i32 = -10;

/// The table name for this process: `strait_us_<pid>`.
pub fn table_name() -> String {
    format!("strait_us_{}", std::process::id())
}

/// The `ip strait_us_<pid>` tables of a `nft list tables` listing whose process is not
/// `alive`: left by a datapath that was killed before it could delete its table.
pub(super) fn stale_tables(listing: &str, alive: impl Fn(u32) -> bool) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| line.trim().strip_prefix("table ip "))
        .filter(|name| {
            name.strip_prefix("strait_us_")
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !alive(pid))
        })
        .map(str::to_owned)
        .collect()
}

/// nft keyword of an IP protocol, or `None` for protocols the datapath does not balance.
pub(super) fn proto_name(proto: u8) -> Option<&'static str> {
    match proto {
        PROTO_TCP => Some("tcp"),
        PROTO_UDP => Some("udp"),
        _ => None,
    }
}

fn ip(a: [u8; 4]) -> std::net::Ipv4Addr {
    a.into()
}

/// The transaction installing `table` with the rules for `services` (see the module doc).
///
/// Errors name the first service whose protocol nft cannot match (not TCP or UDP).
pub(super) fn script(table: &str, services: &[(ServiceKey, Service)]) -> Result<String, String> {
    let mut input = String::new();
    let mut forward = String::new();
    for (key, service) in services {
        let proto = proto_name(key.proto).ok_or_else(|| {
            format!(
                "service {}:{} has protocol {}: only TCP (6) and UDP (17) are balanced",
                ip(key.vip),
                key.port,
                key.proto
            )
        })?;
        let rule = format!(
            "\t\tip daddr {} {proto} dport {} drop\n",
            ip(key.vip),
            key.port
        );
        input.push_str(&rule);
        forward.push_str(&rule);
        if service.mode == Mode::Nat {
            for b in &service.backends {
                forward.push_str(&format!(
                    "\t\tip saddr {} {proto} sport {} drop\n",
                    ip(b.ip),
                    b.port
                ));
            }
        }
    }
    let p = CHAIN_PRIORITY;
    Ok(format!(
        "add table ip {table}\n\
         flush table ip {table}\n\
         table ip {table} {{\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority {p}; policy accept;\n\
         {input}\t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority {p}; policy accept;\n\
         {forward}\t}}\n\
         }}\n"
    ))
}

/// Runs nft in one network namespace (see the module doc).
#[derive(Debug)]
pub(super) struct Nft {
    netns: File,
    table: String,
}

impl Nft {
    /// Captures the calling thread's network namespace and creates `table` in it; fails if
    /// `nft` is missing or the table already exists (another datapath of this process runs
    /// in this namespace: two would forward every frame twice).
    pub(super) fn create(table: String) -> Result<Nft, DatapathError> {
        let netns = File::open("/proc/thread-self/ns/net")
            .map_err(|e| DatapathError::new("open /proc/thread-self/ns/net", &e))?;
        let nft = Nft { netns, table };
        nft.run(&format!("create table ip {}\n", nft.table))
            .map(drop)
            .map_err(|e| {
                if e.detail.contains("File exists") {
                    DatapathError::msg(
                        e.what,
                        "the table already exists: a userspace datapath of this process \
                         already runs in this network namespace",
                    )
                } else {
                    e
                }
            })?;
        Ok(nft)
    }

    /// The table's name.
    pub(super) fn table(&self) -> &str {
        &self.table
    }

    /// Replaces the table's rules with those for `services`.
    pub(super) fn install(&self, services: &[(ServiceKey, Service)]) -> Result<(), DatapathError> {
        let text =
            script(&self.table, services).map_err(|e| DatapathError::msg("nftables rules", e))?;
        self.run(&text).map(drop)
    }

    /// Deletes the table.
    pub(super) fn delete(&self) -> Result<(), DatapathError> {
        self.run(&format!("delete table ip {}\n", self.table))
            .map(drop)
    }

    /// Deletes the tables of this namespace left by datapaths whose process is gone (see
    /// [`stale_tables`]); returns their names.
    pub(super) fn sweep_stale(&self) -> Result<Vec<String>, DatapathError> {
        let listing = self.run("list tables\n")?;
        let stale = stale_tables(&listing, |pid| {
            std::path::Path::new(&format!("/proc/{pid}")).exists()
        });
        for table in &stale {
            self.run(&format!("delete table ip {table}\n"))?;
        }
        Ok(stale)
    }

    /// Feeds `text` to `nft -f -` inside the captured namespace; returns its output.
    fn run(&self, text: &str) -> Result<String, DatapathError> {
        let what = format!("nft -f - (table ip {})", self.table);
        let fd = self.netns.as_raw_fd();
        let mut cmd = Command::new("nft");
        cmd.args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: setns is a single async-signal-safe system call on a descriptor that stays
        // open for the life of self; it only moves the child into the captured namespace.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                DatapathError::msg(
                    what.clone(),
                    "the `nft` command is missing: the userspace datapath needs nftables \
                     to keep the kernel from answering balanced traffic (install nftables)",
                )
            } else {
                DatapathError::new(what.clone(), &e)
            }
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(text.as_bytes())
                .map_err(|e| DatapathError::new(what.clone(), &e))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| DatapathError::new(what.clone(), &e))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(DatapathError::msg(
                what,
                format!(
                    "{}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::service::Backend;

    fn key(vip: [u8; 4], port: u16, proto: u8) -> ServiceKey {
        ServiceKey { vip, port, proto }
    }

    fn service(mode: Mode) -> Service {
        let b = |i: u8| Backend {
            ip: [10, 0, 1, i],
            mac: [2, 0, 0, 0, 0, i],
            port: 8080,
            weight: 1,
            alive: true,
        };
        Service::new(mode, vec![b(11), b(12)], 7).unwrap()
    }

    #[test]
    fn services_and_nat_replies_are_dropped_for_the_kernel() {
        let s = script(
            "strait_us_7",
            &[
                (key([10, 0, 0, 100], 80, PROTO_TCP), service(Mode::Dr)),
                (key([10, 0, 0, 101], 53, PROTO_UDP), service(Mode::Nat)),
            ],
        )
        .unwrap();
        let input = s
            .split("chain input")
            .nth(1)
            .unwrap()
            .split('}')
            .next()
            .unwrap();
        let forward = s
            .split("chain forward")
            .nth(1)
            .unwrap()
            .split('}')
            .next()
            .unwrap();
        assert!(input.contains("hook input priority -10; policy accept;"));
        assert!(input.contains("ip daddr 10.0.0.100 tcp dport 80 drop"));
        assert!(input.contains("ip daddr 10.0.0.101 udp dport 53 drop"));
        assert!(!input.contains("saddr"));
        assert!(forward.contains("hook forward priority -10; policy accept;"));
        assert!(forward.contains("ip daddr 10.0.0.100 tcp dport 80 drop"));
        assert!(forward.contains("ip saddr 10.0.1.11 udp sport 8080 drop"));
        assert!(forward.contains("ip saddr 10.0.1.12 udp sport 8080 drop"));
        // DR backends' traffic is not the director's to drop.
        assert_eq!(forward.matches("saddr").count(), 2);
        // One transaction that replaces the previous content.
        assert!(s.starts_with("add table ip strait_us_7\nflush table ip strait_us_7\n"));
    }

    #[test]
    fn no_services_leave_empty_chains_and_bad_protocols_are_refused() {
        let s = script("t", &[]).unwrap();
        assert!(!s.contains("drop"));
        assert!(s.contains("chain input") && s.contains("chain forward"));
        let e = script("t", &[(key([10, 0, 0, 1], 1, 1), service(Mode::Dr))]).unwrap_err();
        assert!(e.contains("10.0.0.1:1 has protocol 1"), "{e}");
        assert!(table_name().starts_with("strait_us_"));
        assert_eq!(proto_name(1), None);
    }

    #[test]
    fn only_tables_of_dead_datapaths_are_stale() {
        let listing = "table ip strait_us_10\ntable ip strait_us_11\ntable inet strait_us_12\n\
                       table ip strait_us_x\ntable ip filter\ntable ip strait_us_13\n";
        let alive = |pid: u32| pid == 11;
        assert_eq!(
            stale_tables(listing, alive),
            vec!["strait_us_10", "strait_us_13"]
        );
        assert!(stale_tables("", alive).is_empty());
        assert_eq!(proto_name(17), Some("udp"));
    }
}
