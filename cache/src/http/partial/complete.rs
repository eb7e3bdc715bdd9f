//! Completing a representation from the parts held (RFC 9111 §3.4), under
//! `cache.partial = "on"`: a GET that leads the fill of a key this node keeps, while a fresh
//! partial object of it is stored, asks the origin only for the byte runs not held and
//! serves the whole 200 from the held runs and the fetched ones, in order, as they arrive.
//!
//! Contract:
//! * Taken by a plain miss (no stale object, `fwd=miss`) whose object is kept here, when the
//!   partial object is fresh for the request and its complete length fits `max_object_size`.
//! * The missing runs (`Pieces::missing`) are asked for as `policy::partial::fetches` plans
//!   them (at most `MAX_FETCHES` requests, else their hull), one after another, each with
//!   `Range` and `If-Range` naming the held strong validator.
//! * The first answer decides before anything reaches a client: a 206 of exactly that run,
//!   of the same complete length, whose strong validator matches and that may be kept →
//!   the fill's head is a 200 (`Content-Length` the complete length; the 206's fields and
//!   freshness, the newest) and the body is streamed; a 200 (`If-Range` failed: the
//!   representation changed) → the partial object is removed and that 200 is the fill's
//!   answer, stored as any (the "whole fetch" costs no second request); another 206, or a
//!   416 → the partial object is removed (unless only its range differs) and the whole object
//!   is fetched as usual; any other answer (an error) is the fill's answer as usual.
//! * A later run whose answer is not such a 206 (or whose body is cut or of another length)
//!   aborts the fill: the client's body ends short of its `Content-Length`, never complete-
//!   looking; nothing is stored, and the partial object is removed when the validator changed.
//! * Whole: the complete object is stored (before the client sees its last bytes) and the
//!   partial object removed. The answer says `Cache-Status: <node>; fwd=partial; stored`.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH};
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;

use super::fetch::{part_head, send};
use super::{fresh_part, Part};
use crate::fault::Fault;
use crate::http::body::ProxyBody;
use crate::http::ctx::{Ctx, ReqHead};
use crate::http::fill::{Keep, Lead, Times};
use crate::http::forward::{clean_response_headers, with_cookie};
use crate::http::respond;
use crate::origin::body::OriginBody;
use crate::origin::pool::Sent;
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::{CacheStatus, Fwd};
use crate::policy::partial::Validator;
use crate::policy::partial::{content_range_of, fetches, strong_validator, Ask, ContentRange};
use crate::policy::vary::variant_id;
use crate::stats::bump;
use crate::store::fill::FillWriter;
use crate::store::object::{partial_key, FillHead, Object};
use crate::store::pieces::Pieces;

/// What [`complete`] made of a fill's lead.
pub(in crate::http) enum Completion {
    /// Answered: the whole representation from the held parts and the fetched runs.
    Done(Response<ProxyBody>),
    /// The fill goes on as usual, with the origin's answer to the first run's request when
    /// that answer is the fill's (a 200: the representation changed; an error), else asking
    /// the origin for the whole object.
    Fill(FillWriter<FillHead>, Option<(Result<Sent, Fault>, Times)>),
}

/// The key's fresh partial object, when a GET's fill for it would be completed from it (see
/// the module doc).
pub(in crate::http) fn completable(
    ctx: &Ctx,
    key: &str,
    req: &ReqHead,
    req_cc: &CacheControl,
) -> Option<Part> {
    let max_object_size = {
        let rt = ctx.rt.load();
        rt.partial_slice?;
        rt.max_object_size
    };
    if req.method != Method::GET || req_cc.no_store {
        return None;
    }
    let part = fresh_part(ctx, key, &req.headers, req_cc, SystemTime::now())?;
    let fits = part.pieces.len() <= max_object_size && !part.pieces.is_complete();
    fits.then_some(part)
}

/// Lead the fill `w` from the key's partial object when there is one to complete (see the
/// module doc).
pub(in crate::http) async fn complete(job: &Lead<'_>, w: FillWriter<FillHead>) -> Completion {
    let ctx = job.ctx;
    let plain = job.stale.is_none() && matches!(job.keep, Keep::Local) && job.fwd == Fwd::Miss;
    let Some(part) = plain
        .then(|| completable(ctx, job.key, &job.req, job.req_cc))
        .flatten()
    else {
        return Completion::Fill(w, None);
    };
    let len = part.pieces.len();
    let plan = fetches(&part.pieces.missing(0, len - 1));
    let Some(&(first, last)) = plan.first() else {
        return Completion::Fill(w, None);
    };
    let pkey = partial_key(job.key);
    let (sent, (asked_at, answered_at)) =
        send(ctx, &job.req, Ask::Span(first, last), Some(&part.validator)).await;
    let times = Times {
        request: asked_at,
        response: answered_at,
    };
    let sent = match sent {
        Ok(s) if s.response.status() == StatusCode::PARTIAL_CONTENT => s,
        Ok(s) if s.response.status() == StatusCode::OK => {
            // `If-Range` failed: this 200 is the new representation, stored as any.
            ctx.store.purge(&pkey);
            return Completion::Fill(w, Some((Ok(s), times)));
        }
        Ok(s) if s.response.status() == StatusCode::RANGE_NOT_SATISFIABLE => {
            ctx.store.purge(&pkey);
            return Completion::Fill(w, None);
        }
        other => return Completion::Fill(w, Some((other, times))),
    };
    let Sent {
        response,
        server,
        set_cookie,
        ..
    } = sent;
    let (mut parts, body) = response.into_parts();
    clean_response_headers(ctx, &mut parts.headers, parts.version);
    let asked = ContentRange {
        first,
        last,
        complete: len,
    };
    let head = match part_head(
        job.rt,
        &job.req,
        job.req_cc,
        parts.headers,
        (asked_at, answered_at),
    ) {
        Ok(h) if h.validator.matches(&part.validator) && h.range == asked => h,
        Ok(h) if h.validator.matches(&part.validator) => return Completion::Fill(w, None),
        _ => {
            // Another representation (or one that may not be kept): the parts are not it.
            ctx.store.purge(&pkey);
            return Completion::Fill(w, None);
        }
    };
    let mut headers = head.headers;
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    let fill = Arc::new(FillHead {
        status: StatusCode::OK,
        headers,
        vary: Vec::new(),
        variant_id: variant_id(&[], &job.req.headers),
        meta: Some(head.meta),
        content_length: Some(len),
        fwd: Fwd::Partial,
        fwd_status: None,
        has_targeted: head.has_targeted,
        upstream: None,
    });
    ctx.uncacheable.clear(job.key);
    let reader = w.reader();
    let mut w = w;
    w.publish(Arc::clone(&fill), true);
    let mut req = job.req.clone();
    // Only the first run's request answers the client's own: later interims are no one's.
    req.interim = None;
    let splice = Splice {
        ctx: Arc::clone(ctx),
        req,
        key: job.key.to_string(),
        pieces: part.pieces,
        validator: part.validator,
        plan,
        head: Arc::clone(&fill),
    };
    tokio::spawn(splice.run(w, body));
    let mut cs = CacheStatus::fwd(&ctx.node_id, Fwd::Partial);
    cs.stored = true;
    let mut resp = respond::fill(ctx, &job.req, &fill, reader, &cs);
    crate::access::note_server(ctx, &mut resp, server.addr);
    Completion::Done(with_cookie(resp, set_cookie))
}

/// The body of a completion: held runs and fetched ones, in order.
struct Splice {
    ctx: Arc<Ctx>,
    req: ReqHead,
    key: String,
    pieces: Pieces,
    validator: Validator,
    /// The runs asked for, in order; the first one's body is the one `run` is given.
    plan: Vec<(u64, u64)>,
    head: Arc<FillHead>,
}

impl Splice {
    async fn run(self, w: FillWriter<FillHead>, first: OriginBody) {
        let len = self.pieces.len();
        let mut out = Out {
            w: Some(w),
            last: None,
        };
        let mut body = Some(first);
        let mut at = 0;
        for &(first, last) in &self.plan {
            if first > at && !self.held(&mut out, at, first - 1).await {
                return;
            }
            let b = match body.take() {
                Some(b) => Some(b),
                None => self.ask(first, last).await,
            };
            let Some(b) = b else {
                out.abort();
                return;
            };
            if !self.relay(&mut out, b, last - first + 1).await {
                return;
            }
            at = last + 1;
        }
        if at < len && !self.held(&mut out, at, len - 1).await {
            return;
        }
        let Out { w: Some(w), last } = out else {
            return;
        };
        let (ctx, key, head) = (&self.ctx, &self.key, &self.head);
        w.finish_with(last, |body| {
            let (Some(body), Some(meta)) = (body, head.meta.clone()) else {
                return;
            };
            if body.len() as u64 != len {
                return;
            }
            let obj = Object::new(
                StatusCode::OK,
                head.headers.clone(),
                body,
                meta,
                Vec::new(),
                head.variant_id.clone(),
                head.has_targeted,
            );
            ctx.store.insert(key, Arc::new(obj));
            ctx.store.purge(&partial_key(key));
        });
    }

    /// Held bytes `first..=last` into the fill; false (the fill aborted) when they are not
    /// held as one run, or nobody reads any more.
    async fn held(&self, out: &mut Out, first: u64, last: u64) -> bool {
        match self.pieces.slice(first, last) {
            Some(b) => out.put(b).await,
            None => {
                tracing::warn!(key = %self.key, first, last, "held run missing while completing; aborted");
                out.abort();
                false
            }
        }
    }

    /// The body of bytes `first..=last` of the held representation from the origin; None
    /// when its answer is anything else (the partial object is removed when the
    /// representation changed).
    async fn ask(&self, first: u64, last: u64) -> Option<OriginBody> {
        let ctx = &self.ctx;
        let (sent, _) = send(
            ctx,
            &self.req,
            Ask::Span(first, last),
            Some(&self.validator),
        )
        .await;
        let Ok(sent) = sent else {
            tracing::warn!(key = %self.key, "origin failed while completing from parts; cut");
            return None;
        };
        let (mut parts, body) = sent.response.into_parts();
        clean_response_headers(ctx, &mut parts.headers, parts.version);
        let same = strong_validator(&parts.headers).is_some_and(|v| v.matches(&self.validator));
        let range = content_range_of(&parts.headers);
        let wanted = ContentRange {
            first,
            last,
            complete: self.pieces.len(),
        };
        if parts.status == StatusCode::PARTIAL_CONTENT && same && range == Some(wanted) {
            return Some(body);
        }
        if parts.status == StatusCode::OK || !same {
            ctx.store.purge(&partial_key(&self.key));
        }
        tracing::warn!(key = %self.key, status = parts.status.as_u16(), "representation changed while completing from parts; cut");
        None
    }

    /// An origin body of exactly `n` bytes into the fill; false (the fill aborted) when it
    /// fails, is longer or shorter, or nobody reads any more.
    async fn relay(&self, out: &mut Out, mut body: OriginBody, n: u64) -> bool {
        let mut total = 0u64;
        while let Some(frame) = body.frame().await {
            let data = match frame {
                Ok(f) => match f.into_data() {
                    Ok(d) => d,
                    Err(_) => continue,
                },
                Err(e) => {
                    bump(&self.ctx.counters.origin_errors);
                    tracing::warn!(key = %self.key, error = %e, "origin body cut short while completing; not stored");
                    out.abort();
                    return false;
                }
            };
            total += data.len() as u64;
            if total > n {
                tracing::warn!(key = %self.key, "origin sent more than the range asked; cut");
                out.abort();
                return false;
            }
            if !out.put(data).await {
                return false;
            }
        }
        if total != n {
            tracing::warn!(key = %self.key, got = total, want = n, "origin range short; cut");
            out.abort();
            return false;
        }
        true
    }
}

/// The fill being written (None once aborted), its last chunk held back until the object is
/// stored (`FillWriter::finish_with`), so a client that has every byte finds it stored.
struct Out {
    w: Option<FillWriter<FillHead>>,
    last: Option<Bytes>,
}

impl Out {
    /// Appends `b`; false (the fill aborted) when nobody reads any more.
    async fn put(&mut self, b: Bytes) -> bool {
        let Some(w) = self.w.as_mut() else {
            return false;
        };
        if b.is_empty() {
            return true;
        }
        if let Some(prev) = self.last.replace(b) {
            w.push(prev).await;
            if w.is_orphaned() {
                self.abort();
                return false;
            }
        }
        true
    }

    /// Cuts the body short: readers see it end before its length.
    fn abort(&mut self) {
        self.last = None;
        if let Some(w) = self.w.take() {
            w.abort();
        }
    }
}
