//! `strait check` on director configs: the built binary on files in a scratch dir.
//!
//! Contract under test: a good director file prints `FILE: ok` (exit 0); a bad one prints each
//! problem as `FILE:LINE:COL: message` on stderr (exit 2), at the offending value; node and
//! director files can be checked in one run.

use std::path::PathBuf;
use std::process::Command;

mod support;

const GOOD: &str = r#"[director]
id = "dir-a"
interface = "eth0"
inner_interface = "eth1"
datapath = "xdp"
xdp_mode = "auto"
admin = "127.0.0.1:9190"
max_conns = 1048576
table_size = 65537

[[service]]
vip = "10.0.0.100:80"
proto = "tcp"
mode = "dr"
scheduler = "maglev"
backends = [{ addr = "10.0.0.11", weight = 100 }, { addr = "10.0.0.12" }]
health = { kind = "http", path = "/health", port = 80, interval = "500ms", timeout = "300ms", rise = 2, fall = 2, expect = 200 }

[[service]]
vip = "10.0.0.100:8080"
mode = "nat"
scheduler = "wrr"
backends = [{ addr = "10.0.1.11:8080", weight = 3 }, { addr = "10.0.1.12" }]
"#;

/// Writes the files and runs `strait check` on them: (exit code, stdout, stderr, paths).
fn check(files: &[(&str, &str)]) -> (i32, String, String, Vec<String>) {
    let dir = support::scratch_dir("director-check");
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(name, text)| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        })
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_strait"))
        .arg("check")
        .args(&paths)
        .env_remove("STRAIT_LOG")
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        paths.iter().map(|p| p.display().to_string()).collect(),
    )
}

#[test]
fn a_good_director_file_is_ok() {
    let (code, stdout, stderr, p) = check(&[("director.toml", GOOD)]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(stdout, format!("{}: ok\n", p[0]));
}

#[test]
fn every_problem_is_reported_at_its_line_and_column() {
    let bad = GOOD
        .replace("id = \"dir-a\"", "id = \"dir a\"")
        .replace("table_size = 65537", "table_size = 65536")
        .replace("proto = \"tcp\"", "proto = \"sctp\"")
        .replace("{ addr = \"10.0.0.12\" }", "{ addr = \"10.0.0.12:81\" }")
        .replace("timeout = \"300ms\"", "timeout = \"700ms\"")
        .replace("scheduler = \"wrr\"", "scheduler = \"wlc\"");
    let (code, stdout, stderr, p) = check(&[("bad.toml", &bad)]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    let f = &p[0];
    let want = [
        format!("{f}:2:6: director.id \"dir a\" must be 1 to 32 letters, digits, '_' or '-'"),
        format!("{f}:9:14: table_size 65536 is not prime (65537, 4099 and 251 are)"),
        format!("{f}:13:9: proto \"sctp\" is unknown; use \"tcp\" or \"udp\""),
        format!(
            "{f}:16:60: backend addr \"10.0.0.12:81\": a port is only allowed in nat mode (dr and \
             tun keep the VIP's port)"
        ),
        format!("{f}:17:86: health.timeout (700ms) must be shorter than health.interval (500ms)"),
        format!(
            "{f}:22:13: scheduler \"wlc\" is not supported yet: wlc needs per-backend active \
             connection counts the XDP datapath does not keep; use maglev, wrr or sh"
        ),
    ];
    let got: Vec<&str> = stderr.lines().collect();
    assert_eq!(got, want, "{stderr}");
}

#[test]
fn unknown_keys_bad_ha_and_unsupported_tables_are_errors() {
    let typo = GOOD.replace("xdp_mode = \"auto\"", "xdp_mdoe = \"auto\"");
    let ha = format!("{GOOD}\n[ha]\nvrid = 0\n");
    let cluster = GOOD.replace(
        "[{ addr = \"10.0.1.11:8080\", weight = 3 }, { addr = \"10.0.1.12\" }]",
        "\"cluster\"",
    );
    let (code, _, stderr, p) = check(&[
        ("typo.toml", &typo),
        ("ha.toml", &ha),
        ("cluster.toml", &cluster),
    ]);
    assert_eq!(code, 2);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("{}:6:1: director: unknown field `xdp_mdoe`", p[0])),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!("{}:26:8: ha.vrid 0 is out of range 1..=255", p[1])),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with(&format!("{}:23:12: backends = \"cluster\"", p[2])),
        "{stderr}"
    );
}

#[test]
fn node_and_director_files_are_checked_together() {
    let node = "[node]\nid = \"a\"\nlisten = [\"127.0.0.1:8080\"]\n[[pool]]\nname = \"o\"\n\
                servers = [{ addr = \"127.0.0.1:18080\" }]\n[[route]]\npool = \"o\"\n";
    let (code, stdout, stderr, p) = check(&[("node.toml", node), ("director.toml", GOOD)]);
    assert_eq!((code, stderr.as_str()), (0, ""), "{stderr}");
    assert_eq!(stdout, format!("{}: ok\n{}: ok\n", p[0], p[1]));
}
