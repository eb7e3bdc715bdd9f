//! The cluster in the admin views: `GET /cluster.json`, the stats page's cluster table and
//! the `strait_cluster_members{state}` / `strait_gossip_*_total` metrics. Each member's
//! shared config version (`cluster::confdist`) comes from its gossip note.

use std::collections::BTreeMap;
use std::fmt::{self, Write};
use std::sync::Arc;

use html_escape::encode_quoted_attribute as escape;
use serde_json::{json, Value};
use strait_lb::admin::metrics::{counter, gauge, gauges, DescriptorEncoder};
use strait_lb::membership::members::{self, Member, MemberState};
use strait_lb::membership::{Membership, Note};

use crate::cluster::confdist::ConfigNote;
use crate::config::shared::short_hex;

/// The cluster as one read sees it.
pub struct ClusterSnapshot {
    pub self_id: String,
    pub members: Arc<Vec<Member>>,
    pub gossip_rejected: u64,
    pub gossip_malformed: u64,
    pub gossip_replayed: u64,
    /// Every member's gossip note, by member id.
    pub notes: Arc<BTreeMap<String, Note>>,
    /// Peers this node suspects of hanging (`cluster::suspect`), sorted.
    pub local_suspect: Vec<String>,
}

impl ClusterSnapshot {
    /// Read a running membership.
    pub fn take(m: &Membership) -> ClusterSnapshot {
        ClusterSnapshot {
            self_id: m.self_id().to_owned(),
            members: m.members(),
            gossip_rejected: m.gossip_rejected(),
            gossip_malformed: m.gossip_malformed(),
            gossip_replayed: m.gossip_replayed(),
            notes: m.notes(),
            local_suspect: Vec::new(),
        }
    }

    /// Read a running cluster: its membership and the peers suspect here.
    pub fn of(c: &crate::cluster::Cluster) -> ClusterSnapshot {
        ClusterSnapshot {
            local_suspect: c.suspects.ids(),
            ..ClusterSnapshot::take(&c.members)
        }
    }
}

/// The `/cluster.json` document; a node without `[cluster]` lists itself alone.
pub fn to_json(node_id: &str, c: Option<&ClusterSnapshot>) -> Value {
    let Some(c) = c else {
        return members::single_node_json(node_id);
    };
    let mut v = members::to_json(&c.self_id, &c.members);
    if let Some(list) = v.get_mut("members").and_then(Value::as_array_mut) {
        for m in list {
            let id = m
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let note = c.notes.get(&id).and_then(|n| ConfigNote::decode(&n.data));
            // Whether this node suspects it of hanging (its keys skip it here).
            let suspect = c.local_suspect.contains(&id);
            if let Some(obj) = m.as_object_mut() {
                for (k, val) in config_fields(note.as_ref()) {
                    obj.insert(k.into(), val);
                }
                obj.insert("local_suspect".into(), Value::Bool(suspect));
            }
        }
    }
    v
}

/// A member's `config_version`, `config_hash` (12 hex digits), `config_state` (`applied`,
/// or `refused` while it refuses a newer version), `config_refused` (that version and hash)
/// and `config_error` (the reason); nulls for a member that announced none (a director).
fn config_fields(note: Option<&ConfigNote>) -> [(&'static str, Value); 5] {
    let Some(n) = note else {
        return [
            ("config_version", Value::Null),
            ("config_hash", Value::Null),
            ("config_state", Value::Null),
            ("config_refused", Value::Null),
            ("config_error", Value::Null),
        ];
    };
    let (state, refused, error) = match &n.refused {
        Some((v, reason)) => (
            "refused",
            json!({"version": v.number, "hash": short_hex(&v.hash)}),
            json!(reason),
        ),
        None => ("applied", Value::Null, Value::Null),
    };
    [
        ("config_version", json!(n.applied.number)),
        ("config_hash", json!(short_hex(&n.applied.hash))),
        ("config_state", json!(state)),
        ("config_refused", refused),
        ("config_error", error),
    ]
}

/// `v3 1f2e3d4c5b6a`, and `refused v4 …: reason` when it refuses one: the page's config cell.
fn config_cell(note: Option<&Note>) -> String {
    let Some(n) = note.and_then(|n| ConfigNote::decode(&n.data)) else {
        return "-".into();
    };
    let mut s = format!("v{} {}", n.applied.number, short_hex(&n.applied.hash));
    if let Some((v, reason)) = &n.refused {
        let _ = write!(
            s,
            "; refused v{} {}: {reason}",
            v.number,
            short_hex(&v.hash)
        );
    }
    s
}

/// The stats page's cluster table.
pub fn render_table(h: &mut String, c: Option<&ClusterSnapshot>) {
    h.push_str("<h2>Cluster</h2>");
    let Some(c) = c else {
        h.push_str("<p>single node (no [cluster] section)</p>");
        return;
    };
    h.push_str(
        "<table><tr><th class=\"l\">member</th><th class=\"l\">peer</th>\
         <th class=\"l\">gossip</th><th>state</th><th>weight</th><th>here</th>\
         <th class=\"l\">config</th></tr>",
    );
    for m in c.members.iter() {
        let class = match m.state {
            MemberState::Alive => "up",
            MemberState::Suspect => "",
            MemberState::Dead => "down",
        };
        let me = if m.id == c.self_id { " (self)" } else { "" };
        let here = if c.local_suspect.contains(&m.id) {
            "suspect"
        } else {
            ""
        };
        let _ = write!(
            h,
            "<tr class=\"{class}\"><td class=\"l\">{}{me}</td><td class=\"l\">{}</td>\
             <td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{here}</td><td class=\"l\">{}</td></tr>",
            escape(&m.id),
            m.peer_addr,
            m.gossip_addr,
            m.state.as_str().to_uppercase(),
            m.weight,
            html_escape::encode_text(&config_cell(c.notes.get(&m.id)))
        );
    }
    let _ = write!(
        h,
        "</table><p>gossip datagrams rejected (authentication): {} &middot; replayed: {} \
         &middot; malformed: {} &middot; peer streams reset: {}</p>",
        c.gossip_rejected,
        c.gossip_replayed,
        c.gossip_malformed,
        crate::cluster::peer::stream_resets()
    );
}

/// Encode the cluster metrics; a single node counts itself alive.
pub fn encode_metrics(enc: &mut DescriptorEncoder<'_>, c: Option<&ClusterSnapshot>) -> fmt::Result {
    let counts = match c {
        Some(c) => members::count_by_state(&c.members),
        None => MemberState::ALL.map(|s| (s, usize::from(s == MemberState::Alive))),
    };
    gauges(
        enc,
        "cluster_members",
        "Cluster members this node knows, by state (itself included)",
        counts
            .into_iter()
            .map(|(state, n)| ([("state", state.as_str())], n as u64)),
    )?;
    gauge(
        enc,
        "peers_local_suspect",
        "Peers this node suspects of hanging (no answer within peer_timeout lately)",
        c.map_or(0, |c| c.local_suspect.len() as u64),
    )?;
    counter(
        enc,
        "gossip_rejected",
        "Gossip datagrams dropped because they did not authenticate",
        c.map_or(0, |c| c.gossip_rejected),
    )?;
    counter(
        enc,
        "gossip_malformed",
        "Gossip datagrams dropped because they were not valid gossip",
        c.map_or(0, |c| c.gossip_malformed),
    )?;
    counter(
        enc,
        "gossip_replayed",
        "Authenticated gossip datagrams dropped because their stamp was seen before",
        c.map_or(0, |c| c.gossip_replayed),
    )?;
    counter(
        enc,
        "peer_stream_resets",
        "Peer streams reset because the other side sent beyond the credit it was given",
        crate::cluster::peer::stream_resets(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use strait_lb::admin::Metrics;

    fn metrics(c: Option<ClusterSnapshot>) -> String {
        let c = c.map(Arc::new);
        Metrics::new("strait", move |enc| encode_metrics(enc, c.as_deref()))
            .render()
            .unwrap()
    }

    fn snapshot() -> ClusterSnapshot {
        let m = |id: &str, state| Member {
            id: id.into(),
            peer_addr: "127.0.0.1:7070".parse().unwrap(),
            gossip_addr: "127.0.0.1:7946".parse().unwrap(),
            weight: 100,
            state,
            started_ms: 0,
        };
        ClusterSnapshot {
            self_id: "a".into(),
            members: Arc::new(vec![
                m("a", MemberState::Alive),
                m("b", MemberState::Suspect),
                m("<c>", MemberState::Dead),
            ]),
            gossip_rejected: 4,
            gossip_malformed: 1,
            gossip_replayed: 2,
            notes: Arc::new(BTreeMap::new()),
            local_suspect: vec!["b".into()],
        }
    }

    #[test]
    fn metrics_count_members_by_state_and_rejected_datagrams() {
        let text = metrics(Some(snapshot()));
        for want in [
            "strait_cluster_members{state=\"alive\"} 1",
            "strait_cluster_members{state=\"suspect\"} 1",
            "strait_cluster_members{state=\"dead\"} 1",
            "strait_gossip_rejected_total 4",
            "strait_gossip_malformed_total 1",
            "strait_gossip_replayed_total 2",
            "strait_peer_stream_resets_total ",
            "strait_peers_local_suspect 1",
        ] {
            assert!(text.contains(want), "{want} in\n{text}");
        }
        let text = metrics(None);
        assert!(
            text.contains("strait_cluster_members{state=\"alive\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("strait_cluster_members{state=\"dead\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn the_table_escapes_ids_and_a_single_node_says_so() {
        let mut h = String::new();
        render_table(&mut h, Some(&snapshot()));
        assert!(h.contains("a (self)"), "{h}");
        assert!(h.contains("&lt;c&gt;"), "{h}");
        assert!(h.contains("SUSPECT"), "{h}");
        let mut h = String::new();
        render_table(&mut h, None);
        assert!(h.contains("single node"), "{h}");
        assert_eq!(to_json("solo", None)["members"][0]["id"], "solo");
        let v = to_json("x", Some(&snapshot()));
        assert_eq!(v["self"], "a");
        assert_eq!(v["members"][1]["local_suspect"], true, "{v}");
        assert_eq!(v["members"][0]["local_suspect"], false, "{v}");
    }

    #[test]
    fn each_member_shows_its_config_version_and_refusal() {
        use crate::config::shared::Version;
        let note = |applied: u64, refused: Option<(u64, &str)>| Note {
            epoch: 1,
            seq: 1,
            data: Arc::from(
                ConfigNote {
                    applied: Version {
                        number: applied,
                        hash: [0x1f; 32],
                    },
                    refused: refused.map(|(n, r)| {
                        (
                            Version {
                                number: n,
                                hash: [0xab; 32],
                            },
                            r.to_owned(),
                        )
                    }),
                }
                .encode(),
            ),
        };
        let mut s = snapshot();
        s.notes = Arc::new(BTreeMap::from([
            ("a".to_owned(), note(3, None)),
            ("b".to_owned(), note(2, Some((3, "route 2: bad <regex>")))),
        ]));
        let v = to_json("a", Some(&s));
        let a = &v["members"][0];
        assert_eq!(
            (&a["config_version"], &a["config_hash"], &a["config_state"]),
            (&json!(3), &json!("1f1f1f1f1f1f"), &json!("applied"))
        );
        assert_eq!(a["config_error"], Value::Null);
        let b = &v["members"][1];
        assert_eq!(b["config_version"], 2);
        assert_eq!(b["config_state"], "refused");
        assert_eq!(
            b["config_refused"],
            json!({"version": 3, "hash": "abababababab"})
        );
        assert_eq!(b["config_error"], "route 2: bad <regex>");
        // A member without a note (a director): nulls.
        assert_eq!(v["members"][2]["config_version"], Value::Null);
        let mut h = String::new();
        render_table(&mut h, Some(&s));
        assert!(h.contains("v3 1f1f1f1f1f1f"), "{h}");
        assert!(
            h.contains("refused v3 abababababab: route 2: bad &lt;regex&gt;"),
            "{h}"
        );
    }
}
