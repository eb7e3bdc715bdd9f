//! A strict HTTP/1.1 response reader for what strait itself writes: any framing error in the
//! node's output fails the test (`Err` with the reason), where `read_response` would guess.
//!
//! Checked: the status line is `HTTP/1.1 DDD reason` with CRLF; every line ends in CRLF (no
//! bare LF, no obs-fold); field names are tokens with no space before the colon; values hold
//! no control characters but HTAB; at most one `Content-Length`, digits only; never
//! `Content-Length` with `Transfer-Encoding`; `Transfer-Encoding` is exactly `chunked`; no
//! body framing on 1xx/204 and no `Transfer-Encoding` on 304; chunk sizes are hex digits
//! alone with CRLF after the size and the data; a body is never cut short; and after a
//! response that says `Connection: close`, [`expect_closed`] finds nothing more.
//!
//! A body the connection's end cuts short (fewer bytes than `Content-Length`, a chunked body
//! without its last chunk) is an error that starts with [`INCOMPLETE`] and names the status,
//! `(status 200)`: a cut a client can see, told apart from a stall (a read timeout) and from a
//! framing error.

use std::io::BufRead;

/// One response, read strictly.
#[derive(Debug, Clone)]
pub struct Strict {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Strict {
    /// The value of `name` (case-insensitive), the first if several.
    pub fn header(&self, name: &str) -> Option<&str> {
        let (_, v) = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))?;
        Some(v.as_str())
    }

    /// The response said `Connection: close`.
    pub fn closes(&self) -> bool {
        self.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("connection")
                && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
        })
    }
}

/// How the error for a body cut short by the connection's end starts.
pub const INCOMPLETE: &str = "incomplete";

/// One CRLF-terminated line without its CRLF; None at a clean end of stream.
fn line(r: &mut impl BufRead) -> Result<Option<String>, String> {
    let mut raw = Vec::new();
    let n = r
        .read_until(b'\n', &mut raw)
        .map_err(|e| format!("read: {e}"))?;
    if n == 0 {
        return Ok(None);
    }
    if !raw.ends_with(b"\n") {
        return Err(format!(
            "{INCOMPLETE}: the connection ended inside a line: {:?}",
            String::from_utf8_lossy(&raw)
        ));
    }
    if !raw.ends_with(b"\r\n") {
        return Err(format!(
            "line without CRLF: {:?}",
            String::from_utf8_lossy(&raw)
        ));
    }
    raw.truncate(raw.len() - 2);
    if raw.contains(&b'\r') {
        return Err(format!("stray CR in {:?}", String::from_utf8_lossy(&raw)));
    }
    String::from_utf8(raw)
        .map_err(|e| format!("not UTF-8: {e}"))
        .map(Some)
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Read one response (interim 1xx ones too: the caller loops); Ok(None) when the connection
/// closed cleanly before a status line.
pub fn read(r: &mut impl BufRead, head_request: bool) -> Result<Option<Strict>, String> {
    let Some(status_line) = line(r)? else {
        return Ok(None);
    };
    let rest = status_line
        .strip_prefix("HTTP/1.1 ")
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let code = rest
        .get(..3)
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()));
    let status: u16 = code
        .and_then(|c| c.parse().ok())
        .filter(|s| (100..=599).contains(s) && rest.as_bytes().get(3) == Some(&b' '))
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    loop {
        let l = line(r)?.ok_or("connection closed inside the head")?;
        if l.is_empty() {
            break;
        }
        if l.starts_with([' ', '\t']) {
            return Err(format!("obs-fold: {l:?}"));
        }
        let (n, v) = l
            .split_once(':')
            .ok_or_else(|| format!("no colon: {l:?}"))?;
        if n.is_empty() || !n.chars().all(is_tchar) {
            return Err(format!("bad field name {n:?}"));
        }
        if v.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!("control character in {n}"));
        }
        headers.push((n.to_string(), v.trim_matches([' ', '\t']).to_string()));
    }
    let resp = Strict {
        status,
        headers,
        body: Vec::new(),
    };
    frame(r, resp, head_request)
}

fn frame(
    r: &mut impl BufRead,
    mut resp: Strict,
    head_request: bool,
) -> Result<Option<Strict>, String> {
    let named = |n: &str| {
        resp.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(n))
            .count()
    };
    let (cls, tes) = (named("content-length"), named("transfer-encoding"));
    if cls > 1 {
        return Err(format!("{cls} Content-Length fields"));
    }
    if cls == 1 && tes > 0 {
        return Err("Content-Length with Transfer-Encoding".into());
    }
    if tes > 1
        || resp
            .header("transfer-encoding")
            .is_some_and(|v| v != "chunked")
    {
        return Err(format!(
            "Transfer-Encoding {:?}",
            resp.header("transfer-encoding")
        ));
    }
    let length = match resp.header("content-length") {
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => Some(
            v.parse::<usize>()
                .map_err(|e| format!("Content-Length {v}: {e}"))?,
        ),
        Some(v) => return Err(format!("Content-Length {v:?}")),
        None => None,
    };
    let s = resp.status;
    if (s < 200 || s == 204) && (cls + tes > 0) {
        return Err(format!("{s} with body framing"));
    }
    if s == 304 && tes > 0 {
        return Err("304 with Transfer-Encoding".into());
    }
    if head_request || s < 200 || s == 204 || s == 304 {
        return Ok(Some(resp));
    }
    let status = |e: String| format!("{e} (status {s})");
    if tes == 1 {
        resp.body = chunked(r).map_err(status)?;
    } else if let Some(n) = length {
        let mut body = vec![0; n];
        r.read_exact(&mut body)
            .map_err(|e| cut_or_stall(&e, &format!("body cut short of {n} bytes")))
            .map_err(status)?;
        resp.body = body;
    } else {
        if !resp.closes() {
            return Err("no framing on a connection not marked close".into());
        }
        r.read_to_end(&mut resp.body)
            .map_err(|e| format!("read: {e}"))?;
    }
    Ok(Some(resp))
}

/// The error of a body read that failed: the connection's end ([`INCOMPLETE`]), or anything
/// else (a timeout: the node stalled).
fn cut_or_stall(e: &std::io::Error, what: &str) -> String {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => {
            format!("{INCOMPLETE}: {what}: {e}")
        }
        _ => format!("read: {what}: {e}"),
    }
}

fn chunked(r: &mut impl BufRead) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let size = line(r)?
            .ok_or_else(|| format!("{INCOMPLETE}: chunked body cut before its last chunk"))?;
        if size.is_empty() || size.len() > 16 || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("bad chunk size line {size:?}"));
        }
        let n = usize::from_str_radix(&size, 16).map_err(|e| format!("chunk size: {e}"))?;
        if n == 0 {
            // No trailers from strait: the blank line ends the body.
            let end = line(r)?
                .ok_or_else(|| format!("{INCOMPLETE}: no blank line after the last chunk"))?;
            return if end.is_empty() {
                Ok(body)
            } else {
                Err(format!("trailer {end:?}"))
            };
        }
        let mut data = vec![0; n];
        r.read_exact(&mut data)
            .map_err(|e| cut_or_stall(&e, "chunk cut short"))?;
        body.extend_from_slice(&data);
        let crlf = line(r)?.ok_or_else(|| format!("{INCOMPLETE}: no CRLF after chunk data"))?;
        if !crlf.is_empty() {
            return Err("bytes after chunk data".into());
        }
    }
}

/// The final response (interim ones skipped), which must be there.
pub fn read_final(r: &mut impl BufRead, head_request: bool) -> Result<Strict, String> {
    loop {
        let resp = read(r, head_request)?.ok_or("connection closed without a response")?;
        if resp.status >= 200 {
            return Ok(resp);
        }
    }
}

/// Nothing more comes on the connection: it closes (or resets) with no byte after the end of
/// the last response.
pub fn expect_closed(r: &mut impl BufRead) -> Result<(), String> {
    let mut rest = Vec::new();
    match r.read_to_end(&mut rest) {
        Ok(_) if rest.is_empty() => Ok(()),
        Ok(_) => Err(format!(
            "{} bytes after the response: {:?}",
            rest.len(),
            String::from_utf8_lossy(&rest[..rest.len().min(200)])
        )),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && rest.is_empty() => Ok(()),
        Err(e) => Err(format!("connection not closed: {e}")),
    }
}
