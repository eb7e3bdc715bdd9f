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
//! whole map does; [`Relay::directive_fields`], of those, `Cache-Control` and the targeted
//! fields (what `fill::refused_by_directives` reads). Both ways are compared on arbitrary
//! heads by `fuzzing::check_pass_lane_relay` (the `pass_lane_relay` fuzz target).

use bytes::Bytes;
use http::header::{
    AGE, CACHE_CONTROL, CONTENT_LENGTH, DATE, ETAG, EXPIRES, LAST_MODIFIED, SET_COOKIE, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version};

use crate::http::h1::{self, Framing};
use crate::origin::h1::head::{Line, MAX_FIELDS};

/// The response fields the storage decision reads (`fill::store_decision`: `policy::storable`,
/// `Set-Cookie`, `Content-Length`), besides the route's targeted cache-control fields.
pub static STORE_READS: [HeaderName; 9] = [
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

/// What the relay knows a field name as, found once per line ([`kind_of`]).
type Kind = u8;
const OTHER: Kind = 0;
const CONNECTION: Kind = 1;
/// Hop-by-hop whatever `Connection` says (`policy::headers::is_hop_by_hop`), besides
/// `Connection` and `Transfer-Encoding`: several names.
const HOP: Kind = 2;
const TRANSFER_ENCODING: Kind = 3;
const VIA: Kind = 4;
const CACHE_STATUS: Kind = 5;
/// [`STORE_READS`]`[k - READ]`.
const READ: Kind = 6;
const K_DATE: Kind = READ + 2;
const K_SET_COOKIE: Kind = READ + 7;
const K_CONTENT_LENGTH: Kind = READ + 8;

/// The kind of the field name `name` (any case; a token, or a token list's member).
fn kind_of(name: &[u8]) -> Kind {
    // Setting bit 5 lower-cases a letter and makes no other byte of a field value `-` or a
    // lower-case letter: exact for the known names (all letters and `-`).
    let is = |known: &[u8]| name.iter().zip(known).all(|(b, k)| b | 0x20 == *k);
    let read = |k: usize| READ + k as u8;
    match name.len() {
        2 if is(b"te") => HOP,
        3 if is(b"via") => VIA,
        3 if is(b"age") => read(4),
        4 if is(b"date") => read(2),
        4 if is(b"etag") => read(5),
        4 if is(b"vary") => read(6),
        7 if is(b"trailer") || is(b"upgrade") => HOP,
        7 if is(b"expires") => read(1),
        10 if is(b"connection") => CONNECTION,
        10 if is(b"keep-alive") => HOP,
        10 if is(b"set-cookie") => read(7),
        12 if is(b"cache-status") => CACHE_STATUS,
        13 if is(b"cache-control") => read(0),
        13 if is(b"last-modified") => read(3),
        14 if is(b"content-length") => read(8),
        16 if is(b"proxy-connection") => HOP,
        17 if is(b"transfer-encoding") => TRANSFER_ENCODING,
        18 if is(b"proxy-authenticate") => HOP,
        19 if is(b"proxy-authorization") => HOP,
        _ => OTHER,
    }
}

/// A name in the relayed head: below [`ADDED`], the origin's lines of one name by the index of
/// the first; from it, a name the lane adds.
type Slot = u8;
const ADDED: Slot = MAX_FIELDS as u8;
const OWN_DATE: Slot = ADDED;
const OWN_VIA: Slot = ADDED + 1;
const OWN_STATUS: Slot = ADDED + 2;
const OWN_COOKIE: Slot = ADDED + 3;
const ROOM: usize = MAX_FIELDS + 4;
/// No further line of a name.
const NO_LINE: u8 = u8::MAX;

/// An origin head's fields in the order the general stages' map holds them (see the module
/// doc), with what the lane changes.
pub struct Relay<'a> {
    pub status: StatusCode,
    pub version: Version,
    raw: &'a [u8],
    lines: &'a [Line],
    /// Each line's kind, the first line of its name, and the next line of its name (or
    /// [`NO_LINE`]).
    kind: [Kind; MAX_FIELDS],
    first: [u8; MAX_FIELDS],
    next: [u8; MAX_FIELDS],
    order: [Slot; ROOM],
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
    /// The head `raw` (as the origin client accepted it: `parse_response_raw`, which found its
    /// field `lines` and its `status` and `version`) with its hop-by-hop fields removed and
    /// `date` (an IMF-fixdate) added when it has no `Date`.
    pub fn new(
        raw: &'a [u8],
        lines: &'a [Line],
        (status, version): (StatusCode, Version),
        date: &'a [u8],
    ) -> Relay<'a> {
        let lines = &lines[..lines.len().min(MAX_FIELDS)];
        let mut relay = Relay {
            status,
            version,
            raw,
            lines,
            kind: [OTHER; MAX_FIELDS],
            first: [0; MAX_FIELDS],
            next: [NO_LINE; MAX_FIELDS],
            order: [0; ROOM],
            len: 0,
            date,
            via: None,
            cache_status: None,
            node_id: "",
            own_status: &[],
            cookie: None,
        };
        let mut hop = false;
        // The last line of each name so far, by its first.
        let mut last = [0u8; MAX_FIELDS];
        for i in 0..lines.len() {
            let name = relay.name(i);
            let kind = kind_of(name);
            hop |= matches!(kind, CONNECTION | HOP | TRANSFER_ENCODING);
            relay.kind[i] = kind;
            let seen = match kind {
                // Names of their own kind: the first line of the kind.
                CONNECTION | TRANSFER_ENCODING | VIA | CACHE_STATUS | READ.. => {
                    (0..i).find(|&j| relay.kind[j] == kind)
                }
                _ => (0..i)
                    .find(|&j| relay.kind[j] == kind && relay.name(j).eq_ignore_ascii_case(name)),
            };
            match seen {
                Some(j) => {
                    let first = relay.first[j];
                    relay.first[i] = first;
                    relay.next[last[first as usize] as usize] = i as u8;
                    last[first as usize] = i as u8;
                }
                None => {
                    relay.first[i] = i as u8;
                    last[i] = i as u8;
                    relay.push(i as u8);
                }
            }
        }
        if hop {
            relay.strip_hop_by_hop();
        }
        if relay.find_kind(K_DATE).is_none() {
            relay.push(OWN_DATE);
        }
        relay
    }

    /// Line `i`'s name.
    fn name(&self, i: usize) -> &'a [u8] {
        let [at, n, _, _] = self.lines[i];
        self.raw
            .get(at as usize..at as usize + n as usize)
            .unwrap_or_default()
    }

    /// Line `i`'s value.
    fn value(&self, i: usize) -> &'a [u8] {
        let [_, _, at, n] = self.lines[i];
        self.raw
            .get(at as usize..at as usize + n as usize)
            .unwrap_or_default()
    }

    /// `strip_hop_by_hop`: the names `Connection` lists, then the fixed set as the map lists it.
    fn strip_hop_by_hop(&mut self) {
        if let Some(at) = self.find_kind(CONNECTION) {
            let mut i = self.order[at];
            while i != NO_LINE {
                for token in self.value(i as usize).split(|&b| b == b',') {
                    if let Some(at) = self.find_name(token.trim_ascii()) {
                        self.remove_at(at);
                    }
                }
                i = self.next[i as usize];
            }
        }
        let mut fixed = [0; ROOM];
        let mut n = 0;
        for &slot in &self.order[..self.len] {
            if matches!(
                self.kind_of_slot(slot),
                CONNECTION | HOP | TRANSFER_ENCODING
            ) {
                fixed[n] = slot;
                n += 1;
            }
        }
        for &slot in &fixed[..n] {
            if let Some(at) = self.order[..self.len].iter().position(|&s| s == slot) {
                self.remove_at(at);
            }
        }
    }

    fn push(&mut self, slot: Slot) {
        self.order[self.len] = slot;
        self.len += 1;
    }

    fn kind_of_slot(&self, slot: Slot) -> Kind {
        match slot {
            OWN_DATE => K_DATE,
            OWN_VIA => VIA,
            OWN_STATUS => CACHE_STATUS,
            OWN_COOKIE => K_SET_COOKIE,
            i => self.kind[i as usize],
        }
    }

    /// Where the name of kind `kind` (not [`OTHER`] nor [`HOP`]: one name each) is.
    fn find_kind(&self, kind: Kind) -> Option<usize> {
        self.order[..self.len]
            .iter()
            .position(|&s| self.kind_of_slot(s) == kind)
    }

    /// Where the name `name` (any case) is.
    fn find_name(&self, name: &[u8]) -> Option<usize> {
        match kind_of(name) {
            OTHER | HOP => self.order[..self.len]
                .iter()
                .position(|&s| s < ADDED && self.name(s as usize).eq_ignore_ascii_case(name)),
            kind => self.find_kind(kind),
        }
    }

    /// `HeaderMap::remove`: the last name takes the removed one's place.
    fn remove_at(&mut self, at: usize) {
        self.len -= 1;
        self.order[at] = self.order[self.len];
    }

    /// The values of the origin's lines of the name whose first line is `first`, in order.
    fn origin_values(&self, first: Slot) -> impl Iterator<Item = &'a [u8]> + '_ {
        std::iter::successors(Some(first), move |&i| {
            Some(self.next[i as usize]).filter(|&n| n != NO_LINE)
        })
        .map(move |i| self.value(i as usize))
    }

    /// Whether any of `names` is in the head.
    pub fn has_any(&self, names: &[HeaderName]) -> bool {
        names
            .iter()
            .any(|n| self.find_name(n.as_str().as_bytes()).is_some())
    }

    /// The map the storage decision reads: the head's fields named in [`STORE_READS`] or
    /// `targets`, their values slices of `raw` (the bytes [`Relay::new`] read).
    pub fn decision_fields(&self, raw: &Bytes, targets: &[HeaderName]) -> HeaderMap {
        self.fields_map(raw, targets, true)
    }

    /// [`Relay::decision_fields`] of the response's directives only: `Cache-Control` and
    /// `targets` (what `fill::refused_by_directives` reads).
    pub fn directive_fields(&self, raw: &Bytes, targets: &[HeaderName]) -> HeaderMap {
        self.fields_map(raw, targets, false)
    }

    fn fields_map(&self, raw: &Bytes, targets: &[HeaderName], all: bool) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(if all { self.len } else { 1 });
        for &slot in &self.order[..self.len] {
            let kind = self.kind_of_slot(slot);
            let key = if kind == READ || (all && kind > READ) {
                &STORE_READS[(kind - READ) as usize]
            } else if kind == OTHER && !targets.is_empty() {
                let name = self.name(slot as usize);
                match targets
                    .iter()
                    .find(|t| name.eq_ignore_ascii_case(t.as_str().as_bytes()))
                {
                    Some(t) => t,
                    None => continue,
                }
            } else {
                continue;
            };
            if slot == OWN_DATE {
                if let Ok(value) = HeaderValue::from_bytes(self.date) {
                    map.append(key.clone(), value);
                }
                continue;
            }
            for v in self.origin_values(slot) {
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
        match self.find_kind(VIA).map(|at| self.order[at]) {
            Some(first) => {
                let mut own = Vec::new();
                self.own_via(&mut own);
                self.via = Some(combined(self.origin_values(first), &own));
            }
            None => self.push(OWN_VIA),
        }
        // The route's targeted fields.
        if self.has_any(strip) {
            for name in strip {
                if let Some(at) = self.find_name(name.as_str().as_bytes()) {
                    self.remove_at(at);
                }
            }
        }
        // `append_fwd`.
        self.own_status = own_status;
        match self.find_kind(CACHE_STATUS).map(|at| self.order[at]) {
            Some(first) => {
                self.cache_status = Some(combined(self.origin_values(first), own_status));
            }
            None => self.push(OWN_STATUS),
        }
        // `forward::with_cookie`.
        if let Some(c) = cookie {
            self.cookie = Some(c);
            if self.find_kind(K_SET_COOKIE).is_none() {
                self.push(OWN_COOKIE);
            }
        }
        // `lite::write_response`.
        let coded = self.find_kind(TRANSFER_ENCODING).is_some();
        let length = self
            .find_kind(K_CONTENT_LENGTH)
            .and_then(|at| self.origin_values(self.order[at]).next());
        let framing = h1::framing_of(false, self.status, coded, length, exact);
        out.reserve(self.raw.len() + 160);
        h1::status_line(out, self.status);
        let mut has_close = false;
        for &slot in &self.order[..self.len] {
            let kind = self.kind_of_slot(slot);
            match slot {
                OWN_DATE => line(out, b"date", self.date),
                OWN_VIA => {
                    out.extend_from_slice(b"via: ");
                    self.own_via(out);
                    out.extend_from_slice(b"\r\n");
                }
                OWN_STATUS => line(out, b"cache-status", self.own_status),
                OWN_COOKIE => line(out, b"set-cookie", self.cookie.unwrap_or_default()),
                first => {
                    let name = self.name(first as usize);
                    let replaced = match kind {
                        VIA => self.via.as_deref(),
                        CACHE_STATUS => self.cache_status.as_deref(),
                        _ => None,
                    };
                    if let Some(v) = replaced {
                        line(out, name, v);
                        continue;
                    }
                    for value in self.origin_values(first) {
                        has_close |= kind == CONNECTION && value.eq_ignore_ascii_case(b"close");
                        line(out, name, value);
                    }
                    if kind == K_SET_COOKIE {
                        if let Some(c) = self.cookie {
                            line(out, name, c);
                        }
                    }
                }
            }
        }
        let date = self.find_kind(K_DATE).is_none();
        h1::end_head(out, framing, date, close && !has_close);
        framing
    }

    /// The `Cache-Status` value [`Relay::client_head`] wrote (for the access log).
    pub fn cache_status(&self) -> Vec<u8> {
        match self.find_kind(CACHE_STATUS).map(|at| self.order[at]) {
            Some(OWN_STATUS) => self.own_status.to_vec(),
            Some(first) => match &self.cache_status {
                Some(v) => v.clone(),
                None => self
                    .origin_values(first)
                    .next()
                    .unwrap_or_default()
                    .to_vec(),
            },
            None => Vec::new(),
        }
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
}

/// One field line, its name lower-cased (as a `HeaderName` writes it).
fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    let at = out.len();
    out.extend_from_slice(name);
    out[at..].make_ascii_lowercase();
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
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

    #[test]
    fn the_relays_hop_by_hop_names_are_the_maps() {
        use crate::policy::headers::{is_hop_by_hop, HOP_BY_HOP};
        let hop = |name: &str| {
            matches!(
                kind_of(name.as_bytes()),
                CONNECTION | HOP | TRANSFER_ENCODING
            )
        };
        for name in &HOP_BY_HOP {
            let lower = name.as_str();
            assert!(hop(lower), "{lower}");
            assert!(hop(&lower.to_ascii_uppercase()), "{lower}");
        }
        // Every name the relay knows, and some it does not: hop-by-hop for both or neither.
        let known = [
            "te",
            "via",
            "age",
            "date",
            "etag",
            "vary",
            "trailer",
            "upgrade",
            "expires",
            "connection",
            "keep-alive",
            "set-cookie",
            "cache-status",
            "cache-control",
            "last-modified",
            "content-length",
            "proxy-connection",
            "transfer-encoding",
            "proxy-authenticate",
            "proxy-authorization",
            "content-type",
            "x-te",
            "tee",
            "keep-alivf",
            "location",
            "content-location",
        ];
        for name in known {
            let map = is_hop_by_hop(&HeaderName::from_static(name));
            assert_eq!(hop(name), map, "{name}");
        }
        for (i, name) in STORE_READS.iter().enumerate() {
            assert_eq!(kind_of(name.as_str().as_bytes()), READ + i as u8, "{name}");
        }
    }
    use crate::origin::h1::head::{parse_response, parse_response_raw};
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
        let head = parse_response_raw(raw.as_bytes(), false).unwrap().unwrap();
        let kept = head.raw.unwrap();
        let at = (head.status, head.version);
        let mut relay = Relay::new(&kept.bytes, &kept.lines, at, date.as_bytes());
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
        "HTTP/1.1 200 OK\r\nTE: a\r\nX-1: 1\r\nKeep-Alive: 1\r\nte: b\r\nX-2: 2\r\nkeep-alive: 2\r\nTrailer: t\r\nX-3: 3\r\nContent-Length: 1\r\nUpgrade: u\r\nX-4: 4\r\n\r\n",
        "HTTP/1.1 200 OK\r\nConnection: date, cache-status, via\r\nDate: Mon, 07 Dec 2020 05:00:00 GMT\r\nVia: 1.0 x\r\nCache-Status: up\r\nX: 1\r\nConnection: X, x-strip\r\nX-Strip: 2\r\nY: 3\r\n\r\n",
    ];

    #[test]
    fn the_fuzz_check_holds_for_every_mode_of_each_head() {
        for raw in HEADS {
            for mode in 0..64u8 {
                let mut data = vec![mode];
                data.extend_from_slice(raw.as_bytes());
                crate::fuzzing::check_pass_lane_relay(&data);
            }
        }
    }

    #[test]
    fn the_head_is_the_bytes_the_map_would_write() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let strips: [&[HeaderName]; 4] = [
            &[],
            &[HeaderName::from_static("x-strip"), http::header::VIA],
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
        let d = store(status, h, targets);
        format!(
            "{d:?} {} {:?}",
            h.contains_key(SET_COOKIE),
            content_length(h)
        )
    }

    fn store(
        status: StatusCode,
        h: &HeaderMap,
        targets: &[HeaderName],
    ) -> Result<crate::policy::meta::StoredMeta, crate::policy::storable::NoStoreReason> {
        let params = StoreParams {
            freshness: FreshnessParams {
                heuristic_percent: 10,
                heuristic_max: Duration::from_secs(86400),
            },
            targets,
            default_ttl: None,
        };
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        storability(
            &Method::GET,
            &HeaderMap::new(),
            &CacheControl::default(),
            status,
            h,
            t,
            t,
            &params,
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
            "HTTP/1.1 200 OK\r\nCache-Control: private, max-age=9\r\nETag: \"e\"\r\n\r\n",
            "HTTP/1.1 206 Partial Content\r\nCache-Control: max-age=9\r\n\r\n",
            "HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nConnection: cache-control\r\nETag: \"e\"\r\n\r\n",
        ];
        let targets = [HeaderName::from_static("cdn-cache-control")];
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let date = httpdate::fmt_http_date(now);
        let mut early = 0;
        for raw in heads {
            let head = parse_response(raw.as_bytes(), false).unwrap().unwrap();
            let mut full = head.headers;
            strip_hop_by_hop(&mut full);
            ensure_date(&mut full, now);
            let bytes = Bytes::copy_from_slice(raw.as_bytes());
            let kept = parse_response_raw(&bytes, false)
                .unwrap()
                .unwrap()
                .raw
                .unwrap();
            let at = (head.status, head.version);
            let relay = Relay::new(&kept.bytes, &kept.lines, at, date.as_bytes());
            let few = relay.decision_fields(&kept.bytes, &targets);
            assert_eq!(
                decide(head.status, &few, &targets),
                decide(head.status, &full, &targets),
                "{raw}"
            );
            assert!(few.len() <= full.len());
            // Refused on the directives alone: refused the same on the whole head.
            let only = relay.directive_fields(&kept.bytes, &targets);
            match store(head.status, &only, &targets) {
                Err(r) if r.by_directives() => {
                    early += 1;
                    assert_eq!(store(head.status, &full, &targets), Err(r), "{raw}");
                }
                _ => {}
            }
        }
        assert_eq!(early, 3, "no-store, private, 206");
    }
}
