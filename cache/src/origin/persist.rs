//! Cookie persistence: a response from the origin carries `Set-Cookie: <name>=<id>` naming the
//! server that answered (an opaque id, not its address); a request carrying the cookie goes to
//! that server while it is available, and to another (with a new cookie) when it is not.

use http::header::{HeaderValue, COOKIE};
use http::HeaderMap;

/// The opaque, stable id of a server: 16 hex digits of a 64-bit FNV-1a hash of "ip:port"
/// (stable across restarts and nodes, so every node of a cluster pins a client the same way).
pub fn server_id(addr: &std::net::SocketAddr) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in addr.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The value of cookie `name` in the request's `Cookie` fields.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    for v in headers.get_all(COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for pair in s.split(';') {
            let (k, val) = pair.trim().split_once('=').unwrap_or((pair.trim(), ""));
            if k == name {
                return Some(val.trim_matches('"'));
            }
        }
    }
    None
}

/// The `Set-Cookie` value pinning a client to server `id`.
pub fn set_cookie(name: &str, id: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("{name}={id}; Path=/; HttpOnly")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_opaque_stable_and_distinct() {
        let a: std::net::SocketAddr = "10.0.0.1:80".parse().unwrap();
        let b: std::net::SocketAddr = "10.0.0.2:80".parse().unwrap();
        assert_eq!(server_id(&a), server_id(&a));
        assert_ne!(server_id(&a), server_id(&b));
        assert_eq!(server_id(&a).len(), 16);
        assert!(!server_id(&a).contains("10.0.0.1"));
    }

    #[test]
    fn the_named_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; SRV=abc"));
        h.append(COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie_value(&h, "SRV"), Some("abc"));
        assert_eq!(cookie_value(&h, "b"), Some("2"));
        assert_eq!(cookie_value(&h, "SR"), None);
        assert_eq!(
            set_cookie("SRV", "abc").unwrap(),
            "SRV=abc; Path=/; HttpOnly"
        );
    }
}
