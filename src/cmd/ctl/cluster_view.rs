//! `strait ctl cluster`: the node's `/cluster.json` as a table, this node marked with `*`.

use serde_json::Value;

use super::{align, cell};

/// `self <id>`, then one row per member: id, peer address, gossip address, state, weight,
/// and `here`: `suspect` when this node suspects the member of hanging (no answer within
/// `peer_timeout` lately: its keys skip it here), else `-`.
pub fn render_cluster(view: &Value) -> String {
    let me = view.get("self").and_then(Value::as_str);
    let mut out = match me {
        Some(id) => format!("self {id}\n"),
        None => String::new(),
    };
    let Some(members) = view.get("members").and_then(Value::as_array) else {
        return format!("{out}{view}\n");
    };
    let mut rows = vec![["member", "addr", "gossip", "state", "weight", "here"]
        .map(String::from)
        .to_vec()];
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
        ]);
    }
    out.push_str(&align(&rows));
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
             member  addr             gossip           state    weight  here\n\
             a*      127.0.0.11:7070  127.0.0.11:7946  alive    100     -\n\
             bb      127.0.0.12:7070  127.0.0.12:7946  suspect  5       suspect\n"
        );
        let single = json!({"self": "s", "members": [
            {"id": "s", "addr": null, "gossip": null, "state": "alive", "weight": 100}]});
        assert!(render_cluster(&single).contains("s*      -     -       alive  100     -"));
        assert_eq!(render_cluster(&json!([1])), "[1]\n");
    }
}
