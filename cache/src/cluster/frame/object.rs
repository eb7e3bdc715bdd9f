//! A stored [`Object`] ⇄ the [`ObjectHead`] (plus body) that `Hit` and `Push` carry.
//!
//! Contract: [`ObjectHead::of_object`] copies the object's headers as served by the store
//! (`Object::headers`), its meta, Vary names, variant id and targeted flag, and announces
//! the body's length. [`ObjectHead::into_object`] rebuilds an equal object from the head and
//! the body received after it, and refuses a head whose status, header fields, Vary names or
//! times do not make a valid object, or a body of another length than announced. Header
//! values are taken zero-copy from the frame; `Object::new` compacts what it keeps.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::{FrameError, ObjectHead, WireMeta};
use crate::policy::StoredMeta;
use crate::store::object::Object;

fn bad(what: &'static str) -> FrameError {
    FrameError::BadHead { what }
}

impl ObjectHead {
    /// The head of `obj` as a `Hit` or `Push` sends it, with the sender's `Cache-Status`
    /// member.
    pub fn of_object(obj: &Object, cache_status: String) -> ObjectHead {
        let headers = obj
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    Bytes::copy_from_slice(n.as_str().as_bytes()),
                    Bytes::copy_from_slice(v.as_bytes()),
                )
            })
            .collect();
        ObjectHead {
            status: obj.status.as_u16(),
            headers,
            meta: WireMeta::from(&obj.meta),
            vary: obj.vary.iter().map(|n| n.as_str().to_owned()).collect(),
            variant_id: Bytes::copy_from_slice(&obj.variant_id),
            has_targeted: obj.has_targeted,
            body_len: obj.body.len() as u64,
            cache_status,
        }
    }

    /// The object this head and the `body` that followed it make.
    pub fn into_object(self, body: Bytes) -> Result<Object, FrameError> {
        if body.len() as u64 != self.body_len {
            return Err(FrameError::BodyLength {
                announced: self.body_len,
                got: body.len() as u64,
            });
        }
        let status = StatusCode::from_u16(self.status).map_err(|_| bad("status"))?;
        let mut headers = HeaderMap::with_capacity(self.headers.len());
        for (name, value) in self.headers {
            let name = HeaderName::from_bytes(&name).map_err(|_| bad("header name"))?;
            let value = HeaderValue::from_maybe_shared(value).map_err(|_| bad("header value"))?;
            headers.append(name, value);
        }
        let vary = self
            .vary
            .iter()
            .map(|v| HeaderName::from_bytes(v.as_bytes()).map_err(|_| bad("Vary name")))
            .collect::<Result<Vec<_>, _>>()?;
        let meta = StoredMeta::try_from(&self.meta)?;
        Ok(Object::new(
            status,
            headers,
            body,
            meta,
            vary,
            self.variant_id.to_vec(),
            self.has_targeted,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn meta() -> StoredMeta {
        StoredMeta {
            request_time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000),
            response_time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250),
            corrected_initial_age: Duration::from_secs(2),
            freshness_lifetime: Duration::from_secs(60),
            no_cache: false,
            must_revalidate: false,
            stale_while_revalidate: None,
            stale_if_error: Some(Duration::from_secs(300)),
        }
    }

    fn object(vary: bool) -> Object {
        let mut h = HeaderMap::new();
        h.insert("content-length", HeaderValue::from_static("5"));
        h.insert("etag", HeaderValue::from_static("\"v1\""));
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("x-a", HeaderValue::from_static("2"));
        let (names, id) = if vary {
            h.insert("vary", HeaderValue::from_static("accept-encoding"));
            (vec![http::header::ACCEPT_ENCODING], b"gzip".to_vec())
        } else {
            (vec![], vec![])
        };
        Object::new(
            StatusCode::OK,
            h,
            Bytes::from_static(b"hello"),
            meta(),
            names,
            id,
            false,
        )
    }

    #[test]
    fn an_object_survives_the_trip_through_a_head() {
        for vary in [false, true] {
            let obj = object(vary);
            let head = ObjectHead::of_object(&obj, "b; hit".into());
            assert_eq!(head.body_len, 5);
            assert_eq!(head.cache_status, "b; hit");
            let back = head.into_object(obj.body.clone()).expect("valid");
            assert_eq!(back.status, obj.status);
            assert_eq!(*back.headers(), *obj.headers());
            assert_eq!(back.meta, obj.meta);
            assert_eq!(back.vary, obj.vary);
            assert_eq!(back.variant_id, obj.variant_id);
            assert_eq!(back.body, obj.body);
        }
    }

    #[test]
    fn an_invalid_head_or_a_short_body_is_refused() {
        let head = ObjectHead::of_object(&object(false), String::new());
        let e = head.clone().into_object(Bytes::from_static(b"hell"));
        assert_eq!(
            e.expect_err("short").to_string(),
            "object head announced 5 body bytes, got 4"
        );
        let mut bad_name = head.clone();
        bad_name.headers[0].0 = Bytes::from_static(b"bad name");
        let e = bad_name.into_object(Bytes::from_static(b"hello"));
        assert_eq!(
            e.expect_err("bad").to_string(),
            "object head: invalid header name"
        );
        let mut bad_value = head;
        bad_value.headers[0].1 = Bytes::from_static(b"a\nb");
        let e = bad_value.into_object(Bytes::from_static(b"hello"));
        assert_eq!(
            e.expect_err("bad").to_string(),
            "object head: invalid header value"
        );
    }
}
