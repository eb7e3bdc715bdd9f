//! `strait check FILE...` end to end: the built binary on config files in a temp dir.
//!
//! Contract under test: exit 0 and `FILE: ok` on stdout for good files; exit 2 and one
//! `FILE:LINE:COL: message` line on stderr per problem otherwise.

mod support;

use std::path::PathBuf;
use std::process::Command;

const VALID: &str = r#"[node]
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

/// A fresh directory for one test (removed with the test process's scratch root at exit).
fn temp_dir(test: &str) -> PathBuf {
    support::scratch_dir(&format!("check-{test}"))
}

/// Write `files` (name, text) into a temp dir and run `strait check` on them in order.
/// Returns (exit code, stdout, stderr, paths as printed).
fn check(test: &str, files: &[(&str, &str)]) -> (i32, String, String, Vec<String>) {
    let dir = temp_dir(test);
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();
    check_paths(&paths)
}

fn check_paths(paths: &[PathBuf]) -> (i32, String, String, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_strait"))
        .arg("check")
        .args(paths)
        .env_remove("STRAIT_LOG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        paths.iter().map(|p| p.display().to_string()).collect(),
    )
}

#[test]
fn a_valid_config_exits_0_and_says_ok() {
    let (code, stdout, stderr, p) = check("valid", &[("node.toml", VALID)]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(stdout, format!("{}: ok\n", p[0]));
}

#[test]
fn an_unknown_key_is_reported_where_it_is() {
    let text = VALID.replace("admin =", "colour = \"red\"\nadmin =");
    let (code, stdout, stderr, p) = check("unknown", &[("node.toml", &text)]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert_eq!(
        stderr,
        format!(
            "{}:4:1: node: unknown field `colour`, expected one of `id`, `listen`, `admin`, \
             `workers`, `drain_timeout`, `default_host`\n",
            p[0]
        )
    );
}

#[test]
fn a_bad_duration_is_reported_at_its_value() {
    let text = VALID.replace(
        "[[route]]",
        "first_byte_timeout = \"2 fortnights\"\n[[route]]",
    );
    let (code, _, stderr, p) = check("duration", &[("node.toml", &text)]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "{}:10:22: pool.first_byte_timeout: \"2 fortnights\" is not a duration; write e.g. \
             \"500ms\", \"2s\" or \"5m\"\n",
            p[0]
        )
    );
}

#[test]
fn a_bad_size_is_reported_at_its_value() {
    let text = VALID.replace("\"256MiB\"", "\"lots\"");
    let (code, _, stderr, p) = check("size", &[("node.toml", &text)]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "{}:6:7: storage.ram: \"lots\" is not a size; write e.g. \"256MiB\" or \"64m\"\n",
            p[0]
        )
    );
}

#[test]
fn a_route_to_a_missing_pool_lists_the_known_ones() {
    let text = VALID.replace("pool = \"origin\"", "pool = \"static\"");
    let (code, _, stderr, p) = check("route", &[("node.toml", &text)]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "{}:11:8: route pool \"static\" does not exist (known pools: \"origin\")\n",
            p[0]
        )
    );
}

#[test]
fn duplicate_pool_names_are_reported_at_the_second() {
    let text =
        format!("{VALID}[[pool]]\nname = \"origin\"\nservers = [{{ addr = \"127.0.0.1:1\" }}]\n");
    let (code, _, stderr, p) = check("dup-pool", &[("node.toml", &text)]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "{}:13:8: pool \"origin\" is defined twice (first on line 8)\n",
            p[0]
        )
    );
}

#[test]
fn every_validation_problem_is_reported_at_once() {
    let text = VALID
        .replace("id = \"a\"", "id = \"node a\"")
        .replace("\"256MiB\"", "\"512KiB\"\nmax_object_size = \"16MiB\"");
    let (code, _, stderr, p) = check("two", &[("node.toml", &text)]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "{f}:2:6: node.id \"node a\" contains ' '; use only letters, digits, '.', '_' and '-'\n\
             {f}:6:7: storage.ram must be at least 1MiB, not 512KiB\n\
             {f}:7:19: storage.max_object_size (16MiB) must be at most storage.ram / 8 (64KiB): \
             an object must fit in one shard of the RAM tier\n",
            f = p[0]
        )
    );
}

#[test]
fn a_small_ram_without_max_object_size_is_valid() {
    // The default max_object_size (16MiB) follows ram: here ram / 8 = 8MiB.
    let text = VALID.replace("\"256MiB\"", "\"64MiB\"");
    let (code, stdout, stderr, p) = check("small-ram", &[("node.toml", &text)]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(stdout, format!("{}: ok\n", p[0]));
}

#[test]
fn an_unreadable_file_is_a_problem() {
    let dir = temp_dir("unreadable");
    let missing = dir.join("missing.toml");
    let (code, stdout, stderr, p) = check_paths(&[missing]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    let prefix = format!("{}:1:1: cannot read: ", p[0]);
    assert!(stderr.starts_with(&prefix), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn director_and_foreign_configs_are_told_apart() {
    let (code, _, stderr, p) = check(
        "kinds",
        &[
            ("director.toml", "[director]\nid = \"dir-a\"\n"),
            ("other.toml", "title = \"x\"\n"),
        ],
    );
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "{}:1:1: director: missing field `interface`\n{}:1:1: not a strait config: expected a [node] or \
             [director] table\n",
            p[0], p[1]
        )
    );
}

#[test]
fn one_bad_file_fails_the_run_but_the_good_one_is_ok() {
    let bad = VALID.replace(
        "listen = [\"127.0.0.1:8080\"]",
        "listen = [\"127.0.0.1:9090\"]",
    );
    let (code, stdout, stderr, p) = check("two-files", &[("good.toml", VALID), ("bad.toml", &bad)]);
    assert_eq!(code, 2);
    assert_eq!(stdout, format!("{}: ok\n", p[0]));
    assert_eq!(
        stderr,
        format!(
            "{}:3:11: node.listen address 127.0.0.1:9090 is also node.admin\n",
            p[1]
        )
    );
}

#[test]
fn a_syntax_error_is_one_line() {
    let text = VALID.replace("[storage]", "[storage");
    let (code, _, stderr, p) = check("syntax", &[("node.toml", &text)]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!("{}:5:9: invalid table header: expected `.`, `]`\n", p[0])
    );
}
