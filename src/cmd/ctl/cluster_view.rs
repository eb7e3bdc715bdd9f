//! `strait ctl cluster`: the node's `/cluster.json` as a table, this node marked with `*`,
//! each member's shared config version, then one line per member refusing a version.

use serde_json::Value;

use super::{align, cell};

/// `self <id>`, then one row per member: id, peer address, gossip address, state, weight,
/// `here` (`suspect` when this node suspects the member of hanging: no answer within
/// `peer_timeout` lately, its keys skip it here; else `-`), config version and hash, config
/// state; then `refused: <id> v<N> <hash>: <reason>` for each member that refuses a version.
pub fn render_cluster(view: &Value) -> String {
    let me = view.get("self").and_then(Value::as_str);
    let mut out = match me {
        Some(id) => format!("self {id}\n"),
        None => String::new(),
    };
    let Some(members) = view.get("members").and_then(Value::as_array) else {
        return format!("{out}{view}\n");
    };
    let mut rows = vec![[
        "member",
        "addr",
        "gossip",
        "state",
        "weight",
        "here",
        "config",
        "config_state",
    ]
    .map(String::from)
    .to_vec()];
    let mut refusals = String::new();
    for m in members {
        let id = cell(m.get("id"));
        let mark = if Some(id.as_str()) == me { "*" } else { "" };
        rows.push(vec![
            format!("{id}{mark}"),
            cell(m.get("addr")),
            cell(m.get("gossip")),
            cell(m.get("state")),
            cell(m.get("weight")),
            match m.get("local_suspect").and_then(Value::as_bool) {
                Some(true) => "suspect".to_owned(),
                _ => "-".to_owned(),
            },
            match (m.get("config_version"), m.get("config_hash")) {
                (Some(Value::Number(v)), Some(Value::String(h))) => format!("v{v} {h}"),
                _ => "-".into(),
            },
            cell(m.get("config_state")),
        ]);
        if let Some(r) = m.get("config_refused").filter(|r| !r.is_null()) {
            refusals.push_str(&format!(
                "refused: {id} v{} {}: {}\n",
                cell(r.get("version")),
                r.get("hash").and_then(Value::as_str).unwrap_or("-"),
                m.get("config_error").and_then(Value::as_str).unwrap_or("-"),
            ));
        }
    }
    out.push_str(&align(&rows));
    out.push_str(&refusals);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn members_are_aligned_and_self_is_marked() {
        let v = json!({"self": "a", "members": [
            {"id": "a", "addr": "127.0.0.11:7070", "gossip": "127.0.0.11:7946", "state": "alive",
             "weight": 100},
            {"id": "bb", "addr": "127.0.0.12:7070", "gossip": "127.0.0.12:7946",
             "state": "suspect", "weight": 5, "local_suspect": true},
        ]});
        assert_eq!(
            render_cluster(&v),
            "self a\n\
             member  addr             gossip           state    weight  here     config  config_state\n\
             a*      127.0.0.11:7070  127.0.0.11:7946  alive    100     -        -       -\n\
             bb      127.0.0.12:7070  127.0.0.12:7946  suspect  5       suspect  -       -\n"
        );
        let single = json!({"self": "s", "members": [
            {"id": "s", "addr": null, "gossip": null, "state": "alive", "weight": 100}]});
        assert!(render_cluster(&single).contains("s*      -     -       alive  100     -"));
        let v = json!({"self": "a", "members": [
            {"id": "a", "addr": "x", "gossip": "y", "state": "alive", "weight": 1,
             "config_version": 3, "config_hash": "1f2e3d4c5b6a", "config_state": "applied",
             "config_refused": null, "config_error": null},
            {"id": "c", "addr": "x", "gossip": "y", "state": "alive", "weight": 1,
             "local_suspect": true,
             "config_version": 2, "config_hash": "0a0b0c0d0e0f", "config_state": "refused",
             "config_refused": {"version": 3, "hash": "1f2e3d4c5b6a"},
             "config_error": "pool \"p\": a loop"}]});
        let t = render_cluster(&v);
        assert!(
            t.contains("a*      x     y       alive  1       -        v3 1f2e3d4c5b6a  applied\n"),
            "{t}"
        );
        assert!(
            t.contains("c       x     y       alive  1       suspect  v2 0a0b0c0d0e0f  refused\n"),
            "{t}"
        );
        assert!(
            t.ends_with("refused: c v3 1f2e3d4c5b6a: pool \"p\": a loop\n"),
            "{t}"
        );
        assert_eq!(render_cluster(&json!([1])), "[1]\n");
    }
}
