//! Admission: the first stage of every client request. The request is checked and made
//! canonical once, so that everything after it — routing, the cache key, `Vary` selection and
//! the request sent upstream — sees one and the same request.
//!
//! Contract ([`admit`]):
//! * Framing (RFC 9112 §6.3): ambiguous lengths are 400; transfer codings other than `chunked`
//!   are 501 (dropping one on the way upstream would change the body). A `Content-Length` over
//!   `max_request_body`, or a chunk size that already declared more (`chunk_limit`), is 413
//!   before anything is sent upstream.
//! * Authority (RFC 9112 §3.2.2): the target's authority (absolute form, or h2 `:authority`)
//!   replaces `Host`; in HTTP/2 a `host` field that names another authority is 400 (RFC 9113
//!   §8.3.1). The key, the route and the upstream request use the same authority.
//! * Hop-by-hop (RFC 9110 §7.6.1): fields the client lists in `Connection` are removed here,
//!   on arrival, not on the way out, so no stage uses a field the origin will not see. `Host`,
//!   `Content-Length` and `Transfer-Encoding` are never removed (listing them is ignored);
//!   `Connection` itself goes too, so nothing later acts on its tokens.
//! * Path (RFC 3986 §6): normalised once (`policy::target`); routes match its fully decoded
//!   view. An invalid escape is 400.
//! * Default host ([`apply_default_host`], before [`admit`]): an HTTP/1.0 request with neither
//!   `Host` nor an absolute-form target gets the operator's `node.default_host` as its `Host`,
//!   as if the client had sent it (RFC 9112 §3.2 requires `Host` of HTTP/1.1 only). Without
//!   one, or for HTTP/1.1, a missing `Host` stays a 400.

use std::borrow::Cow;

use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::request::Parts;
use http::uri::{PathAndQuery, Uri};
use http::{HeaderValue, StatusCode, Version};

use crate::fault::Fault;
use crate::policy::headers::{check_request_framing, connection_tokens, FramingError};
use crate::policy::key::primary_key;
use crate::policy::target::{normalize_path, route_view};

/// A request let in: its primary cache key, and the path routes match on when it differs from
/// the (normalised) target's path (only when that has escapes).
#[derive(Debug, PartialEq, Eq)]
pub struct Admitted {
    pub primary: String,
    route_view: Option<String>,
}

impl Admitted {
    /// What routes match on, given the admitted target's path.
    pub fn route_path<'a>(&'a self, target_path: &'a str) -> &'a str {
        self.route_view.as_deref().unwrap_or(target_path)
    }
}

/// A request refused at the door.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub status: StatusCode,
    pub reason: &'static str,
    /// The client fault to count, when it is one of the counted kinds.
    pub fault: Option<Fault>,
}

fn bad(reason: &'static str) -> Refused {
    Refused {
        status: StatusCode::BAD_REQUEST,
        reason,
        fault: None,
    }
}

/// Check `parts` and make them canonical in place (see the module contract).
pub fn admit(parts: &mut Parts, max_request_body: u64) -> Result<Admitted, Refused> {
    match check_request_framing(&parts.headers) {
        Ok(()) => {}
        Err(FramingError::Bad(r)) => return Err(bad(r)),
        Err(FramingError::Unsupported(r)) => {
            return Err(Refused {
                status: StatusCode::NOT_IMPLEMENTED,
                reason: r,
                fault: None,
            })
        }
    }
    let declared = crate::policy::headers::content_length(&parts.headers);
    // A chunk size over the limit, already read with the head (`chunk_limit`).
    let chunk_over = parts
        .extensions
        .get::<super::chunk_limit::Declared>()
        .is_some_and(|d| d.over());
    if chunk_over || declared.is_some_and(|n| n > max_request_body) {
        return Err(Refused {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            reason: Fault::ClientBodyTooLarge.message(),
            fault: Some(Fault::ClientBodyTooLarge),
        });
    }
    take_authority(parts)?;
    strip_connection_listed(&mut parts.headers);
    let route_view = normalize_target(parts)?;
    let primary = primary_key(&parts.uri, &parts.headers).ok_or(bad("missing or invalid Host"))?;
    Ok(Admitted {
        primary,
        route_view,
    })
}

/// Give an HTTP/1.0 request without `Host` (and without an authority in its target) the
/// configured default host; any other request is left as it is.
pub fn apply_default_host(parts: &mut Parts, default_host: Option<&HeaderValue>) {
    let old = matches!(parts.version, Version::HTTP_09 | Version::HTTP_10);
    if let Some(host) = default_host {
        if old && parts.uri.authority().is_none() && !parts.headers.contains_key(HOST) {
            parts.headers.insert(HOST, host.clone());
        }
    }
}

/// The target's authority replaces `Host`; an h2 `host` naming another authority is refused.
fn take_authority(parts: &mut Parts) -> Result<(), Refused> {
    let Some(authority) = parts.uri.authority() else {
        return Ok(());
    };
    if parts.version == Version::HTTP_2 {
        let mut hosts = parts.headers.get_all(HOST).iter();
        if let Some(host) = hosts.next() {
            let same = host
                .to_str()
                .is_ok_and(|h| h.trim().eq_ignore_ascii_case(authority.as_str()));
            if !same || hosts.next().is_some() {
                return Err(bad("host does not match :authority"));
            }
        }
    }
    if authority.as_str().contains('@') {
        return Err(bad("userinfo in the target"));
    }
    let value = HeaderValue::from_str(authority.as_str()).map_err(|_| bad("invalid authority"))?;
    parts.headers.insert(HOST, value);
    Ok(())
}

/// Remove what the client listed in `Connection`, except the fields framing and routing need.
fn strip_connection_listed(h: &mut http::HeaderMap) {
    if !h.contains_key(CONNECTION) {
        return;
    }
    for name in connection_tokens(h) {
        if name == HOST || name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == CONNECTION
        {
            continue;
        }
        h.remove(name);
    }
    // Done with: its tokens must not strip anything on the way out (not `Host` either).
    h.remove(CONNECTION);
}

/// Replace the target's path by its normal form; returns its route view when that differs.
fn normalize_target(parts: &mut Parts) -> Result<Option<String>, Refused> {
    let path = parts.uri.path();
    if path == "*" {
        return Ok(None);
    }
    let path = if path.is_empty() { "/" } else { path };
    let normal = normalize_path(path).ok_or(bad("invalid path in the target"))?;
    let route = match route_view(&normal) {
        Cow::Borrowed(_) => None,
        Cow::Owned(view) => Some(view),
    };
    if normal != parts.uri.path() {
        let pq = match parts.uri.query() {
            Some(q) => format!("{normal}?{q}"),
            None => normal.into_owned(),
        };
        let pq = PathAndQuery::try_from(pq).map_err(|_| bad("invalid path in the target"))?;
        let mut uri = std::mem::take(&mut parts.uri).into_parts();
        uri.path_and_query = Some(pq);
        parts.uri = Uri::from_parts(uri).map_err(|_| bad("invalid target"))?;
    }
    Ok(route)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn parts(version: Version, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::builder().uri(uri).version(version);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn h1(uri: &str, headers: &[(&str, &str)]) -> Parts {
        parts(Version::HTTP_11, uri, headers)
    }

    #[test]
    fn http_1_0_without_host_takes_the_default_host() {
        let dflt = HeaderValue::from_static("www.example.com:8080");
        let mut p = parts(Version::HTTP_10, "/page", &[]);
        assert_eq!(
            admit(&mut p, 1024).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        apply_default_host(&mut p, Some(&dflt));
        let a = admit(&mut p, 1024).unwrap();
        assert_eq!(a.primary, "http://www.example.com:8080/page");
        assert_eq!(p.headers.get(HOST).unwrap(), "www.example.com:8080");
        // HTTP/1.1 must send Host; a Host or an absolute-form target is kept.
        let mut p = h1("/page", &[]);
        apply_default_host(&mut p, Some(&dflt));
        assert_eq!(
            admit(&mut p, 1024).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        for (uri, headers) in [
            ("/page", &[("host", "a.example")][..]),
            ("http://a.example/page", &[]),
        ] {
            let mut p = parts(Version::HTTP_10, uri, headers);
            apply_default_host(&mut p, Some(&dflt));
            assert_eq!(
                admit(&mut p, 1024).unwrap().primary,
                "http://a.example/page"
            );
        }
    }

    #[test]
    fn the_absolute_form_authority_replaces_host() {
        let mut p = h1(
            "http://Victim.example/page",
            &[("host", "attacker.example")],
        );
        let a = admit(&mut p, 1024).unwrap();
        assert_eq!(a.primary, "http://victim.example/page");
        assert_eq!(p.headers.get(HOST).unwrap(), "Victim.example");
        assert_eq!(p.headers.get_all(HOST).iter().count(), 1);
    }

    #[test]
    fn h2_host_must_match_authority() {
        let mut p = parts(
            Version::HTTP_2,
            "http://a.example/x",
            &[("host", "b.example")],
        );
        assert_eq!(
            admit(&mut p, 1024).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        let mut p = parts(
            Version::HTTP_2,
            "http://a.example/x",
            &[("host", "A.example")],
        );
        assert!(admit(&mut p, 1024).is_ok());
    }

    #[test]
    fn connection_cannot_remove_host_or_framing_but_removes_the_rest_on_arrival() {
        let mut p = h1(
            "/page",
            &[
                ("host", "victim.example"),
                ("connection", "Host, Accept-Language, content-length"),
                ("accept-language", "fr"),
                ("content-length", "0"),
            ],
        );
        let a = admit(&mut p, 1024).unwrap();
        assert_eq!(a.primary, "http://victim.example/page");
        assert!(p.headers.contains_key(HOST));
        assert!(p.headers.contains_key(CONTENT_LENGTH));
        assert!(!p.headers.contains_key("accept-language"));
    }

    #[test]
    fn paths_are_normalised_for_key_and_upstream_and_decoded_for_routes() {
        let mut p = h1("//%61pi/./me?x=%2F", &[("host", "h")]);
        let a = admit(&mut p, 1024).unwrap();
        assert_eq!(p.uri.path(), "/api/me");
        assert_eq!(p.uri.query(), Some("x=%2F"));
        assert_eq!(a.primary, "http://h/api/me?x=%2F");
        assert_eq!(a.route_path(p.uri.path()), "/api/me");
        let mut p = h1("/%2Fapi/me", &[("host", "h")]);
        let a = admit(&mut p, 1024).unwrap();
        assert_eq!(a.primary, "http://h/%2Fapi/me");
        assert_eq!(a.route_path(p.uri.path()), "/api/me");
        let mut p = h1("/%zz", &[("host", "h")]);
        assert_eq!(
            admit(&mut p, 1024).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn framing_and_size_are_refused_with_their_status() {
        let mut p = h1(
            "/",
            &[("host", "h"), ("transfer-encoding", "gzip, chunked")],
        );
        assert_eq!(
            admit(&mut p, 1024).unwrap_err().status,
            StatusCode::NOT_IMPLEMENTED
        );
        let mut p = h1("/", &[("host", "h"), ("content-length", "1025")]);
        let r = admit(&mut p, 1024).unwrap_err();
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.fault, Some(Fault::ClientBodyTooLarge));
        let mut p = h1("/", &[("host", "h"), ("content-length", "1024")]);
        assert!(admit(&mut p, 1024).is_ok());
    }
}
