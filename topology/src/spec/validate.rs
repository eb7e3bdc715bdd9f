//! Checks a parsed topology file (see the contract in [`super`]) and builds a [`Topology`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::Deserialize;

use super::{
    bridge_name, invalid, prefix_of, switch_dev, Destination, Error, Host, Ipv4Cidr, Lan,
    Membership, Route, RunCommand, Topology, MAX_MEMBERSHIPS, MAX_NAME_LEN, SWITCH_HOST,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTopology {
    name: String,
    #[serde(default)]
    lan: Vec<RawLan>,
    #[serde(default)]
    host: Vec<RawHost>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLan {
    name: String,
    subnet: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: String,
    #[serde(default)]
    lan: Vec<RawMembership>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(default)]
    run: Vec<RunCommand>,
    #[serde(default)]
    sysctls: BTreeMap<String, String>,
    #[serde(default)]
    port_xdp: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMembership {
    lan: String,
    addr: String,
    #[serde(default)]
    extra: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    to: String,
    via: String,
}

fn check_name(at: &str, name: &str, allow_dash: bool) -> Result<(), Error> {
    let ok_char =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || (allow_dash && c == '-');
    let starts_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !starts_ok || !name.chars().all(ok_char) {
        let allowed = if allow_dash { "[a-z0-9-]" } else { "[a-z0-9]" };
        return Err(invalid(
            at,
            format!("name `{name}` must be {allowed}, starting with a letter or digit"),
        ));
    }
    Ok(())
}

fn check_len(at: &str, generated: &str) -> Result<(), Error> {
    if generated.len() > MAX_NAME_LEN {
        return Err(invalid(
            at,
            format!(
                "generated name `{generated}` is {} bytes, more than {MAX_NAME_LEN} (IFNAMSIZ); \
                 shorten the names",
                generated.len()
            ),
        ));
    }
    Ok(())
}

fn parse_subnet(at: &str, text: &str) -> Result<Ipv4Cidr, Error> {
    let subnet = Ipv4Cidr::from_str(text).map_err(|m| invalid(at, m))?;
    if subnet.addr != subnet.network() {
        return Err(invalid(
            at,
            format!(
                "`{subnet}` has host bits set (network address is {})",
                subnet.network()
            ),
        ));
    }
    Ok(subnet)
}

pub(super) fn validate(raw: RawTopology) -> Result<Topology, Error> {
    check_name("name", &raw.name, false)?;
    let prefix = prefix_of(&raw.name);
    check_len("name", &format!("{prefix}{SWITCH_HOST}"))?;
    let mut lans: Vec<Lan> = Vec::with_capacity(raw.lan.len());
    for l in raw.lan {
        let at = format!("lan \"{}\"", l.name);
        check_name(&at, &l.name, true)?;
        if lans.iter().any(|o| o.name == l.name) {
            return Err(invalid(at, "duplicate LAN name"));
        }
        let subnet = parse_subnet(&format!("{at} subnet"), &l.subnet)?;
        let lan = Lan {
            name: l.name,
            subnet,
        };
        check_len(&at, &bridge_name(&lan))?;
        lans.push(lan);
    }
    let mut hosts: Vec<Host> = Vec::with_capacity(raw.host.len());
    let mut taken: BTreeSet<(usize, Ipv4Addr)> = BTreeSet::new();
    for h in raw.host {
        let at = format!("host \"{}\"", h.name);
        check_name(&at, &h.name, true)?;
        if h.name == SWITCH_HOST {
            return Err(invalid(
                at,
                format!("`{SWITCH_HOST}` is reserved for the bridges"),
            ));
        }
        if hosts.iter().any(|o| o.name == h.name) {
            return Err(invalid(at, "duplicate host name"));
        }
        check_len(&at, &format!("{prefix}{}", h.name))?;
        if h.lan.len() > MAX_MEMBERSHIPS {
            return Err(invalid(at, format!("more than {MAX_MEMBERSHIPS} LANs")));
        }
        let port_xdp = h
            .port_xdp
            .unwrap_or_else(|| h.run.iter().any(runs_director));
        let mut host = Host {
            name: h.name,
            lans: Vec::with_capacity(h.lan.len()),
            routes: Vec::with_capacity(h.routes.len()),
            run: h.run,
            sysctls: BTreeMap::new(),
            port_xdp,
        };
        check_len(&at, &switch_dev(&host, h.lan.len().saturating_sub(1)))?;
        for (i, m) in h.lan.into_iter().enumerate() {
            let at = format!("{at} lan[{i}]");
            let lan = lans
                .iter()
                .position(|l| l.name == m.lan)
                .ok_or_else(|| invalid(&at, format!("unknown LAN `{}`", m.lan)))?;
            if host.lans.iter().any(|o| o.lan == lan) {
                return Err(invalid(&at, format!("already on LAN `{}`", m.lan)));
            }
            let mut addrs = vec![host_addr(&at, &lans[lan], &m.addr)?];
            for (j, text) in m.extra.iter().enumerate() {
                addrs.push(host_addr(&format!("{at} extra[{j}]"), &lans[lan], text)?);
            }
            for addr in &addrs {
                if !taken.insert((lan, addr.addr)) {
                    return Err(invalid(
                        &at,
                        format!("address {} is already used on LAN `{}`", addr.addr, m.lan),
                    ));
                }
            }
            let addr = addrs.remove(0);
            host.lans.push(Membership {
                lan,
                addr,
                extra: addrs,
            });
        }
        for (i, r) in h.routes.into_iter().enumerate() {
            let at = format!("{at} routes[{i}]");
            host.routes.push(route(&at, &lans, &host, &r)?);
        }
        for (key, value) in h.sysctls {
            let at = format!("{at} sysctls");
            let key_ok = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                && !key.starts_with('.')
                && !key.contains("..");
            if !key_ok {
                return Err(invalid(at, format!("bad sysctl key `{key}`")));
            }
            if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c == '=') {
                return Err(invalid(at, format!("bad value `{value}` for `{key}`")));
            }
            host.sysctls.insert(key, value);
        }
        hosts.push(host);
    }
    Ok(Topology {
        name: raw.name,
        lans,
        hosts,
    })
}

/// Whether a run command is `strait director --config FILE`: the same test that makes a host
/// the demo's director ([`crate::demo::config_of`]).
fn runs_director(cmd: &RunCommand) -> bool {
    let argv = crate::supervisor::argv(cmd, std::path::Path::new("strait"));
    crate::demo::config_of(&argv, "director").is_some()
}

/// `addr` is `a.b.c.d/len` (len must be the LAN's) or a bare `a.b.c.d`.
fn host_addr(at: &str, lan: &Lan, text: &str) -> Result<Ipv4Cidr, Error> {
    let addr = if text.contains('/') {
        Ipv4Cidr::from_str(text).map_err(|m| invalid(at, m))?
    } else {
        Ipv4Cidr {
            addr: text
                .parse()
                .map_err(|_| invalid(at, format!("`{text}` is not an IPv4 address")))?,
            len: lan.subnet.len,
        }
    };
    if !lan.subnet.contains(addr.addr) {
        return Err(invalid(
            at,
            format!(
                "address {} is outside LAN `{}` ({})",
                addr.addr, lan.name, lan.subnet
            ),
        ));
    }
    if addr.len != lan.subnet.len {
        return Err(invalid(
            at,
            format!(
                "prefix /{} differs from LAN `{}` ({})",
                addr.len, lan.name, lan.subnet
            ),
        ));
    }
    if lan.subnet.len < 31
        && (addr.addr == lan.subnet.network() || addr.addr == lan.subnet.broadcast())
    {
        return Err(invalid(
            at,
            format!(
                "{} is the network or broadcast address of {}",
                addr.addr, lan.subnet
            ),
        ));
    }
    Ok(addr)
}

fn route(at: &str, lans: &[Lan], host: &Host, raw: &RawRoute) -> Result<Route, Error> {
    let to = if raw.to == "default" {
        Destination::Default
    } else {
        Destination::Net(parse_subnet(at, &raw.to)?)
    };
    let via: Ipv4Addr = raw
        .via
        .parse()
        .map_err(|_| invalid(at, format!("gateway `{}` is not an IPv4 address", raw.via)))?;
    if !host.lans.iter().any(|m| lans[m.lan].subnet.contains(via)) {
        return Err(invalid(
            at,
            format!("gateway {via} is not on any LAN of host `{}`", host.name),
        ));
    }
    Ok(Route { to, via })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::spec::tests::invalid_message;

    #[test]
    fn duplicate_hosts_are_refused() {
        let msg = invalid_message("[[host]]\nname = \"a\"\n[[host]]\nname = \"a\"\n");
        assert_eq!(msg, "topology host \"a\": duplicate host name");
    }

    #[test]
    fn unknown_lan_is_refused() {
        let msg = invalid_message(
            "[[host]]\nname = \"a\"\nlan = [{ lan = \"nope\", addr = \"10.0.0.2/24\" }]\n",
        );
        assert_eq!(msg, "topology host \"a\" lan[0]: unknown LAN `nope`");
    }

    #[test]
    fn address_outside_the_lan_subnet_is_refused() {
        let msg = invalid_message(
            "[[host]]\nname = \"a\"\nlan = [{ lan = \"front\", addr = \"10.1.0.2/24\" }]\n",
        );
        assert_eq!(
            msg,
            "topology host \"a\" lan[0]: address 10.1.0.2 is outside LAN `front` (10.0.0.0/24)"
        );
    }

    #[test]
    fn bad_cidrs_are_refused() {
        let msg = invalid_message(
            "[[host]]\nname = \"a\"\nlan = [{ lan = \"front\", addr = \"10.0.0.2/40\" }]\n",
        );
        assert_eq!(
            msg,
            "topology host \"a\" lan[0]: `10.0.0.2/40`: prefix length `40` is not 0..=32"
        );
        let bad_subnet = "name = \"x\"\n[[lan]]\nname = \"l\"\nsubnet = \"10.0.0.1/24\"\n";
        match Topology::from_toml(bad_subnet) {
            Err(e) => assert_eq!(
                e.to_string(),
                "topology lan \"l\" subnet: `10.0.0.1/24` has host bits set (network address is 10.0.0.0)"
            ),
            Ok(t) => panic!("{t:?}"),
        }
        let not_ip = "name = \"x\"\n[[lan]]\nname = \"l\"\nsubnet = \"10.0.300.0/24\"\n";
        assert!(matches!(
            Topology::from_toml(not_ip),
            Err(Error::Invalid { .. })
        ));
    }

    #[test]
    fn other_address_errors() {
        let cases = [
            (
                r#"[{ lan = "front", addr = "10.0.0.2/16" }]"#,
                "prefix /16 differs",
            ),
            (
                r#"[{ lan = "front", addr = "10.0.0.0" }]"#,
                "network or broadcast",
            ),
            (
                r#"[{ lan = "front", addr = "10.0.0.255" }]"#,
                "network or broadcast",
            ),
            (
                r#"[{ lan = "front", addr = "10.0.0.2" }, { lan = "front", addr = "10.0.0.3" }]"#,
                "already on LAN `front`",
            ),
        ];
        for (lan, needle) in cases {
            let msg = invalid_message(&format!("[[host]]\nname = \"a\"\nlan = {lan}\n"));
            assert!(msg.contains(needle), "{msg} should contain {needle}");
        }
        let twice = "[[host]]\nname = \"a\"\nlan = [{ lan = \"front\", addr = \"10.0.0.2\" }]\n\
                     [[host]]\nname = \"b\"\nlan = [{ lan = \"front\", addr = \"10.0.0.2\" }]\n";
        assert_eq!(
            invalid_message(twice),
            "topology host \"b\" lan[0]: address 10.0.0.2 is already used on LAN `front`"
        );
    }

    #[test]
    fn extra_addresses_follow_the_lan_rules() {
        let t = crate::spec::tests::parse(
            "[[host]]\nname = \"d\"\nlan = [{ lan = \"front\", addr = \"10.0.0.3\", \
             extra = [\"10.0.0.100\", \"10.0.0.101/24\"] }]\n",
        )
        .expect("valid");
        let extra: Vec<String> = t.hosts[0].lans[0]
            .extra
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(extra, ["10.0.0.100/24", "10.0.0.101/24"]);
        let msg = invalid_message(
            "[[host]]\nname = \"d\"\nlan = [{ lan = \"front\", addr = \"10.0.0.3\", \
             extra = [\"10.1.0.100\"] }]\n",
        );
        assert_eq!(
            msg,
            "topology host \"d\" lan[0] extra[0]: address 10.1.0.100 is outside LAN `front` (10.0.0.0/24)"
        );
        let msg = invalid_message(
            "[[host]]\nname = \"d\"\nlan = [{ lan = \"front\", addr = \"10.0.0.3\", \
             extra = [\"10.0.0.3\"] }]\n",
        );
        assert_eq!(
            msg,
            "topology host \"d\" lan[0]: address 10.0.0.3 is already used on LAN `front`"
        );
    }

    #[test]
    fn route_gateway_must_be_on_a_host_lan() {
        let msg = invalid_message(
            "[[host]]\nname = \"a\"\nlan = [{ lan = \"front\", addr = \"10.0.0.2\" }]\n\
             routes = [{ to = \"default\", via = \"10.1.0.1\" }]\n",
        );
        assert_eq!(
            msg,
            "topology host \"a\" routes[0]: gateway 10.1.0.1 is not on any LAN of host `a`"
        );
    }
}
