//! Storing: the fill's driver reads the origin body into the fill (and to the owner, when it
//! keeps the object), and stores the object here when it arrived whole and this node keeps it.

use std::sync::Arc;

use crate::origin::body::OriginBody;
use http::header::{HeaderValue, CONTENT_LENGTH};
use http::HeaderMap;
use http_body_util::BodyExt;

use super::Keep;
use crate::http::ctx::Ctx;
use crate::origin::pool::Server;
use crate::stats::add;
use crate::store::fill::FillWriter;
use crate::store::object::{FillHead, Object};

/// Read the origin body into the fill (and to the owner, when it keeps the object), then
/// store it here when it arrived whole and this node keeps it.
pub(super) async fn drive(
    ctx: Arc<Ctx>,
    mut w: FillWriter<FillHead>,
    mut incoming: OriginBody,
    key: String,
    head: Arc<FillHead>,
    (max_object_size, server): (u64, Arc<Server>),
    keep: Keep,
) {
    let mut total: u64 = 0;
    let mut storing = true;
    let mut last = None;
    let stores_here = keep.stores_here();
    let mut sink = match keep {
        Keep::Push(s) => Some(s),
        _ => None,
    };
    loop {
        match incoming.frame().await {
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                total += data.len() as u64;
                if storing && total > max_object_size {
                    storing = false;
                    w.stream_only();
                    if let Some(s) = sink.take() {
                        s.abort().await;
                    }
                }
                if let Some(s) = sink.as_mut() {
                    if !s.data(data.clone()).await {
                        sink = None;
                    }
                }
                if storing && head.content_length == Some(total) {
                    // The last bytes: held back until the object is stored (`finish_with`),
                    // so a client that has them all and asks again gets a hit.
                    last = Some(data);
                    break;
                }
                w.push(data).await;
                if sink.is_none() && w.is_orphaned() {
                    // Streaming to nobody (every client left or was detached), stored nowhere.
                    tracing::debug!(key = %key, received = total, "stream has no reader left; origin read stopped");
                    w.abort();
                    return;
                }
            }
            Some(Err(e)) => {
                // Counted, and logged at warn, by the body (`origin::body`): the server's fault.
                tracing::debug!(key = %key, error = %e, received = total, "origin body cut short; not stored");
                if let Some(s) = sink.take() {
                    s.abort().await;
                }
                w.abort();
                return;
            }
            None => break,
        }
    }
    if head.content_length.is_none() {
        add(&server.bytes, total);
    }
    if let Some(s) = sink.take() {
        s.end(total).await;
    }
    w.finish_with(last, |body| {
        let Some(body) = body else {
            return;
        };
        if !stores_here || !storing || head.content_length.is_some_and(|n| n != body.len() as u64) {
            return;
        }
        let Some(meta) = head.meta.clone() else {
            return;
        };
        // `finish_with` made the body one exact-size copy (the chunks were slices of hyper's
        // read buffers, which a stored object must not pin); readers still reading share it.
        let obj = Object::new(
            head.status,
            with_length(&head.headers, body.len() as u64),
            body,
            meta,
            head.vary.clone(),
            head.variant_id.clone(),
            head.has_targeted,
        );
        ctx.store.insert(&key, Arc::new(obj));
    });
}

pub(super) fn with_length(h: &HeaderMap, len: u64) -> HeaderMap {
    let mut h = h.clone();
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    h
}
