//! Applying a node's `[l4]` section (`strait_cache::config::L4Section`) to the host, and
//! undoing it.
//!
//! Contract of [`apply`] (in this order, so that a missing interface or missing privileges
//! fail before anything changed):
//! 1. `interface` must exist (`/sys/class/net/<interface>`), else an error naming it.
//! 2. `dr`/`tun`: `arp_ignore=1` and `arp_announce=2` on `all`, `lo` and `interface`; `tun`
//!    also `rp_filter=0` on `all` and `interface`. Written to `/proc/sys/net/ipv4/conf/...`
//!    directly (a write needs root: the error says so). These stay set on exit.
//! 3. `dr`/`tun`: each VIP not already on `lo` is added as `VIP/32` (`ip address add`); the
//!    guard remembers which ones it added.
//! 4. `tun`: the decapsulation program is attached to `interface` (`xdp_mode`; `auto` falls
//!    back to generic mode with a warning).
//!
//! `nat` changes nothing (the node's route to the clients must go through the director).
//! Dropping the returned [`L4Guard`] (after the node drained, or when a later start step
//! failed) detaches the program and deletes the VIPs it added; failures there are logged.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use strait_cache::config::{L4Mode, L4Section, L4XdpMode};
use strait_lb::datapath::XdpMode;
use strait_lb::decap::Decap;

/// What [`apply`] changed that must be undone.
#[derive(Debug)]
pub struct L4Guard {
    /// VIPs this process added to `lo`.
    added: Vec<Ipv4Addr>,
    /// The attached decapsulation program (`tun`).
    decap: Option<Decap>,
}

/// The `/proc/sys` writes for `mode` on `interface`: (path, value), in order.
pub fn sysctls(mode: L4Mode, interface: &str) -> Vec<(String, &'static str)> {
    let conf = |dev: &str, key: &str| format!("/proc/sys/net/ipv4/conf/{dev}/{key}");
    let mut out = Vec::new();
    if mode == L4Mode::Nat {
        return out;
    }
    for dev in ["all", "lo", interface] {
        out.push((conf(dev, "arp_ignore"), "1"));
        out.push((conf(dev, "arp_announce"), "2"));
    }
    if mode == L4Mode::Tun {
        for dev in ["all", interface] {
            out.push((conf(dev, "rp_filter"), "0"));
        }
    }
    out
}

/// IPv4 addresses in `ip -4 -o address show` output (`... inet A.B.C.D/N ...` per line).
pub fn parse_addresses(stdout: &str) -> Vec<Ipv4Addr> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet")?;
            let cidr = words.next()?;
            cidr.split('/').next()?.parse().ok()
        })
        .collect()
}

fn ip(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .with_context(|| format!("cannot run `ip {}`", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn xdp_mode(mode: L4XdpMode) -> XdpMode {
    match mode {
        L4XdpMode::Auto => XdpMode::Auto,
        L4XdpMode::Native => XdpMode::Native,
        L4XdpMode::Generic => XdpMode::Generic,
    }
}

/// Applies `[l4]` (see the module doc); the guard undoes it when dropped.
pub fn apply(l4: &L4Section) -> anyhow::Result<L4Guard> {
    let iface = l4.interface.get_ref().as_str();
    let vips: Vec<Ipv4Addr> = l4.vips.get_ref().iter().map(|v| *v.get_ref()).collect();
    let mut guard = L4Guard {
        added: Vec::new(),
        decap: None,
    };
    if l4.mode == L4Mode::Nat {
        tracing::info!(
            mode = "nat",
            "[l4]: nothing to configure; replies must route back through the director"
        );
        return Ok(guard);
    }
    if !Path::new("/sys/class/net").join(iface).exists() {
        bail!("[l4] interface {iface}: no such network interface in this namespace");
    }
    for (path, value) in sysctls(l4.mode, iface) {
        std::fs::write(&path, value).with_context(|| {
            format!("[l4]: cannot set {path} = {value} (strait node needs root for [l4])")
        })?;
    }
    let present = parse_addresses(&ip(&["-4", "-o", "address", "show", "dev", "lo"])?);
    for vip in &vips {
        if present.contains(vip) {
            tracing::info!(%vip, "[l4]: VIP already on lo");
            continue;
        }
        ip(&["address", "add", &format!("{vip}/32"), "dev", "lo"])
            .with_context(|| format!("[l4]: cannot add VIP {vip} to lo"))?;
        guard.added.push(*vip);
    }
    if l4.mode == L4Mode::Tun {
        let decap = Decap::attach(iface, &vips, xdp_mode(l4.xdp_mode))
            .with_context(|| format!("[l4]: cannot attach the TUN decapsulation to {iface}"))?;
        if let Some(why) = decap.fallback() {
            tracing::warn!(
                interface = iface,
                reason = why,
                "[l4]: native XDP refused; decapsulating in generic mode"
            );
        }
        let mode = decap.mode().map_or("?", XdpMode::as_str);
        tracing::info!(interface = iface, mode, "[l4]: TUN decapsulation attached");
        guard.decap = Some(decap);
    }
    tracing::info!(mode = l4.mode.as_str(), interface = iface, vips = ?vips, added = ?guard.added, "[l4] applied");
    Ok(guard)
}

impl Drop for L4Guard {
    fn drop(&mut self) {
        if let Some(mut decap) = self.decap.take() {
            match decap.counters() {
                Ok(c) => tracing::info!(
                    decapsulated = c.decapsulated,
                    passed = c.passed,
                    "[l4]: detaching the TUN decapsulation"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "[l4]: cannot read the decapsulation counters")
                }
            }
            if let Err(e) = decap.detach() {
                tracing::error!(error = %e, "[l4]: detach failed");
            }
        }
        for vip in self.added.drain(..) {
            match ip(&["address", "del", &format!("{vip}/32"), "dev", "lo"]) {
                Ok(_) => tracing::info!(%vip, "[l4]: VIP removed from lo"),
                Err(e) => tracing::error!(%vip, error = %e, "[l4]: cannot remove VIP from lo"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dr_restricts_arp_and_tun_also_relaxes_reverse_path_filtering() {
        let dr = sysctls(L4Mode::Dr, "eth1");
        let dr: Vec<String> = dr.iter().map(|(p, v)| format!("{p}={v}")).collect();
        assert_eq!(
            dr,
            [
                "/proc/sys/net/ipv4/conf/all/arp_ignore=1",
                "/proc/sys/net/ipv4/conf/all/arp_announce=2",
                "/proc/sys/net/ipv4/conf/lo/arp_ignore=1",
                "/proc/sys/net/ipv4/conf/lo/arp_announce=2",
                "/proc/sys/net/ipv4/conf/eth1/arp_ignore=1",
                "/proc/sys/net/ipv4/conf/eth1/arp_announce=2",
            ]
        );
        let tun = sysctls(L4Mode::Tun, "eth0");
        assert_eq!(tun.len(), 8);
        assert_eq!(
            tun[6..],
            [
                ("/proc/sys/net/ipv4/conf/all/rp_filter".to_owned(), "0"),
                ("/proc/sys/net/ipv4/conf/eth0/rp_filter".to_owned(), "0"),
            ]
        );
        assert!(sysctls(L4Mode::Nat, "eth0").is_empty());
    }

    #[test]
    fn addresses_are_read_from_ip_one_line_output() {
        let out = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
                   1: lo    inet 10.71.0.100/32 scope global lo\\       valid_lft forever\n\
                   garbage line\n";
        assert_eq!(
            parse_addresses(out),
            [Ipv4Addr::LOCALHOST, Ipv4Addr::new(10, 71, 0, 100)]
        );
        assert!(parse_addresses("").is_empty());
    }
}
