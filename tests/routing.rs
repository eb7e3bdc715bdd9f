//! Content-based routing and per-route cache policy, end to end: real `strait node` and
//! `strait sim origin` processes on loopback (see `tests/support`), one file per concern under
//! `tests/routing/`.
//!
//! Contract under test: `[[route]]`s are tried in order and the first whose `match` holds takes
//! the request (`host` exact or `*.suffix`, case-insensitive, port ignored; `path_prefix`;
//! `path_regex` on the path without its query; `method`; `header` name + value regex; every
//! given condition must hold); the last route has no `match` and takes the rest. Per route:
//! `cache = false` passes (`Cache-Status: ...; fwd=bypass`), `ttl` gives a lifetime to
//! responses without freshness information, `cache_key` request fields extend the key,
//! `store_set_cookie` allows storing `Set-Cookie` answers. The origin sees `X-Forwarded-For`
//! and `Forwarded` (RFC 7239). `strait check` refuses bad route tables with exit code 2.

mod support;

#[path = "routing/cache_key.rs"]
mod cache_key;
#[path = "routing/check.rs"]
mod check;
#[path = "routing/forwarded.rs"]
mod forwarded;
#[path = "routing/matchers.rs"]
mod matchers;
#[path = "routing/policy.rs"]
mod policy;

use std::net::SocketAddr;

use support::Origin;

/// A node config with one single-server pool per `(name, origin address)`, followed by the
/// `[[route]]` tables in `routes`.
pub(crate) fn routed_config(pools: &[(&str, SocketAddr)], routes: &str) -> String {
    let mut text =
        String::from("[node]\nid = \"a\"\nlisten = [\"127.0.0.1:0\"]\nadmin = \"127.0.0.1:0\"\n\n");
    for (name, addr) in pools {
        text.push_str(&format!(
            "[[pool]]\nname = \"{name}\"\nservers = [{{ addr = \"{addr}\" }}]\n\n"
        ));
    }
    text.push_str(routes);
    text
}

/// How many requests for `path` each origin answered, in the order given.
pub(crate) fn counts(origins: &[&Origin], path: &str) -> Vec<u64> {
    origins.iter().map(|o| o.count(path)).collect()
}

/// The `ttl` of a hit's `Cache-Status` (`a; hit; ttl=N`); panics on anything else.
pub(crate) fn hit_ttl(cache_status: &str) -> i64 {
    let ttl = cache_status
        .strip_prefix("a; hit; ttl=")
        .unwrap_or_else(|| panic!("not a plain hit: {cache_status:?}"));
    ttl.parse()
        .unwrap_or_else(|_| panic!("bad ttl in {cache_status:?}"))
}
