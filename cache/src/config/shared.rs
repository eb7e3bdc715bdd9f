//! The cluster-wide part of a node config: what `cluster::confdist` distributes, in a
//! canonical form with a content hash, and how it is merged into a node's own file.
//!
//! Contract:
//! * The shared part is the top-level keys [`SHARED_KEYS`] (`[[pool]]` and `[[route]]`) of a
//!   node config. Every other key (`[node]`, `[storage]`, `[cache]`, `[limits]`,
//!   `[cluster]`, `[l4]`) is node-local and never leaves the node.
//! * Canonical form: those keys as a TOML table, serialized by `toml` (keys sorted, one
//!   layout), so comments, blank lines, key order and quoting do not change it; its SHA-256
//!   is the content hash.
//! * [`merge`] takes a node's file text and a canonical shared text and gives a whole config
//!   text: the file's node-local keys, the shared text's pools and routes (the file's own
//!   pools and routes are dropped). The result is validated by `config::parse` like a file.
//! * [`Version`]s order by number, then by hash: of two versions with the same number made
//!   on two nodes at once, the larger hash wins on every node.

use sha2::{Digest, Sha256};

/// The top-level keys of a node config that are shared by the cluster.
pub const SHARED_KEYS: &[&str] = &["pool", "route"];

/// A SHA-256 content hash.
pub type Hash = [u8; 32];

/// The shared part of one config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedPart {
    /// Canonical TOML text of the shared keys.
    pub text: String,
    /// SHA-256 of `text`.
    pub hash: Hash,
}

/// A version of the shared part: ordered by number, then hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// 0: a node's own file, never distributed; each reload that changes the shared part
    /// makes `max(seen) + 1`.
    pub number: u64,
    /// The content hash of its canonical text.
    pub hash: Hash,
}

impl Version {
    /// `v3 (1f2e3d4c5b6a)`: the number and the short hash, for logs and errors.
    pub fn label(&self) -> String {
        format!("v{} ({})", self.number, short_hex(&self.hash))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// SHA-256 of `text`.
pub fn hash_of(text: &str) -> Hash {
    Sha256::digest(text.as_bytes()).into()
}

/// The first 12 hex digits of a hash (what the admin views show).
pub fn short_hex(hash: &Hash) -> String {
    hash[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// The whole hash in hex.
pub fn hex(hash: &Hash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// The shared part of a node config text (see the module doc); a text that is not TOML is
/// an error with the parser's message.
pub fn shared_part(text: &str) -> Result<SharedPart, String> {
    let table = text
        .parse::<toml::Table>()
        .map_err(|e| e.message().to_owned())?;
    let shared: toml::Table = table
        .into_iter()
        .filter(|(k, _)| SHARED_KEYS.contains(&k.as_str()))
        .collect();
    canonical(&shared)
}

/// How deep the shared keys may nest (tables and arrays inside `[[pool]]` and `[[route]]`).
/// A real config needs a handful of levels; the bound keeps the canonical text readable by
/// every member's TOML parser, whose table headers have a recursion limit that dotted keys
/// in a file do not meet.
pub const MAX_DEPTH: usize = 32;

/// The canonical text and hash of a table of shared keys.
fn canonical(shared: &toml::Table) -> Result<SharedPart, String> {
    if table_depth(shared, MAX_DEPTH + 1) > MAX_DEPTH {
        return Err(format!(
            "pools and routes nest more than {MAX_DEPTH} levels deep (tables and arrays)"
        ));
    }
    let text = toml::to_string(shared).map_err(|e| e.to_string())?;
    let hash = hash_of(&text);
    Ok(SharedPart { text, hash })
}

/// The nesting depth of a table (1 for a table of plain values), counted up to `limit`.
fn table_depth(table: &toml::Table, limit: usize) -> usize {
    if limit == 0 {
        return 0;
    }
    1 + table
        .values()
        .map(|v| value_depth(v, limit - 1))
        .max()
        .unwrap_or(0)
}

fn value_depth(value: &toml::Value, limit: usize) -> usize {
    if limit == 0 {
        return 0;
    }
    match value {
        toml::Value::Table(t) => table_depth(t, limit),
        toml::Value::Array(a) => {
            1 + a
                .iter()
                .map(|v| value_depth(v, limit - 1))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

/// Check that `text` is a canonical shared text (what a peer sends): TOML with only shared
/// keys, in the canonical layout. Returns its shared part.
pub fn parse_shared(text: &str) -> Result<SharedPart, String> {
    let table = text
        .parse::<toml::Table>()
        .map_err(|e| e.message().to_owned())?;
    if let Some(k) = table.keys().find(|k| !SHARED_KEYS.contains(&k.as_str())) {
        return Err(format!("`{k}` is node-local and is never distributed"));
    }
    let part = canonical(&table)?;
    if part.text != text {
        return Err("not in canonical form".into());
    }
    Ok(part)
}

/// A node's file `local` with its pools and routes replaced by those of the shared text
/// `shared` (see the module doc).
pub fn merge(local: &str, shared: &str) -> Result<String, String> {
    let mut table = local
        .parse::<toml::Table>()
        .map_err(|e| format!("this node's file: {}", e.message()))?;
    let shared = shared
        .parse::<toml::Table>()
        .map_err(|e| format!("the shared config: {}", e.message()))?;
    table.retain(|k, _| !SHARED_KEYS.contains(&k));
    for (k, v) in shared {
        if SHARED_KEYS.contains(&k.as_str()) {
            table.insert(k, v);
        }
    }
    toml::to_string(&table).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = r#"# node a
[node]
id = "a"
listen = ["127.0.0.1:8080"]
admin = "127.0.0.1:9090"

[[pool]]
name = "origin"
servers = [{ addr = "127.0.0.1:18080" }]

[[route]]
pool = "origin"

[cluster]
peer_listen = "127.0.0.1:7070"
gossip_listen = "127.0.0.1:7946"
"#;

    #[test]
    fn the_shared_part_ignores_comments_layout_and_node_local_keys() {
        let a = shared_part(A).unwrap();
        assert_eq!(a.hash, hash_of(&a.text));
        assert!(!a.text.contains("listen"), "{}", a.text);
        assert!(a.text.contains("18080"), "{}", a.text);
        // Another node: other id and addresses, other comments and layout, same pools and
        // routes: the same shared part.
        let b = A
            .replace("# node a", "# b, with comments\n")
            .replace("id = \"a\"", "id = \"b\"")
            .replace("127.0.0.1:7070", "127.0.0.2:7070")
            .replace(
                "[{ addr = \"127.0.0.1:18080\" }]",
                "[ { addr = '127.0.0.1:18080' } ]",
            );
        assert_eq!(shared_part(&b).unwrap(), a);
        // A change to a route: another hash.
        let c = A.replace("[[route]]\n", "[[route]]\ncache = false\n");
        assert_ne!(shared_part(&c).unwrap().hash, a.hash);
        assert!(shared_part("[[pool]\n").is_err());
        assert_eq!(short_hex(&a.hash).len(), 12);
        assert_eq!(hex(&a.hash).len(), 64);
        assert!(hex(&a.hash).starts_with(&short_hex(&a.hash)));
    }

    #[test]
    fn merging_keeps_the_nodes_own_keys_and_takes_the_shared_pools_and_routes() {
        let other = A.replace("18080", "28080").replace(
            "[[route]]\n",
            "[[route]]\nmatch = { path_prefix = \"/x/\" }\npool = \"origin\"\n[[route]]\n",
        );
        let shared = shared_part(&other).unwrap();
        let local = A.replace("id = \"a\"", "id = \"c\"");
        let merged = merge(&local, &shared.text).unwrap();
        let cfg = crate::config::parse(&merged).unwrap();
        assert_eq!(cfg.node.id.get_ref(), "c");
        assert_eq!(cfg.routes.len(), 2);
        assert_eq!(
            cfg.pools[0].get_ref().servers.get_ref()[0].get_ref().addr,
            "127.0.0.1:28080".parse().unwrap()
        );
        assert_eq!(
            cfg.cluster.unwrap().peer_listen.get_ref(),
            &"127.0.0.1:7070".parse::<std::net::SocketAddr>().unwrap()
        );
        // The merged config's shared part is the one merged in.
        assert_eq!(shared_part(&merged).unwrap(), shared);
        // A shared text with a node-local key, or not canonical, is refused.
        assert!(parse_shared(&shared.text).is_ok());
        assert!(parse_shared("[node]\nid = \"x\"\n")
            .unwrap_err()
            .contains("node-local"));
        assert!(parse_shared(&format!("# c\n{}", shared.text)).is_err());
    }

    #[test]
    fn shared_keys_nested_too_deep_are_refused_not_written_unreadable() {
        let deep = |n: usize| {
            let key: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            format!("[[route]]\n{} = 1\n", key.join("."))
        };
        // The top table and the `route` array are two levels; n dotted parts are n more.
        for n in 1..=MAX_DEPTH - 2 {
            let ok = shared_part(&deep(n)).expect("a config within the bound");
            assert_eq!(
                parse_shared(&ok.text).expect("reads back").hash,
                ok.hash,
                "{n}"
            );
        }
        let err = shared_part(&deep(MAX_DEPTH - 1)).expect_err("just over the bound");
        assert!(err.contains("levels deep"), "{err}");
        // Deeper still, the file itself is refused (the parser's own limit) or the bound is.
        for n in [40, 60, 100, 200] {
            shared_part(&deep(n)).expect_err("too deep");
        }
    }

    #[test]
    fn versions_order_by_number_then_hash() {
        let v = |number, h: u8| Version {
            number,
            hash: [h; 32],
        };
        assert!(v(2, 0) > v(1, 9));
        assert!(v(2, 5) > v(2, 4));
        assert_eq!(v(3, 1).max(v(3, 2)), v(3, 2));
        assert_eq!(v(3, 0xab).label(), "v3 (abababababab)");
    }
}
