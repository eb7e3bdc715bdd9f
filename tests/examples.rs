//! Every example config in topology/examples passes `strait check`.

use std::process::Command;

#[test]
fn example_configs_are_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/topology/examples");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("examples dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
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
