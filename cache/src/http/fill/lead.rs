//! A fill's leader, in the order things happen: ask the origin (a plain GET, or a conditional
//! one to revalidate `stale`; under `cache.partial`, only the missing byte runs when a fresh
//! partial object of the key is held, `partial::complete`) → answer from the stale object when the origin says 304 or fails
//! and the object allows it (`fallback`) → decide what may be stored (`head_of`) → settle where
//! the object is kept (here, at the owner, nowhere) → publish the head to the coalesced
//! requests and start reading the body (`drive`) → answer this client.

use std::sync::Arc;
use std::time::SystemTime;

use http::response::Parts;
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::{Either, Empty};

use super::drive::drive;
use super::fallback::{error_head, origin_failed, revalidated, serve_stale, Failure};
use super::{Keep, Lead};
use crate::http::body::ProxyBody;
use crate::http::ctx::{RouteChoice, Runtime};
use crate::http::forward::{
    clean_response_headers, forward_headers, has_any, path_and_query, pick_input, respond_upstream,
    with_cookie,
};
use crate::http::partial::{self, Completion};
use crate::http::respond;
use crate::origin::pool::{OutRequest, Sent};
use crate::policy::cache_control::CacheControl;
use crate::policy::cache_status::CacheStatus;
use crate::policy::conditional::{revalidation_headers, strip_conditionals};
use crate::policy::headers::content_length;
use crate::policy::meta::StoredMeta;
use crate::policy::reuse::may_serve_stale_on_error;
use crate::policy::storable::{storability, NoStoreReason, StoreParams};
use crate::policy::vary::{variant_id, vary_of, Vary};
use crate::stats::bump;
use crate::store::fill::FillWriter;
use crate::store::object::FillHead;

/// When the origin was asked and when its answer's head arrived (RFC 9111 §4.2.3).
pub(in crate::http) struct Times {
    pub request: SystemTime,
    pub response: SystemTime,
}

/// Lead one fill: see the module doc for the order of the stages.
pub(in crate::http) async fn lead(job: Lead<'_>, w: FillWriter<FillHead>) -> Response<ProxyBody> {
    let ctx = job.ctx;
    // A key with a fresh partial object: only the byte runs not held are fetched.
    let (mut w, asked) = if job.rt.partial_slice.is_some() {
        match Box::pin(partial::complete(&job, w)).await {
            Completion::Done(resp) => return resp,
            Completion::Fill(w, asked) => (w, asked),
        }
    } else {
        (w, None)
    };
    let (sent, times) = match asked {
        Some(asked) => asked,
        None => ask_origin(&job).await,
    };
    let Sent {
        response,
        server,
        set_cookie,
        ..
    } = match sent {
        Ok(r) => r,
        Err(fault) => {
            let fail = Failure {
                fwd: job.fwd,
                stale: job.stale.as_ref(),
                req_cc: job.req_cc,
                background: matches!(job.keep, Keep::Background),
            };
            return origin_failed(ctx, &job.req, w, fault, fail);
        }
    };
    let (mut rparts, incoming) = response.into_parts();
    clean_response_headers(ctx, &mut rparts.headers, rparts.version);

    if let Some(stale) = &job.stale {
        // A 304 to our revalidation: refresh the stored object's headers, serve its body.
        if rparts.status == StatusCode::NOT_MODIFIED {
            return revalidated(&job, w, stale, &rparts.headers, times).await;
        }
        // RFC 5861 stale-if-error.
        if rparts.status.is_server_error()
            && may_serve_stale_on_error(&stale.meta, job.req_cc, SystemTime::now())
        {
            w.publish(Arc::new(error_head(rparts.status, job.fwd)), false);
            return serve_stale(ctx, &job.req, stale, rparts.status.as_u16());
        }
    }

    let (head, mark) = head_of(&job, rparts, &times);
    let mut cs = CacheStatus::fwd(&ctx.node_id, job.fwd);
    cs.fwd_status = head.fwd_status;
    cs.upstream = head.upstream.clone();
    if !job.keep.stores_here() {
        cs.detail = Some("peer".to_string());
    }
    let keep = settle_keep(job.keep, job.key, &head).await;
    if head.meta.is_none() {
        bump(&ctx.counters.uncacheable);
        if mark && keep.stores_here() {
            ctx.uncacheable
                .mark(job.key, job.rt.hit_for_miss, std::time::Instant::now());
        }
        w.publish(Arc::clone(&head), false);
        // Released: followers go forward alone. Without it, a head nobody else holds is
        // taken apart instead of copied.
        drop(w);
        if job.stale.is_some() && head.status == StatusCode::OK {
            // The new representation can't be stored: the stale one must not be served again.
            ctx.store.remove_variant(job.key, &head.variant_id);
        }
        let (status, has_targeted) = (head.status, head.has_targeted);
        let headers = Arc::try_unwrap(head).map_or_else(|h| h.headers.clone(), |h| h.headers);
        let mut resp = respond_upstream(
            ctx,
            job.req.method == http::Method::HEAD,
            (status, headers, has_targeted),
            incoming,
            &cs,
        );
        crate::access::note_server(ctx, &mut resp, server.addr);
        return with_cookie(resp, set_cookie);
    }
    let head = if matches!(keep, Keep::Nowhere) {
        // Storable, but kept nowhere: followers read this fill, told it is not stored.
        match Arc::try_unwrap(head) {
            Ok(h) => Arc::new(FillHead { meta: None, ..h }),
            Err(shared) => shared,
        }
    } else {
        cs.stored = true;
        ctx.uncacheable.clear(job.key);
        head
    };
    let server_addr = server.addr;
    let reader = w.reader();
    w.publish(Arc::clone(&head), true);
    tokio::spawn(drive(
        Arc::clone(ctx),
        w,
        incoming,
        job.key.to_string(),
        Arc::clone(&head),
        (job.rt.max_object_size, server),
        keep,
    ));
    let mut resp = respond::fill(ctx, &job.req, &head, reader, &cs);
    crate::access::note_server(ctx, &mut resp, server_addr);
    with_cookie(resp, set_cookie)
}

/// The fill's request to the origin pool: the client's request as a GET for the whole object
/// (its conditionals and `Range` removed), conditional on `stale`'s validators when there is one.
pub(in crate::http) async fn ask_origin(
    job: &Lead<'_>,
) -> (Result<Sent, crate::fault::Fault>, Times) {
    // The pass lane's answer for this key (`passlane`), already received: a fill like this.
    if job.stale.is_none() && matches!(job.keep, Keep::Local) {
        if let Some((sent, times)) = crate::http::passlane::take_prefetched(job.key) {
            return (Ok(sent), times);
        }
    }
    let ctx = job.ctx;
    let mut headers = forward_headers(ctx, &job.req);
    strip_conditionals(&mut headers);
    headers.remove(http::header::RANGE);
    if let Some(s) = &job.stale {
        for (name, value) in revalidation_headers(&s.headers()).iter() {
            headers.insert(name.clone(), value.clone());
        }
        bump(&ctx.counters.revalidated);
    }
    let out = OutRequest {
        method: Method::GET,
        path_and_query: path_and_query(&job.req),
        headers,
        body: Either::Left(Empty::new()),
        upload: None,
        interim: job.req.interim.clone(),
        raw_response: false,
        body_in_head: false,
    };
    let request = SystemTime::now();
    let sent = job
        .req
        .route
        .pool
        .send(out, &pick_input(&job.req), &ctx.counters)
        .await;
    let times = Times {
        request,
        response: SystemTime::now(),
    };
    (sent, times)
}

/// The head the fill publishes: the origin's answer and whether (with what metadata) it may be
/// stored — RFC 9111 §3, then the node's own rules: not larger than `max_object_size`, and no
/// `Set-Cookie` unless the route says such answers may be shared. With it, whether the answer
/// (not the request) is what made it unstorable: then the key is marked (`store::uncacheable`).
fn head_of(job: &Lead<'_>, rparts: Parts, times: &Times) -> (Arc<FillHead>, bool) {
    let (rt, req, key) = (job.rt, &job.req, job.key);
    let clen = content_length(&rparts.headers);
    let (meta, mark) = store_decision(
        rt,
        &req.route,
        key,
        (&req.headers, job.req_cc),
        (rparts.status, &rparts.headers),
        times,
    );
    let vary = match vary_of(&rparts.headers) {
        Vary::Fields(f) => f,
        _ => Vec::new(),
    };
    let head = Arc::new(FillHead {
        status: rparts.status,
        variant_id: variant_id(&vary, &req.headers),
        vary,
        meta,
        content_length: clen,
        fwd: job.fwd,
        fwd_status: job.stale.as_ref().map(|_| rparts.status.as_u16()),
        has_targeted: has_any(&rparts.headers, &rt.strip),
        upstream: match &job.keep {
            Keep::Push(sink) => sink.owner_member.clone(),
            _ => None,
        },
        headers: rparts.headers,
    });
    (head, mark)
}

/// What may be stored of an origin's answer to a GET (see [`head_of`]): its metadata when it
/// may, and else whether the answer (not the request) is what made it unstorable.
/// Whether [`store_decision`] refuses to store this answer to a plain GET (no request field
/// that bears on it) already on its status and `directives`, a map of only its
/// `Cache-Control` and the route's targeted fields (`NoStoreReason::by_directives`): then the
/// whole head is refused too; else only [`store_decision`] on the fields it reads can tell.
pub(in crate::http) fn refused_by_directives(
    rt: &Runtime,
    route: &RouteChoice,
    (status, directives): (StatusCode, &HeaderMap),
    times: &Times,
) -> bool {
    let params = StoreParams {
        freshness: rt.freshness,
        targets: &rt.targets,
        default_ttl: route.ttl,
    };
    storability(
        &Method::GET,
        &HeaderMap::new(),
        &CacheControl::default(),
        status,
        directives,
        times.request,
        times.response,
        &params,
    )
    .is_err_and(|reason| reason.by_directives())
}

pub(in crate::http) fn store_decision(
    rt: &Runtime,
    route: &RouteChoice,
    key: &str,
    (req_headers, req_cc): (&HeaderMap, &CacheControl),
    (status, headers): (StatusCode, &HeaderMap),
    times: &Times,
) -> (Option<StoredMeta>, bool) {
    let params = StoreParams {
        freshness: rt.freshness,
        targets: &rt.targets,
        default_ttl: route.ttl,
    };
    let decision = storability(
        &Method::GET,
        req_headers,
        req_cc,
        status,
        headers,
        times.request,
        times.response,
        &params,
    );
    let decision = match decision {
        Ok(_) if !route.store_set_cookie && headers.contains_key(http::header::SET_COOKIE) => {
            Err(NoStoreReason::SetCookie)
        }
        d => d,
    };
    match decision {
        Ok(_) if content_length(headers).is_some_and(|n| n > rt.max_object_size) => {
            tracing::debug!(key = %key, "not stored: larger than max_object_size");
            (None, true)
        }
        Ok(m) => (Some(m), false),
        Err(reason) => {
            tracing::debug!(key = %key, reason = reason.as_str(), "not stored");
            let by_request = matches!(
                reason,
                NoStoreReason::Method
                    | NoStoreReason::RequestNoStore
                    | NoStoreReason::Authorization
            );
            (None, !by_request)
        }
    }
}

/// Where the object will be kept, now that its head is known. Kept at the owner: the owner
/// takes the head now (so its own coalesced requests start at once), or declines it.
async fn settle_keep(keep: Keep, key: &str, head: &Arc<FillHead>) -> Keep {
    match keep {
        Keep::Push(sink) if head.meta.is_some() => match sink.head(key, head).await {
            Some(sink) => Keep::Push(Box::new(sink)),
            None => Keep::Nowhere,
        },
        Keep::Push(sink) => {
            sink.decline().await;
            Keep::Nowhere
        }
        k => k,
    }
}
