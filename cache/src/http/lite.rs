//! The connection's own HTTP/1.1 loop for the requests the fast path parsed but cannot answer
//! from the store byte for byte (a miss, a key a peer owns, a stale object): the request's
//! parts are read from the raw head, the general stages answer it (`handler::handle_bodyless`),
//! and the response is written here, so the connection stays on the fast path instead of
//! moving to hyper for the rest of its life.
//!
//! Contract: [`parts`] rebuilds only what the fast parser accepted (GET/HEAD, HTTP/1.1,
//! origin form, no body); any field it cannot carry makes it None (the caller hands the
//! connection to hyper, which answers as before). [`write_response`] writes the head with the
//! first body bytes already available in one write, then the body as it comes, framed as hyper
//! frames it (`h1::framing`); it answers whether the connection may carry another request: not
//! when the body failed or did not match its declared length (the client sees a cut
//! connection, never a complete-looking body), nor when either side said `close`.

use std::io::IoSlice;

use bytes::Bytes;
use futures_util::FutureExt;
use http::{HeaderName, HeaderValue, Method, Request, Response};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::fast::MAX_FAST_HEADERS;
use super::h1::{self, Framing};
use super::io::FLATTEN_MAX;

/// The parts of the request whose complete head starts `raw`; None when a field cannot be
/// carried (hyper then reads the request itself).
pub fn parts(raw: &[u8]) -> Option<http::request::Parts> {
    let mut fields = [std::mem::MaybeUninit::uninit(); MAX_FAST_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(raw, &mut fields).ok()? {
        httparse::Status::Complete(_) => {}
        httparse::Status::Partial => return None,
    }
    let method = match req.method? {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "PATCH" => Method::PATCH,
        "DELETE" => Method::DELETE,
        _ => return None,
    };
    let mut b = Request::builder()
        .method(method)
        .uri(req.path?)
        .version(http::Version::HTTP_11);
    let headers = b.headers_mut()?;
    headers.reserve(req.headers.len());
    for f in req.headers.iter() {
        let name = HeaderName::from_bytes(f.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(f.value).ok()?;
        headers.append(name, value);
    }
    Some(b.body(()).ok()?.into_parts().0)
}

/// Writes `resp` (to a `HEAD` request when `head_request`); true when the connection may
/// carry another request. `close`: the client asked to close after it. `out` is scratch.
/// The body is a `ProxyBody`, or one wrapped by the access log (`access::Logged`).
pub async fn write_response<W: AsyncWrite + Unpin, B>(
    io: &mut W,
    resp: Response<B>,
    head_request: bool,
    close: bool,
    out: &mut Vec<u8>,
) -> std::io::Result<bool>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let (parts, body) = resp.into_parts();
    let close = close || h1::says_close(&parts.headers);
    let exact = body.size_hint().exact();
    let framing = h1::framing(head_request, parts.status, &parts.headers, exact);
    out.clear();
    h1::encode_head(out, parts.status, &parts.headers, framing, close);
    write_framed(io, body, framing, close, out).await
}

/// The rest of [`write_response`] once the head is in `out` (a head written from other bytes:
/// the pass lane's): the body framed as `framing` says, with the head in its first write;
/// true when the connection may carry another request (`close`: it may not).
pub async fn write_framed<W: AsyncWrite + Unpin, B>(
    io: &mut W,
    mut body: B,
    framing: Framing,
    close: bool,
    out: &mut Vec<u8>,
) -> std::io::Result<bool>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    if framing == Framing::None {
        io.write_all(out).await?;
        return Ok(!close);
    }
    let chunked = matches!(framing, Framing::Chunked { .. });
    let declared = match framing {
        Framing::Length { n, .. } => Some(n),
        _ => None,
    };
    let mut sent: u64 = 0;
    let mut first = true;
    loop {
        // The first frame is awaited before anything is written (one write for a small
        // response); later ones are gathered while they are ready.
        let next = if std::mem::take(&mut first) || out.is_empty() {
            body.frame().await
        } else {
            match body.frame().now_or_never() {
                Some(f) => f,
                None => {
                    io.write_all(out).await?;
                    out.clear();
                    continue;
                }
            }
        };
        let data = match next {
            None => break,
            Some(Err(e)) => {
                // Cut: what was gathered goes out, and the connection ends without the body's
                // end (a short length or no last chunk).
                tracing::debug!(error = %e, "response body failed; connection closed");
                io.write_all(out).await?;
                return Ok(false);
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(d) if !d.is_empty() => d,
                _ => continue,
            },
        };
        let data = match declared {
            Some(n) if sent + data.len() as u64 > n => {
                // Longer than declared: the declared bytes go out, then the connection ends.
                let keep = (n - sent) as usize;
                put(io, out, chunked, data.slice(..keep)).await?;
                io.write_all(out).await?;
                return Ok(false);
            }
            _ => data,
        };
        sent += data.len() as u64;
        put(io, out, chunked, data).await?;
    }
    if chunked {
        out.extend_from_slice(h1::LAST_CHUNK);
    }
    io.write_all(out).await?;
    out.clear();
    Ok(!close && declared.is_none_or(|n| n == sent))
}

/// Appends `data` (as one chunk when `chunked`) to `out`, or writes `out` and `data` together
/// when `data` is too large to copy.
async fn put<W: AsyncWrite + Unpin>(
    io: &mut W,
    out: &mut Vec<u8>,
    chunked: bool,
    data: Bytes,
) -> std::io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    if chunked {
        h1::chunk_head(out, data.len());
    }
    if data.len() <= FLATTEN_MAX {
        out.extend_from_slice(&data);
    } else {
        write_two(io, out, &data).await?;
        out.clear();
    }
    if chunked {
        out.extend_from_slice(h1::CHUNK_END);
    }
    Ok(())
}

/// Write `a` then `b` with gathered writes until both are out.
pub async fn write_two<W: AsyncWrite + Unpin>(
    io: &mut W,
    a: &[u8],
    b: &[u8],
) -> std::io::Result<()> {
    let mut done = 0usize;
    let total = a.len() + b.len();
    while done < total {
        let n = if done < a.len() {
            io.write_vectored(&[IoSlice::new(&a[done..]), IoSlice::new(b)])
                .await?
        } else {
            io.write(&b[done - a.len()..]).await?
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::body::ProxyBody;
    use http::StatusCode;
    use tokio::io::AsyncReadExt;

    fn resp(
        status: StatusCode,
        fields: &[(&'static str, &'static str)],
        body: ProxyBody,
    ) -> Response<ProxyBody> {
        let mut r = Response::new(body);
        *r.status_mut() = status;
        for (n, v) in fields {
            r.headers_mut().append(*n, HeaderValue::from_static(v));
        }
        r
    }

    async fn written(r: Response<ProxyBody>, head_request: bool) -> (Vec<u8>, bool) {
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        let mut out = Vec::new();
        let keep = write_response(&mut a, r, head_request, false, &mut out)
            .await
            .unwrap();
        drop(a);
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        (got, keep)
    }

    /// The body after the head, checked by a strict reader of the framing the head declares.
    fn body_of(raw: &[u8], head_request: bool) -> Option<Vec<u8>> {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut fields);
        let httparse::Status::Complete(n) = resp.parse(raw).ok()? else {
            return None;
        };
        let rest = &raw[n..];
        let field = |name: &str| {
            resp.headers
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case(name))
                .map(|f| std::str::from_utf8(f.value).unwrap().to_string())
        };
        if head_request {
            return rest.is_empty().then(Vec::new);
        }
        if let Some(len) = field("content-length") {
            let len: usize = len.parse().ok()?;
            return (rest.len() == len).then(|| rest.to_vec());
        }
        if field("transfer-encoding").as_deref() == Some("chunked") {
            let mut body = Vec::new();
            let mut at = rest;
            loop {
                let line_end = at.windows(2).position(|w| w == b"\r\n")?;
                let size =
                    usize::from_str_radix(std::str::from_utf8(&at[..line_end]).ok()?, 16).ok()?;
                at = &at[line_end + 2..];
                if size == 0 {
                    return (at == b"\r\n").then_some(body);
                }
                body.extend_from_slice(at.get(..size)?);
                if at.get(size..size + 2)? != b"\r\n" {
                    return None;
                }
                at = &at[size + 2..];
            }
        }
        None
    }

    #[test]
    fn parts_carry_the_request_line_and_every_field() {
        let raw = b"GET /a?b=1 HTTP/1.1\r\nHost: x.example\r\nAccept: */*\r\nX-Two: 1\r\nX-Two: 2\r\n\r\n";
        let p = parts(raw).unwrap();
        assert_eq!(p.method, Method::GET);
        assert_eq!(p.uri, "/a?b=1");
        assert_eq!(p.headers["host"], "x.example");
        assert_eq!(p.headers.get_all("x-two").iter().count(), 2);
        // The upload lane's methods are read too; others are hyper's.
        assert_eq!(
            parts(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap().method,
            Method::POST
        );
        assert!(parts(b"OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n").is_none());
        assert!(parts(b"GET / HTTP/1.1\r\nHost: x\r\n").is_none(), "partial");
    }

    #[tokio::test]
    async fn a_full_body_gets_its_length_in_one_piece() {
        let (raw, keep) = written(resp(StatusCode::OK, &[], ProxyBody::full("hello")), false).await;
        assert!(keep);
        assert_eq!(body_of(&raw, false).unwrap(), b"hello");
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("content-length: 5\r\n"), "{text}");
    }

    #[tokio::test]
    async fn a_head_request_gets_the_fields_and_no_body() {
        let r = resp(
            StatusCode::OK,
            &[("content-length", "10")],
            ProxyBody::Empty,
        );
        let (raw, keep) = written(r, true).await;
        assert!(keep);
        assert_eq!(body_of(&raw, true).unwrap(), b"");
        assert!(String::from_utf8_lossy(&raw).contains("content-length: 10\r\n"));
    }

    /// A fill's reader as a body of unknown length, and its writer.
    fn fill_body() -> (
        ProxyBody,
        crate::store::fill::FillWriter<crate::store::object::FillHead>,
    ) {
        let fills = crate::store::fill::Fills::new();
        let crate::store::fill::Join::Lead(w) = fills.join("k") else {
            panic!("first join leads");
        };
        let reader = w.reader();
        (ProxyBody::Fill { reader, len: None }, w)
    }

    #[tokio::test]
    async fn a_body_of_unknown_length_is_chunked() {
        let (body, mut w) = fill_body();
        let feed = tokio::spawn(async move {
            w.push(Bytes::from_static(b"hello ")).await;
            tokio::task::yield_now().await;
            w.push(Bytes::from(vec![b'x'; FLATTEN_MAX + 1])).await;
            w.push(Bytes::from_static(b"!")).await;
            let _ = w.finish();
        });
        let (raw, keep) = written(resp(StatusCode::OK, &[], body), false).await;
        feed.await.unwrap();
        assert!(keep);
        let got = body_of(&raw, false).expect("a well-framed chunked body");
        assert_eq!(got.len(), 6 + FLATTEN_MAX + 1 + 1);
        assert!(got.starts_with(b"hello x") && got.ends_with(b"x!"));
    }

    #[tokio::test]
    async fn a_body_cut_short_ends_the_connection_without_its_last_chunk() {
        let (body, mut w) = fill_body();
        let feed = tokio::spawn(async move {
            w.push(Bytes::from_static(b"part")).await;
            w.abort();
        });
        let (raw, keep) = written(resp(StatusCode::OK, &[], body), false).await;
        feed.await.unwrap();
        assert!(!keep, "a failed body ends the connection");
        assert!(
            body_of(&raw, false).is_none(),
            "never a complete-looking body"
        );
        assert!(String::from_utf8_lossy(&raw).contains("transfer-encoding: chunked\r\n"));
    }

    #[tokio::test]
    async fn a_declared_length_that_the_body_does_not_keep_closes() {
        let r = resp(
            StatusCode::OK,
            &[("content-length", "3")],
            ProxyBody::full("hello"),
        );
        let (raw, keep) = written(r, false).await;
        assert!(!keep);
        assert_eq!(
            body_of(&raw, false).unwrap(),
            b"hel",
            "only the declared bytes"
        );
        let r = resp(
            StatusCode::OK,
            &[("content-length", "9")],
            ProxyBody::full("hello"),
        );
        let (raw, keep) = written(r, false).await;
        assert!(
            !keep,
            "short of its length: the client must see a cut connection"
        );
        assert!(body_of(&raw, false).is_none());
    }

    #[tokio::test]
    async fn no_body_statuses_write_the_head_only() {
        let (raw, keep) = written(
            resp(
                StatusCode::NOT_MODIFIED,
                &[("etag", "\"a\"")],
                ProxyBody::Empty,
            ),
            false,
        )
        .await;
        assert!(keep);
        assert!(raw.ends_with(b"\r\n\r\n"));
        let (_, keep) = written(
            resp(
                StatusCode::OK,
                &[("connection", "close")],
                ProxyBody::full("x"),
            ),
            false,
        )
        .await;
        assert!(!keep, "the response said close");
    }
}
