//! Validation of origin pools and routes (see [`check_pools`] and [`check_routes`]).

use std::collections::HashMap;

use super::super::types::{NodeConfig, PoolConfig};
use super::super::{Diagnostic, Locator, Seg};

/// Largest server weight.
const MAX_WEIGHT: u32 = 1000;

/// Pools: at least one; names non-empty and unique; each with valid servers and non-zero
/// timeouts.
pub(super) fn check_pools(config: &NodeConfig, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    if config.pools.is_empty() {
        out.push(loc.at(0..0, &[], "at least one [[pool]] is required".into()));
    }
    // Line of the first pool with each name.
    let mut first_line: HashMap<&str, usize> = HashMap::new();
    for (i, spanned) in config.pools.iter().enumerate() {
        let pool = spanned.get_ref();
        let name = pool.name.get_ref();
        let name_path = [Seg::Key("pool"), Seg::Idx(i), Seg::Key("name")];
        let (line, _) = loc.position(pool.name.span(), &name_path);
        let problem = if name.is_empty() {
            Some("pool name must not be empty".to_string())
        } else if let Some(first) = first_line.get(name.as_str()) {
            Some(format!(
                "pool {name:?} is defined twice (first on line {first})"
            ))
        } else {
            first_line.insert(name, line);
            None
        };
        if let Some(message) = problem {
            out.push(loc.at(pool.name.span(), &name_path, message));
        }

        check_servers(pool, i, loc, out);
        check_self_loops(config, pool, i, loc, out);
        check_pool_health(pool, i, loc, out);

        let timeouts = [
            ("connect_timeout", pool.connect_timeout),
            ("first_byte_timeout", pool.first_byte_timeout),
            ("idle_timeout", pool.idle_timeout),
        ];
        for (key, value) in timeouts {
            if value.is_zero() {
                out.push(loc.at(
                    0..0,
                    &[Seg::Key("pool"), Seg::Idx(i), Seg::Key(key)],
                    format!("pool {name:?}: {key} must be greater than 0"),
                ));
            }
        }
    }
}

/// Servers of pool number `i`: at least one, no address twice, weights <= 1000 with at
/// least one above 0 (a pool of zero weights could never be scheduled).
fn check_servers(pool: &PoolConfig, i: usize, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    let name = pool.name.get_ref();
    let servers = pool.servers.get_ref();
    let servers_path = [Seg::Key("pool"), Seg::Idx(i), Seg::Key("servers")];
    if servers.is_empty() {
        out.push(loc.at(
            pool.servers.span(),
            &servers_path,
            format!("pool {name:?} has no servers"),
        ));
    } else if servers.iter().all(|s| s.get_ref().weight == 0) {
        out.push(loc.at(
            pool.servers.span(),
            &servers_path,
            format!("pool {name:?}: every server has weight 0; at least one needs more"),
        ));
    }
    for (j, server) in servers.iter().enumerate() {
        let s = server.get_ref();
        let field = |key| {
            [
                Seg::Key("pool"),
                Seg::Idx(i),
                Seg::Key("servers"),
                Seg::Idx(j),
                Seg::Key(key),
            ]
        };
        if servers[..j].iter().any(|o| o.get_ref().addr == s.addr) {
            out.push(loc.at(
                0..0,
                &field("addr"),
                format!("pool {name:?} lists server {} twice", s.addr),
            ));
        }
        if s.weight > MAX_WEIGHT {
            out.push(loc.at(
                0..0,
                &field("weight"),
                format!(
                    "pool {name:?} server {}: weight {} is above the maximum of {MAX_WEIGHT}",
                    s.addr, s.weight
                ),
            ));
        }
    }
}

/// A pool server that is one of this node's own listen addresses (exactly, or on the port
/// of an unspecified listen address with a loopback server address): every request sent
/// there would come back to this node. Node-local: the same pools can be right on another
/// node (a shared config distributed to this one is refused for it).
fn check_self_loops(
    config: &NodeConfig,
    pool: &PoolConfig,
    i: usize,
    loc: &Locator<'_>,
    out: &mut Vec<Diagnostic>,
) {
    let name = pool.name.get_ref();
    for (j, server) in pool.servers.get_ref().iter().enumerate() {
        let addr = server.get_ref().addr;
        let own = config.node.listen.get_ref().iter().any(|l| {
            *l == addr
                || (l.ip().is_unspecified() && l.port() == addr.port() && addr.ip().is_loopback())
        });
        if own {
            out.push(loc.at(
                0..0,
                &[
                    Seg::Key("pool"),
                    Seg::Idx(i),
                    Seg::Key("servers"),
                    Seg::Idx(j),
                    Seg::Key("addr"),
                ],
                format!(
                    "pool {name:?} server {addr} is this node's own listen address \
                     (its requests would loop back to it)"
                ),
            ));
        }
    }
}

/// Routes: at least one; each names an existing pool; matchers compile; first match wins, so
/// a route after one without `match` can never be taken, and the last route must have no
/// `match` (else a request could be left unrouted).
pub(super) fn check_routes(config: &NodeConfig, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    if config.routes.is_empty() {
        out.push(loc.at(0..0, &[], "at least one [[route]] is required".into()));
    }
    let mut known: Vec<String> = Vec::new();
    for pool in &config.pools {
        let name = format!("{:?}", pool.get_ref().name.get_ref());
        if name != "\"\"" && !known.contains(&name) {
            known.push(name);
        }
    }
    let mut default_seen = false;
    for (i, spanned) in config.routes.iter().enumerate() {
        let route = spanned.get_ref();
        let here = [Seg::Key("route"), Seg::Idx(i)];
        if default_seen {
            out.push(loc.at(
                spanned.span(),
                &here,
                "unreachable: an earlier route has no `match` and takes every request".into(),
            ));
        }
        if route.matcher.is_none() {
            default_seen = true;
        }
        if let Err(e) = crate::origin::route::RouteTable::check_one(i, route) {
            let span = route
                .matcher
                .as_ref()
                .map_or_else(|| spanned.span(), |m| m.span());
            out.push(loc.at(span, &here, e.to_string()));
        }
        let pool = route.pool.get_ref();
        if !config
            .pools
            .iter()
            .any(|p| p.get_ref().name.get_ref() == pool)
        {
            let known = if known.is_empty() {
                "none are defined".to_string()
            } else {
                format!("known pools: {}", known.join(", "))
            };
            out.push(loc.at(
                route.pool.span(),
                &[here[0], here[1], Seg::Key("pool")],
                format!("route pool {pool:?} does not exist ({known})"),
            ));
        }
    }
    if let Some(last) = config.routes.last() {
        if let Some(m) = &last.get_ref().matcher {
            out.push(
                loc.at(
                    m.span(),
                    &[Seg::Key("route"), Seg::Idx(config.routes.len() - 1)],
                    "a request matching no route would be left unrouted: the last route must have \
                 no `match`"
                        .into(),
                ),
            );
        }
    }
}

/// Health checks, passive ejection and persistence of pool number `i`.
pub(super) fn check_pool_health(
    pool: &PoolConfig,
    i: usize,
    loc: &Locator<'_>,
    out: &mut Vec<Diagnostic>,
) {
    let name = pool.name.get_ref();
    if let Some(h) = &pool.health {
        let path = [Seg::Key("pool"), Seg::Idx(i), Seg::Key("health")];
        let hc = h.get_ref();
        let mut bad = |msg: String| out.push(loc.at(h.span(), &path, msg));
        if hc.interval.is_zero() || hc.timeout.is_zero() {
            bad(format!(
                "pool {name:?}: health interval and timeout must be greater than 0"
            ));
        }
        if hc.timeout > hc.interval {
            bad(format!(
                "pool {name:?}: health timeout ({:?}) is longer than the interval ({:?})",
                hc.timeout, hc.interval
            ));
        }
        if hc.rise == 0 || hc.fall == 0 {
            bad(format!(
                "pool {name:?}: health rise and fall must be at least 1"
            ));
        }
        if !(100..=599).contains(&hc.expect) {
            bad(format!(
                "pool {name:?}: health expect {} is not an HTTP status",
                hc.expect
            ));
        }
        if !hc.path.starts_with('/') {
            bad(format!(
                "pool {name:?}: health path {:?} must start with '/'",
                hc.path
            ));
        }
    }
    if pool.passive.failures > 0 && pool.passive.backoff.is_zero() {
        out.push(loc.at(
            0..0,
            &[Seg::Key("pool"), Seg::Idx(i), Seg::Key("passive")],
            format!("pool {name:?}: passive backoff must be greater than 0"),
        ));
    }
    if let Some(p) = &pool.persistence {
        let cookie = p.cookie.get_ref();
        let token = !cookie.is_empty()
            && cookie
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            out.push(loc.at(
                p.cookie.span(),
                &[Seg::Key("pool"), Seg::Idx(i), Seg::Key("persistence")],
                format!("pool {name:?}: cookie name {cookie:?} is not a valid cookie name"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{problems, NODE, POOL_ROUTE};

    #[test]
    fn at_least_one_pool_and_one_route() {
        assert_eq!(
            problems(NODE),
            [
                "1:1: at least one [[pool]] is required",
                "1:1: at least one [[route]] is required"
            ]
        );
    }

    #[test]
    fn pool_names_are_non_empty_and_unique() {
        let pool = |name: &str| {
            format!("[[pool]]\nname = \"{name}\"\nservers = [{{ addr = \"127.0.0.1:1\" }}]\n")
        };
        let text = format!("{NODE}{POOL_ROUTE}{}{}", pool("origin"), pool(""));
        assert_eq!(
            problems(&text),
            [
                "10:8: pool \"origin\" is defined twice (first on line 5)",
                "13:8: pool name must not be empty"
            ]
        );
    }

    #[test]
    fn pool_servers_are_present_distinct_and_sanely_weighted() {
        let with = |servers: &str| {
            problems(&format!(
                "{NODE}[[pool]]\nname = \"p\"\nservers = [{servers}]\n[[route]]\npool = \"p\"\n"
            ))
        };
        assert_eq!(with(""), ["6:11: pool \"p\" has no servers"]);
        assert_eq!(
            with("{ addr = \"127.0.0.1:1\" }, { addr = \"127.0.0.1:1\" }"),
            ["6:47: pool \"p\" lists server 127.0.0.1:1 twice"]
        );
        assert_eq!(
            with("{ addr = \"127.0.0.1:1\", weight = 1001 }"),
            ["6:45: pool \"p\" server 127.0.0.1:1: weight 1001 is above the maximum of 1000"]
        );
        assert_eq!(
            with("{ addr = \"127.0.0.1:1\", weight = 0 }, { addr = \"127.0.0.1:2\", weight = 0 }"),
            ["6:11: pool \"p\": every server has weight 0; at least one needs more"]
        );
        assert!(with(
            "{ addr = \"127.0.0.1:1\", weight = 0 }, { addr = \"127.0.0.1:2\", weight = 1000 }"
        )
        .is_empty());
    }

    #[test]
    fn a_pool_server_that_is_this_nodes_listen_address_is_a_loop() {
        let with = |listen: &str, server: &str| {
            problems(&format!(
                "[node]\nid = \"a\"\nlisten = [\"{listen}\"]\n[[pool]]\nname = \"p\"\n\
                 servers = [{{ addr = \"{server}\" }}]\n[[route]]\npool = \"p\"\n"
            ))
        };
        let looped = |server: &str| {
            vec![format!(
                "6:21: pool \"p\" server {server} is this node's own listen address (its \
                 requests would loop back to it)"
            )]
        };
        assert_eq!(
            with("127.0.0.1:8080", "127.0.0.1:8080"),
            looped("127.0.0.1:8080")
        );
        assert_eq!(
            with("0.0.0.0:8080", "127.0.0.1:8080"),
            looped("127.0.0.1:8080")
        );
        // Another port, or another host's address on that port: fine.
        assert!(with("127.0.0.1:8080", "127.0.0.1:8081").is_empty());
        assert!(with("127.0.0.1:8080", "127.0.0.2:8080").is_empty());
        assert!(with("0.0.0.0:8080", "10.0.0.1:8080").is_empty());
    }

    #[test]
    fn pool_timeouts_are_positive() {
        let text = format!(
            "{NODE}[[pool]]\nname = \"p\"\nservers = [{{ addr = \"127.0.0.1:1\" }}]\n\
             connect_timeout = \"0s\"\nfirst_byte_timeout = \"0ms\"\nidle_timeout = \"0s\"\n\
             [[route]]\npool = \"p\"\n"
        );
        assert_eq!(
            problems(&text),
            [
                "7:19: pool \"p\": connect_timeout must be greater than 0",
                "8:22: pool \"p\": first_byte_timeout must be greater than 0",
                "9:16: pool \"p\": idle_timeout must be greater than 0"
            ]
        );
    }

    #[test]
    fn a_route_must_name_a_known_pool() {
        let text = format!(
            "{NODE}{POOL_ROUTE}[[pool]]\nname = \"b\"\nservers = [{{ addr = \"127.0.0.1:1\" }}]\n"
        )
        .replace("pool = \"origin\"", "pool = \"nope\"");
        assert_eq!(
            problems(&text),
            ["8:8: route pool \"nope\" does not exist (known pools: \"origin\", \"b\")"]
        );
    }

    #[test]
    fn a_route_after_a_default_route_is_unreachable() {
        let text = format!("{NODE}{POOL_ROUTE}[[route]]\npool = \"origin\"\n");
        assert_eq!(
            problems(&text),
            ["9:1: unreachable: an earlier route has no `match` and takes every request"]
        );
    }
}
