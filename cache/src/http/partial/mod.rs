//! Partial content (RFC 9111 §3.3-3.4), under `cache.partial = "on"`: a GET with a Range
//! that finds no complete object here is served from, or added to, the key's partial object.
//!
//! 1. The partial object (`store::object::partial_key`) is used only while fresh by the rules
//!    of the complete object (`policy::reuse`); a stale one is ignored and replaced.
//!    A key whose whole object is being fetched (a fill in flight) is left to that fill,
//!    which serves ranges while it arrives.
//! 2. The client's range is resolved against it (`policy::range`, its `If-Range` included);
//!    with none held, only a closed `bytes=first-last` without `If-Range` is taken here.
//!    Anything else returns None: the caller fetches the whole object as before.
//! 3. Held wholly → a hit, 206 from the store. Concurrent misses of one window are coalesced:
//!    one fetches, the others wait for it and then look again. Else the gaps of the range's window (widened
//!    to `cache.partial_slice` boundaries, `policy::partial::window`) are asked for (`fetch`),
//!    with `If-Range` naming the held part's strong validator.
//! 4. A 206 whose strong validator matches is combined; one with another validator replaces
//!    what is held and the gaps are planned again (at most `MAX_ROUNDS` times); a 200 or 416
//!    (the representation changed) removes the partial object and is relayed; a 206 that may
//!    not be kept is served to this client only.
//! 5. Kept: as a partial object, or — every byte held — as the complete object (a 200 for a
//!    later full GET), the partial one removed.

mod fetch;

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{HeaderValue, AGE, CONTENT_LENGTH, RANGE};
use http::{HeaderMap, Method, Response, StatusCode};

use super::body::ProxyBody;
use super::ctx::{Ctx, ReqHead};
use super::decide::pragma_no_cache;
use super::forward::{fault_response, respond_upstream, with_cookie};
use super::respond::build;
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::{append_cache_status, CacheStatus, Fwd};
use crate::policy::conditional::{client_not_modified, not_modified_headers};
use crate::policy::headers::age_value;
use crate::policy::partial::{content_range_of, fetches, window, Validator};
use crate::policy::range::{
    closed_range, content_range, evaluate_range, unsatisfied_range, RangeOutcome,
};
use crate::policy::reuse::{reuse, Reuse};
use crate::policy::StoredMeta;
use crate::stats::{add, bump};
use crate::store::fill::Join;
use crate::store::object::{partial_key, Object};
use crate::store::pieces::Pieces;
use fetch::{fetch, Fetched};

/// Most times the gaps are planned again after the origin's validator changed mid-way.
const MAX_ROUNDS: usize = 3;

/// A partial object being served or built: the representation's head (no `Content-Range`,
/// no `Content-Length`), the bytes held, and the strong validator they were all sent with.
pub(super) struct Part {
    pub headers: HeaderMap,
    pub pieces: Pieces,
    pub meta: StoredMeta,
    pub validator: Validator,
    pub has_targeted: bool,
}

impl Part {
    /// The working copy of a stored partial object (None: not one, or no strong validator).
    fn of(obj: &Object) -> Option<Part> {
        let pieces = obj.pieces.as_deref()?.clone();
        let headers = obj.headers().into_owned();
        let validator = crate::policy::partial::strong_validator(&headers)?;
        Some(Part {
            headers,
            pieces,
            meta: obj.meta.clone(),
            validator,
            has_targeted: obj.has_targeted,
        })
    }

    /// RFC 9111 §3.4: `new` may be combined with this when their strong validators match
    /// (and so do the complete lengths).
    fn combines(&self, new: &Part) -> bool {
        self.validator.matches(&new.validator) && self.pieces.len() == new.pieces.len()
    }

    /// Combine `new` (which [`Part::combines`] with this); the newer head and freshness are
    /// kept.
    fn absorb(&mut self, new: Part) {
        self.pieces.merge(&new.pieces);
        self.headers = new.headers;
        self.meta = new.meta;
        self.has_targeted = new.has_targeted;
    }
}

/// The slice size when this request takes the partial path: `cache.partial = "on"`, a GET
/// with a Range that may be stored (no `no-store`; `only-if-cached` goes the usual way).
pub(super) fn slice_for(ctx: &Ctx, req: &ReqHead, req_cc: &CacheControl) -> Option<u64> {
    let slice = ctx.rt.load().partial_slice?;
    let fits = req.method == Method::GET
        && req.headers.contains_key(RANGE)
        && !req_cc.no_store
        && !req_cc.only_if_cached;
    fits.then_some(slice)
}

/// What the client's Range asks of a representation.
enum Want {
    Range(u64, u64),
    Unsatisfiable(u64),
    /// Not for this path: the whole object (no range, a failed `If-Range`, an open range of
    /// an unknown length).
    Elsewhere,
}

fn wanted(req: &ReqHead, part: Option<&Part>) -> Want {
    let Some(p) = part else {
        return closed_range(&req.headers).map_or(Want::Elsewhere, |(f, l)| Want::Range(f, l));
    };
    match evaluate_range(&req.headers, &p.headers, p.pieces.len()) {
        RangeOutcome::Partial { start, end } => Want::Range(start, end),
        RangeOutcome::Unsatisfiable => Want::Unsatisfiable(p.pieces.len()),
        RangeOutcome::Full => Want::Elsewhere,
    }
}

/// Serve a range request from the key's partial object, fetching what is missing (see the
/// module doc). None: not for this path; the caller goes on as for any miss.
pub(super) async fn serve(
    ctx: &Arc<Ctx>,
    req: &ReqHead,
    key: &str,
    req_cc: &CacheControl,
    slice: u64,
) -> Option<Response<ProxyBody>> {
    run(ctx, req, key, req_cc, slice, false).await
}

/// [`serve`]; `waited`: this request already waited on another's fetch of its window.
async fn run(
    ctx: &Arc<Ctx>,
    req: &ReqHead,
    key: &str,
    req_cc: &CacheControl,
    slice: u64,
    waited: bool,
) -> Option<Response<ProxyBody>> {
    if ctx.fills.is_filling(key) {
        // The whole object is on its way: the range is served from that fill.
        return None;
    }
    let rt = ctx.rt.load_full();
    let now = SystemTime::now();
    let pkey = partial_key(key);
    let pragma = pragma_no_cache(&req.headers, req_cc);
    let held = ctx
        .store
        .get(&pkey, |o| o.pieces.is_some())
        .filter(|o| reuse(&o.meta, req_cc, pragma, now) == Reuse::Fresh)
        .and_then(|o| Part::of(&o));
    let (first, last) = match wanted(req, held.as_ref()) {
        Want::Range(f, l) => (f, l),
        Want::Unsatisfiable(len) => {
            let p = held.as_ref()?;
            bump(&ctx.counters.local_hit);
            let cs = CacheStatus::hit(&ctx.node_id, p.meta.ttl(now));
            return Some(unsatisfiable(ctx, p, len, &cs, now));
        }
        Want::Elsewhere => return None,
    };
    if let Some(p) = &held {
        if let Some(bytes) = p.pieces.slice(first, last) {
            bump(&ctx.counters.local_hit);
            let cs = CacheStatus::hit(&ctx.node_id, p.meta.ttl(now));
            return Some(hit(ctx, req, p, (first, last), bytes, &cs, now));
        }
    }
    let span = window(first, last, slice, held.as_ref().map(|p| p.pieces.len()));
    if span.1 - span.0 >= rt.max_object_size {
        return None;
    }
    // Concurrent misses of one window: the first fetches it; the others wait (up to
    // `coalesce_timeout`) until it is done, then look again (once) and find it held.
    let _leader = match ctx.fills.join(&format!("{pkey}\0{}", span.0)) {
        Join::Lead(w) => Some(w),
        Join::Follow(mut r) if !waited => {
            bump(&ctx.counters.coalesced);
            let _ = r.head(rt.coalesce_timeout).await;
            drop(r);
            return Box::pin(run(ctx, req, key, req_cc, slice, true)).await;
        }
        Join::Follow(_) => None,
    };
    bump(&ctx.counters.local_miss);
    let fwd = if held.is_some() {
        Fwd::Partial
    } else {
        Fwd::Miss
    };
    let mut cs = CacheStatus::fwd(&ctx.node_id, fwd);
    let (mut part, mut cookie, mut server) = (held, None, None);
    'rounds: for _ in 0..MAX_ROUNDS {
        let gaps = match &part {
            Some(p) => p.pieces.missing(span.0, span.1),
            None => vec![span],
        };
        for gap in fetches(&gaps) {
            let validator = part.as_ref().map(|p| p.validator.clone());
            let answer = fetch(ctx, &rt, req, req_cc, gap, validator.as_ref()).await;
            cookie = answer.set_cookie.or(cookie);
            server = answer.server.or(server);
            match answer.fetched {
                Fetched::Part(new) => match part.as_mut() {
                    Some(p) if p.combines(&new) => p.absorb(new),
                    Some(_) => {
                        // Another representation: what is held may not be combined with it.
                        part = Some(new);
                        continue 'rounds;
                    }
                    None => part = Some(new),
                },
                Fetched::Unstored(headers, bytes) => {
                    ctx.store.purge(&pkey);
                    let resp = unstored(ctx, headers, bytes, (first, last), &cs);
                    return Some(finish(ctx, resp, cookie, server));
                }
                Fetched::Other(parts, body) => {
                    if matches!(
                        parts.status,
                        StatusCode::OK | StatusCode::RANGE_NOT_SATISFIABLE
                    ) {
                        ctx.store.purge(&pkey);
                    }
                    let targeted = super::forward::has_any(&parts.headers, &rt.strip);
                    let head = (parts.status, parts.headers, targeted);
                    let resp = respond_upstream(ctx, req, head, body, &cs);
                    return Some(finish(ctx, resp, cookie, server));
                }
                Fetched::Failed(fault) => return Some(fault_response(ctx, fault, &mut cs)),
            }
        }
    }
    let mut part = part?;
    cs.stored = keep(ctx, key, &pkey, &mut part, rt.max_object_size);
    let resp = match wanted(req, Some(&part)) {
        Want::Range(f, l) => match part.pieces.slice(f, l) {
            Some(bytes) => partial_response(ctx, &part, (f, l), bytes, &cs, None),
            None => {
                tracing::debug!(key = %key, "origin did not send the range asked for");
                let mut cs = CacheStatus::fwd(&ctx.node_id, fwd);
                fault_response(ctx, crate::fault::Fault::OriginBroken, &mut cs)
            }
        },
        Want::Unsatisfiable(len) => unsatisfiable(ctx, &part, len, &cs, now),
        // The client's If-Range names another representation than the origin's now.
        Want::Elsewhere => return None,
    };
    Some(finish(ctx, resp, cookie, server))
}

/// A fetched answer with the persistence cookie, and its server noted for the access log.
fn finish(
    ctx: &Ctx,
    resp: Response<ProxyBody>,
    cookie: Option<HeaderValue>,
    server: Option<std::net::SocketAddr>,
) -> Response<ProxyBody> {
    let mut resp = with_cookie(resp, cookie);
    if let Some(addr) = server {
        crate::access::note_server(ctx, &mut resp, addr);
    }
    resp
}

/// Store what is held: the complete object under `key` once every byte is held (the partial
/// one removed), else the partial object under `pkey` while it fits `max_object_size`. What
/// another request stored meanwhile is combined first when its validator matches (so parallel
/// fetches of different windows do not drop each other's bytes).
fn keep(ctx: &Ctx, key: &str, pkey: &str, part: &mut Part, max_object_size: u64) -> bool {
    let current = ctx.store.get(pkey, |o| o.pieces.is_some());
    if let Some(other) = current.as_deref().and_then(Part::of) {
        if part.combines(&other) {
            part.pieces.merge(&other.pieces);
        }
    }
    if let Some(body) = part.pieces.body() {
        let mut headers = part.headers.clone();
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len() as u64));
        let obj = Object::new(
            StatusCode::OK,
            headers,
            body,
            part.meta.clone(),
            Vec::new(),
            Vec::new(),
            part.has_targeted,
        );
        let stored = ctx.store.insert(key, Arc::new(obj));
        ctx.store.purge(pkey);
        return stored;
    }
    if part.pieces.held() > max_object_size {
        ctx.store.purge(pkey);
        return false;
    }
    let obj = Object::partial(
        part.headers.clone(),
        part.pieces.clone(),
        part.meta.clone(),
        part.has_targeted,
    );
    ctx.store.insert(pkey, Arc::new(obj))
}

/// A hit: client conditionals (RFC 9110 §13.2) answered 304, else 206 with the held bytes.
fn hit(
    ctx: &Ctx,
    req: &ReqHead,
    part: &Part,
    range: (u64, u64),
    bytes: Bytes,
    cs: &CacheStatus,
    now: SystemTime,
) -> Response<ProxyBody> {
    let age = age_value(part.meta.current_age(now));
    if client_not_modified(
        &req.method,
        &req.headers,
        StatusCode::OK,
        &part.headers,
        Some(part.meta.response_time),
    ) {
        bump(&ctx.counters.not_modified);
        let mut h = not_modified_headers(&part.headers);
        h.insert(AGE, age);
        append_cache_status(&mut h, cs);
        return build(StatusCode::NOT_MODIFIED, h, ProxyBody::Empty);
    }
    add(&ctx.counters.traffic.hit_bytes, bytes.len() as u64);
    partial_response(ctx, part, range, bytes, cs, Some(age))
}

/// 206 with `bytes` as `first..=last` of the representation.
fn partial_response(
    ctx: &Ctx,
    part: &Part,
    (first, last): (u64, u64),
    bytes: Bytes,
    cs: &CacheStatus,
    age: Option<HeaderValue>,
) -> Response<ProxyBody> {
    let mut headers = part.headers.clone();
    if part.has_targeted {
        ctx.strip_targeted(&mut headers);
    }
    headers.insert(
        http::header::CONTENT_RANGE,
        content_range(first, last, part.pieces.len()),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len() as u64));
    if let Some(age) = age {
        headers.insert(AGE, age);
    }
    append_cache_status(&mut headers, cs);
    build(StatusCode::PARTIAL_CONTENT, headers, ProxyBody::full(bytes))
}

/// 416 for a range past the end of a representation of `len` bytes.
fn unsatisfiable(
    ctx: &Ctx,
    part: &Part,
    len: u64,
    cs: &CacheStatus,
    now: SystemTime,
) -> Response<ProxyBody> {
    let mut headers = part.headers.clone();
    if part.has_targeted {
        ctx.strip_targeted(&mut headers);
    }
    headers.insert(AGE, age_value(part.meta.current_age(now)));
    headers.insert(http::header::CONTENT_RANGE, unsatisfied_range(len));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(0u64));
    headers.remove(http::header::ETAG);
    append_cache_status(&mut headers, cs);
    build(StatusCode::RANGE_NOT_SATISFIABLE, headers, ProxyBody::Empty)
}

/// A 206 that may not be kept, for this client: the client's range cut from it when it holds
/// all of it, else the origin's part as it came.
fn unstored(
    ctx: &Ctx,
    mut headers: HeaderMap,
    bytes: Bytes,
    (first, last): (u64, u64),
    cs: &CacheStatus,
) -> Response<ProxyBody> {
    let cr = content_range_of(&headers);
    let body = match cr {
        Some(cr)
            if bytes.len() as u64 == cr.last - cr.first + 1
                && cr.first <= first
                && last.min(cr.complete - 1) <= cr.last =>
        {
            let last = last.min(cr.complete - 1);
            let at = (first - cr.first) as usize;
            let cut = bytes.slice(at..at + (last - first + 1) as usize);
            headers.insert(
                http::header::CONTENT_RANGE,
                content_range(first, last, cr.complete),
            );
            cut
        }
        _ => bytes,
    };
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len() as u64));
    let has_targeted = super::forward::has_any(&headers, &ctx.rt.load().strip);
    if has_targeted {
        ctx.strip_targeted(&mut headers);
    }
    append_cache_status(&mut headers, cs);
    build(StatusCode::PARTIAL_CONTENT, headers, ProxyBody::full(body))
}
