//! Positions in a config document: byte offsets to 1-based `LINE:COL` (columns count
//! characters), and a [`SpanTree`] of the document that locates values carrying no span of
//! their own (plain fields, defaults): the value itself, else the nearest enclosing table
//! present in the file, else `1:1`. toml/serde errors become one-line diagnostics here too.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_spanned::Spanned;

use super::diag::Diagnostic;

/// One step of a path into the document: a table key or an array index.
#[derive(Debug, Clone, Copy)]
pub enum Seg<'a> {
    /// A table key.
    Key(&'a str),
    /// An array index.
    Idx(usize),
}

/// The shape of a TOML document with the span of every table, array and value.
#[derive(Debug)]
pub(crate) enum SpanTree {
    Table(BTreeMap<String, Spanned<SpanTree>>),
    Array(Vec<Spanned<SpanTree>>),
    Leaf,
}

impl<'de> Deserialize<'de> for SpanTree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SpanTreeVisitor)
    }
}

struct SpanTreeVisitor;

impl<'de> Visitor<'de> for SpanTreeVisitor {
    type Value = SpanTree;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<SpanTree, E> {
        Ok(SpanTree::Leaf)
    }
    fn visit_i64<E>(self, _: i64) -> Result<SpanTree, E> {
        Ok(SpanTree::Leaf)
    }
    fn visit_u64<E>(self, _: u64) -> Result<SpanTree, E> {
        Ok(SpanTree::Leaf)
    }
    fn visit_f64<E>(self, _: f64) -> Result<SpanTree, E> {
        Ok(SpanTree::Leaf)
    }
    fn visit_str<E>(self, _: &str) -> Result<SpanTree, E> {
        Ok(SpanTree::Leaf)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SpanTree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<SpanTree>>()? {
            items.push(item);
        }
        Ok(SpanTree::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SpanTree, A::Error> {
        let mut entries = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            // Datetimes arrive as a one-entry map with a private key: keep them as leaves.
            if key.starts_with("$__") {
                map.next_value::<IgnoredAny>()?;
                return Ok(SpanTree::Leaf);
            }
            entries.insert(key, map.next_value::<Spanned<SpanTree>>()?);
        }
        Ok(SpanTree::Table(entries))
    }
}

/// Turns spans and document paths into diagnostics.
pub struct Locator<'t> {
    text: &'t str,
    tree: Option<Spanned<SpanTree>>,
}

impl<'t> Locator<'t> {
    /// A locator over `text` with its span tree. A document whose tree cannot be built
    /// (implicit tables carry no span) still parses; unspanned values then report at 1:1.
    pub fn new(text: &'t str) -> Self {
        let tree = toml::from_str::<Spanned<SpanTree>>(text).ok();
        Locator { text, tree }
    }

    /// A locator that only converts offsets (for text that is not a node config).
    pub fn bare(text: &'t str) -> Self {
        Locator { text, tree: None }
    }

    /// A diagnostic at `span`, or (when the value has no real span, e.g. a default) at
    /// the deepest node of `path` present in the document, or at 1:1.
    pub fn at(&self, span: Range<usize>, path: &[Seg<'_>], message: String) -> Diagnostic {
        let (line, col) = self.position(span, path);
        Diagnostic { line, col, message }
    }

    /// The `(line, col)` that [`Locator::at`] reports for `span` and `path`.
    pub fn position(&self, span: Range<usize>, path: &[Seg<'_>]) -> (usize, usize) {
        let offset = if span.end > 0 {
            span.start
        } else {
            self.find(path).start
        };
        line_col(self.text, offset)
    }

    /// Span of the deepest node along `path` (0..0 if none, i.e. 1:1).
    fn find(&self, path: &[Seg<'_>]) -> Range<usize> {
        let Some(mut node) = self.tree.as_ref() else {
            return 0..0;
        };
        let mut found = 0..0;
        for seg in path {
            let next = match (node.get_ref(), seg) {
                (SpanTree::Table(t), Seg::Key(k)) => t.get(*k),
                (SpanTree::Array(a), Seg::Idx(i)) => a.get(*i),
                _ => None,
            };
            match next {
                Some(n) => {
                    found = n.span();
                    node = n;
                }
                None => break,
            }
        }
        found
    }

    /// The keys leading to the deepest node whose span contains `offset`.
    fn keys_at(&self, offset: usize) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        let Some(mut node) = self.tree.as_ref() else {
            return keys;
        };
        loop {
            let next = match node.get_ref() {
                SpanTree::Table(t) => {
                    t.iter()
                        .find(|(_, v)| v.span().contains(&offset))
                        .map(|(k, v)| {
                            keys.push(k.clone());
                            v
                        })
                }
                SpanTree::Array(a) => a.iter().find(|v| v.span().contains(&offset)),
                SpanTree::Leaf => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        keys
    }

    /// A toml/serde error as a diagnostic: at its span, prefixed with its key when known.
    pub fn toml_error(&self, e: &toml::de::Error) -> Diagnostic {
        let span = e.span().unwrap_or(0..0);
        // Syntax errors span several lines ("invalid table header\nexpected ..."): join them.
        let lines: Vec<&str> = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let mut message = lines.join(": ");
        if message.is_empty() {
            // toml gives some syntax errors no message (a control character in a comment).
            message = match self.text.get(span.start..).and_then(|t| t.chars().next()) {
                Some(c) if c.is_control() => format!("invalid character U+{:04X}", u32::from(c)),
                _ => "invalid TOML syntax".to_owned(),
            };
        }
        // std's address parsers say only "invalid socket address syntax": quote the value.
        if let Some(why) = address_message(&message, self.text.get(span.clone())) {
            message = why;
        }
        let mut keys = if span.end > 0 {
            self.keys_at(span.start)
        } else {
            Vec::new()
        };
        // An unknown key is named by the message; prefix only the table that holds it.
        if let Some(unknown) = message.strip_prefix("unknown field `") {
            if keys
                .last()
                .is_some_and(|k| unknown.starts_with(&format!("{k}`")))
            {
                keys.pop();
            }
        }
        if !keys.is_empty() {
            message = format!("{}: {message}", keys.join("."));
        }
        let (line, col) = line_col(self.text, span.start);
        Diagnostic { line, col, message }
    }
}

/// For serde's error about a `SocketAddr` or `IpAddr` value written as `raw` (the TOML value,
/// quoted), the message of `super::units` that quotes it.
fn address_message(message: &str, raw: Option<&str>) -> Option<String> {
    let raw = raw?.trim();
    let text = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
        .unwrap_or(raw);
    match message {
        "invalid socket address syntax" => Some(super::units::not_an_address(text)),
        "invalid IP address syntax" | "invalid IPv4 address syntax" => {
            Some(super::units::not_an_ip(text))
        }
        _ => None,
    }
}

/// 1-based line and character column of byte `offset` in `text` (clamped to the text).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(loc: &Locator<'_>, span: Range<usize>, path: &[Seg<'_>]) -> (usize, usize) {
        let d = loc.at(span, path, String::new());
        (d.line, d.col)
    }

    #[test]
    fn line_col_counts_characters_from_one() {
        let text = "ab\nçé = 1\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 2), (1, 3));
        assert_eq!(line_col(text, 3), (2, 1));
        // 'é' starts at byte 5 but is the second character of line 2.
        assert_eq!(line_col(text, 5), (2, 2));
        // Inside a character: its start; past the end: the end.
        assert_eq!(line_col(text, 6), (2, 2));
        assert_eq!(line_col(text, 999), (3, 1));
    }

    #[test]
    fn a_real_span_wins_over_the_path() {
        let loc = Locator::new("[node]\nid = \"a\"\n");
        assert_eq!(pos(&loc, 7..9, &[Seg::Key("storage")]), (2, 1));
    }

    #[test]
    fn an_unspanned_value_is_found_by_path_then_table_then_start() {
        let text = "[node]\nid = \"a\"\n[[pool]]\nname = \"p\"\n\
                    servers = [{ addr = \"1.2.3.4:5\", weight = 7 }]\n";
        let loc = Locator::new(text);
        let server = [
            Seg::Key("pool"),
            Seg::Idx(0),
            Seg::Key("servers"),
            Seg::Idx(0),
        ];
        let weight = [
            server[0],
            server[1],
            server[2],
            server[3],
            Seg::Key("weight"),
        ];
        assert_eq!(pos(&loc, 0..0, &weight), (5, 43));
        assert_eq!(
            pos(&loc, 0..0, &[server[0], server[1], Seg::Key("idle")]),
            (3, 1)
        );
        assert_eq!(pos(&loc, 0..0, &[Seg::Key("cache"), Seg::Key("x")]), (1, 1));
        assert_eq!(pos(&loc, 0..0, &[]), (1, 1));
    }

    #[test]
    fn datetimes_and_nested_arrays_do_not_break_the_tree() {
        let loc = Locator::new("[node]\nwhen = 1979-05-27T07:32:00Z\nxs = [[1], [2, 3]]\n");
        let path = [Seg::Key("node"), Seg::Key("xs"), Seg::Idx(1), Seg::Idx(1)];
        assert_eq!(pos(&loc, 0..0, &path), (3, 16));
        assert_eq!(
            pos(&loc, 0..0, &[Seg::Key("node"), Seg::Key("when")]),
            (2, 8)
        );
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Listen {
        node: ListenNode,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct ListenNode {
        listen: Vec<std::net::SocketAddr>,
        vip: Option<std::net::Ipv4Addr>,
    }

    fn address_error(text: &str) -> String {
        let e = toml::from_str::<Listen>(text).expect_err(text);
        Locator::new(text).toml_error(&e).to_string()
    }

    #[test]
    fn address_errors_quote_the_value_and_say_names_are_not_resolved() {
        assert_eq!(
            address_error("[node]\nlisten = [\"127.0.0.1:1\", \"localhost:8080\"]\n"),
            "2:26: node.listen: \"localhost:8080\" is not an ip:port address (e.g. \
             \"127.0.0.1:8080\"); names are not resolved"
        );
        assert_eq!(
            address_error("[node]\nlisten = []\nvip = 'vip.example'\n"),
            "3:7: node.vip: \"vip.example\" is not an IP address (e.g. \"10.0.0.11\"); names \
             are not resolved"
        );
    }

    #[test]
    fn toml_errors_are_one_line_and_name_their_key() {
        let bare = Locator::bare("[node\n");
        let e = match "[node\n".parse::<toml::Table>() {
            Err(e) => e,
            Ok(_) => panic!("a broken header parsed"),
        };
        assert_eq!(
            bare.toml_error(&e).to_string(),
            "1:6: invalid table header: expected `.`, `]`"
        );
    }
}
