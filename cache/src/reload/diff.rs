//! What a reload changes, and what it cannot: pure functions of two configs.
//!
//! Contract:
//! * [`changes`]: pools by name (added, removed, changed: any setting but the server list),
//!   servers by pool and address in pools present in both (added, removed, changed: weight),
//!   routes by position (added, removed, changed), and the reloadable settings sections that
//!   differ. Values are compared, never positions in the file: moving a line changes nothing.
//! * [`start_only`]: the keys read only when the node starts ([`START_ONLY`]) whose value in
//!   `new` differs from the running one: a reload cannot apply them.
//! * [`Changes::summary`] is one line: `pools +b -c ~a; servers +a/10.0.0.1:80; routes ~1`,
//!   or `no changes`.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::config::{NodeConfig, PoolConfig};

/// The keys only read at start (`node.rs`, `src/cmd/node.rs`); a reload names them when they
/// change and keeps the running value.
pub const START_ONLY: &[&str] = &[
    "node.id",
    "node.listen",
    "node.admin",
    "node.workers",
    "node.drain_timeout",
    "storage.ram",
    "cache.max_request_header",
    "limits.max_connections",
    "l4",
    "log",
    "cluster",
];

/// Added, removed and changed names of one kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delta {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    fn to_json(&self) -> Value {
        json!({"added": self.added, "removed": self.removed, "changed": self.changed})
    }

    /// ` +a -b ~c` (nothing when empty).
    fn write(&self, out: &mut String) {
        for (sign, names) in [
            ('+', &self.added),
            ('-', &self.removed),
            ('~', &self.changed),
        ] {
            for n in names {
                let _ = write!(out, " {sign}{n}");
            }
        }
    }
}

/// Everything a reload changes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub pools: Delta,
    pub servers: Delta,
    pub routes: Delta,
    /// Reloadable sections whose values differ (`storage.max_object_size`, `cache`, `limits`).
    pub settings: Vec<&'static str>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
            && self.servers.is_empty()
            && self.routes.is_empty()
            && self.settings.is_empty()
    }

    /// The one-line summary (module doc).
    pub fn summary(&self) -> String {
        if self.is_empty() {
            return "no changes".into();
        }
        let mut parts = Vec::new();
        for (name, d) in [
            ("pools", &self.pools),
            ("servers", &self.servers),
            ("routes", &self.routes),
        ] {
            if !d.is_empty() {
                let mut s = name.to_string();
                d.write(&mut s);
                parts.push(s);
            }
        }
        if !self.settings.is_empty() {
            parts.push(format!("settings ~{}", self.settings.join(" ~")));
        }
        parts.join("; ")
    }

    pub fn to_json(&self) -> Value {
        json!({
            "pools": self.pools.to_json(),
            "servers": self.servers.to_json(),
            "routes": self.routes.to_json(),
            "settings": self.settings,
        })
    }
}

fn name(p: &PoolConfig) -> &str {
    p.name.get_ref()
}

/// What changes from `old` to `new` (module doc).
pub fn changes(old: &NodeConfig, new: &NodeConfig) -> Changes {
    let mut c = Changes::default();
    let olds: Vec<&PoolConfig> = old.pools.iter().map(|p| p.get_ref()).collect();
    let news: Vec<&PoolConfig> = new.pools.iter().map(|p| p.get_ref()).collect();
    for n in &news {
        match olds.iter().find(|o| name(o) == name(n)) {
            None => c.pools.added.push(name(n).to_string()),
            Some(o) => {
                let settings_differ = PoolConfig {
                    servers: n.servers.clone(),
                    ..(*o).clone()
                } != **n;
                if settings_differ {
                    c.pools.changed.push(name(n).to_string());
                }
                servers(o, n, &mut c.servers);
            }
        }
    }
    for o in &olds {
        if !news.iter().any(|n| name(n) == name(o)) {
            c.pools.removed.push(name(o).to_string());
        }
    }
    let (or, nr) = (&old.routes, &new.routes);
    for i in 0..or.len().max(nr.len()) {
        match (or.get(i), nr.get(i)) {
            (Some(o), Some(n)) if o != n => c.routes.changed.push(i.to_string()),
            (None, Some(_)) => c.routes.added.push(i.to_string()),
            (Some(_), None) => c.routes.removed.push(i.to_string()),
            _ => {}
        }
    }
    if old.storage.max_object_size_bytes() != new.storage.max_object_size_bytes() {
        c.settings.push("storage.max_object_size");
    }
    if old.node.default_host != new.node.default_host {
        c.settings.push("node.default_host");
    }
    if old.cache != new.cache {
        c.settings.push("cache");
    }
    if old.limits.reloadable() != new.limits.reloadable() {
        c.settings.push("limits");
    }
    c
}

/// Servers of one pool present in both configs.
fn servers(old: &PoolConfig, new: &PoolConfig, out: &mut Delta) {
    let pool = name(new);
    let o = old.servers.get_ref();
    let n = new.servers.get_ref();
    for s in n {
        let s = s.get_ref();
        match o.iter().find(|x| x.get_ref().addr == s.addr) {
            None => out.added.push(format!("{pool}/{}", s.addr)),
            Some(x) if x.get_ref() != s => out.changed.push(format!("{pool}/{}", s.addr)),
            Some(_) => {}
        }
    }
    for s in o {
        if !n.iter().any(|x| x.get_ref().addr == s.get_ref().addr) {
            out.removed.push(format!("{pool}/{}", s.get_ref().addr));
        }
    }
}

/// The [`START_ONLY`] keys whose value differs between `running` and `new`.
pub fn start_only(running: &NodeConfig, new: &NodeConfig) -> Vec<&'static str> {
    let (a, b) = (running, new);
    let differs = [
        a.node.id != b.node.id,
        a.node.listen != b.node.listen,
        a.node.admin != b.node.admin,
        a.node.workers != b.node.workers,
        a.node.drain_timeout != b.node.drain_timeout,
        a.storage.ram != b.storage.ram,
        a.cache.max_request_header != b.cache.max_request_header,
        a.limits.max_connections != b.limits.max_connections,
        a.l4 != b.l4,
        a.log != b.log,
        crate::config::restart_only_changes(a.cluster.as_ref(), b.cluster.as_ref()).is_some(),
    ];
    START_ONLY
        .iter()
        .zip(differs)
        .filter_map(|(k, d)| d.then_some(*k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[node]
id = "a"
listen = ["127.0.22.1:8080"]
admin = "127.0.22.1:9090"

[[pool]]
name = "origin"
servers = [{ addr = "127.0.22.2:80" }, { addr = "127.0.22.3:80", weight = 2 }]

[[pool]]
name = "old"
servers = [{ addr = "127.0.22.4:80" }]

[[route]]
match = { path_prefix = "/old/" }
pool = "old"

[[route]]
pool = "origin"
"#;

    fn cfg(text: &str) -> NodeConfig {
        crate::config::parse(text).expect("valid config")
    }

    #[test]
    fn the_same_values_written_differently_change_nothing() {
        let moved = BASE.replace("[node]\n", "\n\n[node]\n");
        let c = changes(&cfg(BASE), &cfg(&moved));
        assert!(c.is_empty(), "{c:?}");
        assert_eq!(c.summary(), "no changes");
        assert!(start_only(&cfg(BASE), &cfg(&moved)).is_empty());
    }

    #[test]
    fn pools_servers_and_routes_are_named_in_one_line() {
        let new = BASE
            .replace("name = \"old\"", "name = \"new\"")
            .replace("pool = \"old\"", "pool = \"new\"")
            .replace(
                "{ addr = \"127.0.22.2:80\" }, { addr = \"127.0.22.3:80\", weight = 2 }",
                "{ addr = \"127.0.22.3:80\", weight = 5 }, { addr = \"127.0.22.5:80\" }",
            )
            .replace(
                "[[pool]]\nname = \"origin\"\n",
                "[[pool]]\nname = \"origin\"\nalgorithm = \"leastconn\"\n",
            )
            + "\n[cache]\ncoalesce_timeout = \"1s\"\n";
        let c = changes(&cfg(BASE), &cfg(&new));
        assert_eq!(c.pools.added, ["new"]);
        assert_eq!(c.pools.removed, ["old"]);
        assert_eq!(c.pools.changed, ["origin"]);
        assert_eq!(c.servers.added, ["origin/127.0.22.5:80"]);
        assert_eq!(c.servers.removed, ["origin/127.0.22.2:80"]);
        assert_eq!(c.servers.changed, ["origin/127.0.22.3:80"]);
        assert_eq!(c.routes.changed, ["0"]);
        assert_eq!(c.settings, ["cache"]);
        assert_eq!(
            c.summary(),
            "pools +new -old ~origin; servers +origin/127.0.22.5:80 -origin/127.0.22.2:80 \
             ~origin/127.0.22.3:80; routes ~0; settings ~cache"
        );
        let j = c.to_json();
        assert_eq!(j["routes"]["changed"][0], "0");
    }

    #[test]
    fn default_host_is_a_reloadable_setting() {
        let new = BASE.replace("[node]\n", "[node]\ndefault_host = \"www.example.com\"\n");
        let c = changes(&cfg(BASE), &cfg(&new));
        assert_eq!(c.settings, ["node.default_host"]);
        assert!(start_only(&cfg(BASE), &cfg(&new)).is_empty());
    }

    #[test]
    fn routes_added_and_removed_by_position() {
        let one = BASE.replace(
            "[[route]]\nmatch = { path_prefix = \"/old/\" }\npool = \"old\"\n",
            "",
        );
        let c = changes(&cfg(BASE), &cfg(&one));
        assert_eq!(c.routes.changed, ["0"]);
        assert_eq!(c.routes.removed, ["1"]);
        let back = changes(&cfg(&one), &cfg(BASE));
        assert_eq!(back.routes.added, ["1"]);
    }

    #[test]
    fn start_only_keys_are_named_when_they_change() {
        let new = BASE
            .replace("127.0.22.1:8080", "127.0.22.1:8081")
            .replace("[node]\n", "[node]\nworkers = 2\n")
            + "\n[storage]\nram = \"512MiB\"\n\n[log]\naccess = \"stderr\"\n\n\
               [limits]\nmax_connections = 5\n";
        assert_eq!(
            start_only(&cfg(BASE), &cfg(&new)),
            [
                "node.listen",
                "node.workers",
                "storage.ram",
                "limits.max_connections",
                "log"
            ]
        );
        assert!(changes(&cfg(BASE), &cfg(&new)).is_empty());
    }
}
