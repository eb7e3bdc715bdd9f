//! What an admin listener (node and director) answers at all: the checks that keep a web page
//! open in a browser on the same machine from using it.
//!
//! Contract of [`Guard::check`], in this order:
//! 1. The TCP peer is loopback ([`is_allowed`]), else [`Refusal::NotLoopback`] (403).
//! 2. The request's authority (the absolute-form target's, else the one `Host` field) is a
//!    loopback IP literal (`127.x.x.x`, `[::1]`, `[::ffff:127.x.x.x]`), `localhost`, or the
//!    listener's own address; a port, if any, is digits. Else [`Refusal::ForeignHost`] (421,
//!    RFC 9110 §15.5.20). An HTTP/1.0 request may omit `Host`; a later version may not. This
//!    defeats DNS rebinding: a page can only send these names when it is itself served from
//!    them (RFC 9110 §17.1).
//! 3. No `Origin` field (the admin pages run no script, so no request of their own has one),
//!    and every `Sec-Fetch-Site` is `same-origin` or `none`; else [`Refusal::CrossSite`] (403).
//! 4. A path that changes state is asked by `POST` only ([`Refusal::NotPost`], 405 with
//!    `Allow: POST`), and with no `Content-Type` or one an HTML form cannot send
//!    ([`Refusal::FormContentType`], 415): `application/x-www-form-urlencoded`,
//!    `multipart/form-data` and `text/plain` are refused whatever their case or parameters.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use http::header::{CONTENT_TYPE, HOST, ORIGIN};
use http::{HeaderMap, Method, Request, StatusCode, Version};

/// `Sec-Fetch-Site` (Fetch Metadata); not among `http`'s constants.
const SEC_FETCH_SITE: &str = "sec-fetch-site";
/// `Sec-Fetch-Site` values of requests a user made, not a foreign page.
const OWN_FETCH_SITES: [&str; 2] = ["same-origin", "none"];
/// Media types an HTML form can send (HTML §4.10.21.7): never accepted for a state change.
const FORM_CONTENT_TYPES: [&str; 3] = [
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
];

/// Why an admin request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The TCP peer is not loopback.
    NotLoopback,
    /// `Host` is missing, repeated or names something else than this listener.
    ForeignHost,
    /// An `Origin` field, or a `Sec-Fetch-Site` other than `same-origin`/`none`.
    CrossSite,
    /// A state change asked by another method than POST.
    NotPost,
    /// A state change with a content type an HTML form can send.
    FormContentType,
}

impl Refusal {
    /// Short name, for logs.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Refusal::NotLoopback => "not a loopback client",
            Refusal::ForeignHost => "Host is not loopback, localhost or the admin address",
            Refusal::CrossSite => "cross-site request",
            Refusal::NotPost => "state change not by POST",
            Refusal::FormContentType => "state change with a form content type",
        }
    }

    /// The answer's status.
    pub(super) fn status(self) -> StatusCode {
        match self {
            Refusal::NotLoopback | Refusal::CrossSite => StatusCode::FORBIDDEN,
            Refusal::ForeignHost => StatusCode::MISDIRECTED_REQUEST,
            Refusal::NotPost => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::FormContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// The plain-text body of the answer.
    pub(super) fn body(self) -> &'static str {
        match self {
            Refusal::NotLoopback => "403 admin is for loopback clients only\n",
            Refusal::ForeignHost => {
                "421 admin answers Host localhost, a loopback address or its own address only\n"
            }
            Refusal::CrossSite => {
                "403 admin refuses cross-site requests (Origin, Sec-Fetch-Site)\n"
            }
            Refusal::NotPost => "405 this admin action is POST only\n",
            Refusal::FormContentType => {
                "415 admin actions refuse form content types; send no Content-Type\n"
            }
        }
    }

    /// The `Allow` field of the answer, if it needs one.
    pub(super) fn allow(self) -> Option<&'static str> {
        (self == Refusal::NotPost).then_some("POST")
    }
}

/// The rules of one admin listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Guard {
    /// Where the listener is bound (a valid `Host` besides loopback and `localhost`); None
    /// when the socket could not tell.
    pub listen: Option<SocketAddr>,
    /// Paths whose requests change state (POST only, no form content type).
    pub changes: &'static [&'static str],
}

impl Guard {
    /// Whether the request from `peer` may be answered (see the module doc).
    pub(super) fn check<B>(&self, peer: SocketAddr, req: &Request<B>) -> Result<(), Refusal> {
        if !is_allowed(peer) {
            return Err(Refusal::NotLoopback);
        }
        let host_ok = match req.uri().authority() {
            Some(authority) => is_admin_host(authority.as_str(), self.listen),
            None => self.host_field_ok(req.version(), req.headers()),
        };
        if !host_ok {
            return Err(Refusal::ForeignHost);
        }
        if is_cross_site(req.headers()) {
            return Err(Refusal::CrossSite);
        }
        if self.changes.contains(&req.uri().path()) {
            if req.method() != Method::POST {
                return Err(Refusal::NotPost);
            }
            if has_form_content_type(req.headers()) {
                return Err(Refusal::FormContentType);
            }
        }
        Ok(())
    }

    fn host_field_ok(&self, version: Version, headers: &HeaderMap) -> bool {
        let mut hosts = headers.get_all(HOST).iter();
        match (hosts.next(), hosts.next()) {
            (None, _) => version <= Version::HTTP_10,
            (Some(host), None) => host
                .to_str()
                .is_ok_and(|h| is_admin_host(h.trim(), self.listen)),
            (Some(_), Some(_)) => false,
        }
    }
}

/// Only loopback clients may use the admin listener (IPv4 127/8, IPv6 ::1, and IPv4-mapped
/// loopback), whatever address it is bound to.
pub(crate) fn is_allowed(peer: SocketAddr) -> bool {
    is_loopback(peer.ip())
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Whether a `Host` value (`host[:port]`) names this admin listener: a loopback literal or
/// `localhost` with any port, or exactly the `listen` address.
pub(super) fn is_admin_host(value: &str, listen: Option<SocketAddr>) -> bool {
    let Some((name, port)) = split_host(value) else {
        return false;
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let ip = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => name.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
    };
    let Some(ip) = ip else { return false };
    is_loopback(ip) || listen.is_some_and(|l| l.ip() == ip && port == Some(l.port()))
}

/// `host[:port]` split; None when the port is not a number or the host is empty.
fn split_host(value: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = match value.rfind(':') {
        Some(i) if !value[i..].contains(']') => (&value[..i], Some(&value[i + 1..])),
        _ => (value, None),
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
    };
    (!name.is_empty()).then_some((name, port))
}

/// An `Origin` field, or a `Sec-Fetch-Site` that is not the user's own request.
fn is_cross_site(headers: &HeaderMap) -> bool {
    headers.contains_key(ORIGIN)
        || headers.get_all(SEC_FETCH_SITE).iter().any(|v| {
            !v.to_str().is_ok_and(|v| {
                OWN_FETCH_SITES
                    .iter()
                    .any(|o| v.trim().eq_ignore_ascii_case(o))
            })
        })
}

/// Whether any `Content-Type` is one an HTML form can send (or is not even text).
fn has_form_content_type(headers: &HeaderMap) -> bool {
    headers.get_all(CONTENT_TYPE).iter().any(|v| {
        let Ok(v) = v.to_str() else { return true };
        let essence = v.split(';').next().unwrap_or_default().trim();
        FORM_CONTENT_TYPES
            .iter()
            .any(|f| essence.eq_ignore_ascii_case(f))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: Guard = Guard {
        listen: None,
        changes: &["/purge", "/ban", "/reload"],
    };

    fn req(method: &str, target: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(method).uri(target);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap()
    }

    fn check(g: &Guard, r: &Request<()>) -> Result<(), Refusal> {
        g.check("127.0.0.1:40000".parse().unwrap(), r)
    }

    #[test]
    fn only_loopback_peers_are_allowed() {
        let ok = [
            "127.0.0.1:5",
            "127.9.8.7:5",
            "[::1]:5",
            "[::ffff:127.0.0.1]:5",
        ];
        let refused = [
            "10.0.0.1:5",
            "192.168.1.2:5",
            "[2001:db8::1]:5",
            "[::ffff:10.0.0.1]:5",
            "0.0.0.0:5",
        ];
        for a in ok {
            assert!(is_allowed(a.parse().unwrap()), "{a}");
        }
        for a in refused {
            assert!(!is_allowed(a.parse().unwrap()), "{a}");
        }
        let r = req("GET", "/", &[("Host", "localhost")]);
        assert_eq!(
            NODE.check("10.0.0.1:5".parse().unwrap(), &r),
            Err(Refusal::NotLoopback)
        );
    }

    #[test]
    fn loopback_literals_and_localhost_are_admin_hosts() {
        for h in [
            "127.0.0.1",
            "127.0.0.1:9090",
            "127.8.9.10:1",
            "localhost",
            "LocalHost:9090",
            "[::1]",
            "[::1]:9090",
            "[::ffff:127.0.0.1]:9090",
        ] {
            assert!(is_admin_host(h, None), "{h}");
        }
    }

    #[test]
    fn other_hosts_are_not_admin_hosts() {
        for h in [
            "",
            ":9090",
            "evil.example",
            "evil.example:9090",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "localhost.",
            "127.1",
            "2130706433",
            "10.0.0.1:9090",
            "0.0.0.0:9090",
            "[::2]:9090",
            "::1",
            "[::1",
            "127.0.0.1:",
            "127.0.0.1:http",
            "127.0.0.1:99999",
            "127.0.0.1:9090 evil",
        ] {
            assert!(!is_admin_host(h, None), "{h:?}");
        }
    }

    #[test]
    fn the_listen_address_is_an_admin_host_with_its_port_only() {
        let any: SocketAddr = "0.0.0.0:9090".parse().unwrap();
        let lan: SocketAddr = "[2001:db8::5]:9090".parse().unwrap();
        assert!(is_admin_host("0.0.0.0:9090", Some(any)));
        assert!(!is_admin_host("0.0.0.0:9091", Some(any)));
        assert!(!is_admin_host("0.0.0.0", Some(any)));
        assert!(is_admin_host("[2001:db8::5]:9090", Some(lan)));
        assert!(!is_admin_host("[2001:db8::6]:9090", Some(lan)));
        assert!(is_admin_host("localhost:1", Some(lan)));
    }

    #[test]
    fn host_is_required_from_http_1_1_and_must_be_single() {
        assert_eq!(
            check(&NODE, &req("GET", "/", &[])),
            Err(Refusal::ForeignHost)
        );
        let mut old = req("GET", "/", &[]);
        *old.version_mut() = Version::HTTP_10;
        assert_eq!(check(&NODE, &old), Ok(()));
        let two = req("GET", "/", &[("Host", "localhost"), ("Host", "localhost")]);
        assert_eq!(check(&NODE, &two), Err(Refusal::ForeignHost));
        let bad = req("GET", "/stats.json", &[("Host", "evil.example:9090")]);
        assert_eq!(check(&NODE, &bad), Err(Refusal::ForeignHost));
    }

    #[test]
    fn an_absolute_target_names_the_host() {
        let r = req(
            "GET",
            "http://evil.example/stats.json",
            &[("Host", "localhost")],
        );
        assert_eq!(check(&NODE, &r), Err(Refusal::ForeignHost));
        let r = req("GET", "http://127.0.0.1:9090/stats.json", &[]);
        assert_eq!(check(&NODE, &r), Ok(()));
    }

    #[test]
    fn any_origin_or_a_foreign_fetch_site_is_cross_site() {
        let h = ("Host", "127.0.0.1:9090");
        for bad in [
            ("Origin", "http://evil.example"),
            ("Origin", "null"),
            ("Origin", "http://127.0.0.1:9090"),
            ("Sec-Fetch-Site", "cross-site"),
            ("Sec-Fetch-Site", "same-site"),
            ("Sec-Fetch-Site", ""),
        ] {
            for (method, path) in [("GET", "/stats.json"), ("POST", "/ban?prefix=x")] {
                let r = req(method, path, &[h, bad]);
                assert_eq!(check(&NODE, &r), Err(Refusal::CrossSite), "{bad:?}");
            }
        }
        for own in ["same-origin", "none", "Same-Origin"] {
            let r = req("POST", "/reload", &[h, ("Sec-Fetch-Site", own)]);
            assert_eq!(check(&NODE, &r), Ok(()), "{own}");
        }
    }

    #[test]
    fn state_changes_need_post() {
        let h = ("Host", "localhost");
        for method in ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"] {
            for path in ["/purge?url=x", "/ban?prefix=x", "/reload"] {
                let r = req(method, path, &[h]);
                assert_eq!(check(&NODE, &r), Err(Refusal::NotPost), "{method} {path}");
            }
        }
        assert_eq!(Refusal::NotPost.allow(), Some("POST"));
        assert_eq!(Refusal::FormContentType.allow(), None);
        assert_eq!(check(&NODE, &req("GET", "/stats.json", &[h])), Ok(()));
        assert_eq!(check(&NODE, &req("POST", "/reload", &[h])), Ok(()));
    }

    #[test]
    fn state_changes_refuse_form_content_types() {
        let h = ("Host", "localhost");
        for ctype in [
            "application/x-www-form-urlencoded",
            "Application/X-WWW-Form-Urlencoded; charset=utf-8",
            "multipart/form-data; boundary=----x",
            "text/plain",
            " TEXT/PLAIN ;charset=UTF-8",
        ] {
            let r = req("POST", "/ban?prefix=x", &[h, ("Content-Type", ctype)]);
            assert_eq!(check(&NODE, &r), Err(Refusal::FormContentType), "{ctype}");
        }
        for ctype in ["application/json", "application/octet-stream"] {
            let r = req("POST", "/ban?prefix=x", &[h, ("Content-Type", ctype)]);
            assert_eq!(check(&NODE, &r), Ok(()), "{ctype}");
        }
        let two = req(
            "POST",
            "/purge?url=x",
            &[
                h,
                ("Content-Type", "application/json"),
                ("Content-Type", "text/plain"),
            ],
        );
        assert_eq!(check(&NODE, &two), Err(Refusal::FormContentType));
        let read = req("GET", "/stats.json", &[h, ("Content-Type", "text/plain")]);
        assert_eq!(check(&NODE, &read), Ok(()));
    }

    #[test]
    fn refusals_answer_their_status() {
        for (r, status) in [
            (Refusal::NotLoopback, 403),
            (Refusal::ForeignHost, 421),
            (Refusal::CrossSite, 403),
            (Refusal::NotPost, 405),
            (Refusal::FormContentType, 415),
        ] {
            assert_eq!(r.status().as_u16(), status);
            assert!(r.body().starts_with(&status.to_string()), "{}", r.body());
        }
    }
}
