//! `GET /metrics`: the process's one metrics registry. It is built once, when the admin
//! listener starts, around a collector that reads the live state at every scrape, so pools,
//! servers and services that a reload adds or removes appear without re-registering anything.
//!
//! Two formats, one model ([`Format`]): the Prometheus text format 0.0.4 (the default,
//! `text/plain; version=0.0.4`, no `# EOF`, a counter's family named `<name>_total` like its
//! sample) and OpenMetrics 1.0.0 for a scraper whose `Accept` asks for
//! `application/openmetrics-text` (a counter's family named `<name>`, its sample
//! `<name>_total`, `# EOF` last). The helpers below encode one family each; a help text gets a
//! full stop when it has none.
//!
//! Why this encoder and not `prometheus-client`'s: that crate (0.22) writes OpenMetrics only,
//! with `# EOF`, so it cannot serve 0.0.4 as 0.0.4; and it writes label values and help text as
//! given, without the escaping both formats require (a pool named `a"b` would break the whole
//! exposition). The formats are small and fixed; what is encoded here is checked by a
//! Prometheus text parser from crates.io in the tests.

use std::fmt::{self, Write};

use bytes::Bytes;
use http::header::HeaderValue;
use http::StatusCode;
use http_body_util::Full;

use super::labels::{LabelSet, Writer};
use super::reply::{respond, text};

/// The format of a scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text exposition 0.0.4.
    Prometheus,
    /// OpenMetrics text 1.0.0.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` field names `application/openmetrics-text` with a
    /// non-zero weight, else the Prometheus text format.
    pub fn from_accept(accept: Option<&str>) -> Format {
        let wants = |range: &str| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            let zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !zero
        };
        match accept {
            Some(a) if a.split(',').any(wants) => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The kind of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Writes families into one exposition: each family's `# HELP` and `# TYPE`, then its samples.
pub struct DescriptorEncoder<'a> {
    out: &'a mut String,
    prefix: &'a str,
    format: Format,
}

impl DescriptorEncoder<'_> {
    /// `# HELP` and `# TYPE` of `<prefix>_<name>` (with `_total` for a 0.0.4 counter).
    fn family(&mut self, name: &str, help: &str, kind: Kind) -> fmt::Result {
        let total = if kind == Kind::Counter && self.format == Format::Prometheus {
            "_total"
        } else {
            ""
        };
        let prefix = self.prefix;
        write!(self.out, "# HELP {prefix}_{name}{total} ")?;
        escape_help(self.out, help, self.format);
        if !help.ends_with('.') {
            self.out.push('.');
        }
        writeln!(
            self.out,
            "\n# TYPE {prefix}_{name}{total} {}",
            kind.as_str()
        )
    }

    /// One sample line: `<prefix>_<name><suffix>{labels} value`.
    fn sample(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &dyn LabelSet,
        le: Option<&str>,
        value: impl fmt::Display,
    ) -> fmt::Result {
        write!(self.out, "{}_{name}{suffix}", self.prefix)?;
        let mut w = Writer::new(self.out);
        labels.write_labels(&mut w);
        if let Some(le) = le {
            w.label("le", le);
        }
        w.close();
        writeln!(self.out, " {value}")
    }
}

/// A registry built once whose collector runs at every scrape.
pub struct Metrics {
    prefix: String,
    collect: Box<Collect>,
}

type Collect = dyn Fn(&mut DescriptorEncoder<'_>) -> fmt::Result + Send + Sync;

impl Metrics {
    /// Every metric is named `<prefix>_<name>`; `collect` encodes the live values, or fails
    /// when it cannot read them.
    pub fn new<F>(prefix: &str, collect: F) -> Metrics
    where
        F: Fn(&mut DescriptorEncoder<'_>) -> fmt::Result + Send + Sync + 'static,
    {
        Metrics {
            prefix: prefix.to_owned(),
            collect: Box::new(collect),
        }
    }

    /// The Prometheus text exposition; None when the collector failed.
    pub fn render(&self) -> Option<String> {
        self.render_as(Format::Prometheus)
    }

    /// `GET /metrics`: 200 with the exposition in the format the request's `Accept` asks for
    /// (and `Vary: Accept`), or 500 when the collector failed.
    pub fn scrape<B>(&self, req: &http::Request<B>) -> http::Response<Full<Bytes>> {
        let accept = req
            .headers()
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        let format = Format::from_accept(accept);
        let mut r = match self.render_as(format) {
            Some(text) => respond(StatusCode::OK, format.content_type(), text),
            None => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 reading the metrics failed\n",
            ),
        };
        r.headers_mut()
            .insert(http::header::VARY, HeaderValue::from_static("accept"));
        r
    }

    /// The exposition in `format`; None when the collector failed.
    pub fn render_as(&self, format: Format) -> Option<String> {
        let mut out = String::with_capacity(8192);
        let mut enc = DescriptorEncoder {
            out: &mut out,
            prefix: &self.prefix,
            format,
        };
        (self.collect)(&mut enc).ok()?;
        if format == Format::OpenMetrics {
            out.push_str("# EOF\n");
        }
        Some(out)
    }
}

/// `<prefix>_build_info{version="…"} 1`: the version of the running binary.
pub fn build_info(enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    gauges(
        enc,
        "build_info",
        "Always 1; the label version is the running strait's version",
        [([("version", env!("CARGO_PKG_VERSION"))], 1)],
    )
}

/// One unlabelled counter.
pub fn counter(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> fmt::Result {
    counters(enc, name, help, [((), value)])
}

/// One unlabelled gauge.
pub fn gauge(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> fmt::Result {
    gauges(enc, name, help, [((), value)])
}

/// One unlabelled gauge with a fractional value (seconds, ratios).
pub fn gauge_f64(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: f64,
) -> fmt::Result {
    gauges_f64(enc, name, help, [((), value)])
}

/// A counter family: one sample per `(labels, value)`.
pub fn counters<L: LabelSet>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    enc.family(name, help, Kind::Counter)?;
    for (labels, value) in samples {
        enc.sample(name, "_total", &labels, None, value)?;
    }
    Ok(())
}

/// A gauge family: one sample per `(labels, value)`.
pub fn gauges<L: LabelSet>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    enc.family(name, help, Kind::Gauge)?;
    for (labels, value) in samples {
        enc.sample(name, "", &labels, None, value)?;
    }
    Ok(())
}

/// A gauge family with fractional values.
pub fn gauges_f64<L: LabelSet>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, f64)>,
) -> fmt::Result {
    enc.family(name, help, Kind::Gauge)?;
    for (labels, value) in samples {
        enc.sample(name, "", &labels, None, Float(value))?;
    }
    Ok(())
}

/// One histogram read at one moment: upper bounds (ascending, `+Inf` implied after the
/// last), the count of observations in each bucket alone (not cumulative; one more than the
/// bounds, the last for `+Inf`) and the sum of the observed values.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot<'a> {
    /// Upper bounds, ascending, without `+Inf`.
    pub bounds: &'a [f64],
    /// Observations per bucket (`bounds.len() + 1` of them).
    pub counts: Vec<u64>,
    /// Sum of the observed values.
    pub sum: f64,
}

/// An unlabelled histogram: cumulative `_bucket{le}` samples ending with `+Inf`, whose value
/// is also `_count`, then `_sum`.
pub fn histogram(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    h: &HistogramSnapshot<'_>,
) -> fmt::Result {
    enc.family(name, help, Kind::Histogram)?;
    let mut cumulative = 0u64;
    for (i, n) in h.counts.iter().enumerate() {
        cumulative += n;
        let le = match h.bounds.get(i) {
            Some(b) => format!("{b:?}"),
            None => "+Inf".to_owned(),
        };
        enc.sample(name, "_bucket", &(), Some(&le), cumulative)?;
    }
    enc.sample(name, "_sum", &(), None, Float(h.sum))?;
    enc.sample(name, "_count", &(), None, cumulative)
}

/// A float as both formats write one (`1.0`, `0.25`; never an exponent for our ranges).
struct Float(f64);

impl fmt::Display for Float {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_finite() {
            write!(f, "{:?}", self.0)
        } else if self.0.is_nan() {
            f.write_str("NaN")
        } else if self.0 > 0.0 {
            f.write_str("+Inf")
        } else {
            f.write_str("-Inf")
        }
    }
}

/// Help text: `\` and line feeds escaped (and `"` in OpenMetrics).
fn escape_help(out: &mut String, help: &str, format: Format) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
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
#[path = "metrics_tests.rs"]
pub(crate) mod tests;
