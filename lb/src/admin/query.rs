//! Query parameters of an admin request (`/purge?url=…`, `/conns.json?limit=…`).

use http::Uri;
use percent_encoding::percent_decode_str;

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
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let well_formed = s.split('%').skip(1).all(|rest| {
        rest.as_bytes()
            .get(..2)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    let spaced = s.replace('+', " ");
    let decoded = percent_decode_str(&spaced).decode_utf8().ok()?;
    well_formed.then(|| decoded.into_owned())
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
        assert_eq!(percent_decode("%2B%2b%C3%A9").as_deref(), Some("++é"));
        assert_eq!(percent_decode("100%"), None);
        assert_eq!(percent_decode("%C3"), None);
    }
}
