//! Partial content (RFC 9111 §3.3-3.4), under `cache.partial = "on"`: a GET with a Range
//! that finds no complete object here is served from, or added to, the key's partial object.
//!
//! 1. The partial object (`store::object::partial_key`) is used only while fresh by the rules
//!    of the complete object (`policy::reuse`); a stale one is ignored and replaced.
//!    A key whose whole object is being fetched (a fill in flight) is left to that fill,
//!    which serves ranges while it arrives.
//! 2. The client's range is resolved against it (`policy::range`, its `If-Range` included);
//!    with none held, a single range without `If-Range` is taken here, closed, open or
//!    suffix (`policy::partial::first_ask` says what the origin is asked for first).
//!    Anything else returns None: the caller fetches the whole object as before.
//! 3. Held wholly → a hit, 206 from the store. Concurrent misses of one window are coalesced:
//!    one fetches, the others wait for it and then look again. Else the gaps of the range's
//!    window (widened to `cache.partial_slice` boundaries, `policy::partial::window`) are
//!    asked for (`fetch`), with `If-Range` naming the held part's strong validator; an open
//!    or suffix range with nothing held asks first for what `first_ask` says, which gives the
//!    complete length, and then for the gaps its answer left.
//! 4. A 206 whose strong validator matches is combined; one with another validator replaces
//!    what is held and the gaps are planned again (at most `MAX_ROUNDS` rounds); a 200 or 416
//!    (the representation changed) removes the partial object and is relayed; a 206 that may
//!    not be kept is served to this client only (one longer than `max_object_size` as it
//!    arrives).
//! 5. Kept: as a partial object, or — every byte held — as the complete object (a 200 for a
//!    later full GET), the partial one removed.
//!
//! A plain GET that leads the fill of a key with a fresh partial object is completed from it
//! (`complete`): only the missing byte runs are fetched.

mod answer;
mod complete;
mod fetch;

use std::sync::Arc;
use std::time::SystemTime;

use http::header::{HeaderValue, CONTENT_LENGTH, RANGE};
use http::{HeaderMap, Method, Response, StatusCode};

use super::body::ProxyBody;
use super::ctx::{Ctx, ReqHead};
use super::decide::pragma_no_cache;
use super::forward::{fault_response, respond_upstream, with_cookie};
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::{CacheStatus, Fwd};
use crate::policy::partial::{fetches, first_ask, window, Ask, Validator};
use crate::policy::range::{evaluate_range, requested_range, RangeOutcome, Requested};
use crate::policy::reuse::{reuse, Reuse};
use crate::policy::StoredMeta;
use crate::stats::bump;
use crate::store::fill::Join;
use crate::store::object::{partial_key, Object};
use crate::store::pieces::Pieces;
use answer::{hit, large, partial_response, unsatisfiable, unstored};
pub(super) use complete::{completable, complete, Completion};
use fetch::{fetch, Fetched};

/// Most rounds of origin requests for one client range (a round asks for every gap; a new
/// round starts when the origin's validator changed mid-way, or after an open or suffix
/// range's first answer gave the complete length).
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

/// The key's partial object, when one is stored and the request may be served from it fresh.
pub(super) fn fresh_part(
    ctx: &Ctx,
    key: &str,
    req_headers: &HeaderMap,
    req_cc: &CacheControl,
    now: SystemTime,
) -> Option<Part> {
    let pragma = pragma_no_cache(req_headers, req_cc);
    ctx.store
        .get(&partial_key(key), |o| o.pieces.is_some())
        .filter(|o| reuse(&o.meta, req_cc, pragma, now) == Reuse::Fresh)
        .and_then(|o| Part::of(&o))
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
    /// Nothing held: an open or suffix range, resolved once the origin says the length.
    Unresolved(Requested),
    /// Not for this path: the whole object (no range, a failed `If-Range`, an `If-Range`
    /// with nothing held).
    Elsewhere,
}

fn wanted(req: &ReqHead, part: Option<&Part>) -> Want {
    let Some(p) = part else {
        return match requested_range(&req.headers) {
            Some(Requested::Closed(f, l)) => Want::Range(f, l),
            Some(r) => Want::Unresolved(r),
            None => Want::Elsewhere,
        };
    };
    match evaluate_range(&req.headers, &p.headers, p.pieces.len()) {
        RangeOutcome::Partial { start, end } => Want::Range(start, end),
        RangeOutcome::Unsatisfiable => Want::Unsatisfiable(p.pieces.len()),
        RangeOutcome::Full => Want::Elsewhere,
    }
}

/// The origin requests of the next round: the gaps of the client's window in what is held,
/// or nothing (the client's range held, resolved to no range, or a window too large to
/// keep).
fn plan(req: &ReqHead, part: Option<&Part>, slice: u64, max_object_size: u64) -> Vec<Ask> {
    let Want::Range(first, last) = wanted(req, part) else {
        return Vec::new();
    };
    if part.is_some_and(|p| p.pieces.slice(first, last).is_some()) {
        return Vec::new();
    }
    let span = window(first, last, slice, part.map(|p| p.pieces.len()));
    if span.1 - span.0 >= max_object_size {
        return Vec::new();
    }
    let gaps = match part {
        Some(p) => p.pieces.missing(span.0, span.1),
        None => vec![span],
    };
    fetches(&gaps)
        .into_iter()
        .map(|(f, l)| Ask::Span(f, l))
        .collect()
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
    let held = fresh_part(ctx, key, &req.headers, req_cc, now);
    // The first request when nothing is held and the range is open or a suffix; the window
    // a closed range (or any range resolved against what is held) starts at.
    let (first, flight) = match wanted(req, held.as_ref()) {
        Want::Range(first, last) => {
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
            (None, span.0.to_string())
        }
        Want::Unresolved(r) => {
            let ask = first_ask(r, slice, rt.max_object_size)?;
            let flight = match ask {
                Ask::Span(start, _) | Ask::From(start) => start.to_string(),
                Ask::Suffix(n) => format!("-{n}"),
            };
            (Some(ask), flight)
        }
        Want::Unsatisfiable(len) => {
            let p = held.as_ref()?;
            bump(&ctx.counters.local_hit);
            let cs = CacheStatus::hit(&ctx.node_id, p.meta.ttl(now));
            return Some(unsatisfiable(ctx, p, len, &cs, now));
        }
        Want::Elsewhere => return None,
    };
    // Concurrent misses of one window: the first fetches it; the others wait (up to
    // `coalesce_timeout`) until it is done, then look again (once) and find it held.
    let _leader = match ctx.fills.join(&format!("{pkey}\0{flight}")) {
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
    let mut pending = first;
    'rounds: for _ in 0..MAX_ROUNDS {
        let asks = match pending.take() {
            Some(ask) => vec![ask],
            None => plan(req, part.as_ref(), slice, rt.max_object_size),
        };
        for ask in asks {
            let validator = part.as_ref().map(|p| p.validator.clone());
            let answer = fetch(ctx, &rt, req, req_cc, ask, validator.as_ref()).await;
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
                    let resp = unstored(ctx, req, headers, bytes, &cs);
                    return Some(finish(ctx, resp, cookie, server));
                }
                Fetched::Large(parts, body) => {
                    // Never kept; held bytes of another representation are dropped.
                    let same = crate::policy::partial::strong_validator(&parts.headers)
                        .zip(validator)
                        .is_some_and(|(new, old)| new.matches(&old));
                    if !same {
                        ctx.store.purge(&pkey);
                    }
                    let resp = large(ctx, req, parts, body, &cs)?;
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
                    let resp =
                        respond_upstream(ctx, req.method == http::Method::HEAD, head, body, &cs);
                    return Some(finish(ctx, resp, cookie, server));
                }
                Fetched::Failed(fault) => return Some(fault_response(ctx, fault, &mut cs)),
            }
        }
    }
    let mut part = part?;
    cs.stored = keep(ctx, key, &pkey, &mut part, rt.max_object_size);
    let resp = match wanted(req, Some(&part)) {
        Want::Range(f, l) => {
            let Some(bytes) = part.pieces.slice(f, l) else {
                // The origin did not send what was asked for, or the window of an open or
                // suffix range is too large to keep: the whole object, the usual way.
                tracing::debug!(key = %key, "range not held after its fetches");
                return None;
            };
            partial_response(ctx, &part, (f, l), bytes, &cs, None)
        }
        Want::Unsatisfiable(len) => unsatisfiable(ctx, &part, len, &cs, now),
        // The client's If-Range names another representation than the origin's now.
        Want::Unresolved(_) | Want::Elsewhere => return None,
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
