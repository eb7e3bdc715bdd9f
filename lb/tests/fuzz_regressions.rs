//! Replays the fuzz targets' seed corpora (`fuzz/corpus/<target>/`) and every input a fuzzer
//! once crashed on (`fuzz/regressions/<target>/`) through the same checks the targets run
//! (`strait_lb::fuzzing`), on stable, as part of `cargo test`.

use std::path::Path;

#[test]
fn fuzz_inputs_replay_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut replayed = 0;
    for (target, check) in strait_lb::fuzzing::TARGETS {
        let mut seeds = 0;
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
                continue;
            };
            let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
            paths.sort();
            for path in paths {
                let data = std::fs::read(&path).unwrap();
                eprintln!("{}", path.display());
                check(&data);
                seeds += usize::from(dir == "corpus");
                replayed += 1;
            }
        }
        assert!(seeds > 0, "no seed inputs for {target}");
    }
    eprintln!("{replayed} fuzz inputs replayed");
}
