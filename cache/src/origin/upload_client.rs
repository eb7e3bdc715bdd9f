//! hyper's client, for bodyless requests of methods that are not idempotent (the node's own
//! client, `h1`, takes every other request, those with a client's body included): held to the limits the node's own client keeps, so an
//! origin is read the same strict way whichever client asked it.
//!
//! Contract, for one exchange up to the response head:
//! * a head over [`MAX_FIELDS`] fields is refused by hyper's parser, and one over [`MAX_HEAD`]
//!   bytes by hyper's parser when it fills the read buffer (bounded to that size), else here
//!   (hyper parses a whole head however large once it is in the buffer; its own size limit is
//!   not reachable through hyper-util's client);
//! * a response with both `Transfer-Encoding` and `Content-Length` is refused (hyper would
//!   read it as chunked, RFC 9112 §6.3, and pass the `Content-Length` on beside a body of
//!   another length);
//! * more than [`MAX_INTERIM`] interim (1xx) responses are refused; the first ones are handed
//!   to the request's sink as they come, none after;
//! * a refused response's connection is poisoned (hyper's pool never hands it out again) and
//!   closed (`sever`), so nothing the origin sent after it is read as another request's
//!   answer.
//!
//! Each refusal is `origin-broken` (502): no head has gone to the client yet.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::sever::{Sever, SeverableConnector};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Request, Response};
use hyper_util::client::legacy::connect::{capture_connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::body::OriginBody;
use super::h1::conn::MAX_INTERIM;
use super::h1::head::{MAX_FIELDS, MAX_HEAD};
use super::pool::OutBody;
use super::section::PoolConfig;
use crate::fault::Fault;
use crate::http::interim::InterimSink;

/// The upload client of a pool.
pub type UploadClient = Client<SeverableConnector, OutBody>;

/// A pool's upload client: its connect timeout, idle bounds and the node's response limits.
pub fn build(cfg: &PoolConfig) -> UploadClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(cfg.connect_timeout));
    connector.set_nodelay(true);
    connector.set_keepalive(Some(Duration::from_secs(60)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(cfg.idle_timeout)
        .pool_max_idle_per_host(cfg.max_idle_per_server)
        .set_host(false)
        // The read buffer bounds the response head (hyper refuses a head that fills it).
        .http1_max_buf_size(MAX_HEAD)
        .http1_max_headers(MAX_FIELDS)
        .build(SeverableConnector(connector))
}

/// Send `request` and read the response head; the error is the fault and its text.
/// `interim` gets the interim responses before it (at most [`MAX_INTERIM`]).
pub async fn exchange(
    client: &UploadClient,
    mut request: Request<OutBody>,
    interim: Option<InterimSink>,
) -> Result<Response<OriginBody>, (Fault, String)> {
    let conn = capture_connection(&mut request);
    let interims = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&interims);
    hyper::ext::on_informational(&mut request, move |r| {
        let n = seen.fetch_add(1, Ordering::Relaxed) + 1;
        if let (Some(sink), true) = (&interim, n <= MAX_INTERIM) {
            sink.relay(r.status(), r.headers());
        }
    });
    let resp = match client.request(request).await {
        Ok(resp) => resp,
        Err(e) if e.is_connect() => return Err((Fault::OriginUnreachable, e.to_string())),
        Err(e) => return Err((Fault::OriginBroken, error_chain(&e))),
    };
    let refused = if interims.load(Ordering::Relaxed) > MAX_INTERIM {
        Some(format!("more than {MAX_INTERIM} interim responses"))
    } else if head_size(resp.headers()) > MAX_HEAD {
        Some(format!("response head larger than {MAX_HEAD} bytes"))
    } else if has_length_and_coding(resp.headers()) {
        Some("both Transfer-Encoding and Content-Length".to_string())
    } else {
        None
    };
    if let Some(why) = refused {
        if let Some(c) = conn.connection_metadata().as_ref() {
            c.poison();
        }
        if let Some(sever) = resp.extensions().get::<Sever>() {
            sever.cut();
        }
        return Err((Fault::OriginBroken, why));
    }
    Ok(resp.map(OriginBody::hyper))
}

/// RFC 9112 §6.1: a sender must not send both; the response could be read two ways.
fn has_length_and_coding(h: &http::HeaderMap) -> bool {
    h.contains_key(TRANSFER_ENCODING) && h.contains_key(CONTENT_LENGTH)
}

/// The size of a response head with fields `h` as sent (at least: the reason phrase and
/// optional whitespace are not counted).
fn head_size(h: &http::HeaderMap) -> usize {
    let status_line = "HTTP/1.1 200 \r\n".len();
    let fields: usize = h
        .iter()
        .map(|(n, v)| n.as_str().len() + ": ".len() + v.len() + "\r\n".len())
        .sum();
    status_line + fields + "\r\n".len()
}

/// hyper's error and its causes ("message head is too large" is a cause).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn a_head_is_measured_as_it_was_sent() {
        let mut h = http::HeaderMap::new();
        assert_eq!(head_size(&h), "HTTP/1.1 200 \r\n\r\n".len());
        h.insert("x-pad", HeaderValue::from_static("abc"));
        assert_eq!(head_size(&h), "HTTP/1.1 200 \r\nx-pad: abc\r\n\r\n".len());
    }

    #[test]
    fn a_length_with_a_coding_is_seen() {
        let mut h = http::HeaderMap::new();
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        assert!(!has_length_and_coding(&h));
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        assert!(has_length_and_coding(&h));
    }
}
