//! The HTTP object kept in the store (with its head pre-serialized for the hit fast path), and
//! the response head a fill shares with its followers.

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, StatusCode};

use crate::policy::{cache_status::Fwd, StoredMeta};
use crate::store::pieces::Pieces;
use crate::store::ram::Entry;

/// Header fields read back from a wire form; a head with more keeps its map instead.
const MAX_WIRE_FIELDS: usize = 64;

/// Per-object bytes charged on top of body and headers (the struct, Arcs, map slots).
pub const OBJECT_OVERHEAD: u64 = 256;
/// Per-header bytes charged on top of name and value.
pub const HEADER_OVERHEAD: u64 = 32;

/// A complete stored response. Immutable: a revalidation replaces it with a new object that
/// shares the same body `Bytes`.
#[derive(Debug)]
pub struct Object {
    pub status: StatusCode,
    /// The headers as a map, kept only when there is no `wire` form (see `headers()`).
    map: Option<HeaderMap>,
    pub body: Bytes,
    pub meta: StoredMeta,
    /// Selecting header fields (from `Vary`), and this variant's values of them.
    pub vary: Vec<HeaderName>,
    pub variant_id: Vec<u8>,
    /// The headers hold the operator's targeted cache-control field (`target_header`), which
    /// must not go downstream (`CDN-Cache-Control` does).
    pub has_targeted: bool,
    /// Status line and headers serialized for the HTTP/1.1 fast path (`wire_head`),
    /// followed by the blank line; None when this object's answers must be built by the
    /// general path. When present it is the only copy of the headers (memory per object).
    pub wire: Option<Bytes>,
    /// A partial object (RFC 9111 §3.3): the byte runs held of the representation, whose
    /// head is the headers above (without `Content-Range`); `body` is then empty. Stored only
    /// under [`partial_key`], never where complete objects are looked up.
    pub pieces: Option<Box<Pieces>>,
    weight: u64,
}

/// Separates a key from the suffix of its partial object's key: a NUL, which no request
/// target or header value can hold, so no other key can take the same form.
const PARTIAL_SUFFIX: &str = "\0partial";

/// Where the partial object of `key` is stored. It starts with `key`, so a ban of a prefix of
/// `key` removes it too (purge removes it by name).
pub fn partial_key(key: &str) -> String {
    let mut k = String::with_capacity(key.len() + PARTIAL_SUFFIX.len());
    k.push_str(key);
    k.push_str(PARTIAL_SUFFIX);
    k
}

impl Object {
    /// Build an object; its weight is computed once here.
    pub fn new(
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        meta: StoredMeta,
        vary: Vec<HeaderName>,
        variant_id: Vec<u8>,
        has_targeted: bool,
    ) -> Object {
        let wire = if has_targeted || !vary.is_empty() {
            None
        } else {
            wire_head(status, &headers).and_then(|mut w| {
                w.extend_from_slice(b"\r\n");
                let w = Bytes::from(w);
                // Keep only the wire form when it reads back to the same headers.
                (parse_wire(&w).as_ref() == Some(&headers)).then_some(w)
            })
        };
        let (map, head_bytes) = match &wire {
            Some(w) => (None, w.len() as u64 + OBJECT_OVERHEAD),
            None => {
                let h = compact_headers(&headers);
                let weight = head_weight(&h);
                (Some(h), weight)
            }
        };
        let weight = head_bytes + body.len() as u64 + variant_id.len() as u64;
        Object {
            status,
            map,
            body,
            meta,
            vary,
            variant_id,
            has_targeted,
            wire,
            pieces: None,
            weight,
        }
    }

    /// A partial object: the representation's head and the bytes held of it (weighed like a
    /// complete object: head, held bytes and overhead).
    pub fn partial(
        headers: HeaderMap,
        pieces: Pieces,
        meta: StoredMeta,
        has_targeted: bool,
    ) -> Object {
        let headers = compact_headers(&headers);
        let weight = head_weight(&headers) + pieces.held();
        Object {
            status: StatusCode::OK,
            map: Some(headers),
            body: Bytes::new(),
            meta,
            vary: Vec::new(),
            variant_id: Vec::new(),
            has_targeted,
            wire: None,
            pieces: Some(Box::new(pieces)),
            weight,
        }
    }
}

impl Object {
    /// End-to-end headers as served: hop-by-hop fields removed, `Via` of this node appended,
    /// `Content-Length` equal to the body length. Targeted cache-control fields are kept (they
    /// decide freshness again after a 304) and removed on the way out when `has_targeted`.
    /// Objects with a wire form rebuild the map from it (general-path hits only); the values are
    /// zero-copy slices of the wire bytes.
    pub fn headers(&self) -> Cow<'_, HeaderMap> {
        match (&self.map, &self.wire) {
            (Some(m), _) => Cow::Borrowed(m),
            (None, Some(w)) => Cow::Owned(parse_wire(w).unwrap_or_default()),
            (None, None) => Cow::Owned(HeaderMap::new()),
        }
    }
}

/// The serialized status line and stored headers of an object, when its answers can be written
/// by the fast path (no Vary, no upstream Cache-Status, nothing to strip on the way out).
pub fn wire_head(obj_status: http::StatusCode, headers: &http::HeaderMap) -> Option<Vec<u8>> {
    if headers.contains_key(http::header::VARY)
        || headers.contains_key("cache-status")
        || headers.contains_key(http::header::AGE)
    {
        return None;
    }
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(obj_status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(obj_status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers.iter() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    Some(out)
}

/// Header fields read back from a wire head (`HTTP/1.1 ... CRLF fields CRLF CRLF`).
fn parse_wire(w: &Bytes) -> Option<HeaderMap> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_WIRE_FIELDS];
    let mut resp = httparse::Response::new(&mut fields);
    match resp.parse(w) {
        Ok(httparse::Status::Complete(n)) if n == w.len() => {}
        _ => return None,
    }
    let base = w.as_ptr() as usize;
    let mut map = HeaderMap::with_capacity(resp.headers.len());
    for f in resp.headers.iter() {
        let name = HeaderName::from_bytes(f.name.as_bytes()).ok()?;
        let start = f.value.as_ptr() as usize - base;
        let value =
            http::HeaderValue::from_maybe_shared(w.slice(start..start + f.value.len())).ok()?;
        map.append(name, value);
    }
    Some(map)
}

/// A copy of `h` whose values live in one exact-size allocation.
///
/// Header values parsed by hyper are slices of the connection's read buffer; keeping them in a
/// stored object would pin that whole buffer (kilobytes) for the object's lifetime.
pub fn compact_headers(h: &HeaderMap) -> HeaderMap {
    let total: usize = h.values().map(|v| v.len()).sum();
    let mut buf = bytes::BytesMut::with_capacity(total);
    for v in h.values() {
        buf.extend_from_slice(v.as_bytes());
    }
    let buf = buf.freeze();
    let mut out = HeaderMap::with_capacity(h.keys_len());
    let mut at = 0;
    for (name, v) in h.iter() {
        let len = v.len();
        let slice = buf.slice(at..at + len);
        at += len;
        // The bytes were a valid header value a moment ago; re-validation cannot fail.
        match http::HeaderValue::from_maybe_shared(slice) {
            Ok(mut nv) => {
                nv.set_sensitive(v.is_sensitive());
                out.append(name.clone(), nv);
            }
            Err(_) => {
                out.append(name.clone(), v.clone());
            }
        }
    }
    out
}

/// Bytes charged for a header map.
pub fn head_weight(headers: &HeaderMap) -> u64 {
    let h: u64 = headers
        .iter()
        .map(|(n, v)| n.as_str().len() as u64 + v.len() as u64 + HEADER_OVERHEAD)
        .sum();
    h + OBJECT_OVERHEAD
}

impl Entry for Object {
    fn weight(&self) -> u64 {
        self.weight
    }
    fn variant_id(&self) -> &[u8] {
        &self.variant_id
    }
}

/// What a fill leader publishes to the requests coalesced on it.
#[derive(Debug)]
pub struct FillHead {
    pub status: StatusCode,
    /// Headers as served (same cleaning as `Object::headers`).
    pub headers: HeaderMap,
    pub vary: Vec<HeaderName>,
    pub variant_id: Vec<u8>,
    /// Freshness of what is being stored (None: not stored).
    pub meta: Option<StoredMeta>,
    /// Body length when known in advance.
    pub content_length: Option<u64>,
    /// How the leader's request went forward, for `Cache-Status`.
    pub fwd: Fwd,
    pub fwd_status: Option<u16>,
    pub has_targeted: bool,
    /// The Cache-Status member(s) of the peer the leader asked (cluster), for followers.
    pub upstream: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacted_headers_keep_every_value_in_order() {
        let mut h = HeaderMap::new();
        h.insert("etag", http::HeaderValue::from_static("\"x\""));
        h.append("vary", http::HeaderValue::from_static("a"));
        h.append("vary", http::HeaderValue::from_static("b"));
        h.insert("content-length", http::HeaderValue::from_static("10"));
        let c = compact_headers(&h);
        assert_eq!(c, h);
        let vary: Vec<_> = c.get_all("vary").iter().collect();
        assert_eq!(vary, vec!["a", "b"]);
    }

    fn meta() -> StoredMeta {
        StoredMeta {
            request_time: std::time::SystemTime::UNIX_EPOCH,
            response_time: std::time::SystemTime::UNIX_EPOCH,
            corrected_initial_age: std::time::Duration::ZERO,
            freshness_lifetime: std::time::Duration::from_secs(60),
            no_cache: false,
            must_revalidate: false,
            stale_while_revalidate: None,
            stale_if_error: None,
        }
    }

    #[test]
    fn an_object_with_a_wire_head_keeps_only_that_and_reads_the_same_headers_back() {
        let mut h = HeaderMap::new();
        h.insert("content-length", http::HeaderValue::from_static("3"));
        h.insert("etag", http::HeaderValue::from_static("\"v1\""));
        h.append("x-a", http::HeaderValue::from_static("1"));
        h.append("x-a", http::HeaderValue::from_static("2"));
        let o = Object::new(
            StatusCode::OK,
            h.clone(),
            Bytes::from_static(b"abc"),
            meta(),
            vec![],
            vec![],
            false,
        );
        assert!(o.map.is_none(), "the map is not kept twice");
        let wire = o.wire.clone().unwrap();
        assert!(wire.ends_with(b"x-a: 2\r\n\r\n"));
        assert_eq!(*o.headers(), h);
        // A Vary object has no wire form and keeps its map.
        h.insert("vary", http::HeaderValue::from_static("accept"));
        let v = Object::new(
            StatusCode::OK,
            h.clone(),
            Bytes::from_static(b"abc"),
            meta(),
            vec![http::header::ACCEPT],
            b"x".to_vec(),
            false,
        );
        assert!(v.wire.is_none());
        assert_eq!(*v.headers(), h);
    }

    #[test]
    fn wire_head_serializes_status_and_headers_and_refuses_vary() {
        let mut h = http::HeaderMap::new();
        h.insert("content-length", http::HeaderValue::from_static("3"));
        h.append("x-a", http::HeaderValue::from_static("1"));
        h.append("x-a", http::HeaderValue::from_static("2"));
        let w = wire_head(http::StatusCode::OK, &h).unwrap();
        assert_eq!(
            String::from_utf8(w).unwrap(),
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\nx-a: 1\r\nx-a: 2\r\n"
        );
        h.insert("vary", http::HeaderValue::from_static("accept"));
        assert!(wire_head(http::StatusCode::OK, &h).is_none());
    }
}
