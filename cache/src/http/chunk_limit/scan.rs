//! The scanner of `chunk_limit`: the HTTP/1.1 request framing of a client stream, followed
//! byte by byte as hyper reads it (heads with `httparse`, `Content-Length` bodies skipped,
//! chunked bodies read for their size lines only), and the verdict on a chunked body whose
//! declared sizes exceed its limit. Pure: bytes in, verdict out.

/// Header fields a head may have for the scanner to follow it (hyper's limit).
const MAX_FIELDS: usize = crate::http::server::MAX_HEADERS;

/// Where the scanner is in the stream.
#[derive(Debug, PartialEq, Eq)]
enum State {
    /// Reading a request head (bytes so far).
    Head(Vec<u8>),
    /// A `Content-Length` body: bytes left.
    Length(u64),
    /// A chunk-size line's hex digits: the size so far, and whether a digit came.
    Size(u64, bool),
    /// The rest of a chunk-size line (whitespace, extensions): up to its LF.
    SizeEnd(u64),
    /// A chunk's data: bytes left.
    Data(u64),
    /// After a chunk's data: up to its LF.
    DataEnd,
    /// The trailer section: whether the current line is empty so far.
    Trailers(bool),
    /// Not followed any more: everything passes.
    Off,
    /// A body declared too much.
    Over,
}

/// The request framing of a client stream, followed byte by byte (see the module contract).
#[derive(Debug)]
pub struct Scanner {
    state: State,
    /// Request heads read (the current request's index is one less).
    heads: u64,
    /// Sizes declared by the current body's chunks.
    declared: u64,
    /// The current body's limit.
    limit: u64,
    max_head: usize,
}

/// A scanner's verdict on the bytes fed so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Fine,
    /// Request `n`'s body declared more than its limit.
    Over(u64),
}

impl Scanner {
    /// A scanner for a connection whose heads are at most `max_head` bytes.
    pub fn new(max_head: usize) -> Scanner {
        Scanner {
            state: State::Head(Vec::new()),
            heads: 0,
            declared: 0,
            limit: u64::MAX,
            max_head,
        }
    }

    /// Follow `bytes`; `limit` is read when a request head is complete.
    pub fn feed(&mut self, mut bytes: &[u8], limit: impl Fn() -> u64) -> Verdict {
        while !bytes.is_empty() {
            let used = match &mut self.state {
                State::Off => return Verdict::Fine,
                State::Over => return Verdict::Over(self.heads - 1),
                State::Head(_) => self.head(bytes, &limit),
                State::Length(left) | State::Data(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    if *left == 0 {
                        self.state = match self.state {
                            State::Length(_) => State::Head(Vec::new()),
                            _ => State::DataEnd,
                        };
                    }
                    n as usize
                }
                State::Size(size, any) => match (bytes[0] as char).to_digit(16) {
                    Some(d) => {
                        let Some(next) = size.checked_mul(16).and_then(|s| s.checked_add(d.into()))
                        else {
                            self.state = State::Off; // hyper refuses the overflow
                            return Verdict::Fine;
                        };
                        (*size, *any) = (next, true);
                        if self.declared.saturating_add(next) > self.limit {
                            self.state = State::Over;
                            return Verdict::Over(self.heads - 1);
                        }
                        1
                    }
                    None if *any => {
                        // The byte after the digits is read again, as the line's rest.
                        self.state = State::SizeEnd(*size);
                        0
                    }
                    None => {
                        self.state = State::Off; // hyper refuses a size without digits
                        return Verdict::Fine;
                    }
                },
                State::SizeEnd(size) => {
                    let size = *size;
                    match bytes.iter().position(|&b| b == b'\n') {
                        None => bytes.len(),
                        Some(i) => {
                            self.declared += size;
                            self.state = if size == 0 {
                                State::Trailers(true)
                            } else {
                                State::Data(size)
                            };
                            i + 1
                        }
                    }
                }
                State::DataEnd => match bytes.iter().position(|&b| b == b'\n') {
                    None => bytes.len(),
                    Some(i) => {
                        self.state = State::Size(0, false);
                        i + 1
                    }
                },
                State::Trailers(empty) => {
                    let b = bytes[0];
                    if b == b'\n' {
                        self.state = if *empty {
                            State::Head(Vec::new())
                        } else {
                            State::Trailers(true)
                        };
                    } else if b != b'\r' {
                        *empty = false;
                    }
                    1
                }
            };
            bytes = &bytes[used..];
        }
        match self.state {
            State::Over => Verdict::Over(self.heads - 1),
            _ => Verdict::Fine,
        }
    }

    /// Take head bytes from `bytes`; how many were used (the rest follow the head).
    fn head(&mut self, bytes: &[u8], limit: &impl Fn() -> u64) -> usize {
        let State::Head(buf) = &mut self.state else {
            return 0;
        };
        if buf.is_empty() {
            // A head that starts this read is parsed where it lies: no copy of it (or of the
            // body after it), and no buffer, when it is whole (the usual case).
            let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
            let mut req = httparse::Request::new(&mut fields);
            match req.parse(bytes) {
                Ok(httparse::Status::Complete(end)) => {
                    let next = body_of(&req);
                    self.follow(next, limit);
                    return end;
                }
                Ok(httparse::Status::Partial) => {}
                Err(_) => {
                    self.state = State::Off; // hyper answers it (400) and closes
                    return bytes.len();
                }
            }
        }
        let State::Head(buf) = &mut self.state else {
            return 0;
        };
        let before = buf.len();
        buf.extend_from_slice(bytes);
        // Parsed again only when the new bytes may end it (a head trickled byte by byte must
        // not cost a parse of the whole buffer per byte).
        let tail = &buf[before.saturating_sub(3)..];
        let may_end =
            tail.windows(2).any(|w| w == b"\n\n") || tail.windows(3).any(|w| w == b"\n\r\n");
        if !may_end {
            if buf.len() > self.max_head {
                self.state = State::Off; // hyper answers 431
            }
            return bytes.len();
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut req = httparse::Request::new(&mut fields);
        let end = match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() <= self.max_head => return bytes.len(),
            _ => {
                self.state = State::Off; // hyper answers it (400, 431) and closes
                return bytes.len();
            }
        };
        let next = body_of(&req);
        self.follow(next, limit);
        end - before
    }

    /// A request head ended: follow its body.
    fn follow(&mut self, next: Body, limit: &impl Fn() -> u64) {
        self.heads += 1;
        self.declared = 0;
        self.state = match next {
            Body::None => State::Head(Vec::new()),
            Body::Length(n) => State::Length(n),
            Body::Chunked => {
                self.limit = limit();
                State::Size(0, false)
            }
            Body::Unknown => State::Off,
        };
    }
}

/// How a request head frames its body, as far as the scanner follows it.
enum Body {
    None,
    Length(u64),
    Chunked,
    /// Anything hyper may read otherwise or refuse: an upgrade, CONNECT, an odd length or
    /// coding.
    Unknown,
}

fn body_of(req: &httparse::Request<'_, '_>) -> Body {
    if req.method == Some("CONNECT") {
        return Body::Unknown;
    }
    let mut length = None;
    let mut coding = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("upgrade") {
            return Body::Unknown;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if coding.is_some() {
                return Body::Unknown;
            }
            coding = Some(h.value);
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let Some(n) = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
            else {
                return Body::Unknown;
            };
            if length.is_some_and(|l| l != n) {
                return Body::Unknown;
            }
            length = Some(n);
        }
    }
    match (coding, length) {
        (Some(c), None) if c.trim_ascii().eq_ignore_ascii_case(b"chunked") => Body::Chunked,
        (Some(_), _) => Body::Unknown,
        (None, Some(0)) | (None, None) => Body::None,
        (None, Some(n)) => Body::Length(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    /// Feed `stream` in pieces of `step` bytes against a 1 MiB limit.
    fn scan(stream: &[u8], step: usize) -> Verdict {
        let mut s = Scanner::new(64 * 1024);
        let mut last = Verdict::Fine;
        for piece in stream.chunks(step) {
            last = s.feed(piece, || MIB);
            if last != Verdict::Fine {
                break;
            }
        }
        last
    }

    fn post(framing: &str, body: &str) -> Vec<u8> {
        format!("POST /up HTTP/1.1\r\nHost: x\r\n{framing}\r\n{body}").into_bytes()
    }

    const CHUNKED: &str = "Transfer-Encoding: chunked\r\n";

    #[test]
    fn a_size_over_the_limit_trips_at_its_digits_whole_or_split() {
        for step in [1, 3, 1000] {
            assert_eq!(scan(&post(CHUNKED, "FFFFFFFF"), step), Verdict::Over(0));
            assert_eq!(scan(&post(CHUNKED, "100001\r\n"), step), Verdict::Over(0));
            // Exactly the limit is allowed.
            assert_eq!(scan(&post(CHUNKED, "100000\r\n"), step), Verdict::Fine);
        }
    }

    #[test]
    fn the_sizes_of_a_body_add_up() {
        let body = format!("80000\r\n{}\r\n80001\r\n", "x".repeat(0x80000));
        assert_eq!(scan(&post(CHUNKED, &body), 4096), Verdict::Over(0));
        let body = format!("80000;ext=1\r\n{}\r\n80000\r\n", "x".repeat(0x80000));
        assert_eq!(scan(&post(CHUNKED, &body), 4096), Verdict::Fine);
    }

    #[test]
    fn requests_are_followed_in_order_across_bodies_and_trailers() {
        let mut stream = post("Content-Length: 5\r\n", "hello");
        stream.extend(post(CHUNKED, "5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"));
        stream.extend(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
        stream.extend(post(CHUNKED, "200000\r\n"));
        for step in [1, 7, 10_000] {
            assert_eq!(scan(&stream, step), Verdict::Over(3), "step {step}");
        }
        // A Content-Length body's bytes are never read as a size line.
        let stream = post("Content-Length: 8\r\n", "FFFFFFFF");
        assert_eq!(scan(&stream, 3), Verdict::Fine);
    }

    #[test]
    fn a_head_split_anywhere_is_found_once_whole() {
        let stream = post(CHUNKED, "200000\r\n");
        for step in 1..40 {
            assert_eq!(scan(&stream, step), Verdict::Over(0), "step {step}");
        }
        let lf = b"POST /up HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n200000\n";
        assert_eq!(scan(lf, 1), Verdict::Over(0), "bare LF line ends");
    }

    #[test]
    fn what_hyper_refuses_or_does_not_frame_so_stops_the_watch() {
        let h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00FFFFFFFF";
        assert_eq!(scan(h2, 5), Verdict::Fine);
        let upgrade = post("Upgrade: websocket\r\nConnection: upgrade\r\n", "FFFFFFFF");
        assert_eq!(scan(&upgrade, 5), Verdict::Fine);
        let two = post(
            "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
            "FFFFFFFF",
        );
        assert_eq!(scan(&two, 5), Verdict::Fine);
        assert_eq!(scan(&post(CHUNKED, "zz\r\nFFFFFFFF\r\n"), 5), Verdict::Fine);
    }
}
