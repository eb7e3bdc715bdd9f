//! Node counters: plain atomics bumped on the request path, read by the admin endpoints.
//!
//! Each counter has one [`Stat`]: its `/stats.json` key, its metric name (`strait_<metric>`,
//! `_total` for a counter), its group on the stats page and its help text, which is the doc
//! comment below. The per-response figures (status classes, routes, durations, connections,
//! bytes) are [`Traffic`] (`stats/traffic.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod traffic;

pub use traffic::{Traffic, TrafficSnapshot, CLASSES, DURATION_BOUNDS, ROUTE_SLOTS};

/// Where a figure is shown on the stats page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Client requests, responses and connections.
    Client,
    /// This node's store and its fills.
    Cache,
    /// Peers and ownership (cluster mode).
    Cluster,
    /// Origin servers.
    Origin,
}

impl Group {
    /// The page's name for the group.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Client => "client",
            Group::Cache => "cache",
            Group::Cluster => "cluster",
            Group::Origin => "origin",
        }
    }
}

/// Whether a figure only grows or goes up and down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// A figure's description.
#[derive(Debug, PartialEq, Eq)]
pub struct Stat {
    /// Its key in `/stats.json` and its name on the page.
    pub key: &'static str,
    /// Its metric: `strait_<metric>` (`_total` added to a counter).
    pub metric: &'static str,
    pub group: Group,
    pub kind: Kind,
    /// What it counts (`# HELP`); may carry the doc comment's leading spaces.
    pub help: &'static str,
}

/// A figure read at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub stat: &'static Stat,
    pub value: u64,
}

macro_rules! counters {
    ($( $(#[doc = $doc:literal])* $name:ident => $group:ident $metric:literal ),* $(,)?) => {
        /// Cache-node counters (monotonic), and the per-response figures of [`Traffic`].
        #[derive(Debug, Default)]
        pub struct Counters {
            $( $(#[doc = $doc])* pub $name: AtomicU64, )*
            /// Responses by status class and route, their durations, client connections and
            /// bytes.
            pub traffic: Traffic,
        }

        impl Counters {
            /// Every counter's description, in declaration order; its doc comment is its help.
            pub const STATS: &'static [Stat] = &[$(
                Stat {
                    key: stringify!($name),
                    metric: $metric,
                    group: Group::$group,
                    kind: Kind::Counter,
                    help: concat!($($doc),*),
                },
            )*];

            /// Every counter with its value, in declaration order.
            pub fn snapshot(&self) -> Vec<Reading> {
                let values = [$( self.$name.load(Ordering::Relaxed), )*];
                Self::STATS
                    .iter()
                    .zip(values)
                    .map(|(stat, value)| Reading { stat, value })
                    .collect()
            }
        }
    };
}

counters! {
    /// Client requests received (proxied ones; admin requests are not counted).
    requests => Client "http_requests",
    /// Requests served from this node's store, without the origin or a peer.
    local_hit => Cache "cache_local_hits",
    /// Requests for keys this node owns that it had to fetch from the origin.
    local_miss => Cache "cache_local_misses",
    /// Requests served by the key's owner peer from its store (cluster mode).
    remote_hit => Cluster "cluster_remote_hits",
    /// Requests the key's owner peer missed and fetched from the origin (cluster mode).
    remote_miss => Cluster "cluster_remote_misses",
    /// Requests sent to origin servers.
    origin_fetches => Origin "origin_fetches",
    /// Requests that waited on another request's fill instead of going to the origin.
    coalesced => Cache "cache_coalesced",
    /// Stale objects served (stale-while-revalidate, stale-if-error, max-stale).
    stale_served => Cache "cache_stale_served",
    /// Stale objects revalidated with the origin (conditional request).
    revalidated => Cache "cache_revalidated",
    /// 304 Not Modified answered to clients from the store.
    not_modified => Cache "cache_not_modified",
    /// Origin responses that could not be stored.
    uncacheable => Cache "cache_uncacheable",
    /// Misses for a key whose last answer could not be stored: fetched alone at once, not
    /// coalesced (`cache.hit_for_miss`).
    hit_for_miss => Cache "cache_hit_for_miss",
    /// Of those, the ones relayed on the pass lane (the connection's own loop, from the raw
    /// request; `http::passlane`).
    pass_lane => Cache "cache_pass_lane",
    /// Requests passed to the origin without cache lookup (non-GET methods, bypass).
    passed => Cache "cache_passed",
    /// Of those, the ones with a body read by the connection's own loop, not hyper's (the
    /// upload lane; `http::upload_lane`).
    upload_lane => Cache "cache_upload_lane",
    /// Objects invalidated by unsafe methods, purges and bans.
    invalidated => Cache "cache_invalidated",
    /// Error responses generated by the node itself (4xx for bad requests, 5xx for origin trouble).
    errors => Client "http_errors",
    /// Bad requests refused with a 4xx.
    bad_requests => Client "http_bad_requests",
    /// Origin failures (connect, timeout, broken response, body cut short).
    origin_errors => Origin "origin_errors",
    /// Client request bodies that broke their framing (answered 400; not the origin's fault).
    client_bad_body => Client "client_bad_bodies",
    /// Client request bodies that stalled past `limits.body_timeout` (answered 408).
    client_body_timeout => Client "client_body_timeouts",
    /// Client request bodies over `limits.max_request_body` (answered 413).
    client_body_too_large => Client "client_bodies_too_large",
    /// Clients that went away before their request was complete.
    client_aborted => Client "client_aborted",
    /// Lookups answered for peers (this node owning the key).
    peer_lookups => Cluster "cluster_peer_lookups",
    /// Peer lookups answered from this node's store.
    peer_hits => Cluster "cluster_peer_hits",
    /// Of those, the ones sent in the object's wire form (`WireHit`, to a requester's lean
    /// path).
    peer_wire_hits => Cluster "cluster_peer_wire_hits",
    /// Peers' requests for stale objects this node answered itself (`Answer`).
    peer_answers => Cluster "cluster_peer_answers",
    /// Fill leases granted to peers (they fetch, then push the object here).
    peer_leases => Cluster "cluster_peer_leases",
    /// Objects pushed by peers under a lease and stored here.
    peer_pushes => Cluster "cluster_peer_pushes",
    /// Fill leases whose holder died or stalled (no frame of its push for `lease_timeout`):
    /// this node, the owner, took the fill over for the requests waiting on it.
    lease_regranted => Cluster "cluster_leases_regranted",
    /// Taken-over fills that resumed mid-body: the origin's new answer was the same
    /// representation, and its bytes past those already sent continued the fill.
    fill_resumed => Cluster "cluster_fills_resumed",
    /// Taken-over fills that could not resume (another representation, or the origin failed):
    /// their waiters' bodies were cut short, never completed.
    fill_resume_refused => Cluster "cluster_fill_resumes_refused",
    /// Misses answered with the object the key's previous owner held (handover after a join).
    handover_hits => Cluster "cluster_handover_hits",
    /// Peer exchanges that failed (either side: connect, timeout, protocol error); the request
    /// went on without the peer.
    peer_errors => Cluster "cluster_peer_errors",
    /// Peers that did not answer (handshake or first frame) within `cluster.peer_timeout`;
    /// each marks the peer suspect here for a while (also counted in `peer_errors`).
    peer_timeouts => Cluster "cluster_peer_timeouts",
    /// Requests for a key whose owner was suspect here, sent to the key's next node without
    /// asking the owner.
    peer_suspect_skips => Cluster "cluster_peer_suspect_skips",
    /// Client connections closed because their writes made no progress for
    /// `limits.send_timeout` (the client stopped reading).
    send_timeouts => Client "client_send_timeouts",
    /// Client connections closed because no whole request head arrived within
    /// `limits.header_read_timeout` (slow or silent clients; on the raw path, those that had
    /// sent part of a head are answered 408 first; HTTP/2 connections with no request in
    /// flight that long).
    header_timeouts => Client "client_header_timeouts",
    /// Times the client listeners stopped accepting because `limits.max_connections` client
    /// connections were open (each pause lasts until one closes).
    connection_limit_waits => Client "client_connection_limit_waits",
    /// Failed accepts on the node's listeners, client, admin and peer (`EMFILE`, `ENFILE`,
    /// `ENOBUFS`): each backs the accept loop off, 5 ms doubling up to 1 s, instead of
    /// retrying at once.
    accept_errors => Client "client_accept_errors",
    /// Requests for a key a peer owns answered from this node's hot copy of it
    /// (`cache.hot_ttl`), without asking the owner.
    hot_hits => Cluster "cluster_hot_hits",
}

/// A table of figures kept elsewhere but described as the counters are (`key => Group
/// "metric"`, the doc comment is the help), read into a snapshot beside them.
macro_rules! figures {
    ($(#[doc = $tdoc:literal])* $vis:vis const $table:ident: $kind:ident = {
        $( $(#[doc = $doc:literal])* $name:ident => $group:ident $metric:literal ),* $(,)?
    }) => {
        $(#[doc = $tdoc])*
        $vis const $table: &[Stat] = &[$(
            Stat {
                key: stringify!($name),
                metric: $metric,
                group: Group::$group,
                kind: Kind::$kind,
                help: concat!($($doc),*),
            },
        )*];
    };
}

figures! {
    /// The access log's figures (`[log]`), counted by its writer (`strait_lb::accesslog`) and
    /// read from `ctx.access` in this order: lines written, dropped, failed.
    pub const ACCESS_LOG: Counter = {
        /// Access log lines written.
        access_log_lines => Client "access_log_lines",
        /// Access log lines dropped because the writer's queue was full (a request never
        /// waits for the log).
        access_log_dropped => Client "access_log_dropped",
        /// Access log lines lost to failed writes (the file or stderr refused them).
        access_log_failed => Client "access_log_failed",
    }
}

impl Counters {
    /// A client response is complete or handed to its writer: counted by status class and
    /// route (None: refused before routing), its duration in the histogram. A few relaxed
    /// atomic adds; see [`Traffic::record_response`].
    #[inline]
    pub fn record_response(&self, status: u16, route: Option<usize>, elapsed: Duration) {
        self.traffic.record_response(status, route, elapsed);
    }

    /// Count a fault on the side that caused it.
    pub fn fault(&self, f: crate::fault::Fault) {
        use crate::fault::Fault;
        let c = match f {
            Fault::ClientBadBody => &self.client_bad_body,
            Fault::ClientBodyTimeout => &self.client_body_timeout,
            Fault::ClientBodyTooLarge => &self.client_body_too_large,
            Fault::ClientAborted => &self.client_aborted,
            Fault::PeerUnreachable | Fault::PeerBroken => &self.peer_errors,
            // Counted where they are seen: by the pool (origin_errors, per server), and by
            // `respond::error` (errors) for the node's own.
            Fault::OriginUnreachable
            | Fault::OriginTimeout
            | Fault::OriginBroken
            | Fault::NoServer
            | Fault::Node => return,
        };
        bump(c);
    }
}

/// Bump a counter by one.
#[inline]
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Add to a counter.
#[inline]
pub fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_lists_every_counter_in_order() {
        let c = Counters::default();
        bump(&c.local_hit);
        add(&c.requests, 3);
        let s = c.snapshot();
        let pair = |i: usize| (s[i].stat.key, s[i].value);
        assert_eq!(pair(0), ("requests", 3));
        assert_eq!(pair(1), ("local_hit", 1));
        assert_eq!(s.len(), 41);
        assert_eq!(pair(14), ("upload_lane", 0));
        assert_eq!(pair(31), ("fill_resume_refused", 0));
        assert_eq!(pair(35), ("peer_suspect_skips", 0));
        assert_eq!(pair(36), ("send_timeouts", 0));
        assert_eq!(pair(39), ("accept_errors", 0));
        assert_eq!(pair(40), ("hot_hits", 0));
        assert_eq!(s[1].stat.metric, "cache_local_hits");
        assert_eq!(s[1].stat.group, Group::Cache);
    }

    #[test]
    fn every_counter_has_help_and_a_unique_snake_case_metric() {
        let mut seen = std::collections::HashSet::new();
        for stat in Counters::STATS.iter().chain(ACCESS_LOG) {
            assert!(stat.help.trim().len() > 10, "{}", stat.key);
            assert!(!stat.metric.ends_with("_total"), "{}", stat.metric);
            let snake = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
            assert!(stat.metric.bytes().all(snake), "{}", stat.metric);
            assert!(seen.insert(stat.metric), "{} twice", stat.metric);
        }
    }
}
