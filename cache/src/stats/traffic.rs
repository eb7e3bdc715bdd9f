//! Per-response figures: responses by status class and by route, a histogram of their
//! durations, client connections (open now, accepted) and bytes (sent to clients, served from
//! the store). Recording a response is four relaxed atomic adds: no lock, no allocation, no
//! clock read (the caller passes the elapsed time it measured).
//!
//! Routes are counted by their position in the `[[route]]` table (`route.index`), in
//! [`ROUTE_SLOTS`] slots; routes at that position or later share the last slot. A reload that
//! reorders routes keeps counting by position.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Routes counted one by one; later ones share the last slot.
pub const ROUTE_SLOTS: usize = 64;

/// Upper bounds of the request-duration histogram, in seconds (`+Inf` follows).
pub const DURATION_BOUNDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The same bounds in microseconds (what is compared on the request path).
const BOUNDS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Status classes counted: 1xx to 5xx.
pub const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The live per-response figures of a node.
#[derive(Debug)]
pub struct Traffic {
    classes: [AtomicU64; 5],
    routes: [AtomicU64; ROUTE_SLOTS],
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    duration_us: AtomicU64,
    /// Client connections open now (gauge).
    pub connections_open: AtomicU64,
    /// Client connections accepted.
    pub connections_total: AtomicU64,
    /// Bytes written to client sockets (heads and bodies).
    pub sent_bytes: AtomicU64,
    /// Body bytes of responses served from this node's store.
    pub hit_bytes: AtomicU64,
    /// The node is draining (SIGTERM received): no new connections, the open ones finish.
    pub draining: AtomicBool,
}

impl Default for Traffic {
    fn default() -> Self {
        let zero = |_| AtomicU64::new(0);
        Traffic {
            classes: std::array::from_fn(zero),
            routes: std::array::from_fn(zero),
            buckets: std::array::from_fn(zero),
            duration_us: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            sent_bytes: AtomicU64::new(0),
            hit_bytes: AtomicU64::new(0),
            draining: AtomicBool::new(false),
        }
    }
}

/// The index of `status`'s class in [`CLASSES`] (anything above 5xx counts as 5xx).
pub fn class_index(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 5) - 1
}

/// The histogram bucket of a duration in microseconds (bounds are inclusive, as `le`).
pub fn bucket_index(us: u64) -> usize {
    BOUNDS_US
        .iter()
        .position(|&b| us <= b)
        .unwrap_or(BOUNDS_US.len())
}

impl Traffic {
    /// A response is complete or handed to its writer.
    #[inline]
    pub fn record_response(&self, status: u16, route: Option<usize>, elapsed: Duration) {
        self.classes[class_index(status)].fetch_add(1, Ordering::Relaxed);
        if let Some(r) = route {
            self.routes[r.min(ROUTE_SLOTS - 1)].fetch_add(1, Ordering::Relaxed);
        }
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket_index(us)].fetch_add(1, Ordering::Relaxed);
        self.duration_us.fetch_add(us, Ordering::Relaxed);
    }

    /// A client connection was accepted.
    #[inline]
    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A client connection ended.
    #[inline]
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Everything, read now.
    pub fn read(&self) -> TrafficSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TrafficSnapshot {
            classes: std::array::from_fn(|i| load(&self.classes[i])),
            routes: self.routes.iter().map(load).collect(),
            buckets: self.buckets.iter().map(load).collect(),
            duration_sum: load(&self.duration_us) as f64 / 1e6,
            connections_open: load(&self.connections_open),
            connections_total: load(&self.connections_total),
            sent_bytes: load(&self.sent_bytes),
            hit_bytes: load(&self.hit_bytes),
            draining: self.draining.load(Ordering::Relaxed),
        }
    }
}

/// [`Traffic`] read at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficSnapshot {
    /// Responses by class, 1xx to 5xx.
    pub classes: [u64; 5],
    /// Responses by route slot.
    pub routes: Vec<u64>,
    /// Responses by duration bucket (not cumulative; the last is over the last bound).
    pub buckets: Vec<u64>,
    /// Sum of the durations, seconds.
    pub duration_sum: f64,
    pub connections_open: u64,
    pub connections_total: u64,
    pub sent_bytes: u64,
    pub hit_bytes: u64,
    pub draining: bool,
}

impl TrafficSnapshot {
    /// Responses counted (every class).
    pub fn responses(&self) -> u64 {
        self.classes.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_fall_in_their_class() {
        let got: Vec<_> = [100, 200, 204, 304, 404, 499, 500, 503, 999, 0]
            .map(class_index)
            .to_vec();
        assert_eq!(got, [0, 1, 1, 2, 3, 3, 4, 4, 4, 0]);
    }

    #[test]
    fn durations_fall_in_the_first_bucket_whose_bound_holds_them() {
        assert_eq!(bucket_index(0), 0);
        assert_eq!(bucket_index(100), 0);
        assert_eq!(bucket_index(101), 1);
        assert_eq!(bucket_index(1_000_000), 12);
        assert_eq!(bucket_index(10_000_001), 16);
        for (b, us) in DURATION_BOUNDS.iter().zip(BOUNDS_US) {
            assert_eq!((b * 1e6).round() as u64, us);
        }
    }

    #[test]
    fn a_response_counts_its_class_route_and_duration() {
        let t = Traffic::default();
        t.record_response(200, Some(1), Duration::from_micros(50));
        t.record_response(503, None, Duration::from_millis(30));
        t.record_response(200, Some(500), Duration::from_secs(20));
        t.connection_opened();
        t.connection_opened();
        t.connection_closed();
        let s = t.read();
        assert_eq!(s.classes, [0, 2, 0, 0, 1]);
        assert_eq!((s.routes[1], s.routes[ROUTE_SLOTS - 1]), (1, 1));
        assert_eq!(s.routes.iter().sum::<u64>(), 2);
        assert_eq!((s.buckets[0], s.buckets[8], s.buckets[16]), (1, 1, 1));
        assert_eq!(s.responses(), 3);
        assert!(
            (s.duration_sum - 20.03005).abs() < 1e-9,
            "{}",
            s.duration_sum
        );
        assert_eq!((s.connections_open, s.connections_total), (1, 2));
    }
}
