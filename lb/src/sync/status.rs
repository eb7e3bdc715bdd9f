//! What a director's connection sync shows: for `/stats.json` (`sync`), the admin page,
//! `strait ctl status` and `/metrics`.
//!
//! Contract: `/stats.json`'s `sync` block is `{"local", "port", "peers", "authenticated",
//! "catchup": {"state", "records", "expected", "took_ms"}, "datagrams_sent",
//! "datagrams_received", "records_sent", "records_received", "installed", "replaced", "kept",
//! "evicted", "refused", "aside": {reason: count}, "aside_pending", "aside_expired",
//! "rate_limited", "gone", "send_errors", "acked", "resent", "unacked", "refreshes",
//! "bulk_requests_sent",
//! "bulk_requests_received", "bulk_dumps_sent", "bulk_records_sent", "batch_wait_max_us",
//! "drops": {reason: count}}`, every aside and drop reason present (zeros included). Metrics
//! (prefixed by the caller): `sync_catchup_done` (1 once the catch-up ended, by dump or by
//! timeout), `sync_datagrams_sent_total`, `sync_datagrams_received_total`,
//! `sync_records_sent_total`, `sync_records_received_total`,
//! `sync_records_total{outcome}` (installed, replaced, kept, evicted, refused),
//! `sync_aside_total{reason}`, `sync_aside_pending`, `sync_rate_limited_total`,
//! `sync_send_errors_total`, `sync_acked_total`, `sync_resent_total`, `sync_unacked_total`,
//! `sync_bulk_records_sent_total`, `sync_drops_total{reason}`.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::{json, Value};

use super::host::Aside;
use super::Refused;
use crate::admin::metrics::{counter, counters, gauge, DescriptorEncoder};
use crate::datapath::Installed;

/// Drop reasons beyond the datagram's own ([`Refused::NAMES`]): the sender is not a peer.
pub const NOT_A_PEER: &str = "not_a_peer";

/// Where the catch-up of a starting director is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Catchup {
    /// Asking the peers for a dump (VRRP not started yet).
    Waiting,
    /// A peer's dump came in whole: `records` received of the `expected` it sent.
    Done {
        /// Records received in the dump.
        records: u64,
        /// Records the peer said it sent.
        expected: u64,
        /// From the first request to the dump's end.
        took: Duration,
    },
    /// No dump within `sync_catchup_timeout` (no peer up, or it did not answer in time).
    TimedOut {
        /// Records received before the timeout.
        records: u64,
    },
}

impl Catchup {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Catchup::Waiting => "waiting",
            Catchup::Done { .. } => "done",
            Catchup::TimedOut { .. } => "timed_out",
        }
    }
}

/// The sync's state and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    /// Our address (the `[ha]` interface's).
    pub local: Ipv4Addr,
    /// The UDP port.
    pub port: u16,
    /// The peers.
    pub peers: Vec<Ipv4Addr>,
    /// Whether datagrams carry a tag (`secret_file`).
    pub authenticated: bool,
    /// The catch-up at start.
    pub catchup: Catchup,
    /// Datagrams sent (every peer counts).
    pub datagrams_sent: u64,
    /// Datagrams accepted.
    pub datagrams_received: u64,
    /// Records sent (once per peer).
    pub records_sent: u64,
    /// Records accepted.
    pub records_received: u64,
    /// What the datapath did with the resolved records.
    pub outcome: Installed,
    /// Records kept aside when they came, by reason (not counted again when retried).
    pub aside: [u64; 3],
    /// Records waiting aside now.
    pub aside_pending: u64,
    /// Records dropped after waiting aside too long.
    pub aside_expired: u64,
    /// New flows not sent: over `sync_rate` (the refresh sends them later).
    pub rate_limited: u64,
    /// New flows not sent: their service or backend was gone by then.
    pub gone: u64,
    /// Datagrams that could not be sent.
    pub send_errors: u64,
    /// `Records` datagrams the peers acknowledged.
    pub acked: u64,
    /// Records sent again (their datagram not acknowledged in time).
    pub resent: u64,
    /// Records given up unacknowledged after every send (the refresh carries them later).
    pub unacked: u64,
    /// Periodic refreshes of the live flows.
    pub refreshes: u64,
    /// Bulk dumps asked for.
    pub bulk_requests_sent: u64,
    /// Bulk dumps the peer asked for.
    pub bulk_requests_received: u64,
    /// Bulk dumps sent whole.
    pub bulk_dumps_sent: u64,
    /// Records sent in bulk dumps.
    pub bulk_records_sent: u64,
    /// Longest time a record waited for its datagram, microseconds.
    pub batch_wait_max_us: u64,
    /// Received datagrams dropped, by reason, every reason listed.
    pub drops: Vec<(&'static str, u64)>,
}

impl SyncStatus {
    /// A sync that has done nothing yet, waiting for its catch-up.
    pub fn new(local: Ipv4Addr, port: u16, peers: Vec<Ipv4Addr>, authenticated: bool) -> Self {
        let drops = Refused::NAMES
            .iter()
            .chain([NOT_A_PEER].iter())
            .map(|r| (*r, 0))
            .collect();
        SyncStatus {
            local,
            port,
            peers,
            authenticated,
            catchup: Catchup::Waiting,
            datagrams_sent: 0,
            datagrams_received: 0,
            records_sent: 0,
            records_received: 0,
            outcome: Installed::default(),
            aside: [0; 3],
            aside_pending: 0,
            aside_expired: 0,
            rate_limited: 0,
            gone: 0,
            send_errors: 0,
            acked: 0,
            resent: 0,
            unacked: 0,
            refreshes: 0,
            bulk_requests_sent: 0,
            bulk_requests_received: 0,
            bulk_dumps_sent: 0,
            bulk_records_sent: 0,
            batch_wait_max_us: 0,
            drops,
        }
    }

    /// Counts a dropped datagram.
    pub fn dropped(&mut self, reason: &'static str) {
        crate::admin::reasons::bump(&mut self.drops, reason);
    }

    /// Adds what the datapath did with a batch.
    pub fn installed(&mut self, i: Installed) {
        let o = &mut self.outcome;
        o.installed += i.installed;
        o.replaced += i.replaced;
        o.kept += i.kept;
        o.evicted += i.evicted;
        o.refused += i.refused;
    }

    /// Counts a record kept aside.
    pub fn set_aside(&mut self, why: Aside) {
        let i = Aside::ALL.iter().position(|a| *a == why).unwrap_or(0);
        self.aside[i] += 1;
    }

    /// `/stats.json`'s `sync` block (see the module doc).
    pub fn to_json(&self) -> Value {
        let drops = crate::admin::reasons::to_json(&self.drops);
        let aside: serde_json::Map<String, Value> = Aside::ALL
            .iter()
            .zip(self.aside)
            .map(|(a, n)| (a.as_str().to_owned(), json!(n)))
            .collect();
        let (records, expected, took_ms) = match self.catchup {
            Catchup::Done {
                records,
                expected,
                took,
            } => (Some(records), Some(expected), Some(took.as_millis() as u64)),
            Catchup::TimedOut { records } => (Some(records), None, None),
            Catchup::Waiting => (None, None, None),
        };
        let o = &self.outcome;
        json!({
            "local": self.local.to_string(),
            "port": self.port,
            "peers": self.peers.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "authenticated": self.authenticated,
            "catchup": {"state": self.catchup.as_str(), "records": records,
                        "expected": expected, "took_ms": took_ms},
            "datagrams_sent": self.datagrams_sent,
            "datagrams_received": self.datagrams_received,
            "records_sent": self.records_sent,
            "records_received": self.records_received,
            "installed": o.installed,
            "replaced": o.replaced,
            "kept": o.kept,
            "evicted": o.evicted,
            "refused": o.refused,
            "aside": aside,
            "aside_pending": self.aside_pending,
            "aside_expired": self.aside_expired,
            "rate_limited": self.rate_limited,
            "gone": self.gone,
            "send_errors": self.send_errors,
            "acked": self.acked,
            "resent": self.resent,
            "unacked": self.unacked,
            "refreshes": self.refreshes,
            "bulk_requests_sent": self.bulk_requests_sent,
            "bulk_requests_received": self.bulk_requests_received,
            "bulk_dumps_sent": self.bulk_dumps_sent,
            "bulk_records_sent": self.bulk_records_sent,
            "batch_wait_max_us": self.batch_wait_max_us,
            "drops": drops,
        })
    }

    /// One line for `strait ctl status` and the admin page.
    pub fn summary(&self) -> String {
        let dropped: u64 = self.drops.iter().map(|(_, n)| n).sum();
        let aside: u64 = self.aside.iter().sum();
        format!(
            "sync: port {} to {} ({}) · catch-up {} · sent {} records / received {} · \
             installed {} (kept {}, refused {}) · aside {} · dropped {}",
            self.port,
            self.peers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            if self.authenticated {
                "authenticated"
            } else {
                "NOT authenticated"
            },
            self.catchup.as_str(),
            self.records_sent,
            self.records_received,
            self.outcome.installed,
            self.outcome.kept,
            self.outcome.refused,
            aside,
            dropped,
        )
    }

    /// The `sync_*` metric families (see the module doc).
    pub fn encode_metrics(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        gauge(
            enc,
            "sync_catchup_done",
            "1 once the start-up catch-up ended (dump in, or timed out)",
            u64::from(self.catchup != Catchup::Waiting),
        )?;
        let plain = [
            (
                "sync_datagrams_sent",
                "Sync datagrams sent",
                self.datagrams_sent,
            ),
            (
                "sync_datagrams_received",
                "Sync datagrams accepted",
                self.datagrams_received,
            ),
            (
                "sync_records_sent",
                "Flow records sent to the peers",
                self.records_sent,
            ),
            (
                "sync_records_received",
                "Flow records accepted",
                self.records_received,
            ),
            (
                "sync_rate_limited",
                "New flows not sent over sync_rate",
                self.rate_limited,
            ),
            (
                "sync_send_errors",
                "Sync datagrams that could not be sent",
                self.send_errors,
            ),
            (
                "sync_acked",
                "Records datagrams the peers acknowledged",
                self.acked,
            ),
            (
                "sync_resent",
                "Records sent again, their datagram unacknowledged",
                self.resent,
            ),
            (
                "sync_unacked",
                "Records given up unacknowledged after every send",
                self.unacked,
            ),
            (
                "sync_bulk_records_sent",
                "Records sent in bulk dumps",
                self.bulk_records_sent,
            ),
        ];
        for (name, help, value) in plain {
            counter(enc, name, help, value)?;
        }
        let o = &self.outcome;
        let outcomes = [
            ("installed", o.installed),
            ("replaced", o.replaced),
            ("kept", o.kept),
            ("evicted", o.evicted),
            ("refused", o.refused),
        ];
        counters(
            enc,
            "sync_records",
            "Received flow records by what the datapath did with them",
            outcomes.map(|(k, n)| ([("outcome", k)], n)),
        )?;
        counters(
            enc,
            "sync_aside",
            "Received flow records kept aside, by reason",
            Aside::ALL
                .iter()
                .zip(self.aside)
                .map(|(a, n)| ([("reason", a.as_str())], n)),
        )?;
        gauge(
            enc,
            "sync_aside_pending",
            "Flow records waiting aside now",
            self.aside_pending,
        )?;
        let drops = self.drops.iter().map(|(r, n)| ([("reason", *r)], *n));
        counters(
            enc,
            "sync_drops",
            "Sync datagrams dropped, by reason",
            drops,
        )
    }
}
