//! What a director's `[ha]` shows: its virtual router's state and counters, for `/stats.json`
//! (`ha`), the admin page and `/metrics`.
//!
//! Contract: `/stats.json`'s `ha` block is `{"vrid", "priority", "state", "since", "reason",
//! "master", "advert_interval_ms", "master_interval_ms", "interface", "peers", "vips",
//! "owned", "adverts_sent", "adverts_received", "transitions", "send_errors",
//! "interval_mismatches", "drops": {reason: count}}` with every drop reason present (zeros
//! included); `since` is RFC 3339 (UTC, seconds), `master` an address or null. Metrics
//! (prefixed by the caller): `ha_state{state}` (1 for the current state, 0 for the others),
//! `ha_priority`, `ha_adverts_sent_total`, `ha_adverts_received_total`,
//! `ha_transitions_total`, `ha_send_errors_total`, `ha_interval_mismatches_total` and
//! `ha_drops_total{reason}`.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::machine::State;
use crate::admin::metrics::{counter, counters, gauge, gauges, DescriptorEncoder};

/// Why an advert was dropped before it reached the state machine, beyond the wire's own
/// reasons (`wire::Reject`): these need the config.
pub const CONFIG_DROPS: [&str; 3] = ["vrid", "address_list", "not_a_peer"];

/// A virtual router's state and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaStatus {
    /// Virtual router id.
    pub vrid: u8,
    /// Our priority.
    pub priority: u8,
    /// Our advert interval.
    pub advert_interval: Duration,
    /// The interface adverts use.
    pub interface: String,
    /// Unicast peers (empty: multicast).
    pub peers: Vec<Ipv4Addr>,
    /// The virtual router's addresses (the services' VIPs).
    pub vips: Vec<Ipv4Addr>,
    /// The VIPs the datapath answers ARP for now (all of them as master, none otherwise).
    pub owned: Vec<Ipv4Addr>,
    /// Current state.
    pub state: State,
    /// When it was entered.
    pub since: SystemTime,
    /// Why it was entered.
    pub reason: String,
    /// The master as last heard (ourselves as master).
    pub master: Option<Ipv4Addr>,
    /// `Master_Adver_Interval` (learned from the master as backup).
    pub master_interval: Duration,
    /// Adverts sent.
    pub adverts_sent: u64,
    /// Adverts received that passed every check.
    pub adverts_received: u64,
    /// State changes.
    pub transitions: u64,
    /// Adverts that could not be sent.
    pub send_errors: u64,
    /// Accepted adverts whose interval differed from ours (RFC 5798 learns it; counted).
    pub interval_mismatches: u64,
    /// Dropped adverts by reason, every reason listed.
    pub drops: Vec<(&'static str, u64)>,
}

impl HaStatus {
    /// A router in Initialize with zero counters; `drop_reasons` lists every reason.
    pub fn new(
        vrid: u8,
        priority: u8,
        advert_interval: Duration,
        interface: String,
        peers: Vec<Ipv4Addr>,
        vips: Vec<Ipv4Addr>,
        drop_reasons: &[&'static str],
    ) -> HaStatus {
        HaStatus {
            vrid,
            priority,
            advert_interval,
            interface,
            peers,
            vips,
            owned: Vec::new(),
            state: State::Initialize,
            since: SystemTime::now(),
            reason: "not started".into(),
            master: None,
            master_interval: advert_interval,
            adverts_sent: 0,
            adverts_received: 0,
            transitions: 0,
            send_errors: 0,
            interval_mismatches: 0,
            drops: drop_reasons.iter().map(|r| (*r, 0)).collect(),
        }
    }

    /// Counts a dropped advert (a reason not listed at creation is added).
    pub fn dropped(&mut self, reason: &'static str) {
        crate::admin::reasons::bump(&mut self.drops, reason);
    }

    /// All drops.
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().map(|(_, n)| n).sum()
    }

    /// The director's role: `master` or `backup` (Initialize shows as backup: it owns nothing).
    pub fn role(&self) -> &'static str {
        match self.state {
            State::Master => "master",
            State::Backup | State::Initialize => "backup",
        }
    }

    /// `/stats.json`'s `ha` block (see the module doc).
    pub fn to_json(&self) -> Value {
        let drops = crate::admin::reasons::to_json(&self.drops);
        let ips = |v: &[Ipv4Addr]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        json!({
            "vrid": self.vrid,
            "priority": self.priority,
            "state": self.state.as_str(),
            "since": humantime::format_rfc3339_seconds(self.since).to_string(),
            "reason": self.reason,
            "master": self.master.map(|m| m.to_string()),
            "advert_interval_ms": self.advert_interval.as_millis() as u64,
            "master_interval_ms": self.master_interval.as_millis() as u64,
            "interface": self.interface,
            "peers": ips(&self.peers),
            "vips": ips(&self.vips),
            "owned": ips(&self.owned),
            "adverts_sent": self.adverts_sent,
            "adverts_received": self.adverts_received,
            "transitions": self.transitions,
            "send_errors": self.send_errors,
            "interval_mismatches": self.interval_mismatches,
            "drops": drops,
        })
    }

    /// The `ha_*` metric families (see the module doc).
    pub fn encode_metrics(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let states = State::ALL
            .iter()
            .map(|s| ([("state", s.as_str())], u64::from(*s == self.state)));
        gauges(
            enc,
            "ha_state",
            "1 for the virtual router's current VRRP state, 0 for the others",
            states,
        )?;
        gauge(
            enc,
            "ha_priority",
            "This director's VRRP priority",
            u64::from(self.priority),
        )?;
        counter(
            enc,
            "ha_adverts_sent",
            "VRRP adverts sent",
            self.adverts_sent,
        )?;
        counter(
            enc,
            "ha_adverts_received",
            "VRRP adverts received that passed every check",
            self.adverts_received,
        )?;
        counter(
            enc,
            "ha_transitions",
            "VRRP state changes",
            self.transitions,
        )?;
        counter(
            enc,
            "ha_send_errors",
            "VRRP adverts that could not be sent",
            self.send_errors,
        )?;
        counter(
            enc,
            "ha_interval_mismatches",
            "Accepted VRRP adverts whose interval differed from ours",
            self.interval_mismatches,
        )?;
        let drops = self.drops.iter().map(|(r, n)| ([("reason", *r)], *n));
        counters(enc, "ha_drops", "VRRP adverts dropped, by reason", drops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> HaStatus {
        let mut s = HaStatus::new(
            51,
            150,
            Duration::from_millis(100),
            "eth0".into(),
            vec![],
            vec![Ipv4Addr::new(10, 0, 0, 100)],
            &["ttl", "checksum", "vrid"],
        );
        s.state = State::Master;
        s.since = SystemTime::UNIX_EPOCH;
        s.master = Some(Ipv4Addr::new(10, 0, 0, 3));
        s.adverts_sent = 9;
        s.dropped("ttl");
        s.dropped("ttl");
        s.dropped("address_list");
        s
    }

    #[test]
    fn json_lists_every_drop_reason_and_the_state() {
        let v = sample().to_json();
        assert_eq!(v["state"], "master");
        assert_eq!(v["master"], "10.0.0.3");
        assert_eq!(v["since"], "1970-01-01T00:00:00Z");
        assert_eq!(v["drops"]["ttl"], 2);
        assert_eq!(v["drops"]["checksum"], 0);
        assert_eq!(v["drops"]["address_list"], 1);
        assert_eq!(v["advert_interval_ms"], 100);
        assert_eq!(v["vips"][0], "10.0.0.100");
        assert_eq!(sample().dropped_total(), 3);
        assert_eq!(sample().role(), "master");
    }

    #[test]
    fn metrics_show_one_state_and_every_reason() {
        let m = crate::admin::Metrics::new("strait_director", |enc| sample().encode_metrics(enc))
            .render()
            .unwrap();
        assert!(
            m.contains("strait_director_ha_state{state=\"master\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("strait_director_ha_state{state=\"backup\"} 0"),
            "{m}"
        );
        assert!(m.contains("strait_director_ha_adverts_sent_total 9"), "{m}");
        assert!(
            m.contains("strait_director_ha_drops_total{reason=\"checksum\"} 0"),
            "{m}"
        );
        assert!(
            m.contains("strait_director_ha_drops_total{reason=\"ttl\"} 2"),
            "{m}"
        );
    }
}
