//! The Cache-Status response field (RFC 9211).
//!
//! Contract: [`CacheStatus::to_member`] serialises one list member as
//! `node[; hit][; fwd=..][; fwd-status=N][; ttl=N][; stored][; collapsed][; detail=..]`;
//! the node and `detail` are sf-tokens when valid, else sf-strings (non-printable characters
//! dropped). [`append_cache_status`] adds our member after the existing ones (the cache
//! nearest the origin first, §2) and combines everything into one field line.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::headers::append_list_member;

/// The field name.
pub const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// Why a request went forward (RFC 9211 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fwd {
    Bypass,
    Method,
    VaryMiss,
    Miss,
    Request,
    Stale,
    /// Part of the representation was stored; the rest was asked for.
    Partial,
}

impl Fwd {
    /// The RFC 9211 token.
    pub fn as_str(&self) -> &'static str {
        match self {
            Fwd::Bypass => "bypass",
            Fwd::Method => "method",
            Fwd::VaryMiss => "vary-miss",
            Fwd::Miss => "miss",
            Fwd::Request => "request",
            Fwd::Stale => "stale",
            Fwd::Partial => "partial",
        }
    }
}

/// One Cache-Status member: what this node did with the request.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheStatus {
    pub node: String,
    pub hit: bool,
    pub fwd: Option<Fwd>,
    pub fwd_status: Option<u16>,
    pub ttl: Option<i64>,
    pub stored: bool,
    pub collapsed: bool,
    pub detail: Option<String>,
    /// Members of the peer this node asked (the cache nearer the origin), emitted before this
    /// node's own member; see [`upstream_member`].
    pub upstream: Option<String>,
}

impl CacheStatus {
    /// A hit with `ttl` seconds of freshness left (negative when served stale).
    pub fn hit(node: &str, ttl: i64) -> Self {
        CacheStatus {
            ttl: Some(ttl),
            hit: true,
            ..CacheStatus::empty(node)
        }
    }

    /// A request forwarded for `fwd`.
    pub fn fwd(node: &str, fwd: Fwd) -> Self {
        CacheStatus {
            fwd: Some(fwd),
            ..CacheStatus::empty(node)
        }
    }

    fn empty(node: &str) -> Self {
        CacheStatus {
            node: node.to_owned(),
            hit: false,
            fwd: None,
            fwd_status: None,
            ttl: None,
            stored: false,
            collapsed: false,
            detail: None,
            upstream: None,
        }
    }

    /// The list member, e.g. `a; hit; ttl=3590` or `a; fwd=miss; stored`.
    pub fn to_member(&self) -> String {
        // Written in place: the owner makes one per remote hit it answers.
        let mut out = String::with_capacity(self.node.len() + 32);
        self.write_member(&mut out);
        out
    }

    /// [`CacheStatus::to_member`] as `Bytes` of exactly its length (written in a buffer of
    /// the thread's, then copied once: one allocation, as for the `String`; turning a
    /// `String` with room to spare into `Bytes` costs a second one).
    pub fn to_member_bytes(&self) -> Bytes {
        thread_local! {
            static BUF: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            self.write_member(&mut buf);
            Bytes::copy_from_slice(buf.as_bytes())
        })
    }

    fn write_member(&self, out: &mut String) {
        push_sf_token_or_string(out, &self.node);
        if self.hit {
            out.push_str("; hit");
        }
        if let Some(fwd) = self.fwd {
            out.push_str("; fwd=");
            out.push_str(fwd.as_str());
        }
        if let Some(status) = self.fwd_status {
            out.push_str("; fwd-status=");
            out.push_str(itoa::Buffer::new().format(status));
        }
        if let Some(ttl) = self.ttl {
            out.push_str("; ttl=");
            out.push_str(itoa::Buffer::new().format(ttl));
        }
        if self.stored {
            out.push_str("; stored");
        }
        if self.collapsed {
            out.push_str("; collapsed");
        }
        if let Some(detail) = &self.detail {
            out.push_str("; detail=");
            push_sf_token_or_string(out, detail);
        }
    }
}

/// Appends `s` to `out` as an sf-token when it is one, else as an sf-string.
fn push_sf_token_or_string(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let is_token = bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'*')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b));
    if is_token {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars().filter(|c| (' '..='~').contains(c)) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Appends `status` (after its upstream members, if any) to the Cache-Status list of `h` as
/// one combined field line.
pub fn append_cache_status(h: &mut HeaderMap, status: &CacheStatus) {
    let own = status.to_member();
    let members = match &status.upstream {
        Some(up) => format!("{up}, {own}"),
        None => own,
    };
    if let Some(value) = append_list_member(h, &CACHE_STATUS, members.as_bytes()) {
        h.insert(CACHE_STATUS, value);
    }
}

/// Appends this node's plain `<node>; fwd=<fwd>` member: the same field as
/// `append_cache_status(h, &CacheStatus::fwd(node, fwd))`. When `h` has no Cache-Status yet (the
/// usual case) the value is made once per thread for the last node id seen, then shared.
/// (The pass lane writes this member from bytes, `own_fwd_value`; its checks compare with
/// this: `fuzzing::check_pass_lane_relay`.)
pub fn append_fwd(h: &mut HeaderMap, node: &str, fwd: Fwd) {
    if !h.contains_key(CACHE_STATUS) {
        if let Some(value) = own_fwd_value(node, fwd) {
            h.insert(CACHE_STATUS, value);
        }
        return;
    }
    append_cache_status(h, &CacheStatus::fwd(node, fwd));
}

/// `<node>; fwd=<fwd>` as a field value, kept per thread for the last node id seen (a node's
/// id is fixed while it runs; a process running several nodes, as the tests do, remakes it).
pub fn own_fwd_value(node: &str, fwd: Fwd) -> Option<HeaderValue> {
    use std::cell::RefCell;
    thread_local! {
        static OWN: RefCell<(String, Vec<(Fwd, HeaderValue)>)> =
            const { RefCell::new((String::new(), Vec::new())) };
    }
    OWN.with(|own| {
        let mut own = own.borrow_mut();
        if own.0 != node {
            own.0 = node.to_string();
            own.1.clear();
        }
        if let Some((_, v)) = own.1.iter().find(|(f, _)| *f == fwd) {
            return Some(v.clone());
        }
        let member = CacheStatus::fwd(node, fwd).to_member();
        let value = HeaderValue::from_maybe_shared(bytes::Bytes::from(member)).ok()?;
        own.1.push((fwd, value.clone()));
        Some(value)
    })
}

/// Longest upstream member list kept from a peer.
pub const MAX_UPSTREAM_MEMBER: usize = 512;

/// A peer's Cache-Status member(s) as received, made safe to emit: None when empty, longer
/// than [`MAX_UPSTREAM_MEMBER`] or holding anything but visible ASCII and spaces (a field value
/// this node could not send).
/// An owned value is kept as it is when it needs no trimming (no copy per remote hit).
pub fn upstream_member(s: impl Into<String>) -> Option<String> {
    let s: String = s.into();
    let t = s.trim();
    match emittable(t.as_bytes()) {
        false => None,
        true if t.len() == s.len() => Some(s),
        true => Some(t.to_owned()),
    }
}

/// [`upstream_member`] of a member received as bytes (a `WireHit`'s): the same checks, its
/// trimmed slice when they pass, with nothing copied or allocated.
pub fn upstream_member_bytes(b: &Bytes) -> Option<Bytes> {
    let t = b.trim_ascii();
    emittable(t).then(|| b.slice_ref(t))
}

/// Whether a trimmed upstream member may be emitted: not empty, at most
/// [`MAX_UPSTREAM_MEMBER`] bytes, visible ASCII and spaces only.
fn emittable(t: &[u8]) -> bool {
    !t.is_empty()
        && t.len() <= MAX_UPSTREAM_MEMBER
        && t.iter().all(|&c| c == b' ' || c.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_fwd_member_is_the_composed_one_with_or_without_upstream_members() {
        let origin = |v: Option<&'static str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = v {
                h.append(CACHE_STATUS, HeaderValue::from_static(v));
            }
            h
        };
        // Alternating node ids on one thread (several nodes in one process) and each `Fwd`.
        for node in ["a", "n-1", "has space", "a", "\"q\""] {
            for fwd in [Fwd::Miss, Fwd::Bypass, Fwd::Miss] {
                for upstream in [None, Some("up; hit"), Some(""), Some("x, y")] {
                    let (mut cached, mut composed) = (origin(upstream), origin(upstream));
                    append_fwd(&mut cached, node, fwd);
                    append_cache_status(&mut composed, &CacheStatus::fwd(node, fwd));
                    let all = |h: &HeaderMap| {
                        h.get_all(CACHE_STATUS)
                            .iter()
                            .map(|v| v.as_bytes().to_vec())
                            .collect::<Vec<_>>()
                    };
                    assert_eq!(all(&cached), all(&composed), "{node} {fwd:?} {upstream:?}");
                }
            }
        }
    }

    #[test]
    fn hit_member() {
        assert_eq!(CacheStatus::hit("a", 3590).to_member(), "a; hit; ttl=3590");
    }

    #[test]
    fn miss_stored_member() {
        let s = CacheStatus {
            stored: true,
            ..CacheStatus::fwd("a", Fwd::Miss)
        };
        assert_eq!(s.to_member(), "a; fwd=miss; stored");
    }

    #[test]
    fn stale_hit_and_revalidated_member() {
        let s = CacheStatus {
            fwd: Some(Fwd::Stale),
            ttl: None,
            ..CacheStatus::hit("a", -3)
        };
        assert_eq!(s.to_member(), "a; hit; fwd=stale");
        let s = CacheStatus {
            fwd_status: Some(304),
            ..CacheStatus::fwd("a", Fwd::Stale)
        };
        assert_eq!(s.to_member(), "a; fwd=stale; fwd-status=304");
    }

    #[test]
    fn parameter_order_is_fixed() {
        let s = CacheStatus {
            node: "a".into(),
            hit: false,
            fwd: Some(Fwd::VaryMiss),
            fwd_status: Some(200),
            ttl: Some(-5),
            stored: true,
            collapsed: true,
            detail: Some("peer".into()),
            upstream: None,
        };
        assert_eq!(
            s.to_member(),
            "a; fwd=vary-miss; fwd-status=200; ttl=-5; stored; collapsed; detail=peer"
        );
    }

    #[test]
    fn non_tokens_become_sf_strings() {
        let s = CacheStatus {
            detail: Some("origin \"x\" down\n".into()),
            ..CacheStatus::fwd("node 1", Fwd::Request)
        };
        assert_eq!(
            s.to_member(),
            r#""node 1"; fwd=request; detail="origin \"x\" down""#
        );
        assert_eq!(
            CacheStatus::fwd("1a", Fwd::Bypass).to_member(),
            "\"1a\"; fwd=bypass"
        );
    }

    #[test]
    fn fwd_names() {
        let all = [
            Fwd::Bypass,
            Fwd::Method,
            Fwd::VaryMiss,
            Fwd::Miss,
            Fwd::Request,
            Fwd::Stale,
        ];
        let names: Vec<&str> = all.iter().map(Fwd::as_str).collect();
        assert_eq!(
            names,
            ["bypass", "method", "vary-miss", "miss", "request", "stale"]
        );
    }

    #[test]
    fn appended_after_upstream_members_in_one_line() {
        let mut h = HeaderMap::new();
        h.append(CACHE_STATUS, HeaderValue::from_static("origin-cache; hit"));
        h.append(CACHE_STATUS, HeaderValue::from_static("b; hit"));
        let ours = CacheStatus {
            detail: Some("peer".into()),
            ..CacheStatus::fwd("a", Fwd::Miss)
        };
        append_cache_status(&mut h, &ours);
        let lines: Vec<_> = h.get_all(CACHE_STATUS).iter().collect();
        assert_eq!(
            lines,
            ["origin-cache; hit, b; hit, a; fwd=miss; detail=peer"]
        );
        let mut h = HeaderMap::new();
        append_cache_status(&mut h, &CacheStatus::hit("a", 1));
        assert_eq!(h.get(CACHE_STATUS).unwrap(), "a; hit; ttl=1");
    }

    #[test]
    fn a_peers_member_comes_before_ours() {
        let mut h = HeaderMap::new();
        let ours = CacheStatus {
            detail: Some("peer".into()),
            upstream: upstream_member(" b; hit; ttl=30 "),
            ..CacheStatus::fwd("a", Fwd::Miss)
        };
        append_cache_status(&mut h, &ours);
        assert_eq!(
            h.get(CACHE_STATUS).unwrap(),
            "b; hit; ttl=30, a; fwd=miss; detail=peer"
        );
    }

    #[test]
    fn unsafe_upstream_members_are_dropped() {
        assert_eq!(upstream_member(""), None);
        assert_eq!(upstream_member("b; hit\r\nx: y"), None);
        assert_eq!(upstream_member("b; hit\u{e9}"), None);
        assert_eq!(upstream_member("b".repeat(MAX_UPSTREAM_MEMBER + 1)), None);
        assert_eq!(
            upstream_member("b; fwd=miss").as_deref(),
            Some("b; fwd=miss")
        );
        // An owned value is kept (not copied) unless it is trimmed.
        let own = String::from("b; hit");
        let at = own.as_ptr();
        assert_eq!(upstream_member(own).map(|s| s.as_ptr()), Some(at));
        assert_eq!(
            upstream_member(String::from("  b; hit ")).as_deref(),
            Some("b; hit")
        );
    }

    #[test]
    fn members_received_as_bytes_pass_the_same_checks_without_a_copy() {
        let bytes = |s: &[u8]| upstream_member_bytes(&Bytes::copy_from_slice(s));
        assert_eq!(bytes(b""), None);
        assert_eq!(bytes(b"  "), None);
        assert_eq!(bytes(b"b; hit\r\nx: y"), None);
        assert_eq!(bytes("b; hit\u{e9}".as_bytes()), None);
        assert_eq!(bytes(b"b; hit\xff"), None);
        assert_eq!(bytes(&b"b".repeat(MAX_UPSTREAM_MEMBER + 1)), None);
        assert_eq!(
            bytes(&b"b".repeat(MAX_UPSTREAM_MEMBER)).map(|b| b.len()),
            Some(MAX_UPSTREAM_MEMBER)
        );
        let got = Bytes::from_static(b"  b; hit; ttl=3 ");
        let member = upstream_member_bytes(&got).expect("a member");
        assert_eq!(&member[..], b"b; hit; ttl=3");
        // A slice of what was received, not a copy.
        assert_eq!(member.as_ptr(), got[2..].as_ptr());
        // The same verdicts as for a string.
        for s in ["b; hit", " b; fwd=miss ", "b;\thit", "x\u{7f}", "b, c; hit"] {
            assert_eq!(
                bytes(s.as_bytes()).map(|b| b.to_vec()),
                upstream_member(s).map(String::into_bytes),
                "{s:?}"
            );
        }
    }
}
