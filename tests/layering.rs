//! The dependency rules inside `strait-cache` that `docs/architecture.md` states, checked on
//! the sources: a module that may not use another never names it (`crate::other`) outside
//! comments. (Between crates, Cargo enforces `cache` → `lb`.)

use std::path::{Path, PathBuf};

/// (module, the modules it never uses, the rule as the architecture page states it).
const RULES: &[(&str, &[&str], &str)] = &[
    (
        "cluster",
        &["http", "admin", "node"],
        "the request path uses the cluster, never the reverse",
    ),
    (
        "origin",
        &["config", "http", "admin", "node", "cluster"],
        "config imports origin, never the reverse; the request path uses the origin client",
    ),
    (
        "store",
        &["cluster", "http"],
        "the store knows nothing of the cluster",
    ),
    (
        "policy",
        &[
            "http", "cluster", "store", "origin", "admin", "node", "config",
        ],
        "the policy is pure functions of request, response and now",
    ),
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn modules_never_name_what_the_architecture_says_they_do_not_use() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("cache/src");
    let mut broken = Vec::new();
    for (module, never, rule) in RULES {
        let mut files = Vec::new();
        sources(&src.join(module), &mut files);
        files.push(src.join(format!("{module}.rs")));
        let files: Vec<_> = files.into_iter().filter(|f| f.exists()).collect();
        assert!(!files.is_empty(), "no sources for `{module}`");
        for f in files {
            let text = std::fs::read_to_string(&f).expect("readable source");
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for other in *never {
                    if code.contains(&format!("crate::{other}::"))
                        || code.contains(&format!("crate::{other};"))
                        || code.contains(&format!("crate::{other}}}"))
                    {
                        broken.push(format!(
                            "{}:{}: `{module}` names `{other}` ({rule})",
                            f.strip_prefix(&src).unwrap_or(&f).display(),
                            n + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
