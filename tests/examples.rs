//! Every example config in topology/examples (and its subfolders, e.g. the director
//! examples' director and node configs) passes `strait check`; every example topology parses.

use std::path::Path;
use std::process::Command;

/// Config files below `dir`, except topology files (checked below) and benchmark layouts.
fn configs(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir)
        .expect("examples dir")
        .filter_map(|e| e.ok())
    {
        let path = entry.path();
        if path.is_dir() {
            if !path.ends_with("topologies") {
                configs(&path, out);
            }
        } else if path.extension().is_some_and(|x| x == "toml") {
            out.push(path.to_string_lossy().into_owned());
        }
    }
}

#[test]
fn example_configs_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/topology/examples");
    let mut files = Vec::new();
    configs(Path::new(dir), &mut files);
    assert!(
        files
            .iter()
            .filter(|f| f.ends_with("director.toml"))
            .count()
            >= 3,
        "the director examples' configs are checked too: {files:?}"
    );
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_strait"))
        .arg("check")
        .args(&files)
        .output()
        .expect("run strait check");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        files.len()
    );
}

#[test]
fn example_topologies_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/topology/examples/topologies");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("topologies dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "toml") {
            let text = std::fs::read_to_string(&path).expect("read");
            if let Err(e) = strait_topology::spec::Topology::from_toml(&text) {
                panic!("{}: {e}", path.display());
            }
            n += 1;
        }
    }
    assert!(n >= 1);
}
