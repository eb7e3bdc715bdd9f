//! `strait check FILE...`: validate config files without running anything.
//!
//! Each file is told apart by its top-level table: `[node]` is a cache node config (parsed
//! and validated by `strait_cache::config::parse`), `[director]` an L4 director config
//! (`strait_lb::config::parse`), anything else is not a strait config. Every problem is printed on
//! stderr as `FILE:LINE:COL: message`; each good file prints `FILE: ok` on stdout. Returns
//! exit code 2 if any file had a problem (an unreadable file included), else 0.

use std::io::Write;
use std::path::{Path, PathBuf};

use strait_cache::config::{self, ConfigKind, Diagnostic};

/// Exit code when at least one file has a problem.
const EXIT_PROBLEMS: i32 = 2;

pub fn run(files: &[PathBuf]) -> anyhow::Result<i32> {
    let mut code = 0;
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    for path in files {
        let problems = check_file(path);
        if problems.is_empty() {
            writeln!(stdout, "{}: ok", path.display())?;
        } else {
            code = EXIT_PROBLEMS;
            writeln!(stderr, "{}", config::render(path, &problems))?;
        }
    }
    Ok(code)
}

/// Every problem in one file; empty when it is a valid config.
fn check_file(path: &Path) -> Vec<Diagnostic> {
    let at_start = |message: String| Diagnostic {
        line: 1,
        col: 1,
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return vec![at_start(format!("cannot read: {e}"))],
    };
    match ConfigKind::of(&text) {
        Err(syntax) => vec![syntax],
        Ok(ConfigKind::Node) => config::parse(&text).err().unwrap_or_default(),
        Ok(ConfigKind::Director) => strait_lb::config::parse(&text).err().unwrap_or_default(),
        Ok(ConfigKind::Unknown) => vec![at_start(
            "not a strait config: expected a [node] or [director] table".into(),
        )],
    }
}
