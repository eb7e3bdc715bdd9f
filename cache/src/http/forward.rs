//! What every trip to the origin shares: the request headers sent forward (hop-by-hop
//! removed, `Host`, `Via`, `X-Forwarded-For`, `Forwarded`), the response headers as served,
//! scheduler input, persistence cookies, and streaming an unstored response to the client.

use http::header::{HeaderValue, HOST};
use http::uri::PathAndQuery;
use http::{HeaderMap, Response};
use std::time::SystemTime;

use super::body::ProxyBody;
use super::ctx::{Ctx, ReqHead};
use super::respond;
use crate::fault::{Fault, Side};
use crate::origin::PickInput;
use crate::policy::cache_status::CacheStatus;
use crate::policy::headers::{append_via, ensure_date, strip_hop_by_hop};

/// Request headers to send forward: hop-by-hop removed, `Host` kept (or taken from an h2
/// `:authority`), our `Via` appended.
pub(super) fn forward_headers(ctx: &Ctx, req: &ReqHead) -> HeaderMap {
    let mut h = req.headers.clone();
    strip_hop_by_hop(&mut h);
    if !h.contains_key(HOST) {
        if let Some(a) = req.uri.authority() {
            if let Ok(v) = HeaderValue::from_str(a.as_str()) {
                h.insert(HOST, v);
            }
        }
    }
    append_via(&mut h, req.version, &ctx.node_id);
    if let Some(client) = req.client {
        add_forwarded(&mut h, client.ip());
    }
    h
}

/// Append the client to `X-Forwarded-For` and `Forwarded` (RFC 7239; IPv6 quoted in brackets).
const XFF: http::HeaderName = http::HeaderName::from_static("x-forwarded-for");

pub(super) fn add_forwarded(h: &mut HeaderMap, ip: std::net::IpAddr) {
    let mut xff = String::with_capacity(64);
    for v in h.get_all(&XFF) {
        if let Ok(v) = v.to_str() {
            let v = v.trim();
            if !v.is_empty() {
                xff.push_str(v);
                xff.push_str(", ");
            }
        }
    }
    let start = xff.len();
    push_ip(&mut xff, ip);
    let text = &xff[start..];
    let mut element = String::with_capacity(text.len() + 24);
    match ip {
        std::net::IpAddr::V4(_) => {
            element.push_str("for=");
            element.push_str(text);
        }
        std::net::IpAddr::V6(_) => {
            element.push_str("for=\"[");
            element.push_str(text);
            element.push_str("]\"");
        }
    }
    element.push_str(";proto=http");
    if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(xff)) {
        h.insert(XFF, v);
    }
    if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(element)) {
        h.append(http::header::FORWARDED, v);
    }
}

/// An address as `Display` writes it (IPv4 without the formatter).
pub(super) fn push_ip(out: &mut String, ip: std::net::IpAddr) {
    use std::fmt::Write;
    match ip {
        std::net::IpAddr::V4(v4) => push_ipv4(out, v4),
        std::net::IpAddr::V6(_) => {
            let _ = write!(out, "{ip}");
        }
    }
}

/// An IPv4 address in dotted decimal, as `Display` writes it, without the formatter.
fn push_ipv4(out: &mut String, ip: std::net::Ipv4Addr) {
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
}

pub(super) fn path_and_query(req: &ReqHead) -> PathAndQuery {
    req.uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"))
}

/// Response headers as served: hop-by-hop removed, `Date` ensured, our `Via` appended.
pub(super) fn clean_response_headers(ctx: &Ctx, h: &mut HeaderMap, version: http::Version) {
    strip_hop_by_hop(h);
    ensure_date(h, SystemTime::now());
    append_via(h, version, &ctx.node_id);
}

/// Does the response carry one of the targeted cache-control fields?
pub(super) fn has_any(h: &HeaderMap, targets: &[http::HeaderName]) -> bool {
    targets.iter().any(|t| h.contains_key(t))
}

/// What the scheduler may hash on: the client address and the path.
pub(super) fn pick_input(req: &ReqHead) -> PickInput<'_> {
    PickInput {
        client: req.client.map(|c| c.ip()),
        path: req.uri.path(),
    }
}

/// Add this client's persistence cookie (never stored with the object).
pub(super) fn with_cookie(
    mut resp: Response<ProxyBody>,
    cookie: Option<HeaderValue>,
) -> Response<ProxyBody> {
    if let Some(c) = cookie {
        resp.headers_mut().append(http::header::SET_COOKIE, c);
    }
    resp
}

/// The answer to a request that failed on `fault`'s side: counted there, its status and a
/// message that names no address. A client fault closes the connection after the answer (the
/// rest of its body is not worth reading); a client that went away gets nothing.
pub(super) fn fault_response(ctx: &Ctx, fault: Fault, cs: &mut CacheStatus) -> Response<ProxyBody> {
    ctx.counters.fault(fault);
    cs.detail = Some(fault.as_str().to_string());
    let status = fault.status().unwrap_or(http::StatusCode::BAD_REQUEST);
    if fault.side() == Side::Client {
        tracing::info!(
            fault = fault.as_str(),
            "request failed on the client's side"
        );
        let mut resp = respond::error(ctx, status, fault.message(), Some(cs));
        resp.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        return resp;
    }
    respond::error(ctx, status, fault.message(), Some(cs))
}

/// Stream an origin response that is not stored straight to the client: its status, its
/// fields as served (`clean_response_headers` done), whether they carry targeted fields;
/// `head_request`: the request was HEAD (no body).
pub(super) fn respond_upstream(
    ctx: &Ctx,
    head_request: bool,
    (status, mut headers, has_targeted): (http::StatusCode, HeaderMap, bool),
    incoming: crate::origin::body::OriginBody,
    cs: &CacheStatus,
) -> Response<ProxyBody> {
    if has_targeted {
        ctx.strip_targeted(&mut headers);
    }
    crate::policy::cache_status::append_cache_status(&mut headers, cs);
    let body = if head_request {
        ProxyBody::Empty
    } else {
        ProxyBody::Upstream(incoming)
    };
    respond::build(status, headers, body)
}

/// Remove every object of a URL: its primary key, its partial object and every route
/// `cache_key` extension of it (with theirs); and their hot copies (`remote::hot`, not
/// counted: they are not stored objects).
pub fn purge_url(ctx: &super::ctx::Ctx, key: &str) -> usize {
    purge_primary(ctx, key) + purge_extended(ctx, key)
}

/// [`purge_url`] for an unsafe request's invalidation (RFC 9111 §4.4), which any client can
/// cause: the extended keys are looked for only when a route extends keys (`cache_key`), as
/// finding them scans the whole store under its every lock.
pub fn invalidate_url(ctx: &super::ctx::Ctx, key: &str) -> usize {
    let mut n = purge_primary(ctx, key);
    if ctx.rt.load().routes.extends_keys() {
        n += purge_extended(ctx, key);
    }
    n
}

/// The objects a route's `cache_key` made for a URL's key (a scan of the whole store).
fn purge_extended(ctx: &super::ctx::Ctx, key: &str) -> usize {
    ctx.store
        .ban_prefix(&format!("{key}{}", super::handler::KEY_EXTENSION))
}

/// A URL's primary key and partial object, and its hot copy.
fn purge_primary(ctx: &super::ctx::Ctx, key: &str) -> usize {
    ctx.hot.purge(key);
    ctx.store.purge(key) + ctx.store.purge(&crate::store::object::partial_key(key))
}

/// Remove every object whose key starts with `prefix` ("" for all), and their hot copies.
pub fn ban_prefix(ctx: &super::ctx::Ctx, prefix: &str) -> usize {
    ctx.hot.ban_prefix(prefix);
    ctx.store.ban_prefix(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn ipv4_is_written_as_display_writes_it() {
        for ip in [
            [0, 0, 0, 0],
            [127, 0, 0, 1],
            [10, 99, 100, 255],
            [9, 10, 199, 200],
        ] {
            let ip = Ipv4Addr::from(ip);
            let mut out = String::from("x");
            push_ipv4(&mut out, ip);
            assert_eq!(out, format!("x{ip}"));
        }
        for n in (0..=u32::MAX).step_by(65_537) {
            let ip = Ipv4Addr::from(n);
            let mut out = String::new();
            push_ipv4(&mut out, ip);
            assert_eq!(out, ip.to_string());
        }
    }

    #[test]
    fn the_client_is_appended_to_xff_and_forwarded() {
        let mut h = HeaderMap::new();
        h.append(XFF, HeaderValue::from_static("1.1.1.1"));
        h.append(XFF, HeaderValue::from_static(" 2.2.2.2 "));
        add_forwarded(&mut h, IpAddr::from([192, 168, 0, 7]));
        assert_eq!(h.get(&XFF).unwrap(), "1.1.1.1, 2.2.2.2, 192.168.0.7");
        assert_eq!(
            h.get(http::header::FORWARDED).unwrap(),
            "for=192.168.0.7;proto=http"
        );
        let mut h = HeaderMap::new();
        add_forwarded(&mut h, "2001:db8::1".parse().unwrap());
        assert_eq!(h.get(&XFF).unwrap(), "2001:db8::1");
        assert_eq!(
            h.get(http::header::FORWARDED).unwrap(),
            "for=\"[2001:db8::1]\";proto=http"
        );
    }
}
