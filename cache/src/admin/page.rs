//! `GET /`: the stats page. Plain HTML that refreshes itself every 5 s (a meta refresh, no
//! JavaScript), cache counters on top and a table per pool.

use std::fmt::Write;

use html_escape::encode_quoted_attribute as escape;

use super::Snapshot;

/// Render the page.
pub fn render(s: &Snapshot) -> String {
    let mut h = String::with_capacity(4096);
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\"><title>strait {node}</title>\
         <style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse;margin-bottom:1em}}\
         td,th{{border:1px solid #999;padding:2px 8px;text-align:right}}th{{background:#eee}}\
         td.l,th.l{{text-align:left}}.up{{background:#cfc}}.down{{background:#fcc}}</style></head><body>\
         <h1>strait node {node}</h1><p>up {up}s &middot; refreshes every 5 s</p>",
        node = escape(&s.node),
        up = s.uptime_secs
    );
    h.push_str("<h2>Cache</h2><table><tr><th class=\"l\">counter</th><th>value</th></tr>");
    for (k, v) in &s.values {
        let _ = write!(h, "<tr><td class=\"l\">{k}</td><td>{v}</td></tr>");
    }
    h.push_str("</table>");
    for p in &s.pools {
        let _ = write!(
            h,
            "<h2>Pool {} ({})</h2><table><tr><th class=\"l\">server</th><th>state</th>\
             <th>since</th><th class=\"l\">last check</th><th>check ms</th><th>weight</th>\
             <th>active</th><th>requests</th><th>errors</th><th>bytes</th><th>resp ms</th></tr>",
            escape(&p.name),
            p.algorithm
        );
        for srv in &p.servers {
            let class = if srv.up { "up" } else { "down" };
            let (check, check_ms) = match &srv.check {
                Some((d, ms)) => (escape(d).into_owned(), format!("{ms:.1}")),
                None => ("-".to_string(), "-".to_string()),
            };
            let _ = write!(
                h,
                "<tr class=\"{class}\"><td class=\"l\">{}</td><td>{}</td><td>{}</td>\
                 <td class=\"l\">{check}</td><td>{check_ms}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
                escape(&srv.addr),
                srv.state.to_uppercase(),
                human_secs(srv.since_secs),
                srv.weight,
                srv.active,
                srv.requests,
                srv.errors,
                srv.bytes,
                srv.response_ms
            );
        }
        h.push_str("</table>");
    }
    super::cluster::render_table(&mut h, s.cluster.as_ref());
    // Version, config and the last reload: a block of its own (`reload_block`).
    super::reload_block::render(&mut h, &s.config);
    h.push_str("</body></html>\n");
    h
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
    use super::*;

    #[test]
    fn page_escapes_names_and_refreshes_without_javascript() {
        let s = Snapshot {
            node: "<a>".into(),
            uptime_secs: 3,
            values: vec![("requests", 2)],
            pools: vec![],
            cluster: None,
            config: crate::reload::ReloadView::for_tests(),
        };
        let p = render(&s);
        assert!(p.contains("strait node &lt;a&gt;"));
        assert!(p.contains("http-equiv=\"refresh\""));
        assert!(!p.contains("<script"));
        assert!(p.contains("<td class=\"l\">requests</td><td>2</td>"));
    }
}
