//! `[l4]`: what a node does for the L4 director in front of it.
//!
//! ```toml
//! [l4]
//! vips = ["10.0.0.100"]     # 1..=64 IPv4 unicast addresses, no duplicates
//! mode = "dr"               # dr | tun | nat (required)
//! interface = "eth0"        # the interface the director's packets arrive on (default eth0)
//! xdp_mode = "auto"         # auto | native | generic: how the tun decapsulation attaches
//! ```
//!
//! Contract (applied by `strait node` at start, undone when it exits; see `src/l4.rs`):
//! * `dr` and `tun`: each VIP is added as a /32 on `lo` (unless already there) so the node
//!   accepts packets to it, and ARP is restricted (`arp_ignore=1`, `arp_announce=2` on `all`,
//!   `lo` and `interface`) so that only the director answers for the VIPs.
//! * `tun` also sets `rp_filter=0` (`all` and `interface`: a decapsulated packet's source is a
//!   client, not a neighbour) and attaches the IP-in-IP decapsulation program to `interface`.
//! * `nat`: nothing is configured on the node; its route back to the clients must go through
//!   the director (e.g. its default route), which rewrites the replies.
//!
//! `[l4]` is read at start only: a reload (SIGHUP) does not change it.

use std::net::Ipv4Addr;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::types::NodeConfig;
use super::{Diagnostic, Locator, Seg};

/// Most VIPs one node holds (the decapsulation program's map bound).
pub const MAX_L4_VIPS: usize = 64;
/// Default interface of `[l4]`.
pub const DEFAULT_L4_INTERFACE: &str = "eth0";
/// Longest interface name (IFNAMSIZ less the NUL).
const MAX_IFNAME: usize = 15;

/// `[l4]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L4Section {
    /// The VIPs the director forwards to this node.
    pub vips: Spanned<Vec<Spanned<Ipv4Addr>>>,
    /// How the director forwards.
    pub mode: L4Mode,
    /// The interface the director's packets arrive on.
    #[serde(default = "default_interface")]
    pub interface: Spanned<String>,
    /// How the TUN decapsulation program attaches.
    #[serde(default)]
    pub xdp_mode: L4XdpMode,
}

/// The director's forwarding mode, as the node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum L4Mode {
    /// Direct routing: frames arrive with the VIP as destination.
    Dr,
    /// IP-in-IP tunnel: the node strips the outer header.
    Tun,
    /// NAT: packets arrive addressed to the node; nothing to set up here.
    Nat,
}

impl L4Mode {
    /// Name in configs and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            L4Mode::Dr => "dr",
            L4Mode::Tun => "tun",
            L4Mode::Nat => "nat",
        }
    }
}

/// How the decapsulation program attaches (`tun` only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum L4XdpMode {
    /// Native, falling back to generic with a warning.
    #[default]
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (skb) mode.
    Generic,
}

impl L4XdpMode {
    /// Name in configs and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            L4XdpMode::Auto => "auto",
            L4XdpMode::Native => "native",
            L4XdpMode::Generic => "generic",
        }
    }
}

fn default_interface() -> Spanned<String> {
    Spanned::new(0..0, DEFAULT_L4_INTERFACE.to_owned())
}

/// Problems of `[l4]`: VIP count, duplicates and kinds, the interface name.
pub(crate) fn check_l4(config: &NodeConfig, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    let Some(l4) = &config.l4 else {
        return;
    };
    let vips = l4.vips.get_ref();
    let vips_path = [Seg::Key("l4"), Seg::Key("vips")];
    if vips.is_empty() || vips.len() > MAX_L4_VIPS {
        out.push(loc.at(
            l4.vips.span(),
            &vips_path,
            format!(
                "l4.vips must list 1 to {MAX_L4_VIPS} addresses, not {}",
                vips.len()
            ),
        ));
    }
    for (i, vip) in vips.iter().enumerate() {
        let addr = *vip.get_ref();
        let path = [Seg::Key("l4"), Seg::Key("vips"), Seg::Idx(i)];
        let kind = if addr.is_unspecified() {
            Some("unspecified")
        } else if addr.is_loopback() {
            Some("a loopback address")
        } else if addr.is_multicast() {
            Some("a multicast address")
        } else if addr.is_broadcast() {
            Some("the broadcast address")
        } else {
            None
        };
        if let Some(kind) = kind {
            out.push(loc.at(
                vip.span(),
                &path,
                format!("l4.vips: {addr} is {kind}; a VIP must be a unicast address"),
            ));
        } else if vips[..i].iter().any(|v| *v.get_ref() == addr) {
            out.push(loc.at(vip.span(), &path, format!("l4.vips lists {addr} twice")));
        }
    }
    let name = l4.interface.get_ref();
    let bad = if name.is_empty() || name.len() > MAX_IFNAME {
        Some(format!("must be 1 to {MAX_IFNAME} bytes long"))
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        Some("must not contain '/', ':' or spaces".to_owned())
    } else if name == "lo" {
        Some("must be the interface the director's packets arrive on, not lo".to_owned())
    } else {
        None
    };
    if let Some(why) = bad {
        out.push(loc.at(
            l4.interface.span(),
            &[Seg::Key("l4"), Seg::Key("interface")],
            format!("l4.interface {name:?} {why}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    /// A valid node (lines 1-8) followed by `l4` from line 9.
    fn with_l4(l4: &str) -> Result<NodeConfig, Vec<String>> {
        let text = format!(
            "[node]\nid = \"a\"\nlisten = [\"127.0.0.1:8080\"]\n[[pool]]\nname = \"o\"\n\
             servers = [{{ addr = \"127.0.0.1:18080\" }}]\n[[route]]\npool = \"o\"\n{l4}"
        );
        parse(&text).map_err(|d| d.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_full_section_parses_and_defaults_fill_in() {
        let c = with_l4("[l4]\nvips = [\"10.0.0.100\", \"10.0.0.101\"]\nmode = \"tun\"\n")
            .expect("valid");
        let l4 = c.l4.expect("l4");
        let vips: Vec<Ipv4Addr> = l4.vips.get_ref().iter().map(|v| *v.get_ref()).collect();
        assert_eq!(
            vips,
            [Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 101)]
        );
        assert_eq!(l4.mode, L4Mode::Tun);
        assert_eq!(l4.interface.get_ref(), "eth0");
        assert_eq!(l4.xdp_mode, L4XdpMode::Auto);
        let c = with_l4(
            "[l4]\nvips = [\"10.0.0.100\"]\nmode = \"dr\"\ninterface = \"eth1\"\n\
             xdp_mode = \"generic\"\n",
        )
        .expect("valid");
        let l4 = c.l4.expect("l4");
        assert_eq!((l4.mode.as_str(), l4.xdp_mode.as_str()), ("dr", "generic"));
        assert_eq!(l4.interface.get_ref(), "eth1");
        assert!(with_l4("").expect("valid").l4.is_none());
    }

    #[test]
    fn vips_are_1_to_64_distinct_unicast_addresses() {
        assert_eq!(
            with_l4("[l4]\nvips = []\nmode = \"dr\"\n").unwrap_err(),
            ["10:8: l4.vips must list 1 to 64 addresses, not 0"]
        );
        let many: Vec<String> = (0..65).map(|i| format!("\"10.0.1.{i}\"")).collect();
        let text = format!("[l4]\nvips = [{}]\nmode = \"dr\"\n", many.join(", "));
        assert_eq!(
            with_l4(&text).unwrap_err(),
            ["10:8: l4.vips must list 1 to 64 addresses, not 65"]
        );
        assert_eq!(
            with_l4("[l4]\nvips = [\"10.0.0.1\", \"127.0.0.1\", \"10.0.0.1\", \"224.0.0.1\"]\nmode = \"nat\"\n")
                .unwrap_err(),
            [
                "10:21: l4.vips: 127.0.0.1 is a loopback address; a VIP must be a unicast address",
                "10:34: l4.vips lists 10.0.0.1 twice",
                "10:46: l4.vips: 224.0.0.1 is a multicast address; a VIP must be a unicast address",
            ]
        );
        let e = with_l4("[l4]\nvips = [\"10.0.0.300\"]\nmode = \"dr\"\n").unwrap_err();
        assert_eq!(
            e,
            [
                "10:9: l4.vips: \"10.0.0.300\" is not an IP address (e.g. \"10.0.0.11\"); names \
              are not resolved"
            ]
        );
    }

    #[test]
    fn mode_is_required_and_closed_and_unknown_keys_fail() {
        let e = with_l4("[l4]\nvips = [\"10.0.0.1\"]\n").unwrap_err();
        assert!(e[0].contains("missing field `mode`"), "{e:?}");
        let e = with_l4("[l4]\nvips = [\"10.0.0.1\"]\nmode = \"ipvs\"\n").unwrap_err();
        assert!(
            e[0].starts_with("11:8: l4.mode: unknown variant `ipvs`"),
            "{e:?}"
        );
        let e = with_l4("[l4]\nvips = [\"10.0.0.1\"]\nmode = \"dr\"\nvip = 1\n").unwrap_err();
        assert!(e[0].contains("unknown field `vip`"), "{e:?}");
        let e =
            with_l4("[l4]\nvips = [\"10.0.0.1\"]\nmode = \"dr\"\nxdp_mode = \"hw\"\n").unwrap_err();
        assert!(e[0].contains("unknown variant `hw`"), "{e:?}");
    }

    #[test]
    fn interface_must_be_a_real_name_other_than_lo() {
        let at = |name: &str| {
            with_l4(&format!(
                "[l4]\nvips = [\"10.0.0.1\"]\nmode = \"dr\"\ninterface = \"{name}\"\n"
            ))
        };
        assert_eq!(
            at("lo").unwrap_err(),
            ["12:13: l4.interface \"lo\" must be the interface the director's packets arrive on, not lo"]
        );
        assert_eq!(
            at("").unwrap_err(),
            ["12:13: l4.interface \"\" must be 1 to 15 bytes long"]
        );
        assert_eq!(
            at("a/b").unwrap_err(),
            ["12:13: l4.interface \"a/b\" must not contain '/', ':' or spaces"]
        );
        assert!(at("abcdefghijklmnop").is_err());
        assert!(at("veth-b1").is_ok());
    }
}
