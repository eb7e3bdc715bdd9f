//! Validation of a director file as a whole: the `[director]` section, the set of services
//! (each checked by `service`), and what no single service can tell.
//!
//! Rules: `id` is 1..=32 of `[A-Za-z0-9_-]`; interface names are Linux device names (1..=15
//! bytes, no `/`, `:` or white space, not `.`/`..`); `datapath` is `xdp` or `userspace`;
//! `xdp_mode` is `auto`, `native` or `generic`; `admin` an `ip:port`; `max_conns` in
//! 1..=16777216; `icmp_rate` in 0..=1000000 (0: no ICMP error is sent), `icmp_burst` in
//! 1..=1000000; `new_flow_rate` in 0..=100000000 (0: no guard), `new_flow_burst` in
//! 1..=100000000; `tcp_timeout`/`tcp_fin_timeout`/`udp_timeout` durations up to 7 days ("0s":
//! never); `table_size` prime, at most 65537 and at least twice the backends of the
//! largest service; 1..=32 services with unique (vip, proto); at most 4096 backends in all;
//! `[ha]` is checked by `ha`, `[cluster]` by `cluster`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;

use serde_spanned::Spanned;

use super::cluster::check_cluster;
use super::diag::Diagnostic;
use super::ha::check_ha;
use super::locate::Locator;
use super::service::check_service;
use super::types::*;
use crate::datapath::XdpMode;

/// Collects diagnostics at spans.
pub(super) struct Report<'a, 't> {
    loc: &'a Locator<'t>,
    pub(super) out: Vec<Diagnostic>,
}

impl Report<'_, '_> {
    /// A problem at `span`.
    pub(super) fn at(&mut self, span: Range<usize>, message: String) {
        self.out.push(self.loc.at(span, &[], message));
    }
}

/// Every problem in `raw`, or the config it describes.
pub(crate) fn validate(
    raw: &RawConfig,
    loc: &Locator<'_>,
) -> Result<DirectorConfig, Vec<Diagnostic>> {
    let mut r = Report {
        loc,
        out: Vec::new(),
    };
    let d = raw.director.get_ref();
    check_id(&d.id, &mut r);
    let interface = interface_name(&d.interface, "interface", &mut r);
    let inner_interface = d
        .inner_interface
        .as_ref()
        .map(|i| interface_name(i, "inner_interface", &mut r));
    let datapath = match d.datapath.as_ref() {
        None => DatapathKind::default(),
        Some(s) => match s.get_ref().as_str() {
            "xdp" => DatapathKind::Xdp,
            "userspace" => DatapathKind::Userspace,
            other => {
                r.at(
                    s.span(),
                    format!("datapath {other:?} is unknown; use \"xdp\" or \"userspace\""),
                );
                DatapathKind::default()
            }
        },
    };
    let xdp_mode = match d.xdp_mode.as_ref() {
        None => XdpMode::default(),
        Some(s) => {
            match s.get_ref().as_str() {
                "auto" => XdpMode::Auto,
                "native" => XdpMode::Native,
                "generic" => XdpMode::Generic,
                other => {
                    r.at(
                    s.span(),
                    format!("xdp_mode {other:?} is unknown; use \"auto\", \"native\" or \"generic\""),
                );
                    XdpMode::default()
                }
            }
        }
    };
    let admin = match d.admin.as_ref() {
        None => DEFAULT_ADMIN.parse().ok(),
        Some(s) => s.get_ref().parse::<SocketAddr>().ok().or_else(|| {
            r.at(
                s.span(),
                format!("admin {}", super::units::not_an_address(s.get_ref())),
            );
            None
        }),
    };
    let max_conns = int_in(
        d.max_conns.as_ref(),
        1,
        i64::from(MAX_MAX_CONNS),
        "max_conns",
        &mut r,
    )
    .unwrap_or(DEFAULT_MAX_CONNS);
    let icmp_rate = int_in(
        d.icmp_rate.as_ref(),
        0,
        i64::from(MAX_ICMP),
        "icmp_rate",
        &mut r,
    )
    .unwrap_or(DEFAULT_ICMP_RATE);
    let icmp_burst = int_in(
        d.icmp_burst.as_ref(),
        1,
        i64::from(MAX_ICMP),
        "icmp_burst",
        &mut r,
    )
    .unwrap_or(DEFAULT_ICMP_BURST);
    let new_flow_rate = int_in(
        d.new_flow_rate.as_ref(),
        0,
        i64::from(MAX_NEW_FLOW),
        "new_flow_rate",
        &mut r,
    )
    .unwrap_or(DEFAULT_NEW_FLOW_RATE);
    let new_flow_burst = int_in(
        d.new_flow_burst.as_ref(),
        1,
        i64::from(MAX_NEW_FLOW),
        "new_flow_burst",
        &mut r,
    )
    .unwrap_or(DEFAULT_NEW_FLOW_BURST);
    let conn_timeouts = crate::datapath::ConnTimeouts {
        tcp: conn_timeout(
            d.tcp_timeout.as_ref(),
            DEFAULT_TCP_TIMEOUT,
            "tcp_timeout",
            &mut r,
        ),
        tcp_fin: conn_timeout(
            d.tcp_fin_timeout.as_ref(),
            DEFAULT_TCP_FIN_TIMEOUT,
            "tcp_fin_timeout",
            &mut r,
        ),
        udp: conn_timeout(
            d.udp_timeout.as_ref(),
            DEFAULT_UDP_TIMEOUT,
            "udp_timeout",
            &mut r,
        ),
    };
    let table_size = int_in(
        d.table_size.as_ref(),
        1,
        i64::from(DEFAULT_TABLE_SIZE),
        "table_size",
        &mut r,
    );
    if let (Some(size), Some(span)) = (table_size, d.table_size.as_ref().map(Spanned::span)) {
        if !is_prime(size) {
            r.at(
                span,
                format!("table_size {size} is not prime (65537, 4099 and 251 are)"),
            );
        }
    }
    let table_size = table_size.unwrap_or(DEFAULT_TABLE_SIZE);
    let ha = raw.ha.as_ref().and_then(|h| check_ha(h.get_ref(), &mut r));

    let cluster = raw
        .cluster
        .as_ref()
        .and_then(|c| check_cluster(c.get_ref(), &mut r));
    let services = check_services(raw, table_size, &mut r);
    match (r.out.is_empty(), admin) {
        (true, Some(admin)) => Ok(DirectorConfig {
            id: d.id.get_ref().clone(),
            interface,
            inner_interface,
            datapath,
            xdp_mode,
            admin,
            max_conns,
            table_size,
            threaded_napi: d.threaded_napi.as_ref().map(|b| *b.get_ref()),
            icmp: crate::packet::ratelimit::IcmpLimit::new(icmp_rate, icmp_burst),
            new_flow: crate::packet::ratelimit::IcmpLimit::guard(new_flow_rate, new_flow_burst),
            conn_timeouts,
            services,
            cluster,
            ha,
            log: raw.log.clone(),
        }),
        _ => Err(r.out),
    }
}

/// The services, and the rules that span several of them.
fn check_services(raw: &RawConfig, table_size: u32, r: &mut Report<'_, '_>) -> Vec<ServiceConfig> {
    if raw.services.is_empty() {
        r.at(
            raw.director.span(),
            "no [[service]]: a director needs 1 to 32 services".into(),
        );
    }
    if raw.services.len() > MAX_SERVICES {
        r.at(
            raw.services[MAX_SERVICES].span(),
            format!(
                "{} services; at most {MAX_SERVICES} are allowed",
                raw.services.len()
            ),
        );
    }
    let mut seen: HashMap<(std::net::SocketAddrV4, Proto), usize> = HashMap::new();
    let mut total = 0usize;
    let mut too_many_reported = false;
    let mut services = Vec::new();
    for (i, raw_service) in raw.services.iter().enumerate() {
        let s = raw_service.get_ref();
        total += match s.backends.get_ref() {
            RawBackends::List(list) => list.len(),
            RawBackends::Word(_) => 0,
        };
        if total > MAX_BACKENDS && !too_many_reported {
            too_many_reported = true;
            r.at(
                s.backends.span(),
                format!("more than {MAX_BACKENDS} backends in all services"),
            );
        }
        let Some(service) = check_service(s, raw.cluster.is_some(), r) else {
            continue;
        };
        if let Some(first) = seen.insert((service.vip, service.proto), i + 1) {
            r.at(
                s.vip.span(),
                format!(
                    "service {} {} is already defined by service #{first}",
                    service.vip,
                    service.proto.as_str()
                ),
            );
        }
        let live = service.backends.len() as u64;
        if u64::from(table_size) < 2 * live {
            let span = raw
                .director
                .get_ref()
                .table_size
                .as_ref()
                .map_or(s.backends.span(), Spanned::span);
            r.at(
                span,
                format!(
                    "table_size {table_size} is too small for service {}'s {live} backends \
                     (need a prime of at least {})",
                    service.vip,
                    2 * live
                ),
            );
        }
        services.push(service);
    }
    services
}

fn check_id(id: &Spanned<String>, r: &mut Report<'_, '_>) {
    let text = id.get_ref();
    let ok = (1..=32).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        r.at(
            id.span(),
            format!("director.id {text:?} must be 1 to 32 letters, digits, '_' or '-'"),
        );
    }
}

/// A Linux network device name (`dev_valid_name`), reported under `key` when invalid.
pub(super) fn interface_name(name: &Spanned<String>, key: &str, r: &mut Report<'_, '_>) -> String {
    let text = name.get_ref();
    let ok = !text.is_empty()
        && text.len() <= 15
        && text != "."
        && text != ".."
        && !text
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if !ok {
        r.at(
            name.span(),
            format!("{key} {text:?} is not a valid interface name (1 to 15 bytes, no '/', ':' or spaces)"),
        );
    }
    text.clone()
}

/// An optional integer in `lo..=hi`, reported under `key` when out of range.
pub(super) fn int_in(
    value: Option<&Spanned<i64>>,
    lo: i64,
    hi: i64,
    key: &str,
    r: &mut Report<'_, '_>,
) -> Option<u32> {
    let v = value?;
    let n = *v.get_ref();
    if (lo..=hi).contains(&n) {
        u32::try_from(n).ok()
    } else {
        r.at(v.span(), format!("{key} {n} is out of range {lo}..={hi}"));
        None
    }
}

/// Whether `n` is prime (trial division; `n` is at most 65537 here).
fn is_prime(n: u32) -> bool {
    n >= 2
        && (2..)
            .take_while(|d: &u32| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

/// An idle timeout of connection entries: a humantime duration up to [`MAX_CONN_TIMEOUT`],
/// zero meaning never, or `default` when absent.
fn conn_timeout(
    raw: Option<&Spanned<String>>,
    default: std::time::Duration,
    key: &str,
    r: &mut Report<'_, '_>,
) -> std::time::Duration {
    let Some(v) = raw else { return default };
    match parse_duration(v, key, "\"900s\" or \"15m\" (\"0s\": never)", r) {
        Some(d) if d <= MAX_CONN_TIMEOUT => d,
        Some(_) => {
            r.at(
                v.span(),
                format!("{key} {:?} is longer than 7 days", v.get_ref()),
            );
            default
        }
        None => default,
    }
}

/// A humantime duration, or `None` after reporting `key` as not one (`examples` say what is,
/// e.g. `"500ms" or "2s"`).
pub(super) fn parse_duration(
    v: &Spanned<String>,
    key: &str,
    examples: &str,
    r: &mut Report<'_, '_>,
) -> Option<std::time::Duration> {
    match super::units::parse_duration(v.get_ref(), &format!("write e.g. {examples}")) {
        Ok(d) => Some(d),
        Err(why) => {
            r.at(v.span(), format!("{key}: {why}"));
            None
        }
    }
}
