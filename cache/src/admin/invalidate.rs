//! `POST /purge?url=URL`, `POST /ban?prefix=PREFIX` and `POST /ban?all=1`: what an operator's
//! invalidation asks ([`Invalidation::of`], pure), and its answer once done here and, in a
//! cluster, on every other live member ([`answer`]).
//!
//! Contract:
//! * `purge` takes an absolute URL (`http://host/path`); its key is the one the request path
//!   computes, and every `cache_key` extension of it goes too.
//! * `ban` takes an absolute URL prefix (`crate::policy::ban`): an empty, relative or
//!   host-less prefix is refused (400), so a ban never empties the cache by accident;
//!   `all=1` (and no `prefix`) empties it on purpose.
//! * The answer is 200 with JSON `{"removed": N, ...}` (N: objects removed, here and on every
//!   member that answered), also when N is 0: the request was valid, nothing matched
//!   (`strait ctl` turns 0 into exit code 1). A ban names the prefix it applied (`"prefix"`, as
//!   keys are written), a purge its key (`"key"`), a ban of everything `"all": true`. In a
//!   cluster: `"nodes"` (objects removed per node id) and `"failed"` (node id: why it did not
//!   confirm).
//! * A refusal is 400 with a one-line text reason.

use bytes::Bytes;
use http::{Response, StatusCode, Uri};
use http_body_util::Full;
use serde_json::{Map, Value};
use strait_lb::admin::{query_param, respond};

use crate::cluster::frame::Frame;
use crate::cluster::invalidate::broadcast;
use crate::http::ctx::Ctx;
use crate::policy::ban::checked_ban_prefix;
use crate::policy::key::primary_key;
use crate::stats::add;

/// One invalidation an operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// The objects of one URL (its primary key).
    Purge {
        /// The URL's primary cache key.
        key: String,
    },
    /// The objects whose key starts with `prefix` (checked, written as keys are).
    Ban {
        /// The prefix.
        prefix: String,
    },
    /// Every stored object, asked for explicitly.
    BanAll,
}

impl Invalidation {
    /// What `POST path?query` asks (`path` is `/purge` or `/ban`), or the reason to refuse it.
    pub fn of(path: &str, uri: &Uri) -> Result<Invalidation, String> {
        match path {
            "/purge" => {
                let url = query_param(uri, "url")
                    .ok_or("purge needs ?url=URL (an absolute URL, e.g. http://host/path)")?;
                let key = url_key(&url).ok_or_else(|| {
                    format!("purge url {url:?} is not an absolute URL such as http://host/path")
                })?;
                Ok(Invalidation::Purge { key })
            }
            "/ban" => {
                let prefix = query_param(uri, "prefix");
                let all = query_param(uri, "all");
                match (prefix, all.as_deref()) {
                    (Some(_), Some(_)) => Err("ban takes ?prefix= or ?all=1, not both".into()),
                    (None, Some("1")) => Ok(Invalidation::BanAll),
                    (None, Some(other)) => Err(format!(
                        "ban ?all={other:?}: write ?all=1 to empty the whole cache"
                    )),
                    (Some(raw), None) => checked_ban_prefix(&raw)
                        .map(|prefix| Invalidation::Ban { prefix })
                        .map_err(|why| format!("ban prefix {raw:?} refused: {}", why.message())),
                    (None, None) => Err(
                        "ban needs ?prefix=PREFIX (e.g. http://host/img/), or ?all=1 to empty \
                         the whole cache"
                            .into(),
                    ),
                }
            }
            _ => Err(format!("{path} is not an invalidation")),
        }
    }

    /// Removes what it names from this node's store; the count removed.
    fn here(&self, ctx: &Ctx) -> u64 {
        let n = match self {
            Invalidation::Purge { key } => crate::http::purge_url(ctx, key),
            Invalidation::Ban { prefix } => crate::http::ban_prefix(ctx, prefix),
            Invalidation::BanAll => crate::http::ban_prefix(ctx, ""),
        } as u64;
        add(&ctx.counters.invalidated, n);
        n
    }

    /// The peer frame that asks a member for the same.
    fn frame(&self) -> Frame {
        match self {
            Invalidation::Purge { key } => Frame::Purge { url: key.clone() },
            Invalidation::Ban { prefix } => Frame::Ban {
                prefix: prefix.clone(),
            },
            Invalidation::BanAll => Frame::BanAll,
        }
    }

    /// The answer's fields naming what was asked.
    fn describe(&self, out: &mut Map<String, Value>) {
        match self {
            Invalidation::Purge { key } => out.insert("key".into(), key.clone().into()),
            Invalidation::Ban { prefix } => out.insert("prefix".into(), prefix.clone().into()),
            Invalidation::BanAll => out.insert("all".into(), true.into()),
        };
    }
}

/// Answers `POST /purge` or `POST /ban` (`path`): refused with 400, or done here and on every
/// other live member, and answered with what was removed (see the module doc).
pub async fn answer(ctx: &Ctx, path: &str, uri: &Uri) -> Response<Full<Bytes>> {
    let what = match Invalidation::of(path, uri) {
        Ok(what) => what,
        Err(why) => {
            tracing::info!(reason = %why, "invalidation refused");
            return respond(
                StatusCode::BAD_REQUEST,
                "text/plain; charset=utf-8",
                format!("400 {why}\n"),
            );
        }
    };
    let local = what.here(ctx);
    let mut body = Map::new();
    what.describe(&mut body);
    let Some(cluster) = ctx.cluster.as_ref() else {
        log(&what, local, false);
        body.insert("removed".into(), local.into());
        return respond(
            StatusCode::OK,
            "application/json",
            Value::Object(body).to_string(),
        );
    };
    let out = broadcast(cluster, what.frame()).await;
    for (id, why) in &out.failed {
        tracing::warn!(node = %id, reason = %why, "invalidation not confirmed by a member");
    }
    let total = local + out.total();
    log(&what, total, true);
    let mut nodes = Map::new();
    nodes.insert(ctx.node_id.clone(), local.into());
    for (id, n) in &out.removed {
        nodes.insert(id.clone(), (*n).into());
    }
    let failed: Map<String, Value> = out
        .failed
        .iter()
        .map(|(id, why)| (id.clone(), why.clone().into()))
        .collect();
    body.insert("removed".into(), total.into());
    body.insert("nodes".into(), Value::Object(nodes));
    body.insert("failed".into(), Value::Object(failed));
    respond(
        StatusCode::OK,
        "application/json",
        Value::Object(body).to_string(),
    )
}

/// One line per invalidation, at info (a ban of everything at warn).
fn log(what: &Invalidation, removed: u64, cluster: bool) {
    match what {
        Invalidation::Purge { key } => tracing::info!(key, removed, cluster, "purge"),
        Invalidation::Ban { prefix } => tracing::info!(prefix, removed, cluster, "ban"),
        Invalidation::BanAll => {
            tracing::warn!(removed, cluster, "ban --all: every object removed")
        }
    }
}

/// The cache key of an absolute `http://` URL, as the request path computes it (keys are
/// `http://` ones: the node serves plain HTTP).
fn url_key(url: &str) -> Option<String> {
    let uri: Uri = url.trim().parse().ok()?;
    if !uri.scheme_str()?.eq_ignore_ascii_case("http") {
        return None;
    }
    uri.authority()?;
    primary_key(&uri, &http::HeaderMap::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(target: &str) -> Result<Invalidation, String> {
        let uri: Uri = target.parse().unwrap();
        Invalidation::of(uri.path(), &uri)
    }

    #[test]
    fn a_purge_names_an_absolute_url() {
        assert_eq!(
            of("/purge?url=http%3A%2F%2FExample.com%3A80%2Fa%3Fb"),
            Ok(Invalidation::Purge {
                key: "http://example.com/a?b".into()
            })
        );
        for bad in [
            "/purge",
            "/purge?url=",
            "/purge?url=%2Fa",
            "/purge?url=a.png",
        ] {
            let why = of(bad).expect_err(bad);
            assert!(why.contains("absolute URL"), "{bad}: {why}");
        }
    }

    #[test]
    fn a_ban_names_an_absolute_prefix_or_all() {
        assert_eq!(
            of("/ban?prefix=http%3A%2F%2FExample.com%2Fimg%2F"),
            Ok(Invalidation::Ban {
                prefix: "http://example.com/img/".into()
            })
        );
        assert_eq!(of("/ban?all=1"), Ok(Invalidation::BanAll));
    }

    #[test]
    fn an_empty_relative_or_ambiguous_ban_is_refused() {
        let table = [
            ("/ban", "ban needs ?prefix=PREFIX"),
            (
                "/ban?prefix=",
                "ban prefix \"\" refused: a ban needs a prefix",
            ),
            (
                "/ban?prefix=%2Fimg%2F",
                "ban prefix \"/img/\" refused: a ban prefix is an absolute",
            ),
            (
                "/ban?prefix=http%3A%2F%2F",
                "ban prefix \"http://\" refused: a ban prefix must name a host",
            ),
            ("/ban?prefix=http&all=1", "not both"),
            ("/ban?all=yes", "write ?all=1"),
            ("/ban?all=", "write ?all=1"),
        ];
        for (target, want) in table {
            let why = of(target).expect_err(target);
            assert!(why.contains(want), "{target}: {why}");
        }
    }

    #[test]
    fn each_invalidation_has_its_frame() {
        let ban = Invalidation::Ban {
            prefix: "http://a/".into(),
        };
        assert_eq!(
            ban.frame(),
            Frame::Ban {
                prefix: "http://a/".into()
            }
        );
        assert_eq!(Invalidation::BanAll.frame(), Frame::BanAll);
        let mut m = Map::new();
        Invalidation::BanAll.describe(&mut m);
        assert_eq!(Value::Object(m), serde_json::json!({"all": true}));
    }
}
