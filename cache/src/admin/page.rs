//! `GET /`: the stats page. Plain HTML and a little inline CSS, no script and no external
//! asset; a meta refresh reloads it every [`REFRESH_SECS`] s. In the order an operator looks:
//! the headline figures (hit ratios, requests/s, bytes/s, client connections, 5xx), then each
//! pool's servers, then the detailed counters grouped (client, cache, cluster, origin), then
//! the cluster. While the node drains, a banner says so with the connections left.

use std::fmt::Write;

use html_escape::encode_quoted_attribute as escape;

use super::Snapshot;
use crate::stats::{Group, CLASSES};

/// The page reloads itself this often (and so its rates cover about this long).
pub const REFRESH_SECS: u32 = 5;

const STYLE: &str = "body{font-family:sans-serif;margin:1em;color:#222}\
table{border-collapse:collapse;margin-bottom:1em}\
td,th{border:1px solid #bbb;padding:2px 8px;text-align:right}th{background:#eee}\
td.l,th.l{text-align:left}.up{background:#dfd}.down{background:#fdd}.drain{background:#ffd}\
.kpi{display:inline-block;border:1px solid #bbb;padding:4px 12px;margin:0 8px 8px 0}\
.kpi b{display:block;font-size:1.6em}.banner{background:#fd8;padding:6px;font-weight:bold}\
.groups{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}";

/// Render the page.
pub fn render(s: &Snapshot) -> String {
    let mut h = String::with_capacity(8192);
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\"><title>strait {node}</title>\
         <style>{STYLE}</style></head><body><h1>strait node {node}</h1>\
         <p>version {version} &middot; up {up} &middot; refreshes every {REFRESH_SECS} s</p>",
        node = escape(&s.node),
        version = env!("CARGO_PKG_VERSION"),
        up = human_secs(s.uptime_secs),
    );
    if s.traffic.draining {
        let _ = write!(
            h,
            "<p class=\"banner\">draining: {} client connection(s) left</p>",
            s.traffic.connections_open
        );
    }
    headline(&mut h, s);
    for p in &s.pools {
        pool_table(&mut h, s, p);
    }
    h.push_str("<h2>Counters</h2><div class=\"groups\">");
    for g in [Group::Client, Group::Cache, Group::Cluster, Group::Origin] {
        let _ = write!(
            h,
            "<table><tr><th class=\"l\" colspan=\"2\">{}</th></tr>",
            g.as_str()
        );
        for r in s.values.iter().filter(|r| r.stat.group == g) {
            let _ = write!(
                h,
                "<tr title=\"{}\"><td class=\"l\">{}</td><td>{}</td></tr>",
                escape(r.stat.help.trim()),
                r.stat.key,
                r.value
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</div>");
    super::cluster::render_table(&mut h, s.cluster.as_ref());
    // Version, config and the last reload: a block of its own (`reload_block`).
    super::reload_block::render(&mut h, &s.config);
    h.push_str("</body></html>\n");
    h
}

/// The figures an operator reads first, each in a box.
fn headline(h: &mut String, s: &Snapshot) {
    let r = s.rates.as_ref();
    let t = &s.traffic;
    let interval = r.map_or_else(
        || "rates at the next refresh".to_owned(),
        |r| format!("over the last {:.1} s", r.interval.as_secs_f64()),
    );
    let kpis = [
        (
            "hit ratio (requests)",
            percent(s.hit_ratio()),
            format!("last interval {}", percent(r.and_then(|r| r.hit_ratio))),
        ),
        (
            "hit ratio (bytes)",
            percent(s.byte_hit_ratio()),
            "store / (store + origin)".to_owned(),
        ),
        (
            "requests/s",
            r.map_or("-".into(), |r| format!("{:.1}", r.requests_per_sec)),
            interval.clone(),
        ),
        (
            "bytes/s to clients",
            r.map_or("-".into(), |r| human_bytes(r.bytes_per_sec)),
            interval,
        ),
        (
            "client connections",
            t.connections_open.to_string(),
            format!("{} accepted", t.connections_total),
        ),
        (
            "5xx",
            r.map_or("-".into(), |r| format!("{:.2}/s", r.errors_5xx_per_sec)),
            format!(
                "{} of responses lately; {} in all",
                percent(r.and_then(|r| r.error_5xx_ratio)),
                t.classes[4]
            ),
        ),
    ];
    h.push_str("<div>");
    for (name, value, note) in kpis {
        let _ = write!(
            h,
            "<div class=\"kpi\">{name}<b>{value}</b><small>{}</small></div>",
            escape(&note)
        );
    }
    h.push_str("</div><p>responses:");
    for (c, n) in CLASSES.iter().zip(t.classes) {
        let _ = write!(h, " {c} {n} &middot;");
    }
    let _ = writeln!(
        h,
        " sent {} &middot; served from store {}</p>",
        human_bytes(t.sent_bytes as f64),
        human_bytes(t.hit_bytes as f64)
    );
}

/// One pool: a row per server; a draining server (weight 0) is shown as such, not as down.
fn pool_table(h: &mut String, s: &Snapshot, p: &super::snapshot::PoolSnapshot) {
    let _ = write!(
        h,
        "<h2>Pool {} ({})</h2><table><tr><th class=\"l\">server</th><th>state</th>\
         <th>weight</th><th>active</th><th>req/s</th><th>requests</th><th>errors</th>\
         <th>resp ms</th><th>bytes</th><th>since</th><th class=\"l\">last check</th>\
         <th>check ms</th></tr>",
        escape(&p.name),
        p.algorithm
    );
    for srv in &p.servers {
        let class = match srv.state {
            "up" => "up",
            "draining" => "drain",
            _ => "down",
        };
        let (check, check_ms) = match &srv.check {
            Some((d, ms)) => (escape(d).into_owned(), format!("{ms:.1}")),
            None => ("-".to_string(), "-".to_string()),
        };
        let rate = s
            .server_rate(&p.name, &srv.addr)
            .map_or("-".into(), |r| format!("{r:.1}"));
        let _ = write!(
            h,
            "<tr class=\"{class}\"><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{rate}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td>\
             <td class=\"l\">{check}</td><td>{check_ms}</td></tr>",
            escape(&srv.addr),
            srv.state.to_uppercase(),
            srv.weight,
            srv.active,
            srv.requests,
            srv.errors,
            srv.response_ms,
            human_bytes(srv.bytes as f64),
            human_secs(srv.since_secs),
        );
    }
    h.push_str("</table>");
}

/// "72.5%", or "-" without a value.
fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{:.1}%", x * 100.0))
}

/// "512 B", "1.5 KiB", "3.2 MiB", "1.0 GiB".
fn human_bytes(n: f64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024.0 {
        return format!("{n:.0} B");
    }
    let mut v = n / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// "3d 4h", "5m 2s", "40s".
fn human_secs(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::admin::rates::Rates;
    use crate::admin::snapshot::tests::sample;

    #[test]
    fn page_escapes_names_and_refreshes_without_javascript() {
        let mut s = sample();
        s.node = "<a>".into();
        let p = render(&s);
        assert!(p.contains("strait node &lt;a&gt;"));
        assert!(p.contains("http-equiv=\"refresh\""));
        assert!(!p.contains("<script"));
        assert!(
            !p.contains("src=") && !p.contains("href="),
            "no external asset"
        );
        assert!(p.contains("<td class=\"l\">requests</td><td>0</td>"), "{p}");
    }

    #[test]
    fn the_headline_comes_first_then_pools_then_grouped_counters() {
        let mut s = sample();
        s.rates = Some(Rates {
            interval: Duration::from_secs(5),
            requests_per_sec: 12.0,
            bytes_per_sec: 2048.0,
            errors_5xx_per_sec: 0.2,
            error_5xx_ratio: Some(0.05),
            hit_ratio: Some(0.9),
            servers: [("origin/127.0.0.1:1".to_owned(), 3.5)].into(),
        });
        let p = render(&s);
        let at = |needle: &str| p.find(needle).unwrap_or_else(|| panic!("{needle} in {p}"));
        assert!(p.contains("hit ratio (requests)<b>70.0%</b>"), "{p}");
        assert!(p.contains("hit ratio (bytes)<b>75.0%</b>"), "{p}");
        assert!(p.contains("requests/s<b>12.0</b>"), "{p}");
        assert!(p.contains("bytes/s to clients<b>2.0 KiB</b>"), "{p}");
        assert!(p.contains("client connections<b>2</b>"), "{p}");
        assert!(p.contains("5xx<b>0.20/s</b>"), "{p}");
        assert!(p.contains("<td>3.5</td>"), "server rate in {p}");
        assert!(at("hit ratio (requests)") < at("Pool origin"));
        assert!(at("Pool origin") < at(">cache</th>"));
        assert!(at(">client</th>") < at(">cluster</th>"));
        assert!(at(">cluster</th>") < at(">origin</th>"));
        assert!(!p.contains("draining:"));
    }

    #[test]
    fn a_draining_server_is_shown_as_draining_and_a_draining_node_says_so() {
        let mut s = sample();
        let srv = &mut s.pools[0].servers[0];
        (srv.state, srv.weight, srv.up) = ("draining", 0, false);
        s.traffic.draining = true;
        s.traffic.connections_open = 1;
        let p = render(&s);
        assert!(p.contains("<tr class=\"drain\"><td class=\"l\">127.0.0.1:1</td><td>DRAINING</td>"));
        assert!(!p.contains("class=\"down\""), "{p}");
        assert!(p.contains("draining: 1 client connection(s) left"), "{p}");
    }

    #[test]
    fn sizes_and_ratios_read_as_people_write_them() {
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
        assert_eq!(percent(Some(0.725)), "72.5%");
        assert_eq!(percent(None), "-");
        assert_eq!(human_secs(3700), "1h 1m");
    }
}
