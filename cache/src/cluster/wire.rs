//! Stored objects and fill heads to and from the peer protocol's object head.
//!
//! Contract:
//! * [`from_object`] / [`from_fill`] describe what a node holds (a stored object, or a fill
//!   that will be stored) as an [`ObjectHead`]; [`to_fill`] turns a received head back into a
//!   [`FillHead`] for this node's fill table.
//! * [`to_fill`] trusts nothing: a status outside 100..=599, a header name or value HTTP does
//!   not allow, a `Vary` name that is no header name, or a meta time that is no time or lies
//!   more than [`MAX_SKEW`] ahead of this node's clock is an error naming the field, and the peer's Cache-Status member is kept only when it is safe to
//!   emit ([`upstream_member`]).
//! * Header lists keep every line, in order (the object's `headers()` order).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH};
use http::{HeaderMap, StatusCode};

use super::frame::{ObjectHead, WireMeta};
use crate::policy::cache_status::{upstream_member, Fwd};
use crate::policy::meta::StoredMeta;
use crate::store::object::{FillHead, Object};

/// `ObjectHead::body_len` of a body whose length is not known in advance (an origin's chunked
/// answer, pushed or streamed while it arrives): its `End` frame completes it.
pub const UNKNOWN_LEN: u64 = u64::MAX;

/// Whether `total` body bytes received so far stay within the announced length (any, when
/// unknown) and within `max`.
pub fn body_fits(total: u64, announced: u64, max: u64) -> bool {
    total <= max && (announced == UNKNOWN_LEN || total <= announced)
}

/// Whether `total` body bytes complete the announced length (any, when unknown).
pub fn body_complete(total: u64, announced: u64) -> bool {
    announced == UNKNOWN_LEN || total == announced
}

/// How far ahead of this node's clock a peer's request and response times may be.
pub const MAX_SKEW: Duration = Duration::from_secs(3600);

/// A header map as the protocol's list of (name, value) lines.
pub fn header_lines(h: &HeaderMap) -> Vec<(Bytes, Bytes)> {
    h.iter()
        .map(|(n, v)| {
            (
                Bytes::copy_from_slice(n.as_str().as_bytes()),
                Bytes::copy_from_slice(v.as_bytes()),
            )
        })
        .collect()
}

/// The protocol's header lines as a map; the first line HTTP refuses is the error.
pub fn header_map(lines: &[(Bytes, Bytes)]) -> Result<HeaderMap, String> {
    let mut h = HeaderMap::with_capacity(lines.len());
    for (n, v) in lines {
        let name = HeaderName::from_bytes(n)
            .map_err(|_| format!("header name {:?} is invalid", String::from_utf8_lossy(n)))?;
        let value =
            HeaderValue::from_bytes(v).map_err(|_| format!("value of header {name} is invalid"))?;
        h.append(name, value);
    }
    Ok(h)
}

/// A stored object's head; `cache_status` is this node's member for the answer.
pub fn from_object(obj: &Object, cache_status: String) -> ObjectHead {
    ObjectHead::of_object(obj, cache_status)
}

/// A fill's head, when the fill is being stored (it has meta); an unknown length is sent as
/// [`UNKNOWN_LEN`].
pub fn from_fill(head: &FillHead, cache_status: String) -> Option<ObjectHead> {
    let meta = head.meta.as_ref()?;
    let body_len = head.content_length.unwrap_or(UNKNOWN_LEN);
    Some(ObjectHead {
        status: head.status.as_u16(),
        headers: header_lines(&head.headers),
        meta: WireMeta::from(meta),
        vary: head.vary.iter().map(|n| n.as_str().to_owned()).collect(),
        variant_id: Bytes::copy_from_slice(&head.variant_id),
        has_targeted: head.has_targeted,
        body_len,
        cache_status,
    })
}

/// A received head as a fill head for this node's fill table (see the module doc).
pub fn to_fill(h: &ObjectHead, fwd: Fwd) -> Result<FillHead, String> {
    let status = StatusCode::from_u16(h.status)
        .ok()
        .filter(|s| (100..=599).contains(&s.as_u16()))
        .ok_or_else(|| format!("status {} is invalid", h.status))?;
    let mut headers = header_map(&h.headers)?;
    let content_length = (h.body_len != UNKNOWN_LEN).then_some(h.body_len);
    match content_length {
        Some(n) => headers.insert(CONTENT_LENGTH, HeaderValue::from(n)),
        None => headers.remove(CONTENT_LENGTH),
    };
    let vary = h
        .vary
        .iter()
        .map(|n| {
            HeaderName::from_bytes(n.as_bytes()).map_err(|_| format!("Vary name {n:?} is invalid"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let meta = StoredMeta::try_from(&h.meta).map_err(|e| e.to_string())?;
    let latest = SystemTime::now() + MAX_SKEW;
    if meta.request_time > latest || meta.response_time > latest {
        // An object "received" in the future would never age.
        return Err("meta times are in the future".to_string());
    }
    Ok(FillHead {
        status,
        headers,
        vary,
        variant_id: h.variant_id.to_vec(),
        meta: Some(meta),
        content_length,
        fwd,
        fwd_status: None,
        has_targeted: h.has_targeted,
        upstream: upstream_member(&h.cache_status),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn meta() -> StoredMeta {
        StoredMeta {
            request_time: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            response_time: UNIX_EPOCH + Duration::from_millis(1_700_000_000_456),
            corrected_initial_age: Duration::from_secs(3),
            freshness_lifetime: Duration::from_secs(60),
            no_cache: false,
            must_revalidate: true,
            stale_while_revalidate: Some(Duration::from_secs(5)),
            stale_if_error: None,
        }
    }

    fn object() -> Object {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("x-a", HeaderValue::from_static("2"));
        h.insert("vary", HeaderValue::from_static("accept-encoding"));
        Object::new(
            StatusCode::OK,
            h,
            Bytes::from_static(b"hello"),
            meta(),
            vec![HeaderName::from_static("accept-encoding")],
            b"gzip".to_vec(),
            false,
        )
    }

    #[test]
    fn an_object_survives_the_round_trip() {
        let obj = object();
        let head = from_object(&obj, "b; hit; ttl=57".into());
        assert_eq!(head.body_len, 5);
        let fill = to_fill(&head, Fwd::Miss).expect("valid");
        assert_eq!(fill.status, StatusCode::OK);
        assert_eq!(fill.meta.as_ref(), Some(&meta()));
        assert_eq!(fill.vary, obj.vary);
        assert_eq!(fill.variant_id, obj.variant_id);
        assert_eq!(fill.content_length, Some(5));
        assert_eq!(fill.headers.get(CONTENT_LENGTH).unwrap(), "5");
        let xa: Vec<_> = fill.headers.get_all("x-a").iter().collect();
        assert_eq!(xa, ["1", "2"]);
        assert_eq!(fill.upstream.as_deref(), Some("b; hit; ttl=57"));
    }

    #[test]
    fn a_fill_without_meta_has_no_head_and_an_unknown_length_travels() {
        let mut fill = to_fill(&from_object(&object(), String::new()), Fwd::Miss).unwrap();
        assert_eq!(fill.upstream, None);
        assert_eq!(from_fill(&fill, String::new()).unwrap().body_len, 5);
        fill.content_length = None;
        let head = from_fill(&fill, String::new()).unwrap();
        assert_eq!(head.body_len, UNKNOWN_LEN);
        let back = to_fill(&head, Fwd::Miss).unwrap();
        assert_eq!(back.content_length, None);
        assert!(!back.headers.contains_key(CONTENT_LENGTH));
        fill.meta = None;
        assert!(from_fill(&fill, String::new()).is_none());
    }

    #[test]
    fn body_lengths_known_and_unknown() {
        assert!(body_fits(5, 5, 10) && !body_fits(6, 5, 10));
        assert!(body_fits(1 << 40, UNKNOWN_LEN, u64::MAX));
        assert!(!body_fits(11, UNKNOWN_LEN, 10));
        assert!(body_complete(5, 5) && !body_complete(4, 5));
        assert!(body_complete(0, UNKNOWN_LEN));
    }

    #[test]
    fn bad_heads_are_refused_with_the_field() {
        let good = from_object(&object(), String::new());
        let mut h = good.clone();
        h.status = 42;
        assert_eq!(to_fill(&h, Fwd::Miss).unwrap_err(), "status 42 is invalid");
        let mut h = good.clone();
        h.status = 600;
        assert!(to_fill(&h, Fwd::Miss).is_err());
        let mut h = good.clone();
        h.headers
            .push((Bytes::from_static(b"bad name"), Bytes::new()));
        assert!(to_fill(&h, Fwd::Miss).unwrap_err().contains("bad name"));
        let mut h = good.clone();
        h.headers
            .push((Bytes::from_static(b"x"), Bytes::from_static(b"a\r\nb")));
        assert_eq!(
            to_fill(&h, Fwd::Miss).unwrap_err(),
            "value of header x is invalid"
        );
        let mut h = good.clone();
        h.vary.push("no good".into());
        assert!(to_fill(&h, Fwd::Miss).unwrap_err().contains("Vary"));
        let mut h = good;
        h.meta.response_time_ms = u64::MAX;
        assert_eq!(
            to_fill(&h, Fwd::Miss).unwrap_err(),
            "meta times are in the future"
        );
    }
}
