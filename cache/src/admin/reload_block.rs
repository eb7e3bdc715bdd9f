//! The stats page's config block: version, config file and hash, the last reload's time,
//! result and summary, the start-only keys it could not apply and its errors. Kept apart from
//! `page.rs` so the page's layout can change around it.

use std::fmt::Write;

use html_escape::encode_text as escape;

use crate::reload::ReloadView;

/// Appends the block to `h`.
pub fn render(h: &mut String, c: &ReloadView) {
    let _ = write!(
        h,
        "<h2>Config</h2><table>\
         <tr><td class=\"l\">version</td><td class=\"l\">{}</td></tr>\
         <tr><td class=\"l\">file</td><td class=\"l\">{}</td></tr>\
         <tr><td class=\"l\">sha-256</td><td class=\"l\"><code>{}</code></td></tr>\
         <tr><td class=\"l\">reloads</td><td class=\"l\">{} applied, {} refused</td></tr>",
        escape(c.version),
        escape(&c.path),
        escape(&c.hash),
        c.applied,
        c.refused
    );
    match &c.last {
        None => h.push_str("<tr><td class=\"l\">last reload</td><td class=\"l\">none</td></tr>"),
        Some(o) => {
            let class = if o.applied { "up" } else { "down" };
            let _ = write!(
                h,
                "<tr class=\"{class}\"><td class=\"l\">last reload</td><td class=\"l\">{} \
                 {} ({})</td></tr><tr><td class=\"l\">changes</td><td class=\"l\">{}</td></tr>",
                humantime::format_rfc3339_seconds(o.time),
                o.result(),
                o.source.as_str(),
                escape(&o.summary())
            );
            if !o.not_applied.is_empty() {
                let _ = write!(
                    h,
                    "<tr class=\"down\"><td class=\"l\">not applied (restart needed)</td>\
                     <td class=\"l\">{}</td></tr>",
                    escape(&o.not_applied.join(", "))
                );
            }
            for e in &o.errors {
                let _ = write!(
                    h,
                    "<tr class=\"down\"><td class=\"l\">error</td><td class=\"l\"><pre>{}</pre></td></tr>",
                    escape(e)
                );
            }
        }
    }
    h.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reload::{diff::Changes, Outcome, Source};

    #[test]
    fn a_refused_reload_shows_its_errors_and_a_partial_one_its_keys() {
        let mut v = ReloadView::for_tests();
        v.last = Some(Outcome {
            time: std::time::SystemTime::UNIX_EPOCH,
            source: Source::File,
            applied: false,
            errors: vec!["node.toml:3:1: <bad>".into()],
            not_applied: vec![],
            changes: Changes::default(),
        });
        let mut h = String::new();
        render(&mut h, &v);
        assert!(h.contains("refused (file)"), "{h}");
        assert!(h.contains("node.toml:3:1: &lt;bad&gt;"), "{h}");
        v.last = Some(Outcome {
            applied: true,
            errors: vec![],
            not_applied: vec!["node.listen"],
            ..v.last.clone().unwrap()
        });
        let mut h = String::new();
        render(&mut h, &v);
        assert!(
            h.contains("applied (file)") && h.contains("no changes"),
            "{h}"
        );
        assert!(h.contains("node.listen"), "{h}");
        assert!(h.contains(crate::reload::VERSION));
    }
}
