//! The pass lane's request to the origin, written from the client's raw head.
//!
//! Contract: for a `plain` fast-path GET (`fast::FastReq`: origin form, one `Host`, none of
//! the fields that change framing or the cache decision, none of `Via`, `X-Forwarded-For`,
//! `Forwarded`, `Authorization` and the hop-by-hop `Proxy-Authorization`,
//! `Proxy-Authenticate`, `Trailer`), [`origin_head`] writes what the general stages would send
//! for its fill (`admit` then `forward::forward_headers`, encoded by the origin client):
//! `GET <target> HTTP/1.1`, every field line of the client's but `Connection` (the only
//! hop-by-hop field such a request can carry: its `close`/`keep-alive` token lists nothing
//! else), then this node's `Via`, `X-Forwarded-For` and `Forwarded`. None when the head does
//! not parse as such a request.

use std::net::IpAddr;

use crate::http::fast::MAX_FAST_HEADERS;

/// Append the origin request for the client request head `raw` (complete, as `fast::parse`
/// took it) to `out`; false (and `out` as it was) when `raw` is not a plain GET.
pub fn origin_head(out: &mut Vec<u8>, raw: &[u8], node_id: &str, client: IpAddr) -> bool {
    origin_head_of(out, raw, "GET", node_id, client)
}

/// [`origin_head`] for a plain request of `method` (the upload lane's `POST`, `PUT`, `PATCH`,
/// `DELETE`: their `Content-Length` goes as the client sent it, a plain number).
pub fn origin_head_of(
    out: &mut Vec<u8>,
    raw: &[u8],
    method: &str,
    node_id: &str,
    client: IpAddr,
) -> bool {
    write_head(out, raw, method, node_id, client, None)
}

/// [`origin_head_of`] for a plain upload whose chunked body (`http::chunked`) goes up as
/// `len` bytes of data: the client's `Transfer-Encoding` is left out (hop by hop, RFC 9112
/// §6.1) and `content-length: <len>` written after the client's fields.
pub fn origin_head_dechunked(
    out: &mut Vec<u8>,
    raw: &[u8],
    method: &str,
    node_id: &str,
    client: IpAddr,
    len: u64,
) -> bool {
    write_head(out, raw, method, node_id, client, Some(len))
}

fn write_head(
    out: &mut Vec<u8>,
    raw: &[u8],
    method: &str,
    node_id: &str,
    client: IpAddr,
    dechunked: Option<u64>,
) -> bool {
    let mut fields = [std::mem::MaybeUninit::uninit(); MAX_FAST_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    if !matches!(
        req.parse_with_uninit_headers(raw, &mut fields),
        Ok(httparse::Status::Complete(_))
    ) || req.method != Some(method)
        || req.version != Some(1)
    {
        return false;
    }
    let Some(target) = req.path.filter(|p| p.starts_with('/')) else {
        return false;
    };
    let start = out.len();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for f in req.headers.iter() {
        let name = f.name.as_bytes();
        if name.eq_ignore_ascii_case(b"connection")
            || (dechunked.is_some() && name.eq_ignore_ascii_case(b"transfer-encoding"))
        {
            continue;
        }
        if crate::http::fast::is_forwarding(name) {
            out.truncate(start);
            return false;
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(f.value);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(len) = dechunked {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"via: 1.1 ");
    out.extend_from_slice(node_id.as_bytes());
    out.extend_from_slice(b" (strait)\r\n");
    let mut ip = String::with_capacity(48);
    crate::http::forward::push_ip(&mut ip, client);
    out.extend_from_slice(b"x-forwarded-for: ");
    out.extend_from_slice(ip.as_bytes());
    out.extend_from_slice(b"\r\nforwarded: for=");
    match client {
        IpAddr::V4(_) => out.extend_from_slice(ip.as_bytes()),
        IpAddr::V6(_) => {
            out.extend_from_slice(b"\"[");
            out.extend_from_slice(ip.as_bytes());
            out.extend_from_slice(b"]\"");
        }
    }
    out.extend_from_slice(b";proto=http\r\n\r\n");
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str, client: &str) -> Option<String> {
        let mut out = b"kept".to_vec();
        let ok = origin_head(&mut out, raw.as_bytes(), "n1", client.parse().unwrap());
        assert_eq!(ok, out.len() > 4);
        ok.then(|| String::from_utf8(out[4..].to_vec()).unwrap())
    }

    #[test]
    fn the_clients_fields_go_up_with_this_nodes_own_and_without_connection() {
        let raw = "GET /a/b?c=d HTTP/1.1\r\nHost: Example.com:8080\r\nConnection: keep-alive\r\nUser-Agent: t/1\r\nAccept:  */*\r\n\r\n";
        assert_eq!(
            head(raw, "192.0.2.7").unwrap(),
            "GET /a/b?c=d HTTP/1.1\r\nHost: Example.com:8080\r\nUser-Agent: t/1\r\nAccept: */*\r\n\
             via: 1.1 n1 (strait)\r\nx-forwarded-for: 192.0.2.7\r\n\
             forwarded: for=192.0.2.7;proto=http\r\n\r\n"
        );
        let raw = "GET / HTTP/1.1\r\nhost: h\r\n\r\n";
        assert_eq!(
            head(raw, "2001:db8::1").unwrap(),
            "GET / HTTP/1.1\r\nhost: h\r\nvia: 1.1 n1 (strait)\r\n\
             x-forwarded-for: 2001:db8::1\r\nforwarded: for=\"[2001:db8::1]\";proto=http\r\n\r\n"
        );
    }

    #[test]
    fn an_upload_goes_up_as_its_method_with_its_length() {
        let raw = "POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\n";
        let mut out = Vec::new();
        assert!(origin_head_of(
            &mut out,
            raw.as_bytes(),
            "POST",
            "n1",
            "192.0.2.7".parse().unwrap()
        ));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nvia: 1.1 n1 (strait)\r\n\
             x-forwarded-for: 192.0.2.7\r\nforwarded: for=192.0.2.7;proto=http\r\n\r\n"
        );
        let mut out = Vec::new();
        assert!(!origin_head_of(
            &mut out,
            raw.as_bytes(),
            "PUT",
            "n1",
            "192.0.2.7".parse().unwrap()
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn a_dechunked_upload_goes_up_with_its_length_instead_of_its_coding() {
        let raw = "PUT /api HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n";
        let mut out = b"kept".to_vec();
        assert!(origin_head_dechunked(
            &mut out,
            raw.as_bytes(),
            "PUT",
            "n1",
            "192.0.2.7".parse().unwrap(),
            1234
        ));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "keptPUT /api HTTP/1.1\r\nHost: h\r\nX-A: b\r\ncontent-length: 1234\r\n\
             via: 1.1 n1 (strait)\r\nx-forwarded-for: 192.0.2.7\r\n\
             forwarded: for=192.0.2.7;proto=http\r\n\r\n"
        );
    }

    #[test]
    fn anything_but_a_plain_get_is_refused_and_leaves_out_as_it_was() {
        for raw in [
            "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET / HTTP/1.0\r\nHost: h\r\n\r\n",
            "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nVia: 1.1 other\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nforwarded: for=1.2.3.4\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Basic eDp5\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nProxy-Authorization: Basic eDp5\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nTrailer: x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\n",
            "GET / HTTP/1.1\r\nHo st: h\r\n\r\n",
        ] {
            assert_eq!(head(raw, "192.0.2.7"), None, "{raw:?}");
        }
    }
}
