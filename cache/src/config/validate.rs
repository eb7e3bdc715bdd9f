//! Semantic validation of a deserialized [`NodeConfig`]: every rule is checked and every
//! problem reported (not just the first), each at the position of the offending value.
//!
//! Rules: `node.id` is 1..=64 chars of `[A-Za-z0-9._-]` (it is written into `Cache-Status`
//! and `Via`, RFC 9211 §2 / RFC 9110 §7.6.3); `node.listen` is non-empty, without duplicates
//! or the admin address; `node.workers` in 1..=256; `node.default_host` a `host[:port]`; `storage.ram` >= 1MiB and
//! `0 < storage.max_object_size <= ram / 8` when given (its default follows `ram`); `cache.heuristic_percent` <= 100 (RFC 9111
//! §4.2.2); `cache.target_header` a field name (RFC 9110 §5.1) other than the built-in
//! `Cache-Control` / `CDN-Cache-Control` (RFC 9213); `cache.max_request_header` in
//! 1KiB..=1MiB; `cache.partial_slice` in 1KiB..=`max_object_size` when `partial = "on"`; non-zero timeouts; pools and routes in `pools`; `[l4]` in `super::l4`;
//! `[cluster]` in `super::cluster`.

use strait_lb::config::units::Size;

use super::types::{NodeConfig, PartialMode, MAX_MAX_CONNECTIONS, RAM_SHARD_DIVISOR};
use super::{Diagnostic, Locator, Seg};

mod pools;

/// Longest accepted `node.id`.
const MAX_NODE_ID_CHARS: usize = 64;
/// Most worker threads accepted.
const MAX_WORKERS: usize = 256;
/// Smallest RAM tier.
const MIN_RAM: u64 = 1 << 20;
/// Bounds of `cache.max_request_header`.
const MIN_REQUEST_HEADER: u64 = 1 << 10;
const MAX_REQUEST_HEADER: u64 = 1 << 20;
/// Smallest `cache.partial_slice`.
const MIN_PARTIAL_SLICE: u64 = 1 << 10;
/// `cache.hot_ttl` at most.
const MAX_HOT_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// Cache-control headers that are always honoured, so cannot be the targeted one.
const BUILTIN_CONTROL_HEADERS: [&str; 2] = ["cache-control", "cdn-cache-control"];

/// Every problem in `config`; empty when it is valid.
pub(crate) fn validate(config: &NodeConfig, loc: &Locator<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    check_node(config, loc, &mut out);
    check_storage(config, loc, &mut out);
    check_cache(config, loc, &mut out);
    check_limits(config, loc, &mut out);
    pools::check_pools(config, loc, &mut out);
    pools::check_routes(config, loc, &mut out);
    super::l4::check_l4(config, loc, &mut out);
    super::cluster::check_cluster(config, loc, &mut out);
    out
}

fn check_node(config: &NodeConfig, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    let node = &config.node;
    let id = node.id.get_ref();
    let id_at = |msg: String| loc.at(node.id.span(), &[Seg::Key("node"), Seg::Key("id")], msg);
    if id.is_empty() {
        out.push(id_at("node.id must not be empty".into()));
    } else if id.chars().count() > MAX_NODE_ID_CHARS {
        out.push(id_at(format!(
            "node.id is {} characters long; at most {MAX_NODE_ID_CHARS} are allowed",
            id.chars().count()
        )));
    } else if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        out.push(id_at(format!(
            "node.id {id:?} contains {c:?}; use only letters, digits, '.', '_' and '-'"
        )));
    }

    let listen = node.listen.get_ref();
    if listen.is_empty() {
        out.push(loc.at(
            node.listen.span(),
            &[Seg::Key("node"), Seg::Key("listen")],
            "node.listen must name at least one address".into(),
        ));
    }
    for (i, addr) in listen.iter().enumerate() {
        let path = [Seg::Key("node"), Seg::Key("listen"), Seg::Idx(i)];
        // Port 0 means "any free port": two port-0 entries never clash.
        if addr.port() != 0 && listen[..i].contains(addr) {
            out.push(loc.at(0..0, &path, format!("node.listen lists {addr} twice")));
        }
        if addr.port() != 0 && *addr == node.admin {
            out.push(loc.at(
                0..0,
                &path,
                format!("node.listen address {addr} is also node.admin"),
            ));
        }
    }

    if let Some(workers) = &node.workers {
        let n = *workers.get_ref();
        if !(1..=MAX_WORKERS).contains(&n) {
            out.push(loc.at(
                workers.span(),
                &[Seg::Key("node"), Seg::Key("workers")],
                format!("node.workers must be between 1 and {MAX_WORKERS}, not {n}"),
            ));
        }
    }
    if let Some(host) = &node.default_host {
        let h = host.get_ref();
        if crate::policy::key::normalize_authority(h).is_none() || h.trim() != h {
            out.push(loc.at(
                host.span(),
                &[Seg::Key("node"), Seg::Key("default_host")],
                format!(
                    "node.default_host {h:?} is not a host name or address with an optional \
                     port (e.g. \"www.example.com\" or \"www.example.com:8080\")"
                ),
            ));
        }
    }
}

fn check_storage(config: &NodeConfig, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    let storage = &config.storage;
    let ram = *storage.ram.get_ref();
    if ram.as_u64() < MIN_RAM {
        out.push(loc.at(
            storage.ram.span(),
            &[Seg::Key("storage"), Seg::Key("ram")],
            format!("storage.ram must be at least 1MiB, not {ram}"),
        ));
    }
    // A defaulted max_object_size follows ram (StorageSection::max_object_size_bytes): only a
    // value written in the file can be wrong.
    let Some(written) = &storage.max_object_size else {
        return;
    };
    let max = *written.get_ref();
    let max_path = [Seg::Key("storage"), Seg::Key("max_object_size")];
    let limit = Size::bytes(ram.as_u64() / RAM_SHARD_DIVISOR);
    if max.as_u64() == 0 {
        out.push(loc.at(
            written.span(),
            &max_path,
            "storage.max_object_size must be greater than 0".into(),
        ));
    } else if max > limit {
        out.push(loc.at(
            written.span(),
            &max_path,
            format!(
                "storage.max_object_size ({max}) must be at most storage.ram / \
                 {RAM_SHARD_DIVISOR} ({limit}): an object must fit in one shard of the RAM tier"
            ),
        ));
    }
}

fn check_cache(config: &NodeConfig, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    let cache = &config.cache;
    let percent = *cache.heuristic_percent.get_ref();
    if percent > 100 {
        out.push(loc.at(
            cache.heuristic_percent.span(),
            &[Seg::Key("cache"), Seg::Key("heuristic_percent")],
            format!("cache.heuristic_percent must be at most 100, not {percent}"),
        ));
    }
    if let Some(header) = &cache.target_header {
        let name = header.get_ref();
        let path = [Seg::Key("cache"), Seg::Key("target_header")];
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            out.push(loc.at(
                header.span(),
                &path,
                format!("cache.target_header {name:?} is not a valid HTTP field name"),
            ));
        } else if BUILTIN_CONTROL_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            out.push(loc.at(
                header.span(),
                &path,
                format!(
                    "cache.target_header cannot be {name:?}: Cache-Control and \
                     CDN-Cache-Control are always honoured"
                ),
            ));
        }
    }
    let head = *cache.max_request_header.get_ref();
    if !(MIN_REQUEST_HEADER..=MAX_REQUEST_HEADER).contains(&head.as_u64()) {
        out.push(loc.at(
            cache.max_request_header.span(),
            &[Seg::Key("cache"), Seg::Key("max_request_header")],
            format!("cache.max_request_header must be between 1KiB and 1MiB, not {head}"),
        ));
    }
    if cache.hot_ttl > MAX_HOT_TTL {
        out.push(loc.at(
            0..0,
            &[Seg::Key("cache"), Seg::Key("hot_ttl")],
            format!(
                "cache.hot_ttl must be at most {}s (a hot copy may be that much older than \
                 its owner's object), not {:?}",
                MAX_HOT_TTL.as_secs(),
                cache.hot_ttl
            ),
        ));
    }
    if cache.coalesce_timeout.is_zero() {
        out.push(loc.at(
            0..0,
            &[Seg::Key("cache"), Seg::Key("coalesce_timeout")],
            "cache.coalesce_timeout must be greater than 0".into(),
        ));
    }
    check_partial_slice(config, loc, out);
}

/// `cache.partial_slice` (checked when `partial = "on"`): at least 1KiB, and a slice must fit
/// in a stored object.
fn check_partial_slice(config: &NodeConfig, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    let cache = &config.cache;
    if cache.partial != PartialMode::On {
        return;
    }
    let slice = *cache.partial_slice.get_ref();
    let max = Size::bytes(config.storage.max_object_size_bytes());
    if slice.as_u64() < MIN_PARTIAL_SLICE || slice > max {
        out.push(loc.at(
            cache.partial_slice.span(),
            &[Seg::Key("cache"), Seg::Key("partial_slice")],
            format!(
                "cache.partial_slice must be between 1KiB and storage.max_object_size \
                 ({max}), not {slice}"
            ),
        ));
    }
}

fn check_limits(config: &NodeConfig, loc: &Locator<'_>, out: &mut Vec<Diagnostic>) {
    let limits = &config.limits;
    for (name, d) in [
        ("body_timeout", limits.body_timeout),
        ("send_timeout", limits.send_timeout),
        ("stream_lag", limits.stream_lag),
        ("header_read_timeout", limits.header_read_timeout),
    ] {
        if d.is_zero() {
            out.push(loc.at(
                0..0,
                &[Seg::Key("limits"), Seg::Key(name)],
                format!("limits.{name} must be greater than 0"),
            ));
        }
    }
    let conns = *limits.max_connections.get_ref();
    if !(1..=MAX_MAX_CONNECTIONS).contains(&conns) {
        out.push(loc.at(
            limits.max_connections.span(),
            &[Seg::Key("limits"), Seg::Key("max_connections")],
            format!(
                "limits.max_connections must be between 1 and {MAX_MAX_CONNECTIONS}, not {conns}"
            ),
        ));
    }
    if limits.max_request_body.get_ref().as_u64() == 0 {
        out.push(loc.at(
            limits.max_request_body.span(),
            &[Seg::Key("limits"), Seg::Key("max_request_body")],
            "limits.max_request_body must be greater than 0".into(),
        ));
    }
    if let Some(inflight) = &limits.inflight {
        let max = Size::bytes(config.storage.max_object_size_bytes());
        if *inflight.get_ref() < max {
            out.push(loc.at(
                inflight.span(),
                &[Seg::Key("limits"), Seg::Key("inflight")],
                format!(
                    "limits.inflight ({}) must be at least storage.max_object_size ({max}): \
                     one fill of the largest object must fit",
                    inflight.get_ref()
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    /// A valid `[node]` (lines 1-3) and a valid pool and route (5 lines).
    pub(super) const NODE: &str = "[node]\nid = \"a\"\nlisten = [\"127.0.0.1:8080\"]\n";
    pub(super) const POOL_ROUTE: &str = "[[pool]]\nname = \"origin\"\n\
        servers = [{ addr = \"127.0.0.1:18080\" }]\n[[route]]\npool = \"origin\"\n";

    /// Every problem as `LINE:COL: message`; empty if the text is valid.
    pub(super) fn problems(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(_) => Vec::new(),
            Err(d) => d.iter().map(ToString::to_string).collect(),
        }
    }

    fn node_with(id: &str, extra: &str) -> String {
        format!("[node]\nid = \"{id}\"\nlisten = [\"127.0.0.1:8080\"]\n{extra}{POOL_ROUTE}")
    }

    #[test]
    fn node_id_must_be_short_safe_and_non_empty() {
        assert_eq!(
            problems(&node_with("", "")),
            ["2:6: node.id must not be empty"]
        );
        assert_eq!(
            problems(&node_with(&"x".repeat(65), "")),
            ["2:6: node.id is 65 characters long; at most 64 are allowed"]
        );
        assert_eq!(
            problems(&node_with("a;b", "")),
            ["2:6: node.id \"a;b\" contains ';'; use only letters, digits, '.', '_' and '-'"]
        );
        assert!(problems(&node_with(&format!("Az09._-{}", "x".repeat(57)), "")).is_empty());
    }

    #[test]
    fn listen_needs_distinct_addresses_other_than_admin() {
        let text = format!("[node]\nid = \"a\"\nlisten = []\n{POOL_ROUTE}");
        assert_eq!(
            problems(&text),
            ["3:10: node.listen must name at least one address"]
        );
        let text = format!(
            "[node]\nid = \"a\"\nlisten = [\"127.0.0.1:1\", \"127.0.0.1:1\", \"127.0.0.1:9090\"]\n\
             {POOL_ROUTE}"
        );
        assert_eq!(
            problems(&text),
            [
                "3:26: node.listen lists 127.0.0.1:1 twice",
                "3:41: node.listen address 127.0.0.1:9090 is also node.admin"
            ]
        );
    }

    #[test]
    fn default_host_must_be_a_host_and_optional_port() {
        for bad in ["", "a b", "a/b", "user@a", "a:x", "a:99999", " a"] {
            let text = node_with("a", &format!("default_host = {bad:?}\n"));
            let p = problems(&text);
            assert_eq!(p.len(), 1, "{bad:?}: {p:?}");
            assert!(p[0].starts_with("4:16: node.default_host"), "{p:?}");
        }
        for good in [
            "www.example.com",
            "www.example.com:8080",
            "127.0.0.1",
            "[::1]:80",
        ] {
            let text = node_with("a", &format!("default_host = {good:?}\n"));
            assert!(problems(&text).is_empty(), "{good:?}");
        }
    }

    #[test]
    fn workers_must_be_between_1_and_256() {
        assert_eq!(
            problems(&node_with("a", "workers = 0\n")),
            ["4:11: node.workers must be between 1 and 256, not 0"]
        );
        assert_eq!(
            problems(&node_with("a", "workers = 257\n")),
            ["4:11: node.workers must be between 1 and 256, not 257"]
        );
        assert!(problems(&node_with("a", "workers = 256\n")).is_empty());
    }

    #[test]
    fn partial_slice_is_checked_only_when_partial_is_on() {
        let cache = |c: &str| format!("{NODE}[storage]\nram = \"8MiB\"\n[cache]\n{c}{POOL_ROUTE}");
        // Off (the default): the slice is not used, so not checked.
        assert!(problems(&cache("partial_slice = \"4MiB\"\n")).is_empty());
        assert!(problems(&cache("partial = \"on\"\npartial_slice = \"1MiB\"\n")).is_empty());
        assert_eq!(
            problems(&cache("partial = \"on\"\npartial_slice = \"2MiB\"\n")),
            [
                "8:17: cache.partial_slice must be between 1KiB and storage.max_object_size \
              (1MiB), not 2MiB"
            ]
        );
        assert_eq!(
            problems(&cache("partial = \"on\"\npartial_slice = 512\n")),
            [
                "8:17: cache.partial_slice must be between 1KiB and storage.max_object_size \
              (1MiB), not 512 bytes"
            ]
        );
        assert!(!problems(&cache("partial = \"maybe\"\n")).is_empty());
    }

    #[test]
    fn ram_must_be_at_least_1mib() {
        let text = format!("{NODE}[storage]\nram = \"1023KiB\"\nmax_object_size = 1\n{POOL_ROUTE}");
        assert_eq!(
            problems(&text),
            ["5:7: storage.ram must be at least 1MiB, not 1023KiB"]
        );
    }

    #[test]
    fn max_object_size_must_be_positive_and_fit_a_ram_shard() {
        let text = format!("{NODE}[storage]\nmax_object_size = 0\n{POOL_ROUTE}");
        assert_eq!(
            problems(&text),
            ["5:19: storage.max_object_size must be greater than 0"]
        );
        let text =
            format!("{NODE}[storage]\nram = \"8MiB\"\nmax_object_size = \"1MiB\"\n{POOL_ROUTE}");
        assert!(problems(&text).is_empty());
        let text =
            format!("{NODE}[storage]\nram = \"8MiB\"\nmax_object_size = 1048577\n{POOL_ROUTE}");
        assert_eq!(
            problems(&text),
            [
                "6:19: storage.max_object_size (1048577 bytes) must be at most storage.ram / 8 \
              (1MiB): an object must fit in one shard of the RAM tier"
            ]
        );
    }

    #[test]
    fn a_defaulted_max_object_size_follows_ram() {
        use strait_lb::config::units::Size;
        // No max_object_size: 16MiB no longer fits ram / 8, so the default is ram / 8.
        let text = format!("{NODE}\n[storage]\nram = \"64MiB\"\n{POOL_ROUTE}");
        assert!(problems(&text).is_empty());
        let storage = parse(&text).unwrap().storage;
        assert_eq!(storage.max_object_size_bytes(), Size::mib(8).as_u64());
        // A large ram keeps the 16MiB default.
        let text = format!("{NODE}\n[storage]\nram = \"1GiB\"\n{POOL_ROUTE}");
        let storage = parse(&text).unwrap().storage;
        assert_eq!(storage.max_object_size_bytes(), Size::mib(16).as_u64());
        // limits.inflight is checked against the effective value, and defaults to 4 x it.
        let text = format!(
            "{NODE}\n[storage]\nram = \"64MiB\"\n[limits]\ninflight = \"8MiB\"\n{POOL_ROUTE}"
        );
        assert!(problems(&text).is_empty());
        let config = parse(&format!("{NODE}\n[storage]\nram = \"64MiB\"\n{POOL_ROUTE}")).unwrap();
        assert_eq!(
            config
                .limits
                .inflight_bytes(config.storage.max_object_size_bytes()),
            Size::mib(32).as_u64()
        );
    }

    #[test]
    fn heuristic_percent_is_at_most_100() {
        let text = format!("{NODE}[cache]\nheuristic_percent = 101\n{POOL_ROUTE}");
        assert_eq!(
            problems(&text),
            ["5:21: cache.heuristic_percent must be at most 100, not 101"]
        );
    }

    #[test]
    fn target_header_is_a_field_name_and_not_a_builtin_one() {
        let with = |h: &str| {
            problems(&format!(
                "{NODE}[cache]\ntarget_header = \"{h}\"\n{POOL_ROUTE}"
            ))
        };
        assert_eq!(
            with("Bad Header"),
            ["5:17: cache.target_header \"Bad Header\" is not a valid HTTP field name"]
        );
        assert_eq!(
            with("Cache-Control"),
            [
                "5:17: cache.target_header cannot be \"Cache-Control\": Cache-Control and \
              CDN-Cache-Control are always honoured"
            ]
        );
        assert!(with("Strait-Cache-Control").is_empty());
    }

    #[test]
    fn max_request_header_is_between_1kib_and_1mib() {
        let with = |s: &str| {
            problems(&format!(
                "{NODE}[cache]\nmax_request_header = {s}\n{POOL_ROUTE}"
            ))
        };
        assert_eq!(
            with("1023"),
            ["5:22: cache.max_request_header must be between 1KiB and 1MiB, not 1023 bytes"]
        );
        assert_eq!(
            with("\"1025KiB\""),
            ["5:22: cache.max_request_header must be between 1KiB and 1MiB, not 1025KiB"]
        );
        assert!(with("\"1KiB\"").is_empty());
        assert!(with("\"1MiB\"").is_empty());
    }

    #[test]
    fn coalesce_timeout_is_positive() {
        let text = format!("{NODE}[cache]\ncoalesce_timeout = \"0s\"\n{POOL_ROUTE}");
        assert_eq!(
            problems(&text),
            ["5:20: cache.coalesce_timeout must be greater than 0"]
        );
    }

    #[test]
    fn hot_ttl_is_at_most_a_minute() {
        let with = |v: &str| problems(&format!("{NODE}[cache]\nhot_ttl = {v}\n{POOL_ROUTE}"));
        assert!(with("\"0s\"").is_empty());
        assert!(with("\"60s\"").is_empty());
        let p = with("\"61s\"");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("cache.hot_ttl must be at most 60s"), "{p:?}");
    }

    #[test]
    fn limits_are_positive_and_inflight_holds_one_largest_object() {
        let text = format!(
            "{NODE}[limits]\nbody_timeout = \"0s\"\nmax_request_body = 0\n\
             inflight = \"1MiB\"\n{POOL_ROUTE}"
        );
        assert_eq!(
            problems(&text),
            [
                "5:16: limits.body_timeout must be greater than 0",
                "6:20: limits.max_request_body must be greater than 0",
                "7:12: limits.inflight (1MiB) must be at least storage.max_object_size (16MiB): \
                 one fill of the largest object must fit",
            ]
        );
        let ok =
            format!("{NODE}[limits]\nsend_timeout = \"5s\"\ninflight = \"16MiB\"\n{POOL_ROUTE}");
        assert!(problems(&ok).is_empty());
        let text = format!(
            "{NODE}[limits]\nheader_read_timeout = \"0s\"\nmax_connections = 0\n{POOL_ROUTE}"
        );
        assert_eq!(
            problems(&text),
            [
                "5:23: limits.header_read_timeout must be greater than 0",
                "6:19: limits.max_connections must be between 1 and 1000000, not 0",
            ]
        );
        let ok = format!(
            "{NODE}[limits]\nheader_read_timeout = \"2s\"\nmax_connections = 64\n{POOL_ROUTE}"
        );
        assert!(problems(&ok).is_empty());
    }
}
