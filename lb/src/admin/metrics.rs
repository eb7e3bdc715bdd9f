//! `GET /metrics`: the process's one metrics registry. It is built once, when the admin
//! listener starts, around a collector that reads the live state at every scrape, so pools,
//! servers and services that a reload adds or removes appear without re-registering anything.
//! The helpers below encode one metric family each, as `Registry::register` would (a help
//! text ends with a full stop; a counter's sample is `<name>_total`).

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

pub use prometheus_client::encoding::DescriptorEncoder;

/// A registry built once whose collector runs at every scrape.
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// Every metric is named `<prefix>_<name>`; `collect` encodes the live values, or fails
    /// when it cannot read them.
    pub fn new<F>(prefix: &str, collect: F) -> Metrics
    where
        F: Fn(&mut DescriptorEncoder<'_>) -> fmt::Result + Send + Sync + 'static,
    {
        let mut registry = Registry::with_prefix(prefix);
        registry.register_collector(Box::new(Scrape(collect)));
        Metrics { registry }
    }

    /// The text exposition; None when the collector failed.
    pub fn render(&self) -> Option<String> {
        let mut out = String::new();
        encode(&mut out, &self.registry).ok()?;
        Some(out)
    }
}

/// The closure as a prometheus-client collector.
struct Scrape<F>(F);

impl<F> fmt::Debug for Scrape<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scrape")
    }
}

impl<F> Collector for Scrape<F>
where
    F: Fn(&mut DescriptorEncoder<'_>) -> fmt::Result + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        (self.0)(&mut encoder)
    }
}

/// One unlabelled counter.
pub fn counter(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> fmt::Result {
    let counter = ConstCounter::new(value);
    counter.encode(enc.encode_descriptor(name, &full_stop(help), None, counter.metric_type())?)
}

/// One unlabelled gauge (saturating at `i64::MAX`).
pub fn gauge(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> fmt::Result {
    let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    gauge.encode(enc.encode_descriptor(name, &full_stop(help), None, gauge.metric_type())?)
}

/// A counter family: one sample per `(labels, value)`.
pub fn counters<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, &full_stop(help), None, MetricType::Counter)?;
    for (labels, value) in samples {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A gauge family: one sample per `(labels, value)`, each saturating at `i64::MAX`.
pub fn gauges<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, &full_stop(help), None, MetricType::Gauge)?;
    for (labels, value) in samples {
        let value = i64::try_from(value).unwrap_or(i64::MAX);
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// The help text as `Registry::register` writes it.
fn full_stop(help: &str) -> String {
    format!("{help}.")
}

/// Checks a reason enum's counter names (its `NAMES`, `index` and `as_str`): `reasons` holds
/// `(index, as_str)` of one value of each reason, in order; the names must match them one to
/// one, be snake_case and be unique.
#[cfg(test)]
pub(crate) fn assert_counter_names(names: &[&str], reasons: &[(usize, &str)]) {
    assert_eq!(reasons.len(), names.len(), "one reason per name");
    for (i, &(index, name)) in reasons.iter().enumerate() {
        assert_eq!((index, name), (i, names[i]));
        let snake = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
        assert!(name.bytes().all(snake), "{name}");
    }
    let mut unique = names.to_vec();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "duplicate names in {names:?}");
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use super::*;

    #[test]
    fn one_registry_reads_the_live_value_at_each_scrape() {
        let hits = Arc::new(AtomicU64::new(1));
        let live = Arc::clone(&hits);
        let metrics = Metrics::new("strait", move |enc| {
            counter(enc, "hits", "Hits", live.load(Ordering::Relaxed))?;
            gauges(
                enc,
                "up",
                "Up",
                [([("pool", "a")], 1), ([("pool", "b")], 0)],
            )
        });
        let first = metrics.render().unwrap();
        assert!(first.contains("# HELP strait_hits Hits.\n"), "{first}");
        assert!(first.contains("strait_hits_total 1\n"), "{first}");
        assert!(first.contains("strait_up{pool=\"b\"} 0\n"), "{first}");
        hits.store(5, Ordering::Relaxed);
        assert!(metrics.render().unwrap().contains("strait_hits_total 5\n"));
    }

    #[test]
    fn a_failed_read_renders_nothing() {
        let metrics = Metrics::new("strait", |_| Err(fmt::Error));
        assert_eq!(metrics.render(), None);
    }
}
