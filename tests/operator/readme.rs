//! The README's node example runs as shown: the `toml` block after "One node on loopback" passes
//! `strait check` as written, and a node runs on it (its addresses moved to 127.0.20.3 with
//! kernel-chosen ports, so the test never collides with anything on the README's ports) and
//! caches what the test origin serves.

use std::process::Command;

use crate::origin_on;
use crate::support::*;

const README: &str = include_str!("../../README.md");
const IP: &str = "127.0.20.3";

/// The first ```toml block after `heading` in the README.
fn example(heading: &str) -> &'static str {
    let from = README
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"));
    let rest = &README[from..];
    let start = rest.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let len = rest[start..].find("```").expect("the block's end");
    &rest[start..start + len]
}

#[test]
fn the_readme_node_example_passes_check_and_runs() {
    let text = example("### One node on loopback");
    for shown in ["127.0.0.1:8080", "127.0.0.1:9090", "127.0.0.1:8081"] {
        assert!(
            text.contains(shown),
            "the example no longer uses {shown}:\n{text}"
        );
    }
    let file = scratch_dir("readme").join("node.toml");
    std::fs::write(&file, text).expect("write node.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["check", file.to_str().expect("utf-8 path")])
        .output()
        .expect("run strait check");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let origin = origin_on(IP);
    let moved = text
        .replace("127.0.0.1:8080", &format!("{IP}:0"))
        .replace("127.0.0.1:9090", &format!("{IP}:0"))
        .replace("127.0.0.1:8081", &origin.addr.to_string());
    let node = Node::start_config(&moved);
    let path = "/obj/a?size=1000&ttl=60";
    let miss = get(node.addr, path, &[]);
    assert_eq!(miss.status, 200);
    assert_eq!(miss.body.len(), 1000);
    assert!(
        get(node.addr, path, &[])
            .cache_status()
            .starts_with("a; hit"),
        "the second request is a hit"
    );
    // `ram = "64m"` is 64 MiB, as the comment says.
    assert_eq!(node.counter("capacity_bytes"), 64 << 20);
    let (code, out, err) = node.ctl(&["stats"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("node a\n"), "{out}");
}
