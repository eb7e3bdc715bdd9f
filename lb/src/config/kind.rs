//! Which kind of strait config a document is, told apart by its top-level tables, and the
//! diagnostic for a file given to the other command (`strait node` with a director config,
//! `strait director` with a node config).
//!
//! A node config has `[node]` (and may have `[storage]`, `[cache]`, `[limits]`, `[[pool]]`,
//! `[[route]]`, `[l4]`); a director config has `[director]` (and `[[service]]`, `[ha]`);
//! `[cluster]` is in both.

use super::diag::Diagnostic;
use super::locate::{line_col, Locator};

/// Top-level tables only a node config has.
const NODE_TABLES: [&str; 7] = ["node", "storage", "cache", "limits", "pool", "route", "l4"];
/// Top-level tables only a director config has.
const DIRECTOR_TABLES: [&str; 3] = ["director", "service", "ha"];

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

    /// The command that runs this kind of config.
    pub fn command(self) -> &'static str {
        match self {
            ConfigKind::Node => "strait node",
            ConfigKind::Director => "strait director",
            ConfigKind::Unknown => "strait check",
        }
    }
}

/// When `text` (which failed to load as `wanted`) is plainly the other kind of config: a
/// diagnostic at its first table of that kind naming the command that runs it. `None` when
/// the text has tables of the wanted kind too, or none of the other's (a broken config of the
/// wanted kind keeps its own errors).
pub fn other_kind(text: &str, wanted: ConfigKind) -> Option<Diagnostic> {
    let table = text.parse::<toml::Table>().ok()?;
    let (theirs, ours, kind) = match wanted {
        ConfigKind::Node => (&DIRECTOR_TABLES[..], &NODE_TABLES[..], ConfigKind::Director),
        ConfigKind::Director => (&NODE_TABLES[..], &DIRECTOR_TABLES[..], ConfigKind::Node),
        ConfigKind::Unknown => return None,
    };
    if ours.iter().any(|k| table.contains_key(*k)) {
        return None;
    }
    let found: Vec<&str> = theirs
        .iter()
        .copied()
        .filter(|k| table.contains_key(*k))
        .collect();
    let first = found.first()?;
    let (line, col) = header_position(text, first);
    let what = match kind {
        ConfigKind::Node => "a cache node config",
        _ => "a director config",
    };
    let tables: Vec<String> = found.iter().map(|k| format!("[{k}]")).collect();
    Some(Diagnostic {
        line,
        col,
        message: format!(
            "this is {what} (it has {}), not {}; run it with `{} --config FILE`",
            tables.join(", "),
            match wanted {
                ConfigKind::Node => "a node config",
                _ => "a director config",
            },
            kind.command()
        ),
    })
}

/// Where the table `name` is first written (`[name]`, `[[name]]` or `name =` at a line
/// start), else 1:1.
fn header_position(text: &str, name: &str) -> (usize, usize) {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let head = t.trim_start_matches('[').trim_start();
        let named = head
            .strip_prefix(name)
            .is_some_and(|rest| rest.trim_start().starts_with([']', '=', '.']));
        if named && (t.starts_with('[') || t.starts_with(name)) {
            return line_col(text, offset + (line.len() - t.len()));
        }
        offset += line.len();
    }
    (1, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "[node]\nid = \"a\"\nlisten = [\"127.0.0.1:8080\"]\n";
    const DIRECTOR: &str =
        "# a director\n[director]\nid = \"d\"\n\n[[service]]\nvip = \"10.0.0.1:80\"\n";

    #[test]
    fn config_kind_follows_the_top_level_table() {
        assert_eq!(ConfigKind::of(NODE), Ok(ConfigKind::Node));
        assert_eq!(ConfigKind::of(DIRECTOR), Ok(ConfigKind::Director));
        assert_eq!(ConfigKind::of("x = 1\n"), Ok(ConfigKind::Unknown));
        assert_eq!(
            ConfigKind::of("x = \n").map_err(|d| (d.line, d.col)),
            Err((1, 5))
        );
    }

    #[test]
    fn a_director_config_given_to_the_node_names_the_director_command() {
        let d = other_kind(DIRECTOR, ConfigKind::Node).expect("a director config");
        assert_eq!(
            d.to_string(),
            "2:1: this is a director config (it has [director], [service]), not a node \
             config; run it with `strait director --config FILE`"
        );
        let d = other_kind(NODE, ConfigKind::Director).expect("a node config");
        assert_eq!(
            d.to_string(),
            "1:1: this is a cache node config (it has [node]), not a director config; run it \
             with `strait node --config FILE`"
        );
        let pools_only = "\n  [[pool]]\nname = \"p\"\n";
        let d = other_kind(pools_only, ConfigKind::Director).expect("node tables");
        assert_eq!((d.line, d.col), (2, 3));
    }

    #[test]
    fn a_broken_config_of_the_right_kind_keeps_its_own_errors() {
        assert_eq!(other_kind(NODE, ConfigKind::Node), None);
        assert_eq!(other_kind(DIRECTOR, ConfigKind::Director), None);
        // Tables of both kinds: not plainly the other one.
        let both = format!("{NODE}[ha]\nvrid = 1\n");
        assert_eq!(other_kind(&both, ConfigKind::Node), None);
        // Only shared or unknown tables: nothing to say.
        assert_eq!(
            other_kind("[cluster]\nseeds = []\n", ConfigKind::Node),
            None
        );
        assert_eq!(other_kind("x = [\n", ConfigKind::Node), None);
    }
}
