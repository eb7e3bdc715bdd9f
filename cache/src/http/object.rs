//! The HTTP object kept in the store, and the response head a fill shares with its followers.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, StatusCode};

use crate::policy::{cache_status::Fwd, StoredMeta};
use crate::store::ram::Entry;

/// Per-object bytes charged on top of body and headers (the struct, Arcs, map slots).
pub const OBJECT_OVERHEAD: u64 = 256;
/// Per-header bytes charged on top of name and value.
pub const HEADER_OVERHEAD: u64 = 32;

/// A complete stored response. Immutable: a revalidation replaces it with a new object that
/// shares the same body `Bytes`.
#[derive(Debug)]
pub struct Object {
    pub status: StatusCode,
    /// End-to-end headers as served: hop-by-hop fields removed, `Via` of this node appended,
    /// `Content-Length` equal to the body length. Targeted cache-control fields are kept (they
    /// decide freshness again after a 304) and removed on the way out when `has_targeted`.
    pub headers: HeaderMap,
    pub body: Bytes,
    pub meta: StoredMeta,
    /// Selecting header fields (from `Vary`), and this variant's values of them.
    pub vary: Vec<HeaderName>,
    pub variant_id: Vec<u8>,
    /// The headers hold a targeted cache-control field that must not go downstream.
    pub has_targeted: bool,
    /// Status line and headers serialized for the HTTP/1.1 fast path (`fast::wire_head`);
    /// None when this object's answers must be built by the general path.
    pub wire: Option<Bytes>,
    weight: u64,
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
        let headers = compact_headers(&headers);
        let wire = if has_targeted || !vary.is_empty() {
            None
        } else {
            super::fast::wire_head(status, &headers).map(Bytes::from)
        };
        let weight = head_weight(&headers)
            + body.len() as u64
            + variant_id.len() as u64
            + wire.as_ref().map_or(0, |w| w.len() as u64);
        Object {
            status,
            headers,
            body,
            meta,
            vary,
            variant_id,
            has_targeted,
            wire,
            weight,
        }
    }
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
}
