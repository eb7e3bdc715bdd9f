//! The pass lane's answer head, written from the origin's raw response head rather than from a
//! field map.
//!
//! Pure: no I/O. Contract: for a head the origin client accepted (`parse_response_raw`: the
//! checks of every head), [`Relay`] holds its fields as the general stages' map would after
//! `strip_hop_by_hop` and `ensure_date`, and [`Relay::client_head`] writes what they write for
//! an answer that is not stored (`append_via`, the route's targeted fields removed,
//! `append_fwd`, the persistence `Set-Cookie`, then `lite::write_response`'s head): the same
//! bytes. That map's ways are kept: names lower-cased, the lines of one name together where
//! the name first came, a removed name's place taken by the last one (`HeaderMap::remove`
//! swaps), an added name last, a replaced value (`Via` and `Cache-Status` combined with this
//! node's member) in the name's place. [`Relay::decision_fields`] is the map the storage
//! decision reads ([`STORE_READS`] and the route's targeted fields only), which decides as the
//! whole map does.

use std::mem::MaybeUninit;

use bytes::Bytes;
use http::header::{
    AGE, CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, DATE, ETAG, EXPIRES, LAST_MODIFIED, SET_COOKIE,
    TRANSFER_ENCODING, VARY, VIA,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version};

use crate::http::h1::{self, Framing};
use crate::origin::h1::head::MAX_FIELDS;

/// The response fields the storage decision reads (`fill::store_decision`: `policy::storable`,
/// `Set-Cookie`, `Content-Length`), besides the route's targeted cache-control fields.
pub const STORE_READS: [HeaderName; 9] = [
    CACHE_CONTROL,
    EXPIRES,
    DATE,
    LAST_MODIFIED,
    AGE,
    ETAG,
    VARY,
    SET_COOKIE,
    CONTENT_LENGTH,
];

/// Names, besides the origin's, a relayed head may hold (kept as this small set: one byte each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// The origin's lines of one name, by the index of its first line.
    Origin(u8),
    Date,
    Via,
    CacheStatus,
    Cookie,
}

const CACHE_STATUS: &[u8] = b"cache-status";
/// Hop-by-hop whether or not `Connection` names them (`policy::headers::is_hop_by_hop`).
const HOP_BY_HOP: [&[u8]; 9] = [
    b"connection",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"keep-alive",
    b"proxy-connection",
];

/// An origin head's fields in the order the general stages' map holds them (see the module
/// doc), with what the lane changes.
pub struct Relay<'a> {
    pub status: StatusCode,
    pub version: Version,
    fields: &'a [httparse::Header<'a>],
    order: [Slot; MAX_FIELDS + 4],
    len: usize,
    date: &'a [u8],
    /// `Via` and `Cache-Status` values that replace the origin's lines (combined with ours).
    via: Option<Vec<u8>>,
    cache_status: Option<Vec<u8>>,
    /// This node's id (its own `Via` entry) and `Cache-Status` member.
    node_id: &'a str,
    own_status: &'a [u8],
    cookie: Option<&'a [u8]>,
}

impl<'a> Relay<'a> {
    /// The head `raw` (as the origin client accepted it) with its hop-by-hop fields removed and
    /// `date` (an IMF-fixdate) added when it has no `Date`; None when it does not parse.
    pub fn new(
        raw: &'a [u8],
        date: &'a [u8],
        storage: &'a mut [MaybeUninit<httparse::Header<'a>>; MAX_FIELDS],
    ) -> Option<Relay<'a>> {
        let mut resp = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, raw, storage)
            .ok()?;
        if !parsed.is_complete() {
            return None;
        }
        let status = StatusCode::from_u16(resp.code?).ok()?;
        let version = if resp.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        let fields: &'a mut [httparse::Header<'a>] = std::mem::take(&mut resp.headers);
        let mut relay = Relay {
            status,
            version,
            fields,
            order: [Slot::Date; MAX_FIELDS + 4],
            len: 0,
            date,
            via: None,
            cache_status: None,
            node_id: "",
            own_status: &[],
            cookie: None,
        };
        for (i, f) in relay.fields.iter().enumerate() {
            if relay.find(f.name.as_bytes()).is_none() {
                relay.push(Slot::Origin(i as u8));
            }
        }
        relay.strip_hop_by_hop();
        if relay.find(b"date").is_none() {
            relay.push(Slot::Date);
        }
        Some(relay)
    }

    /// `strip_hop_by_hop`: the names `Connection` lists, then the fixed set as the map lists it.
    fn strip_hop_by_hop(&mut self) {
        let fields = self.fields;
        if let Some(Slot::Origin(first)) = self.find(b"connection").map(|at| self.order[at]) {
            let name = fields[first as usize].name.as_bytes();
            for f in fields[first as usize..].iter() {
                if !f.name.as_bytes().eq_ignore_ascii_case(name) {
                    continue;
                }
                for token in f.value.split(|&b| b == b',') {
                    self.remove(token.trim_ascii());
                }
            }
        }
        let mut fixed = [Slot::Date; MAX_FIELDS + 4];
        let mut n = 0;
        for &slot in &self.order[..self.len] {
            let name = self.name(slot);
            if HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name)) {
                fixed[n] = slot;
                n += 1;
            }
        }
        for &slot in &fixed[..n] {
            let name = self.name(slot);
            self.remove(name);
        }
    }

    fn push(&mut self, slot: Slot) {
        self.order[self.len] = slot;
        self.len += 1;
    }

    fn name(&self, slot: Slot) -> &'a [u8] {
        match slot {
            Slot::Origin(i) => self.fields[i as usize].name.as_bytes(),
            Slot::Date => b"date",
            Slot::Via => b"via",
            Slot::CacheStatus => CACHE_STATUS,
            Slot::Cookie => b"set-cookie",
        }
    }

    /// Where the name `name` (any case) is in the order.
    fn find(&self, name: &[u8]) -> Option<usize> {
        self.order[..self.len]
            .iter()
            .position(|&s| self.name(s).eq_ignore_ascii_case(name))
    }

    /// `HeaderMap::remove`: the last name takes the removed one's place.
    fn remove(&mut self, name: &[u8]) {
        if let Some(at) = self.find(name) {
            self.len -= 1;
            self.order[at] = self.order[self.len];
        }
    }

    /// The values of the origin's lines of the name whose first line is `first`, in order.
    fn origin_values(&self, first: u8) -> impl Iterator<Item = &'a [u8]> + '_ {
        let fields = self.fields;
        let name = fields[first as usize].name.as_bytes();
        fields[first as usize..]
            .iter()
            .filter(move |f| f.name.as_bytes().eq_ignore_ascii_case(name))
            .map(|f| f.value)
    }

    /// Whether any of `names` is in the head.
    pub fn has_any(&self, names: &[HeaderName]) -> bool {
        names
            .iter()
            .any(|n| self.find(n.as_str().as_bytes()).is_some())
    }

    /// The map the storage decision reads: the head's fields named in [`STORE_READS`] or
    /// `targets`, their values slices of `raw` (the bytes [`Relay::new`] read).
    pub fn decision_fields(&self, raw: &Bytes, targets: &[HeaderName]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for &slot in &self.order[..self.len] {
            let name = self.name(slot);
            let known = STORE_READS.iter().chain(targets);
            let Some(key) = known
                .into_iter()
                .find(|k| name.eq_ignore_ascii_case(k.as_str().as_bytes()))
            else {
                continue;
            };
            match slot {
                Slot::Origin(first) => {
                    for v in self.origin_values(first) {
                        let value = if v.is_empty() {
                            HeaderValue::from_bytes(v)
                        } else {
                            HeaderValue::from_maybe_shared(raw.slice_ref(v))
                        };
                        if let Ok(value) = value {
                            map.append(key.clone(), value);
                        }
                    }
                }
                _ => {
                    if let Ok(value) = HeaderValue::from_bytes(self.date) {
                        map.append(key.clone(), value);
                    }
                }
            }
        }
        map
    }

    /// Write the client's head for an answer that is not stored (see the module doc) to `out`:
    /// this node's `Via` (`node_id`) and `Cache-Status` member (`own_status`: `<node>;
    /// fwd=miss`), without the names in `strip`, with `cookie`; framed as
    /// `lite::write_response` frames a body of `exact` bytes (when known); `connection: close`
    /// when `close`. Returns the framing.
    pub fn client_head(
        &mut self,
        node_id: &'a str,
        own_status: &'a [u8],
        strip: &[HeaderName],
        cookie: Option<&'a [u8]>,
        (exact, close): (Option<u64>, bool),
        out: &mut Vec<u8>,
    ) -> Framing {
        // `append_via`.
        self.node_id = node_id;
        if let Some(at) = self.find(b"via") {
            if let Slot::Origin(first) = self.order[at] {
                let mut own = Vec::new();
                self.own_via(&mut own);
                self.via = Some(combined(self.origin_values(first), &own));
            }
        } else {
            self.push(Slot::Via);
        }
        // The route's targeted fields.
        if self.has_any(strip) {
            for name in strip {
                self.remove(name.as_str().as_bytes());
            }
        }
        // `append_fwd`.
        self.own_status = own_status;
        match self.find(CACHE_STATUS).map(|at| self.order[at]) {
            Some(Slot::Origin(first)) => {
                self.cache_status = Some(combined(self.origin_values(first), own_status));
            }
            Some(_) => {}
            None => self.push(Slot::CacheStatus),
        }
        // `forward::with_cookie`.
        if let Some(c) = cookie {
            self.cookie = Some(c);
            if self.find(b"set-cookie").is_none() {
                self.push(Slot::Cookie);
            }
        }
        // `lite::write_response`.
        let coded = self.find(TRANSFER_ENCODING.as_str().as_bytes()).is_some();
        let length = match self.find(CONTENT_LENGTH.as_str().as_bytes()) {
            Some(at) => match self.order[at] {
                Slot::Origin(first) => self.origin_values(first).next(),
                _ => None,
            },
            None => None,
        };
        let framing = h1::framing_of(false, self.status, coded, length, exact);
        h1::status_line(out, self.status);
        let mut has_close = false;
        for &slot in &self.order[..self.len] {
            let name = self.name(slot);
            let connection = name.eq_ignore_ascii_case(CONNECTION.as_str().as_bytes());
            if slot == Slot::Via {
                out.extend_from_slice(b"via: ");
                self.own_via(out);
                out.extend_from_slice(b"\r\n");
                continue;
            }
            self.each_value(slot, |value| {
                has_close |= connection && value.eq_ignore_ascii_case(b"close");
                let at = out.len();
                out.extend_from_slice(name);
                out[at..].make_ascii_lowercase();
                out.extend_from_slice(b": ");
                out.extend_from_slice(value);
                out.extend_from_slice(b"\r\n");
            });
        }
        let date = self.find(DATE.as_str().as_bytes()).is_none();
        h1::end_head(out, framing, date, close && !has_close);
        framing
    }

    /// The `Cache-Status` value [`Relay::client_head`] wrote (for the access log).
    pub fn cache_status(&self) -> Vec<u8> {
        let mut first = None;
        if let Some(at) = self.find(CACHE_STATUS) {
            self.each_value(self.order[at], |v| {
                first.get_or_insert(v.to_vec());
            });
        }
        first.unwrap_or_default()
    }

    /// This node's own `Via` entry (`append_via`): `<proto> <node_id> (strait)`.
    fn own_via(&self, out: &mut Vec<u8>) {
        let proto: &[u8] = if self.version == Version::HTTP_10 {
            b"1.0"
        } else {
            b"1.1"
        };
        out.extend_from_slice(proto);
        out.push(b' ');
        out.extend_from_slice(self.node_id.as_bytes());
        out.extend_from_slice(b" (strait)");
    }

    /// Each value of one name, as the client head writes them (not this node's own `Via`).
    fn each_value(&self, slot: Slot, mut f: impl FnMut(&[u8])) {
        let name = self.name(slot);
        let replaced = if name.eq_ignore_ascii_case(VIA.as_str().as_bytes()) {
            self.via.as_deref()
        } else if name.eq_ignore_ascii_case(CACHE_STATUS) {
            self.cache_status.as_deref()
        } else {
            None
        };
        match (slot, replaced) {
            (Slot::Origin(_), Some(v)) => f(v),
            (Slot::Origin(first), None) => {
                self.origin_values(first).for_each(&mut f);
                if name.eq_ignore_ascii_case(b"set-cookie") {
                    self.cookie.into_iter().for_each(f);
                }
            }
            (Slot::Date, _) => f(self.date),
            (Slot::Via, _) => {}
            (Slot::CacheStatus, _) => f(self.own_status),
            (Slot::Cookie, _) => self.cookie.into_iter().for_each(f),
        }
    }
}

/// `policy::headers::append_list_member`: the non-empty values, trimmed, then `member`, joined
/// by ", ".
fn combined<'v>(values: impl Iterator<Item = &'v [u8]>, member: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values.map(<[u8]>::trim_ascii).filter(|v| !v.is_empty()) {
        out.extend_from_slice(v);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(member);
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use http::Method;

    use super::*;
    use crate::origin::h1::head::parse_response;
    use crate::policy::cache_control::CacheControl;
    use crate::policy::cache_status::{append_fwd, own_fwd_value, Fwd};
    use crate::policy::freshness::FreshnessParams;
    use crate::policy::headers::{append_via, content_length, ensure_date, strip_hop_by_hop};
    use crate::policy::storable::{storability, StoreParams};

    const NODE: &str = "n1";

    /// The general stages' way (the lane's before it read raw heads): the head as a map,
    /// cleaned, added to and written by `h1::encode_head`.
    fn by_map(raw: &str, now: SystemTime, add: &Add) -> Vec<u8> {
        let head = parse_response(raw.as_bytes(), false).unwrap().unwrap();
        let mut h = head.headers;
        strip_hop_by_hop(&mut h);
        ensure_date(&mut h, now);
        append_via(&mut h, head.version, NODE);
        if add.strip.iter().any(|t| h.contains_key(t)) {
            for t in add.strip {
                h.remove(t);
            }
        }
        append_fwd(&mut h, NODE, Fwd::Miss);
        if let Some(c) = add.cookie {
            h.append(SET_COOKIE, HeaderValue::from_static(c));
        }
        let close = add.close || h1::says_close(&h);
        let framing = h1::framing(false, head.status, &h, add.exact);
        let mut out = Vec::new();
        h1::encode_head(&mut out, head.status, &h, framing, close);
        out
    }

    /// The lane's way.
    fn by_relay(raw: &str, now: SystemTime, add: &Add) -> Vec<u8> {
        let date = httpdate::fmt_http_date(now);
        let mut storage = [MaybeUninit::uninit(); MAX_FIELDS];
        let mut relay = Relay::new(raw.as_bytes(), date.as_bytes(), &mut storage).unwrap();
        let own = own_fwd_value(NODE, Fwd::Miss).unwrap();
        let mut out = b"junk".to_vec();
        out.clear();
        let cookie = add.cookie.map(str::as_bytes);
        let framing = relay.client_head(
            NODE,
            own.as_bytes(),
            add.strip,
            cookie,
            (add.exact, add.close),
            &mut out,
        );
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut written = httparse::Response::new(&mut fields);
        assert!(written.parse(&out).unwrap().is_complete());
        let status = written.headers.iter().find(|f| f.name == "cache-status");
        assert_eq!(relay.cache_status(), status.unwrap().value, "{raw}");
        let bodiless = matches!(written.code, Some(204 | 304));
        assert_eq!(framing == Framing::None, bodiless, "{raw}");
        out
    }

    struct Add<'s> {
        strip: &'s [HeaderName],
        cookie: Option<&'static str>,
        exact: Option<u64>,
        close: bool,
    }

    const HEADS: &[&str] = &[
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\nContent-Length: 5\r\nDate: Mon, 07 Dec 2026 05:00:00 GMT\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nCache-Control: no-store\r\n\r\n",
        "HTTP/1.1 200 OK\r\nCache-Control: private\r\n\r\n",
        "HTTP/1.0 200 OK\r\nCache-Control: private\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: 1\r\nConnection: close, X-A, x-b , keep-alive,,\r\nX-B: 2\r\nKeep-Alive: timeout=5\r\nX-C: 3\r\nProxy-Connection: x\r\nUpgrade: h2c\r\nCache-Control: no-store\r\nContent-Length: 3\r\nX-D: 4\r\nConnection: x-c\r\nTE: trailers\r\nTrailer: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX: y\r\nset-cookie: b=2\r\nContent-Length: 1\r\n\r\n",
        "HTTP/1.0 200 OK\r\nVia: 1.0 a\r\nCache-Control: no-store\r\nVia:  \r\nX: y\r\nVIA: 1.1 b (x)\r\n\r\n",
        "HTTP/1.1 200 OK\r\nCache-Status: origin; hit\r\nX-Strip: 1\r\nCache-Control: no-store\r\ncache-status: other; fwd=miss\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 204 No Content\r\nContent-Length: 4\r\nCache-Control: no-store\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nDate: Mon, 07 Dec 2026 05:00:00 GMT\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-Two: 1\r\nA: b\r\nx-two: 2\r\nCDN-Cache-Control: no-store\r\nX-Strip: s\r\nZ: last\r\nContent-Length: 7, 7\r\n\r\n",
        "HTTP/1.1 404 Whatever Reason\r\nX-Empty:\r\nVary: *\r\nContent-Length: 10\r\nX-Tab: a\tb\r\nX-Obs: café\r\n\r\n",
        "HTTP/1.1 500 Internal Server Error\r\nConnection: Content-Length, x-strip\r\nContent-Length: 3\r\nX-Strip: 1\r\nVia: 1.1 up\r\n\r\n",
        "HTTP/1.1 299 Odd\r\nconnection: Connection, keep-alive\r\nkeep-alive: 1\r\nX: 1\r\n\r\n",
    ];

    #[test]
    fn the_head_is_the_bytes_the_map_would_write() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let strips: [&[HeaderName]; 4] = [
            &[],
            &[HeaderName::from_static("x-strip"), VIA],
            &[
                HeaderName::from_static("cache-status"),
                HeaderName::from_static("x-strip"),
            ],
            &[
                HeaderName::from_static("cdn-cache-control"),
                HeaderName::from_static("x-two"),
                HeaderName::from_static("content-length"),
            ],
        ];
        for raw in HEADS {
            for strip in strips {
                for cookie in [None, Some("srv=abc; Path=/")] {
                    for exact in [None, Some(7), Some(0)] {
                        for close in [false, true] {
                            let add = Add {
                                strip,
                                cookie,
                                exact,
                                close,
                            };
                            let want = by_map(raw, now, &add);
                            let got = by_relay(raw, now, &add);
                            assert_eq!(
                                String::from_utf8_lossy(&got),
                                String::from_utf8_lossy(&want),
                                "{raw:?} strip {strip:?} cookie {cookie:?} exact {exact:?} close {close}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// What `fill::store_decision` makes of a map (besides the route's settings).
    fn decide(status: StatusCode, h: &HeaderMap, targets: &[HeaderName]) -> String {
        let params = StoreParams {
            freshness: FreshnessParams {
                heuristic_percent: 10,
                heuristic_max: Duration::from_secs(86400),
            },
            targets,
            default_ttl: None,
        };
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let d = storability(
            &Method::GET,
            &HeaderMap::new(),
            &CacheControl::default(),
            status,
            h,
            t,
            t,
            &params,
        );
        format!(
            "{d:?} {} {:?}",
            h.contains_key(SET_COOKIE),
            content_length(h)
        )
    }

    #[test]
    fn the_decision_reads_the_same_from_the_few_fields() {
        let heads = [
            "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 3\r\nX: 1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nConnection: cache-control\r\n\r\n",
            "HTTP/1.1 200 OK\r\nLast-Modified: Mon, 07 Dec 2026 05:00:00 GMT\r\nAge: 30\r\n\r\n",
            "HTTP/1.1 200 OK\r\nETag: \"a\"\r\nExpires: Mon, 07 Dec 2026 05:00:00 GMT\r\nDate: Mon, 07 Dec 2026 04:00:00 GMT\r\n\r\n",
            "HTTP/1.1 200 OK\r\nCDN-Cache-Control: max-age=9\r\nCache-Control: no-store\r\n\r\n",
            "HTTP/1.1 200 OK\r\nCache-Control: public\r\nVary: *\r\n\r\n",
            "HTTP/1.1 200 OK\r\nCache-Control: max-age=5\r\nSet-Cookie: a=1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nCache-Control: max-age=5\r\nContent-Length: 99999999999\r\n\r\n",
            "HTTP/1.1 203 OK\r\nCache-Control: max-age=5, must-understand, no-store\r\n\r\n",
            "HTTP/1.1 200 OK\r\nCache-Control: no-store\r\n\r\n",
        ];
        let targets = [HeaderName::from_static("cdn-cache-control")];
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let date = httpdate::fmt_http_date(now);
        for raw in heads {
            let head = parse_response(raw.as_bytes(), false).unwrap().unwrap();
            let mut full = head.headers;
            strip_hop_by_hop(&mut full);
            ensure_date(&mut full, now);
            let bytes = Bytes::copy_from_slice(raw.as_bytes());
            let mut storage = [MaybeUninit::uninit(); MAX_FIELDS];
            let relay = Relay::new(&bytes, date.as_bytes(), &mut storage).unwrap();
            let few = relay.decision_fields(&bytes, &targets);
            assert_eq!(
                decide(head.status, &few, &targets),
                decide(head.status, &full, &targets),
                "{raw}"
            );
            assert!(few.len() <= full.len());
        }
    }
}
