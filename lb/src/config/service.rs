//! Validation of one `[[service]]`: every problem at the offending value.
//!
//! Rules: `vip` is an IPv4 `ip:port` with a port above 0; `proto` is `tcp` or `udp`; `mode`
//! is `dr`, `tun` or `nat`; `scheduler` is `maglev`, `wrr` or `sh` (`wlc` is refused with its
//! reason); `backends` is `"cluster"` (the cache cluster's nodes; needs the file's
//! `[cluster]`) or a non-empty list of unique addresses, `ip` or (NAT only) `ip:port`, weight 0..=65535; `health.kind` is `tcp`, `http`
//! or `none`, `port` 1..=65535, `interval`/`timeout` durations with `0 < timeout < interval`,
//! `rise`/`fall` 1..=100, `expect` 100..=599, `path` starting with `/`.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use serde_spanned::Spanned;

use super::types::*;
use super::validate::{int_in, parse_duration, Report};
use crate::packet::service::Mode;
use crate::sched::Scheduler;

/// The service described by `s`, or `None` after reporting why not.
/// `has_cluster`: the file has a `[cluster]` table (which `backends = "cluster"` needs).
pub(super) fn check_service(
    s: &RawService,
    has_cluster: bool,
    r: &mut Report<'_, '_>,
) -> Option<ServiceConfig> {
    let before = r.out.len();
    let vip = match s.vip.get_ref().parse::<SocketAddrV4>() {
        Ok(v) if v.port() != 0 => Some(v),
        _ => {
            r.at(
                s.vip.span(),
                format!(
                    "vip {:?} must be an IPv4 address with a port, e.g. \"10.0.0.100:80\"; \
                     names are not resolved",
                    s.vip.get_ref()
                ),
            );
            None
        }
    };
    let proto = match s.proto.as_ref() {
        None => Proto::default(),
        Some(p) => match p.get_ref().as_str() {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            other => {
                r.at(
                    p.span(),
                    format!("proto {other:?} is unknown; use \"tcp\" or \"udp\""),
                );
                Proto::default()
            }
        },
    };
    let mode = match s.mode.get_ref().as_str() {
        "dr" => Some(Mode::Dr),
        "tun" => Some(Mode::Tun),
        "nat" => Some(Mode::Nat),
        other => {
            r.at(
                s.mode.span(),
                format!("mode {other:?} is unknown; use \"dr\", \"tun\" or \"nat\""),
            );
            None
        }
    };
    let scheduler = match s.scheduler.as_ref() {
        None => Some(Scheduler::default()),
        Some(sc) => match sc.get_ref().as_str() {
            "maglev" => Some(Scheduler::Maglev),
            "wrr" => Some(Scheduler::Wrr),
            "sh" => Some(Scheduler::Sh),
            "wlc" => {
                r.at(
                    sc.span(),
                    "scheduler \"wlc\" is not supported yet: wlc needs per-backend active \
                     connection counts the XDP datapath does not keep; use maglev, wrr or sh"
                        .into(),
                );
                None
            }
            other => {
                r.at(
                    sc.span(),
                    format!("scheduler {other:?} is unknown; use \"maglev\", \"wrr\" or \"sh\""),
                );
                None
            }
        },
    };
    let cluster = matches!(s.backends.get_ref(), RawBackends::Word(w) if w == "cluster");
    if cluster && !has_cluster {
        r.at(
            s.backends.span(),
            "backends = \"cluster\" needs a [cluster] table in this file (gossip_listen, \
             seeds, secret_file) to join the cache cluster's gossip"
                .into(),
        );
    }
    let backends = if cluster {
        Vec::new()
    } else {
        check_backends(&s.backends, mode, vip.map_or(0, |v| v.port()), r)
    };
    let health = check_health(s.health.as_ref(), r);
    if r.out.len() > before {
        return None;
    }
    Some(ServiceConfig {
        vip: vip?,
        proto,
        mode: mode?,
        scheduler: scheduler?,
        backends,
        cluster,
        health,
    })
}

fn check_backends(
    raw: &Spanned<RawBackends>,
    mode: Option<Mode>,
    vip_port: u16,
    r: &mut Report<'_, '_>,
) -> Vec<BackendConfig> {
    let list = match raw.get_ref() {
        RawBackends::Word(w) => {
            r.at(
                raw.span(),
                format!("backends {w:?} is not a list of backends"),
            );
            return Vec::new();
        }
        RawBackends::List(list) => list,
    };
    if list.is_empty() {
        r.at(
            raw.span(),
            "backends is empty: a service needs at least one".into(),
        );
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for b in list {
        let b = b.get_ref();
        let text = b.addr.get_ref();
        let parsed = match text.parse::<Ipv4Addr>() {
            Ok(ip) => Some((ip, None)),
            Err(_) => text
                .parse::<SocketAddrV4>()
                .ok()
                .map(|a| (*a.ip(), Some(a.port()))),
        };
        let weight = int_in(b.weight.as_ref(), 0, 65_535, "weight", r).unwrap_or(DEFAULT_WEIGHT);
        let Some((ip, port)) = parsed else {
            r.at(
                b.addr.span(),
                format!(
                    "backend addr {text:?} must be an IPv4 address (or ip:port in nat mode); \
                     names are not resolved"
                ),
            );
            continue;
        };
        if port.is_some() && mode.is_some_and(|m| m != Mode::Nat) {
            r.at(
                b.addr.span(),
                format!("backend addr {text:?}: a port is only allowed in nat mode (dr and tun keep the VIP's port)"),
            );
            continue;
        }
        if port == Some(0) {
            r.at(
                b.addr.span(),
                format!("backend addr {text:?}: port 0 is not a port"),
            );
            continue;
        }
        let port = port.unwrap_or(vip_port);
        if !seen.insert((ip, port)) {
            r.at(
                b.addr.span(),
                format!("backend {ip}:{port} is listed twice in this service"),
            );
            continue;
        }
        out.push(BackendConfig { ip, port, weight });
    }
    out
}

fn check_health(raw: Option<&Spanned<RawHealth>>, r: &mut Report<'_, '_>) -> HealthCheck {
    let Some(h) = raw.map(Spanned::get_ref) else {
        return HealthCheck::default();
    };
    let path = match h.path.as_ref() {
        None => "/".to_owned(),
        Some(p) if p.get_ref().starts_with('/') && !p.get_ref().contains(char::is_whitespace) => {
            p.get_ref().clone()
        }
        Some(p) => {
            r.at(
                p.span(),
                format!(
                    "health.path {:?} must start with '/' and hold no spaces",
                    p.get_ref()
                ),
            );
            "/".to_owned()
        }
    };
    let expect = int_in(h.expect.as_ref(), 100, 599, "health.expect", r)
        .map_or(DEFAULT_EXPECT, |e| e as u16);
    let kind = match h.kind.as_ref().map(|k| (k.get_ref().as_str(), k.span())) {
        None | Some(("tcp", _)) => CheckKind::Tcp,
        Some(("http", _)) => CheckKind::Http { path, expect },
        Some(("none", _)) => CheckKind::None,
        Some((other, span)) => {
            r.at(
                span,
                format!("health.kind {other:?} is unknown; use \"tcp\", \"http\" or \"none\""),
            );
            CheckKind::Tcp
        }
    };
    let port = int_in(h.port.as_ref(), 1, 65_535, "health.port", r).map(|p| p as u16);
    let interval = duration(h.interval.as_ref(), DEFAULT_INTERVAL, "health.interval", r);
    let timeout = duration(h.timeout.as_ref(), DEFAULT_TIMEOUT, "health.timeout", r);
    if timeout >= interval {
        let span = h
            .timeout
            .as_ref()
            .or(h.interval.as_ref())
            .map_or(0..0, Spanned::span);
        r.at(
            span,
            format!(
                "health.timeout ({}) must be shorter than health.interval ({})",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ),
        );
    }
    HealthCheck {
        kind,
        port,
        interval,
        timeout,
        rise: int_in(h.rise.as_ref(), 1, 100, "health.rise", r).unwrap_or(DEFAULT_RISE),
        fall: int_in(h.fall.as_ref(), 1, 100, "health.fall", r).unwrap_or(DEFAULT_FALL),
    }
}

/// A humantime duration above zero, or `default` when absent.
fn duration(
    raw: Option<&Spanned<String>>,
    default: Duration,
    key: &str,
    r: &mut Report<'_, '_>,
) -> Duration {
    let Some(v) = raw else { return default };
    match parse_duration(v, key, "\"500ms\" or \"2s\"", r) {
        Some(d) if !d.is_zero() => d,
        Some(_) => {
            r.at(v.span(), format!("{key} must be above zero"));
            default
        }
        None => default,
    }
}
