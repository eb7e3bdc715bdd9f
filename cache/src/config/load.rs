//! Reading a node config: TOML text -> `NodeConfig` -> `validate` -> `Ok(config)` or every
//! problem as a [`Diagnostic`] at `LINE:COL` (1-based; columns count characters).
//!
//! Contract:
//! * Syntax, type and unknown-key errors come from toml/serde, one at a time, at their span;
//!   the message is prefixed with the dotted key it concerns when that key is known.
//! * Once the text deserializes, `validate` reports every problem it finds, each at the
//!   position of the offending value (located by the `Locator`: a value without a span of its
//!   own, such as a default, is reported at its enclosing table, else at `1:1`).
//! * Diagnostics are returned sorted by position.
//!
//! [`Diagnostic`], [`ConfigError`] and the `Locator` are the shared ones of `strait_lb::config`.

use std::path::Path;

use strait_lb::config::{load_with, ConfigError, Diagnostic, Locator};

use super::cluster::read_secret;
use super::types::NodeConfig;
use super::validate::validate;

/// Read and parse a node config file.
pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
    load_with(path, parse)
}

/// Parse and validate a node config; a `[cluster]` `secret_file` is read here (relative to
/// the working directory).
pub fn parse(text: &str) -> Result<NodeConfig, Vec<Diagnostic>> {
    let locator = Locator::new(text);
    let mut config =
        toml::from_str::<NodeConfig>(text).map_err(|e| vec![locator.toml_error(&e)])?;
    let mut diagnostics = validate(&config, &locator);
    diagnostics.extend(read_secret(&mut config, &locator));
    if diagnostics.is_empty() {
        return Ok(config);
    }
    diagnostics.sort_by_key(|d| (d.line, d.col));
    Err(diagnostics)
}

/// Which kind of strait config a document is, told apart by its top-level table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    /// Has a `[node]` table: a cache node config.
    Node,
    /// Has a `[director]` table: an L4 director config.
    Director,
    /// Neither.
    Unknown,
}

impl ConfigKind {
    /// Classify TOML text; a syntax error is returned as its diagnostic.
    pub fn of(text: &str) -> Result<ConfigKind, Diagnostic> {
        let table = text
            .parse::<toml::Table>()
            .map_err(|e| Locator::bare(text).toml_error(&e))?;
        Ok(if table.contains_key("node") {
            ConfigKind::Node
        } else if table.contains_key("director") {
            ConfigKind::Director
        } else {
            ConfigKind::Unknown
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytesize::ByteSize;
    use std::net::SocketAddr;

    const EXAMPLE: &str = r#"[node]
id = "a"
listen = ["127.0.0.1:8080"]
admin = "127.0.0.1:9090"
[storage]
ram = "256MiB"
[[pool]]
name = "origin"
servers = [{ addr = "127.0.0.1:18080" }, { addr = "127.0.0.1:18081", weight = 2 }]
[[route]]
pool = "origin"
"#;

    fn errors(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(_) => panic!("expected problems in:\n{text}"),
            Err(d) => d.iter().map(ToString::to_string).collect(),
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_documented_example_parses_with_defaults_filled_in() {
        let config = parse(EXAMPLE).unwrap();
        assert_eq!(config.node.id.get_ref(), "a");
        assert_eq!(config.node.listen.get_ref(), &[addr("127.0.0.1:8080")]);
        assert_eq!(*config.storage.ram.get_ref(), ByteSize::mib(256));
        assert_eq!(
            config.storage.max_object_size_bytes(),
            ByteSize::mib(16).as_u64()
        );
        let pool = config.pools[0].get_ref();
        assert_eq!(pool.name.get_ref(), "origin");
        let servers: Vec<(SocketAddr, u32)> = pool
            .servers
            .get_ref()
            .iter()
            .map(|s| (s.get_ref().addr, s.get_ref().weight))
            .collect();
        assert_eq!(
            servers,
            [(addr("127.0.0.1:18080"), 1), (addr("127.0.0.1:18081"), 2)]
        );
        assert_eq!(config.routes[0].get_ref().pool.get_ref(), "origin");
    }

    #[test]
    fn an_unknown_key_is_reported_at_the_key_with_its_table() {
        let text = EXAMPLE.replace("admin =", "colour = \"red\"\nadmin =");
        assert_eq!(
            errors(&text),
            [
                "4:1: node: unknown field `colour`, expected one of `id`, `listen`, `admin`, \
              `workers`, `drain_timeout`"
            ]
        );
    }

    #[test]
    fn unknown_tables_and_route_match_are_named() {
        let text = format!("{EXAMPLE}[clustre]\nseeds = []\n");
        assert_eq!(
            errors(&text),
            [
                "12:2: unknown field `clustre`, expected one of `node`, `storage`, `cache`, \
              `limits`, `pool`, `route`, `l4`, `cluster`, `log`"
            ]
        );
        let text = EXAMPLE.replace(
            "[[route]]\npool = \"origin\"",
            "[[route]]\nmatch = { paht = 'x' }\npool = \"origin\"\n[[route]]\npool = \"origin\"",
        );
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("unknown field `paht`"), "{e:?}");
    }

    #[test]
    fn bad_durations_and_sizes_name_their_key() {
        let text = EXAMPLE.replace("[[route]]", "connect_timeout = \"2 fortnights\"\n[[route]]");
        assert_eq!(
            errors(&text),
            [
                "10:19: pool.connect_timeout: invalid value: string \"2 fortnights\", expected a \
              duration"
            ]
        );
        let text = EXAMPLE.replace("\"256MiB\"", "\"12 parsecs\"");
        assert_eq!(
            errors(&text),
            [
                "6:7: storage.ram: invalid value: string \"12 parsecs\", expected a size such as \
              \"64MiB\""
            ]
        );
    }

    #[test]
    fn validation_reports_every_problem_in_file_order() {
        let text = EXAMPLE
            .replace("pool = \"origin\"", "pool = \"other\"")
            .replace("id = \"a\"", "id = \"\"");
        assert_eq!(
            errors(&text),
            [
                "2:6: node.id must not be empty",
                "11:8: route pool \"other\" does not exist (known pools: \"origin\")"
            ]
        );
    }

    #[test]
    fn config_kind_follows_the_top_level_table() {
        assert_eq!(ConfigKind::of(EXAMPLE), Ok(ConfigKind::Node));
        assert_eq!(
            ConfigKind::of("[director]\nid = \"d\"\n"),
            Ok(ConfigKind::Director)
        );
        assert_eq!(ConfigKind::of("x = 1\n"), Ok(ConfigKind::Unknown));
        assert_eq!(
            ConfigKind::of("x = \n").map_err(|d| (d.line, d.col)),
            Err((1, 5))
        );
    }

    #[test]
    fn load_errors_print_file_line_col() {
        let dir = std::env::temp_dir().join(format!("strait-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.toml");
        let e = load(&missing).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
        assert!(e
            .to_string()
            .starts_with(&format!("{}: cannot read: ", missing.display())));

        let bad = dir.join("bad.toml");
        let text = EXAMPLE.replace("id = \"a\"", "id = \"\"");
        std::fs::write(&bad, format!("{text}[[route]]\npool = \"origin\"\n")).unwrap();
        let e = load(&bad).unwrap_err();
        let b = bad.display();
        assert_eq!(
            e.to_string(),
            format!(
                "{b}:2:6: node.id must not be empty\n{b}:12:1: unreachable: an earlier route \
                 has no `match` and takes every request"
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
