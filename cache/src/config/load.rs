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
//! * A file that is plainly a director config (`[director]`, `[[service]]`, `[ha]` and no node
//!   table) is one diagnostic naming `strait director` instead.
//!
//! [`Diagnostic`], [`ConfigError`] and the `Locator` are the shared ones of `strait_lb::config`.

use std::path::Path;

use strait_lb::config::{load_with, other_kind, ConfigError, ConfigKind, Diagnostic, Locator};

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
    let mut config = toml::from_str::<NodeConfig>(text).map_err(|e| {
        vec![other_kind(text, ConfigKind::Node).unwrap_or_else(|| locator.toml_error(&e))]
    })?;
    let mut diagnostics = validate(&config, &locator);
    diagnostics.extend(read_secret(&mut config, &locator));
    if diagnostics.is_empty() {
        return Ok(config);
    }
    diagnostics.sort_by_key(|d| (d.line, d.col));
    Err(diagnostics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use strait_lb::config::units::Size;
    use strait_lb::test_dir::TestDir;

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
        assert_eq!(*config.storage.ram.get_ref(), Size::mib(256));
        assert_eq!(
            config.storage.max_object_size_bytes(),
            Size::mib(16).as_u64()
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
              `workers`, `drain_timeout`, `default_host`"
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
    fn bad_durations_sizes_and_addresses_quote_the_value_under_their_key() {
        let text = EXAMPLE.replace("[[route]]", "connect_timeout = \"2 fortnights\"\n[[route]]");
        assert_eq!(
            errors(&text),
            [
                "10:19: pool.connect_timeout: \"2 fortnights\" is not a duration; write e.g. \
                 \"500ms\", \"2s\" or \"5m\""
            ]
        );
        let text = EXAMPLE.replace("\"256MiB\"", "\"12 parsecs\"");
        assert_eq!(
            errors(&text),
            ["6:7: storage.ram: \"12 parsecs\" is not a size; write e.g. \"256MiB\" or \"64m\""]
        );
        let text = EXAMPLE.replace("\"256MiB\"", "\"64 mb\"");
        assert_eq!(
            errors(&text),
            ["6:7: storage.ram: \"64 mb\" is not a size; write e.g. \"256MiB\" or \"64m\""]
        );
        let text = EXAMPLE.replace(
            "listen = [\"127.0.0.1:8080\"]",
            "listen = [\"localhost:8080\"]",
        );
        assert_eq!(
            errors(&text),
            [
                "3:11: node.listen: \"localhost:8080\" is not an ip:port address (e.g. \
                 \"127.0.0.1:8080\"); names are not resolved"
            ]
        );
    }

    #[test]
    fn bad_log_values_quote_the_value_under_their_key() {
        let with_log = |log: &str| format!("{EXAMPLE}[log]\n{log}\n");
        let first = |log: &str| errors(&with_log(log)).remove(0);
        let e = first("access_queue = 0");
        assert!(
            e.ends_with(
                "log.access_queue: 0 is not a queue length of 1 to 1048576 lines; write e.g. 4096"
            ),
            "{e}"
        );
        let e = first("access_format = \"xml\"");
        assert!(
            e.ends_with(
                "log.access_format: \"xml\" is not an access log format; write \"text\" or \"json\""
            ),
            "{e}"
        );
        let e = first("access = \"/var/log/\"");
        assert!(
            e.ends_with(
                "log.access: \"/var/log/\" names a directory, not a file; write a file path, \
                 e.g. \"/var/log/strait/access.log\""
            ),
            "{e}"
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
    fn a_director_config_is_refused_with_the_command_that_runs_it() {
        let text =
            "[director]\nid = \"d\"\ninterface = \"eth0\"\n[[service]]\nvip = \"10.0.0.1:80\"\n";
        assert_eq!(
            errors(text),
            [
                "1:1: this is a director config (it has [director], [service]), not a node \
                 config; run it with `strait director --config FILE`"
            ]
        );
    }

    #[test]
    fn load_errors_print_file_line_col() {
        let dir = TestDir::new("load");
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
    }
}
