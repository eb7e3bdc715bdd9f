//! Tests of the metrics encoder: both formats from one collector.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::*;

const BOUNDS: [f64; 3] = [0.001, 0.01, 1.0];

fn sample_metrics(hits: Arc<AtomicU64>) -> Metrics {
    Metrics::new("strait", move |enc| {
        build_info(enc)?;
        counter(enc, "hits", "Hits", hits.load(Ordering::Relaxed))?;
        gauges(
            enc,
            "up",
            "Up. Already stopped.",
            [([("pool", "a")], 1), ([("pool", "b\"q")], 0)],
        )?;
        gauge_f64(enc, "latency_seconds", "Latency", 0.25)?;
        histogram(
            enc,
            "duration_seconds",
            "Durations",
            &HistogramSnapshot {
                bounds: &BOUNDS,
                counts: vec![2, 0, 3, 1],
                sum: 4.5,
            },
        )
    })
}

#[test]
fn one_registry_reads_the_live_value_at_each_scrape() {
    let hits = Arc::new(AtomicU64::new(1));
    let metrics = sample_metrics(Arc::clone(&hits));
    let first = metrics.render().unwrap();
    assert!(first.contains("strait_hits_total 1\n"), "{first}");
    hits.store(5, Ordering::Relaxed);
    assert!(metrics.render().unwrap().contains("strait_hits_total 5\n"));
}

#[test]
fn prometheus_text_names_counter_families_with_total_and_has_no_eof() {
    let text = sample_metrics(Arc::new(AtomicU64::new(3)))
        .render_as(Format::Prometheus)
        .unwrap();
    for want in [
        "# HELP strait_hits_total Hits.\n# TYPE strait_hits_total counter\nstrait_hits_total 3\n",
        "# HELP strait_up Up. Already stopped.\n# TYPE strait_up gauge\n",
        "strait_up{pool=\"b\\\"q\"} 0\n",
        "strait_latency_seconds 0.25\n",
        concat!(
            "strait_build_info{version=\"",
            env!("CARGO_PKG_VERSION"),
            "\"} 1\n"
        ),
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
    assert!(!text.contains("# EOF"), "{text}");
}

#[test]
fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
    let text = sample_metrics(Arc::new(AtomicU64::new(3)))
        .render_as(Format::OpenMetrics)
        .unwrap();
    assert!(
        text.contains(
            "# HELP strait_hits Hits.\n# TYPE strait_hits counter\nstrait_hits_total 3\n"
        ),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1);
}

#[test]
fn histogram_buckets_are_cumulative_and_inf_is_the_count() {
    let text = sample_metrics(Arc::new(AtomicU64::new(0)))
        .render()
        .unwrap();
    let want = "# HELP strait_duration_seconds Durations.\n\
                # TYPE strait_duration_seconds histogram\n\
                strait_duration_seconds_bucket{le=\"0.001\"} 2\n\
                strait_duration_seconds_bucket{le=\"0.01\"} 2\n\
                strait_duration_seconds_bucket{le=\"1.0\"} 5\n\
                strait_duration_seconds_bucket{le=\"+Inf\"} 6\n\
                strait_duration_seconds_sum 4.5\n\
                strait_duration_seconds_count 6\n";
    assert!(text.contains(want), "{text}");
}

#[test]
fn the_whole_text_parses_with_help_and_type_for_every_family() {
    let text = sample_metrics(Arc::new(AtomicU64::new(7)))
        .render()
        .unwrap();
    assert_exposition(&text);
}

#[test]
fn help_text_is_escaped() {
    let metrics = Metrics::new("x", |enc| counter(enc, "a", "back\\slash\nline", 1));
    let text = metrics.render().unwrap();
    assert!(
        text.starts_with("# HELP x_a_total back\\\\slash\\nline.\n"),
        "{text}"
    );
}

#[test]
fn accept_chooses_openmetrics_only_when_asked() {
    let om = Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5");
    assert_eq!(Format::from_accept(om), Format::OpenMetrics);
    assert_eq!(Format::from_accept(None), Format::Prometheus);
    assert_eq!(Format::from_accept(Some("*/*")), Format::Prometheus);
    assert_eq!(
        Format::from_accept(Some("text/plain, application/openmetrics-text; q=0")),
        Format::Prometheus
    );
    assert_eq!(
        Format::Prometheus.content_type(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(Format::OpenMetrics
        .content_type()
        .starts_with("application/openmetrics-text; version=1.0.0"));
}

#[test]
fn a_failed_read_renders_nothing_and_scrapes_as_500() {
    let metrics = Metrics::new("strait", |_| Err(fmt::Error));
    assert_eq!(metrics.render(), None);
    let req = http::Request::new(());
    assert_eq!(
        metrics.scrape(&req).status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

/// Parses a whole Prometheus text exposition with `prometheus-parse` and checks it: every
/// family has `# HELP` and `# TYPE`, counters end in `_total`, no `# EOF`, every histogram's
/// buckets are monotone and its `+Inf` bucket equals its `_count`.
pub(crate) fn assert_exposition(text: &str) {
    use prometheus_parse::{Scrape, Value};
    assert!(!text.contains("# EOF"), "# EOF in 0.0.4 text");
    let mut helped = std::collections::HashSet::new();
    for line in text.lines() {
        let mut words = line.split(' ');
        match (words.next(), words.next(), words.next()) {
            (Some("#"), Some("HELP"), Some(name)) => {
                assert!(words.next().is_some(), "empty help: {line}");
                helped.insert(name.to_owned());
            }
            (Some("#"), Some("TYPE"), Some(name)) => {
                assert!(helped.contains(name), "TYPE before HELP: {line}");
            }
            _ => {}
        }
    }
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    assert!(!scrape.samples.is_empty(), "no samples in\n{text}");
    let count = |family: &str| {
        scrape.samples.iter().find_map(|s| match s.value {
            Value::Untyped(v) if s.metric == format!("{family}_count") => Some(v),
            _ => None,
        })
    };
    for s in &scrape.samples {
        match &s.value {
            Value::Counter(_) => assert!(s.metric.ends_with("_total"), "{}", s.metric),
            Value::Gauge(_) => {}
            Value::Histogram(buckets) => {
                assert!(buckets.windows(2).all(|w| w[0].less_than < w[1].less_than));
                assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count));
                let last = buckets.last().unwrap();
                assert!(last.less_than.is_infinite(), "{} has no +Inf", s.metric);
                assert_eq!(Some(last.count), count(&s.metric), "{}", s.metric);
            }
            Value::Untyped(_) => {
                let family = ["_sum", "_count"]
                    .iter()
                    .find_map(|suf| s.metric.strip_suffix(suf));
                assert!(
                    family.is_some_and(|f| scrape.docs.contains_key(f)),
                    "no TYPE for {}",
                    s.metric
                );
                continue;
            }
            Value::Summary(_) => panic!("no summaries expected: {}", s.metric),
        }
        assert!(
            scrape.docs.contains_key(&s.metric),
            "no HELP for {}",
            s.metric
        );
    }
}
