//! Human views of a director's admin answers (pure; missing fields print as `-`).
//!
//! * `status`: `director <id>  <role>  datapath <name>  conns <n>`; with `[ha]` a line
//!   `ha vrid <v> priority <p>  <state> since <time> (<reason>)  master <addr>  adverts sent
//!   <n> received <n> dropped <n>`; with connection sync a line `sync <peers> port <p>
//!   <authenticated|NOT authenticated>  catch-up <state>  sent <n> received <n>  installed <n>
//!   kept <n> refused <n> aside <n>  dropped <n>`; then one line per service:
//!   `<vip> <proto> <mode>/<scheduler>  up <u>/<n> backends`.
//! * `stats`: the header line, the datapath counters (`name  value`, sorted), then one table:
//!   service, backend, state, weight, packets, bytes, flows.
//! * `conns`: a table client, vip, proto, backend, idle (seconds since the flow's last
//!   packet, `-` unknown), state (`closing` after a TCP FIN or RST, `half-open` before a
//!   packet without SYN used the entry, `synced` installed by the HA sync and not seen here
//!   since; comma-separated, `-` for none), then `<shown> of <count> entries held` (held entries idle past
//!   their timeout are not shown), after a `per backend: <addr> <n>, …` line.

use std::fmt::Write as _;

use serde_json::Value;

use super::{align, cell};

/// Whether a stats answer comes from a director (it lists services).
pub fn is_director(stats: &Value) -> bool {
    stats.get("services").is_some_and(Value::is_array)
}

fn services(stats: &Value) -> impl Iterator<Item = &Value> {
    stats
        .get("services")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn backends(service: &Value) -> impl Iterator<Item = &Value> {
    service
        .get("backends")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// All adverts an `ha` block (`/stats.json`) counts as dropped, over every reason.
pub fn ha_drops(ha: &Value) -> u64 {
    reasons_total(ha, "drops")
}

/// The sum of a block's `{reason: count}` object `key` (0 without one): the `ha` and
/// `sync` blocks' drops, the `sync` block's aside.
pub fn reasons_total(block: &Value, key: &str) -> u64 {
    block
        .get(key)
        .and_then(Value::as_object)
        .map_or(0, |d| d.values().filter_map(Value::as_u64).sum())
}

fn header(stats: &Value) -> String {
    let mut out = format!(
        "director {}  {}  datapath {}  conns {}\n",
        cell(stats.get("id")),
        cell(stats.get("role")),
        cell(stats.get("datapath")),
        cell(stats.get("conntrack_entries"))
    );
    if let Some(ha) = stats.get("ha") {
        let drops = ha_drops(ha);
        let _ = writeln!(
            out,
            "ha vrid {} priority {}  {} since {} ({})  master {}  adverts sent {} received {} dropped {drops}",
            cell(ha.get("vrid")),
            cell(ha.get("priority")),
            cell(ha.get("state")),
            cell(ha.get("since")),
            cell(ha.get("reason")),
            cell(ha.get("master")),
            cell(ha.get("adverts_sent")),
            cell(ha.get("adverts_received")),
        );
    }
    if let Some(sync) = stats.get("sync") {
        let _ = writeln!(out, "{}", sync_line(sync));
    }
    out
}

/// The `sync` line of `status` (see the module doc).
fn sync_line(sync: &Value) -> String {
    let sum = |key: &str| reasons_total(sync, key);
    let peers: Vec<String> = sync
        .get("peers")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|p| cell(Some(p))).collect())
        .unwrap_or_default();
    let auth = match sync.get("authenticated").and_then(Value::as_bool) {
        Some(true) => "authenticated",
        Some(false) => "NOT authenticated",
        None => "-",
    };
    format!(
        "sync {} port {}  {auth}  catch-up {}  sent {} received {}  installed {} kept {} refused {} \
         aside {}  dropped {}",
        if peers.is_empty() { "-".to_owned() } else { peers.join(",") },
        cell(sync.get("port")),
        cell(sync.get("catchup").and_then(|c| c.get("state"))),
        cell(sync.get("records_sent")),
        cell(sync.get("records_received")),
        cell(sync.get("installed")),
        cell(sync.get("kept")),
        cell(sync.get("refused")),
        sum("aside"),
        sum("drops"),
    )
}

/// `strait ctl status` for a director.
pub fn render_status(stats: &Value) -> String {
    let mut out = header(stats);
    for s in services(stats) {
        let total = backends(s).count();
        let up = backends(s)
            .filter(|b| b.get("up").and_then(Value::as_bool) == Some(true))
            .count();
        let _ = writeln!(
            out,
            "{} {} {}/{}  up {up}/{total} backends",
            cell(s.get("vip")),
            cell(s.get("proto")),
            cell(s.get("mode")),
            cell(s.get("scheduler"))
        );
    }
    out
}

/// `strait ctl stats` for a director.
pub fn render_stats(stats: &Value) -> String {
    let mut out = header(stats);
    if let Some(counters) = stats.get("counters").and_then(Value::as_object) {
        let mut names: Vec<&String> = counters.keys().collect();
        names.sort();
        let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
        for name in names {
            let _ = writeln!(out, "{name:<width$}  {}", counters[name]);
        }
    }
    out.push('\n');
    let columns = [
        "service", "backend", "state", "weight", "packets", "bytes", "flows",
    ];
    let mut rows: Vec<Vec<String>> = vec![columns.iter().map(|c| (*c).to_owned()).collect()];
    for s in services(stats) {
        let service = format!("{} {}", cell(s.get("vip")), cell(s.get("proto")));
        for b in backends(s) {
            rows.push(vec![
                service.clone(),
                cell(b.get("addr")),
                cell(b.get("state")),
                cell(b.get("weight")),
                cell(b.get("packets")),
                cell(b.get("bytes")),
                cell(b.get("flows")),
            ]);
        }
    }
    out.push_str(&align(&rows));
    out
}

/// `strait ctl conns`.
pub fn render_conns(answer: &Value) -> String {
    let list = answer.get("conns").and_then(Value::as_array);
    let mut rows: Vec<Vec<String>> = vec![["client", "vip", "proto", "backend", "idle", "state"]
        .iter()
        .map(|c| (*c).to_owned())
        .collect()];
    for c in list.into_iter().flatten() {
        let mut row: Vec<String> = ["client", "vip", "proto", "backend"]
            .iter()
            .map(|k| cell(c.get(*k)))
            .collect();
        let idle = c.get("idle_ms").and_then(Value::as_u64);
        row.push(idle.map_or_else(|| "-".into(), |ms| format!("{:.1}s", ms as f64 / 1000.0)));
        let flag = |k: &str| c.get(k).and_then(Value::as_bool) == Some(true);
        let marks: Vec<&str> = [
            ("closing", "closing"),
            ("half_open", "half-open"),
            ("synced", "synced"),
        ]
        .iter()
        .filter(|(k, _)| flag(k))
        .map(|(_, shown)| *shown)
        .collect();
        row.push(if marks.is_empty() {
            "-".to_owned()
        } else {
            marks.join(",")
        });
        rows.push(row);
    }
    let mut out = align(&rows);
    if let Some(by) = answer.get("per_backend").and_then(Value::as_object) {
        let parts: Vec<String> = by.iter().map(|(b, n)| format!("{b} {n}")).collect();
        if !parts.is_empty() {
            let _ = writeln!(out, "per backend: {}", parts.join(", "));
        }
    }
    let _ = writeln!(
        out,
        "{} of {} entries held",
        list.map_or(0, Vec::len),
        cell(answer.get("count"))
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"id":"dir-a","role":"standalone","datapath":"xdp/native",
        "conntrack_entries":2,"counters":{"tx_new":5,"pass_not_ipv4":1},
        "services":[{"vip":"10.0.0.100:80","proto":"tcp","mode":"dr","scheduler":"maglev",
        "backends":[{"addr":"10.0.0.11:80","weight":100,"up":true,"state":"up","packets":10,
        "bytes":1500,"flows":2},{"addr":"10.0.0.12:80","weight":100,"up":false,"state":"down",
        "packets":0,"bytes":0,"flows":0}]}]}"#;

    fn sample() -> Value {
        serde_json::from_str(SAMPLE).unwrap()
    }

    #[test]
    fn director_answers_are_recognised() {
        assert!(is_director(&sample()));
        assert!(!is_director(&serde_json::json!({"node": "a", "pools": []})));
    }

    #[test]
    fn status_has_one_line_per_service() {
        assert_eq!(
            render_status(&sample()),
            "director dir-a  standalone  datapath xdp/native  conns 2\n\
             10.0.0.100:80 tcp dr/maglev  up 1/2 backends\n"
        );
    }

    #[test]
    fn status_shows_the_virtual_router() {
        let mut v = sample();
        v["role"] = "master".into();
        v["ha"] = serde_json::json!({"vrid": 51, "priority": 150, "state": "master",
            "since": "2026-12-06T07:00:00Z", "reason": "startup", "master": "10.0.0.3",
            "adverts_sent": 40, "adverts_received": 2, "drops": {"ttl": 1, "vrid": 2}});
        v["sync"] = serde_json::json!({"peers": ["10.0.0.4"], "port": 7480,
            "authenticated": true, "catchup": {"state": "done"}, "records_sent": 12,
            "records_received": 300, "installed": 299, "kept": 1, "refused": 0,
            "aside": {"unknown_backend": 2, "dead_backend": 1}, "drops": {"replayed": 4}});
        let out = render_status(&v);
        assert!(
            out.contains(
                "\nsync 10.0.0.4 port 7480  authenticated  catch-up done  sent 12 received 300  \
                 installed 299 kept 1 refused 0 aside 3  dropped 4\n"
            ),
            "{out}"
        );
        assert!(
            out.starts_with(
                "director dir-a  master  datapath xdp/native  conns 2\n\
             ha vrid 51 priority 150  master since 2026-12-06T07:00:00Z (startup)  master \
             10.0.0.3  adverts sent 40 received 2 dropped 3\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn stats_table_lists_every_backend() {
        let want = "\
director dir-a  standalone  datapath xdp/native  conns 2
pass_not_ipv4  1
tx_new         5

service            backend       state  weight  packets  bytes  flows
10.0.0.100:80 tcp  10.0.0.11:80  up     100     10       1500   2
10.0.0.100:80 tcp  10.0.0.12:80  down   100     0        0      0
";
        assert_eq!(render_stats(&sample()), want);
    }

    #[test]
    fn conns_table_and_count() {
        let v = serde_json::json!({"count": 7, "conns": [
            {"client": "192.0.2.1:40000", "vip": "10.0.0.100:80", "proto": "tcp",
             "backend": "10.0.0.11:80", "idle_ms": 12345, "closing": true},
            {"client": "192.0.2.2:40000", "vip": "10.0.0.100:80", "proto": "tcp",
             "backend": "10.0.0.11:80", "idle_ms": null},
            {"client": "192.0.2.3:40000", "vip": "10.0.0.100:80", "proto": "tcp",
             "backend": "10.0.0.11:80", "idle_ms": 5, "half_open": true, "synced": true}],
            "per_backend": {"10.0.0.11:80": 2}});
        assert_eq!(
            render_conns(&v),
            "client           vip            proto  backend       idle   state\n\
             192.0.2.1:40000  10.0.0.100:80  tcp    10.0.0.11:80  12.3s  closing\n\
             192.0.2.2:40000  10.0.0.100:80  tcp    10.0.0.11:80  -      -\n\
             192.0.2.3:40000  10.0.0.100:80  tcp    10.0.0.11:80  0.0s   half-open,synced\n\
             per backend: 10.0.0.11:80 2\n\
             3 of 7 entries held\n"
        );
        assert_eq!(
            render_conns(&serde_json::json!({})),
            "client  vip  proto  backend  idle  state\n0 of - entries held\n"
        );
    }
}
