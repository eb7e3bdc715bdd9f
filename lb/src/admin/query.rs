//! Query parameters of an admin request (`/purge?url=…`, `/conns.json?limit=…`).

use http::Uri;

/// The percent-decoded value of a query parameter.
pub fn query_param(uri: &Uri, name: &str) -> Option<String> {
    let q = uri.query()?;
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == name {
            return percent_decode(v);
        }
    }
    None
}

/// Decode `%XX` escapes and `+` (as space); None on a malformed escape or non-UTF-8 result.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_percent_decoded() {
        let u: Uri = "/purge?x=1&url=http%3A%2F%2Fa.example%2Fp%3Fq%3D1"
            .parse()
            .unwrap();
        assert_eq!(
            query_param(&u, "url").as_deref(),
            Some("http://a.example/p?q=1")
        );
        assert_eq!(query_param(&u, "nope"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("a+b").as_deref(), Some("a b"));
    }
}
