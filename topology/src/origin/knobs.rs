//! The test knobs: query parameters that shape an origin response (see the `origin` module doc
//! for their meaning). Parsing is pure; an invalid value is a [`KnobError`], which the origin
//! answers with `400 Bad Request`. Unknown parameters are ignored, so cache-busting queries
//! (`?v=2`) work.
//!
//! Query strings are `application/x-www-form-urlencoded`: `%XX` escapes are decoded and `+` is
//! a space (write a literal `+` as `%2B`).

use std::time::Duration;

use http::{HeaderName, HeaderValue, StatusCode};

/// Default object size in bytes (`size=`).
pub const DEFAULT_SIZE: usize = 1024;
/// Default freshness lifetime in seconds (`ttl=`).
pub const DEFAULT_TTL_SECS: u64 = 3600;
/// Largest object the origin generates (`size=`): 256 MiB.
pub const MAX_SIZE: usize = 256 * 1024 * 1024;
/// Longest `delay=` or `chunk_delay=`: 10 minutes.
pub const MAX_DELAY: Duration = Duration::from_secs(600);
/// Most `hdr=` parameters honoured in one request.
pub const MAX_EXTRA_HEADERS: usize = 32;

/// A query parameter the origin could not use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad query parameter {name}={value}: {reason}")]
pub struct KnobError {
    /// Parameter name.
    pub name: String,
    /// Its decoded value.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The knobs of one request, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knobs {
    /// `size=N`: object size in bytes.
    pub size: usize,
    /// `ttl=S`: `max-age` of `/obj/`.
    pub ttl_secs: u64,
    /// `delay=MS`: wait before sending the response head.
    pub delay: Duration,
    /// `status=N`: the response status instead of 200.
    pub status: Option<StatusCode>,
    /// `cc=`: `None` keeps the default Cache-Control, `Some("")` removes it, else replaces it.
    pub cache_control: Option<HeaderValue>,
    /// `vary=f1,f2`: request fields the content depends on (emitted as `Vary`).
    pub vary: Vec<HeaderName>,
    /// `chunked=1`: no Content-Length; the body goes in [`CHUNK_SIZE`] pieces.
    pub chunked: bool,
    /// `chunk_delay=MS`: pause between body pieces.
    pub chunk_delay: Duration,
    /// `cut=K`: close the connection after K body bytes.
    pub cut: Option<usize>,
    /// `etag=0` clears it: send an ETag.
    pub etag: bool,
    /// `lm=0` clears it: send a Last-Modified.
    pub last_modified: bool,
    /// `hdr=Name:Value`: extra response header fields, in order.
    pub extra_headers: Vec<(HeaderName, HeaderValue)>,
    /// `sum=1`: state the body's size and SHA-256 in header fields (`origin::digest`).
    pub sum: bool,
}

/// Size of one body piece with `chunked=1`: 4 KiB.
pub const CHUNK_SIZE: usize = 4096;

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            size: DEFAULT_SIZE,
            ttl_secs: DEFAULT_TTL_SECS,
            delay: Duration::ZERO,
            status: None,
            cache_control: None,
            vary: Vec::new(),
            chunked: false,
            chunk_delay: Duration::ZERO,
            cut: None,
            etag: true,
            last_modified: true,
            extra_headers: Vec::new(),
            sum: false,
        }
    }
}

impl Knobs {
    /// Parses a raw query string (without `?`; `None` when the URI has none).
    pub fn parse(query: Option<&str>) -> Result<Knobs, KnobError> {
        let mut k = Knobs::default();
        for (name, value) in query_pairs(query.unwrap_or("")) {
            let bad = |reason: &'static str| KnobError {
                name: name.clone(),
                value: value.clone(),
                reason,
            };
            match name.as_str() {
                "size" => {
                    k.size = value.parse().map_err(|_| bad("not a byte count"))?;
                    if k.size > MAX_SIZE {
                        return Err(bad("larger than the 256 MiB limit"));
                    }
                }
                "ttl" => k.ttl_secs = value.parse().map_err(|_| bad("not a number of seconds"))?,
                "delay" => {
                    k.delay = parse_millis(&value).ok_or_else(|| bad("not 0..=600000 ms"))?
                }
                "chunk_delay" => {
                    k.chunk_delay = parse_millis(&value).ok_or_else(|| bad("not 0..=600000 ms"))?
                }
                "status" => {
                    let code: u16 = value.parse().map_err(|_| bad("not a status code"))?;
                    if !(200..=599).contains(&code) {
                        return Err(bad("status must be 200..=599"));
                    }
                    k.status =
                        Some(StatusCode::from_u16(code).map_err(|_| bad("not a status code"))?);
                }
                "cc" => {
                    k.cache_control =
                        Some(HeaderValue::from_str(&value).map_err(|_| bad("not a field value"))?)
                }
                "vary" => {
                    for field in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                        k.vary.push(
                            HeaderName::from_bytes(field.as_bytes())
                                .map_err(|_| bad("not a field name"))?,
                        );
                    }
                }
                "chunked" => k.chunked = parse_flag(&value).ok_or_else(|| bad("not 0 or 1"))?,
                "cut" => k.cut = Some(value.parse().map_err(|_| bad("not a byte count"))?),
                "etag" => k.etag = parse_flag(&value).ok_or_else(|| bad("not 0 or 1"))?,
                "lm" => k.last_modified = parse_flag(&value).ok_or_else(|| bad("not 0 or 1"))?,
                "sum" => k.sum = parse_flag(&value).ok_or_else(|| bad("not 0 or 1"))?,
                "hdr" => {
                    if k.extra_headers.len() >= MAX_EXTRA_HEADERS {
                        return Err(bad("too many hdr= parameters"));
                    }
                    let (n, v) = value.split_once(':').ok_or_else(|| bad("not Name:Value"))?;
                    let n = HeaderName::from_bytes(n.trim().as_bytes())
                        .map_err(|_| bad("not a field name"))?;
                    let v =
                        HeaderValue::from_str(v.trim()).map_err(|_| bad("not a field value"))?;
                    k.extra_headers.push((n, v));
                }
                _ => {}
            }
        }
        Ok(k)
    }
}

/// `MS` as a duration, within [`MAX_DELAY`].
fn parse_millis(value: &str) -> Option<Duration> {
    let d = Duration::from_millis(value.parse().ok()?);
    (d <= MAX_DELAY).then_some(d)
}

/// `0`/`1` (also `false`/`true`).
fn parse_flag(value: &str) -> Option<bool> {
    match value {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// Decoded `(name, value)` pairs of a query string; a pair without `=` has an empty value, a
/// `%` without two hex digits stays as is and invalid UTF-8 becomes U+FFFD.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_query() {
        let k = Knobs::parse(None).unwrap();
        assert_eq!(k, Knobs::default());
        assert_eq!(k.size, 1024);
        assert_eq!(k.ttl_secs, 3600);
        assert!(k.etag && k.last_modified && !k.chunked);
    }

    #[test]
    fn parses_every_knob() {
        let q =
            "size=10&ttl=5&delay=20&status=503&cc=max-age%3D60%2C%20public&vary=Accept-Encoding\
                 &chunked=1&chunk_delay=7&cut=3&etag=0&lm=0&hdr=X-A%3A%201&hdr=X-B:two+words&v=9&sum=1";
        let k = Knobs::parse(Some(q)).unwrap();
        assert_eq!(k.size, 10);
        assert_eq!(k.ttl_secs, 5);
        assert_eq!(k.delay, Duration::from_millis(20));
        assert_eq!(k.status, Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(k.cache_control.unwrap(), "max-age=60, public");
        assert_eq!(k.vary, vec![HeaderName::from_static("accept-encoding")]);
        assert!(k.chunked);
        assert_eq!(k.chunk_delay, Duration::from_millis(7));
        assert_eq!(k.cut, Some(3));
        assert!(!k.etag && !k.last_modified);
        assert!(k.sum);
        assert_eq!(k.extra_headers.len(), 2);
        assert_eq!(k.extra_headers[0].0.as_str(), "x-a");
        assert_eq!(k.extra_headers[0].1, "1");
        assert_eq!(k.extra_headers[1].1, "two words");
    }

    #[test]
    fn empty_cc_means_remove() {
        let k = Knobs::parse(Some("cc=")).unwrap();
        assert_eq!(k.cache_control, Some(HeaderValue::from_static("")));
    }

    #[test]
    fn bad_values_are_errors() {
        for q in [
            "size=x",
            "size=300000000",
            "status=99",
            "status=600",
            "delay=-1",
            "delay=600001",
            "chunked=yes",
            "sum=2",
            "hdr=NoColon",
            "hdr=Bad%20Name:1",
            "vary=a%20b",
            "cc=%0A",
        ] {
            assert!(Knobs::parse(Some(q)).is_err(), "{q}");
        }
        let e = Knobs::parse(Some("size=x")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad query parameter size=x: not a byte count"
        );
    }

    #[test]
    fn too_many_extra_headers_is_an_error() {
        let q = vec!["hdr=X:1"; MAX_EXTRA_HEADERS + 1].join("&");
        assert!(Knobs::parse(Some(&q)).is_err());
        let q = vec!["hdr=X:1"; MAX_EXTRA_HEADERS].join("&");
        assert_eq!(
            Knobs::parse(Some(&q)).unwrap().extra_headers.len(),
            MAX_EXTRA_HEADERS
        );
    }

    #[test]
    fn form_decode_handles_escapes_plus_and_stray_percent() {
        let value = |v: &str| query_pairs(&format!("k={v}")).remove(0).1;
        assert_eq!(value("a%20b+c"), "a b c");
        assert_eq!(value("100%"), "100%");
        assert_eq!(value("%4"), "%4");
        assert_eq!(value("%zz"), "%zz");
        assert_eq!(value("%2B%2b"), "++");
        assert_eq!(value("%C3%A9"), "é");
        assert_eq!(value("%FF"), "\u{FFFD}");
        assert_eq!(query_pairs("a+b=1")[0].0, "a b");
    }

    #[test]
    fn query_pairs_keeps_order_and_empty_values() {
        assert_eq!(
            query_pairs("a=1&&b&c=x%3Dy"),
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), String::new()),
                ("c".to_owned(), "x=y".to_owned()),
            ]
        );
    }
}
