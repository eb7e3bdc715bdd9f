//! The request target as one resource: the path normalised once (RFC 3986 §6.2.2) before
//! routing, keying and forwarding, so that the route, the cache key and the origin all see the
//! same resource (no route bypass by `//api` or `/%61pi`, web cache deception).
//!
//! Contract:
//! * [`normalize_path`]: repeated slashes merged (as nginx does by default), percent-encoded
//!   unreserved characters decoded and other escapes upper-cased (§6.2.2.1–2), dot segments
//!   removed (§5.2.4, after merging, so `/a//../b` is `/b` as the origin sees it). None for an
//!   invalid escape (`%zz`, `%4`), an escaped NUL, or a path that does not start with `/`.
//! * [`route_view`]: the normalised path fully percent-decoded (an encoded `/` counts as a
//!   separator), slashes merged again and dot segments removed again: what routes match on, so
//!   a route is taken whenever an origin that decodes everything would see its prefix.
//! * [`is_plainly_normal`]: a cheap test the hit fast path uses; true only for paths that
//!   [`normalize_path`] leaves as they are (false may be returned for some normal paths).
//! * [`before`]: `s` up to the first `sep` (all of it without one), as
//!   `s.split(sep).next()`, without the searcher's set-up (the fast path's short strings).

use std::borrow::Cow;

use super::key::remove_dot_segments;

/// RFC 3986 §2.3 unreserved characters.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn merge_slashes(path: &str) -> Cow<'_, str> {
    if !path.contains("//") {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    let mut last_slash = false;
    for c in path.chars() {
        if c == '/' && last_slash {
            continue;
        }
        last_slash = c == '/';
        out.push(c);
    }
    Cow::Owned(out)
}

/// Decode `%XX` escapes: every one when `all`, else only unreserved characters (the others
/// upper-cased). None for an invalid escape or `%00`.
fn decode(path: &str, all: bool) -> Option<Cow<'_, str>> {
    if !path.contains('%') {
        return Some(Cow::Borrowed(path));
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hi = hex(*bytes.get(i + 1)?)?;
        let lo = hex(*bytes.get(i + 2)?)?;
        let b = hi << 4 | lo;
        if b == 0 {
            return None;
        }
        if all || unreserved(b) {
            out.push(b);
        } else {
            out.push(b'%');
            out.extend_from_slice(bytes[i + 1..i + 3].to_ascii_uppercase().as_slice());
        }
        i += 3;
    }
    // Decoding everything may produce bytes that are not UTF-8: routes see them lossily.
    Some(Cow::Owned(String::from_utf8_lossy(&out).into_owned()))
}

fn dots(path: &str) -> Cow<'_, str> {
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        Cow::Owned(remove_dot_segments(path))
    } else {
        Cow::Borrowed(path)
    }
}

/// `s` up to the first `sep`, an ASCII byte (all of `s` when it has none).
pub fn before(s: &str, sep: u8) -> &str {
    debug_assert!(sep.is_ascii());
    match s.bytes().position(|b| b == sep) {
        Some(i) => &s[..i],
        None => s,
    }
}

/// The normal form of an absolute path (see the module contract).
pub fn normalize_path(path: &str) -> Option<Cow<'_, str>> {
    if !path.starts_with('/') {
        return None;
    }
    let merged = merge_slashes(path);
    let decoded = decode(&merged, false)?;
    let normal = match dots(&decoded) {
        Cow::Borrowed(_) => decoded.into_owned(),
        Cow::Owned(s) => s,
    };
    // `dots` may leave "" for "/.." only as "/"; keep an absolute path.
    let normal = if normal.is_empty() {
        "/".to_string()
    } else {
        normal
    };
    if normal == path {
        Some(Cow::Borrowed(path))
    } else {
        Some(Cow::Owned(normal))
    }
}

/// What routes match on: the normal path with every escape decoded (see the contract).
pub fn route_view(normal: &str) -> Cow<'_, str> {
    if !normal.contains('%') {
        return Cow::Borrowed(normal);
    }
    let Some(decoded) = decode(normal, true) else {
        return Cow::Borrowed(normal);
    };
    let merged = merge_slashes(&decoded).into_owned();
    Cow::Owned(dots(&merged).into_owned())
}

/// True when `path` is certainly in normal form: no escape, no `//`, no dot segment.
pub fn is_plainly_normal(path: &str) -> bool {
    if !path.starts_with('/') {
        return false;
    }
    // One pass, no substring searcher (paths are short): no `%`, no `/` then `/` or `.`.
    let mut after_slash = false;
    for &c in path.as_bytes() {
        match c {
            b'%' => return false,
            b'/' | b'.' if after_slash => return false,
            _ => after_slash = c == b'/',
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_is_the_first_piece_of_a_split() {
        for (s, sep) in [
            ("/a/b?c=d?e", b'?'),
            ("/a", b'?'),
            ("", b'?'),
            ("?", b'?'),
            ("h\u{e9}.example:80", b':'),
            ("[::1]:80", b':'),
            ("host/p/q", b'/'),
        ] {
            assert_eq!(
                before(s, sep),
                s.split(sep as char).next().unwrap(),
                "{s:?}"
            );
        }
    }

    fn norm(p: &str) -> Option<String> {
        normalize_path(p).map(Cow::into_owned)
    }

    #[test]
    fn slashes_escapes_and_dots_are_normalised() {
        for (raw, want) in [
            ("/", "/"),
            ("/api/me", "/api/me"),
            ("//api/me", "/api/me"),
            ("/api//me///", "/api/me/"),
            ("/%61pi/me", "/api/me"),
            ("/%7euser/%2d", "/~user/-"),
            ("/a%2fb", "/a%2Fb"),
            ("/a%2Fb", "/a%2Fb"),
            ("/sp%20ace", "/sp%20ace"),
            ("/a/./b/../c", "/a/c"),
            ("/a/%2e%2e/b", "/b"),
            ("/a//../b", "/b"),
            ("/..", "/"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/a/.", "/a/"),
            ("/.well-known/x", "/.well-known/x"),
        ] {
            assert_eq!(norm(raw).as_deref(), Some(want), "{raw}");
        }
    }

    #[test]
    fn invalid_escapes_and_relative_paths_are_refused() {
        for bad in ["/%zz", "/%4", "/a%", "/%00", "api", ""] {
            assert_eq!(norm(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_already_normal_path_is_borrowed() {
        assert!(matches!(normalize_path("/a/b?"), Some(Cow::Borrowed(_))));
        assert!(matches!(normalize_path("/a%20b"), Some(Cow::Borrowed(_))));
        assert!(matches!(normalize_path("/a%2fb"), Some(Cow::Owned(_))));
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for raw in ["//x/%2e/y/../%7A", "/a%2fb//c", "/%41/./%2E%2E/b", "/a/b/"] {
            let once = norm(raw).unwrap();
            assert_eq!(norm(&once).as_deref(), Some(once.as_str()), "{raw}");
        }
    }

    #[test]
    fn routes_see_every_escape_decoded() {
        assert_eq!(route_view("/%2Fapi/me"), "/api/me");
        assert_eq!(route_view("/x/..%2Fapi"), "/api");
        assert_eq!(route_view("/sp%20ace"), "/sp ace");
        assert_eq!(route_view("/plain"), "/plain");
    }

    #[test]
    fn the_fast_test_never_passes_a_path_that_would_change() {
        for p in ["/a", "/a/b.css", "/a-b_c~d"] {
            assert!(is_plainly_normal(p));
            assert_eq!(norm(p).as_deref(), Some(p));
        }
        for p in ["//a", "/%61", "/./a", "/a/..", "x"] {
            assert!(!is_plainly_normal(p), "{p}");
        }
        // The same answer as the plain definition, for every path of up to 5 of these bytes.
        let plain = |p: &str| {
            p.starts_with('/') && !p.contains('%') && !p.contains("//") && !p.contains("/.")
        };
        let alphabet = ["/", ".", "%", "a", "?"];
        let mut paths = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = paths
                .iter()
                .flat_map(|p| alphabet.iter().map(move |c| format!("{p}{c}")))
                .collect();
            for p in &longer {
                assert_eq!(is_plainly_normal(p), plain(p), "{p:?}");
            }
            paths = longer;
        }
    }
}
