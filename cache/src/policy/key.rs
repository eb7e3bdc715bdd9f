//! Primary cache keys (RFC 9111 §2: the target URI) and same-origin reference resolution
//! (RFC 3986 §5) for invalidation.
//!
//! Contract:
//! * A key is `"http://" + lowercase host + (":" + port unless 80 or empty) + path-and-query`;
//!   path and query are kept as received (no percent-decoding), "/" when empty.
//! * The host comes from the absolute-form URI (or h2 `:authority`, also in the URI), else
//!   from the single Host header; None when missing, repeated, with userinfo or invalid.
//! * [`same_origin_key`] resolves a reference against a key and returns a key only when the
//!   result has the same scheme, host and port.

use http::header::HOST;
use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, Uri};

/// What every primary key starts with (`super::ban` relies on it).
pub(crate) const SCHEME: &str = "http://";

/// The primary cache key of a request.
pub fn primary_key(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let origin = match uri.authority() {
        Some(authority) => normalize_authority(authority.as_str())?,
        None => {
            let mut hosts = headers.get_all(HOST).iter();
            let host = hosts.next()?;
            if hosts.next().is_some() {
                return None;
            }
            normalize_authority(host.to_str().ok()?.trim())?
        }
    };
    let (slash, path_and_query) = match uri.path_and_query().map(PathAndQuery::as_str) {
        None | Some("") => ("/", ""),
        Some(pq) if pq.starts_with('?') => ("/", pq),
        Some(pq) => ("", pq),
    };
    let mut key =
        String::with_capacity(SCHEME.len() + origin.len() + slash.len() + path_and_query.len());
    key.push_str(SCHEME);
    key.push_str(&origin);
    key.push_str(slash);
    key.push_str(path_and_query);
    Some(key)
}

/// The primary key of an origin-form request (`target` starts with '/') with this `Host`
/// value: the same key [`primary_key`] gives for it (used by the raw HTTP/1 fast path).
pub fn key_from_host_and_target(host: &str, target: &str) -> Option<String> {
    if !target.starts_with('/') {
        return None;
    }
    let host = host.trim();
    let mut key = String::with_capacity(SCHEME.len() + host.len() + target.len());
    key.push_str(SCHEME);
    // The usual `Host` is written straight into the key (no string of its own).
    if !push_plain_authority(&mut key, host) {
        key.push_str(&parsed_authority(host)?);
    }
    key.push_str(target);
    Some(key)
}

/// Lowercase `host[:port]` with the default port (and an empty port) removed.
pub(crate) fn normalize_authority(raw: &str) -> Option<String> {
    match plain_authority(raw) {
        Some(key) => Some(key),
        None => parsed_authority(raw),
    }
}

/// [`normalize_authority`] for the usual `Host` (a name or IPv4 address of letters, digits,
/// dots and hyphens, then maybe `:` and a port of at most 5 digits), without the URI parser:
/// None for anything else, which goes the parser's way. Gives what the parser's way gives.
fn plain_authority(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    push_plain_authority(&mut out, raw).then_some(out)
}

/// [`plain_authority`] appended to `out`; false (and `out` as it was) for anything else.
fn push_plain_authority(out: &mut String, raw: &str) -> bool {
    let b = raw.as_bytes();
    let colon = b.iter().position(|&c| c == b':').unwrap_or(b.len());
    let (host, port) = b.split_at(colon);
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-');
    let port = port.get(1..).unwrap_or_default();
    if !host_ok || port.len() > 5 || !port.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let number = port.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    if number > u32::from(u16::MAX) {
        return false;
    }
    // Checked ASCII above: appended whole, then lowercased in place (not char by char).
    let at = out.len();
    out.push_str(&raw[..colon]);
    out[at..].make_ascii_lowercase();
    if !port.is_empty() && number != 80 {
        // The port as a number (leading zeros dropped), as the parser's way writes it.
        let digits = port.iter().skip_while(|&&c| c == b'0').count().max(1);
        out.push(':');
        out.push_str(&raw[raw.len() - digits..]);
    }
    true
}

/// [`normalize_authority`] through `http`'s authority parser (IPv6 literals, odd ports, ...).
fn parsed_authority(raw: &str) -> Option<String> {
    if raw.is_empty() || raw.contains('@') {
        return None;
    }
    let authority: Authority = raw.parse().ok()?;
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    // What follows the host is "" or ":" + an optional port number.
    let port = authority.as_str().get(authority.host().len()..)?;
    let port = match port.strip_prefix(':') {
        None if port.is_empty() => None,
        None => return None,
        Some("") => None,
        Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some(digits.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some(match port {
        Some(80) | None => host,
        Some(port) => format!("{host}:{port}"),
    })
}

/// Resolves `reference` (a Location or Content-Location value) against `base_key`; the key
/// of the result when it has the same origin as `base_key`, else None.
pub fn same_origin_key(base_key: &str, reference: &str) -> Option<String> {
    let base = base_key.strip_prefix(SCHEME)?;
    let (origin, base_pq) = match base.find('/') {
        Some(i) => base.split_at(i),
        None => (base, "/"),
    };
    let (base_path, base_query) = split_query(base_pq);
    let reference = reference.trim();
    let reference = reference.split('#').next().unwrap_or_default();

    let (path, query) = if let Some(rest) = absolute_rest(reference)? {
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if normalize_authority(authority)? != origin {
            return None;
        }
        let (path, query) = split_query(tail);
        let path = if path.is_empty() {
            "/".to_owned()
        } else {
            remove_dot_segments(path)
        };
        (path, query)
    } else {
        let (ref_path, ref_query) = split_query(reference);
        if ref_path.is_empty() {
            let query = if ref_query.is_empty() {
                base_query
            } else {
                ref_query
            };
            (base_path.to_owned(), query)
        } else if ref_path.starts_with('/') {
            (remove_dot_segments(ref_path), ref_query)
        } else {
            let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
            (remove_dot_segments(&format!("{dir}{ref_path}")), ref_query)
        }
    };
    let path_and_query = format!("{path}{query}");
    path_and_query.parse::<PathAndQuery>().ok()?;
    Some(format!("{SCHEME}{origin}{path_and_query}"))
}

/// For an absolute (`http://...`) or network-path (`//...`) reference, Some(what follows
/// `//`); Some(None) for a relative reference; None for another scheme.
fn absolute_rest(reference: &str) -> Option<Option<&str>> {
    if let Some(rest) = reference.strip_prefix("//") {
        return Some(Some(rest));
    }
    let scheme_end = reference.find([':', '/', '?']);
    match scheme_end {
        Some(i) if reference.as_bytes()[i] == b':' && i > 0 => {
            let scheme = &reference[..i];
            if !scheme.eq_ignore_ascii_case("http") {
                return None;
            }
            reference[i + 1..].strip_prefix("//").map(Some)
        }
        _ => Some(None),
    }
}

/// Splits `path?query` into ("path", "?query"); the query part keeps its '?'.
fn split_query(s: &str) -> (&str, &str) {
    match s.find('?') {
        Some(i) => s.split_at(i),
        None => (s, ""),
    }
}

/// RFC 3986 §5.2.4 `remove_dot_segments`.
pub(crate) fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut output = String::with_capacity(path.len());
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest;
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest;
        } else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") || input == "/.." {
            input = if input == "/.." { "/" } else { &input[3..] };
            let cut = output.rfind('/').unwrap_or(0);
            output.truncate(cut);
        } else if input == "." || input == ".." {
            input = "";
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            output.push_str(&input[..end]);
            input = &input[end..];
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn key(uri: &str, host: Option<&'static str>) -> Option<String> {
        let mut h = HeaderMap::new();
        if let Some(host) = host {
            h.insert(HOST, HeaderValue::from_static(host));
        }
        primary_key(&uri.parse().unwrap(), &h)
    }

    #[test]
    fn origin_form_uses_host_header() {
        assert_eq!(
            key("/a/b?x=1", Some("Example.COM")).as_deref(),
            Some("http://example.com/a/b?x=1")
        );
        assert_eq!(
            key("/", Some("example.com:80")).as_deref(),
            Some("http://example.com/")
        );
        assert_eq!(
            key("/", Some("example.com:")).as_deref(),
            Some("http://example.com/")
        );
        assert_eq!(
            key("/", Some("example.com:8080")).as_deref(),
            Some("http://example.com:8080/")
        );
        assert_eq!(key("/", Some("[::1]:80")).as_deref(), Some("http://[::1]/"));
    }

    #[test]
    fn absolute_form_authority_wins_over_host() {
        let k = key("http://A.example:80/p?q", Some("b.example"));
        assert_eq!(k.as_deref(), Some("http://a.example/p?q"));
        assert_eq!(
            key("http://a.example", None).as_deref(),
            Some("http://a.example/")
        );
    }

    #[test]
    fn path_and_query_kept_as_received() {
        let k = key("/A%2fb/../c?Z=%41", Some("h"));
        assert_eq!(k.as_deref(), Some("http://h/A%2fb/../c?Z=%41"));
    }

    #[test]
    fn the_plain_authority_way_gives_what_the_parser_gives() {
        let cases = [
            "example.com",
            "Example.COM",
            "example.com:80",
            "example.com:8080",
            "example.com:",
            "example.com:080",
            "example.com:0",
            "example.com:00",
            "example.com:0080",
            "127.0.0.1:28481",
            "a-b.c-d:1",
            "x:9999",
            "-lead.example",
            "trail.",
            "a..b",
            "1.2.3.4",
            "h:65535",
            "h:65536",
            "h:99999",
            "h:123456",
            "h:00000",
            "h:00080",
            ":80",
            "",
            "a:b",
            "a b",
            "a@b",
            "[::1]:8080",
            "[::1]",
            "ex_ample.com",
            "exa%41mple",
            "a:1:2",
            "é.example",
        ];
        for raw in cases {
            let plain = plain_authority(raw);
            if let Some(p) = &plain {
                assert_eq!(Some(p.clone()), parsed_authority(raw), "{raw:?}");
            }
            assert_eq!(
                normalize_authority(raw),
                plain.or_else(|| parsed_authority(raw))
            );
        }
        assert_eq!(
            plain_authority("Example.COM:0080").as_deref(),
            Some("example.com")
        );
        assert_eq!(plain_authority("h:08080").as_deref(), Some("h:8080"));
        assert_eq!(
            plain_authority("h:65536"),
            None,
            "over u16: the parser's way"
        );
        assert_eq!(
            plain_authority("127.0.0.1:28481").as_deref(),
            Some("127.0.0.1:28481")
        );
        assert_eq!(normalize_authority("h:0443").as_deref(), Some("h:443"));
        // Every host byte and port digit pattern of a short authority agrees with the parser.
        let alphabet = b"aZ9.-:_0@8[";
        let mut raw = Vec::new();
        for n in 1..=4usize {
            for mut i in 0..alphabet.len().pow(n as u32) {
                raw.clear();
                for _ in 0..n {
                    raw.push(alphabet[i % alphabet.len()]);
                    i /= alphabet.len();
                }
                let raw = std::str::from_utf8(&raw).unwrap();
                if let Some(p) = plain_authority(raw) {
                    assert_eq!(Some(p), parsed_authority(raw), "{raw:?}");
                }
            }
        }
    }

    #[test]
    fn missing_duplicate_or_invalid_host_is_none() {
        assert_eq!(key("/", None), None);
        assert_eq!(key("/", Some("")), None);
        assert_eq!(key("/", Some("user@host")), None);
        assert_eq!(key("/", Some("host:port")), None);
        assert_eq!(key("/", Some("host:+80")), None);
        assert_eq!(key("/", Some("host:65536")), None);
        assert_eq!(key("/", Some("a b")), None);
        let mut h = HeaderMap::new();
        h.append(HOST, HeaderValue::from_static("a"));
        h.append(HOST, HeaderValue::from_static("a"));
        assert_eq!(primary_key(&"/".parse().unwrap(), &h), None);
    }

    #[test]
    fn resolves_relative_references() {
        let base = "http://h/a/b/c?q";
        let cases = [
            ("d", "http://h/a/b/d"),
            ("./d?x", "http://h/a/b/d?x"),
            ("../d", "http://h/a/d"),
            ("../../../d", "http://h/d"),
            ("/x/./y/../z", "http://h/x/z"),
            ("?y", "http://h/a/b/c?y"),
            ("", "http://h/a/b/c?q"),
            ("#frag", "http://h/a/b/c?q"),
            (".", "http://h/a/b/"),
        ];
        for (reference, expected) in cases {
            assert_eq!(
                same_origin_key(base, reference).as_deref(),
                Some(expected),
                "{reference}"
            );
        }
    }

    #[test]
    fn resolves_absolute_references_of_the_same_origin() {
        let base = "http://h:8080/a";
        assert_eq!(
            same_origin_key(base, "http://H:8080/x?y").as_deref(),
            Some("http://h:8080/x?y")
        );
        assert_eq!(
            same_origin_key(base, "//h:8080").as_deref(),
            Some("http://h:8080/")
        );
        assert_eq!(
            same_origin_key("http://h/a", "HTTP://h:80/b").as_deref(),
            Some("http://h/b")
        );
    }

    #[test]
    fn other_origins_are_rejected() {
        let base = "http://h/a";
        for other in [
            "http://other/a",
            "https://h/a",
            "http://h:81/a",
            "//other/",
            "mailto:x@h",
            "http:/a",
        ] {
            assert_eq!(same_origin_key(base, other), None, "{other}");
        }
        assert_eq!(same_origin_key(base, "/a b"), None);
    }

    #[test]
    fn raw_host_and_target_give_the_same_key_as_a_parsed_request() {
        let cases = [
            ("Example.COM", "/a/b?c=1&d"),
            ("example.com:80", "/"),
            ("example.com:8080", "/x?"),
            ("  example.com ", "/%7Euser/"),
            ("[::1]:8080", "/v6"),
        ];
        for (host, target) in cases {
            let uri: Uri = target.parse().unwrap();
            let mut h = HeaderMap::new();
            h.insert(HOST, http::HeaderValue::from_str(host).unwrap());
            assert_eq!(
                key_from_host_and_target(host, target),
                primary_key(&uri, &h),
                "{host} {target}"
            );
        }
        assert_eq!(key_from_host_and_target("a@b", "/"), None);
        assert_eq!(key_from_host_and_target("", "/"), None);
        assert_eq!(key_from_host_and_target("a", "*"), None);
    }
}
