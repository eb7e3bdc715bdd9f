//! Runtime control on the director's admin listener: `POST /backend` (drain, ready, maint or
//! a new weight for one backend of a service; the states are `crate::health::admin`'s) and
//! `GET /config` (the configuration in effect).
//!
//! Contract:
//! * `POST /backend?service=VIP:PORT&addr=IP[:PORT]&state=ready|drain|maint`, or `&weight=N`
//!   (0..=65535) instead of `state`; `&proto=tcp|udp` picks the service when a VIP:PORT has
//!   both. A backend is named by `ip:port`, or by its IP alone when only one backend of the
//!   service has it. 200 with `{"service", "proto", "backend", "admin_state", "weight",
//!   "file_weight", "changed"}`; 400 for a missing or malformed parameter (or an ambiguous
//!   service), 404 for an unknown service or backend, each with a one-line reason. A change
//!   rebuilds and applies every service at once, as a health change does (`Inner::change`),
//!   and is logged at info with who asked.
//! * `drain`: no new flows; established flows keep the backend through the connection table.
//!   `maint`: no flows at all: established flows move on their next packet; health checks
//!   keep running but do not bring it back.
//! * `GET /config`: `text/plain`, the file's text as of the start or the last applied reload
//!   (keys a reload cannot change keep their start values until a restart; a `backends =
//!   "cluster"` service's backends are the cluster's members), after a comment header, then
//!   each backend with a runtime override as a comment line: the output parses as the file.
//!   `GET /config.json` is `{"config": <that text>}` (what `strait ctl show config` asks).

use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;

use super::state::{ServiceState, State};
use super::view::ServiceView;
use super::{lock, Inner};
use crate::admin::metrics::{gauges, DescriptorEncoder};
use crate::admin::{not_allowed, query_param, respond, AdminPeer};
use crate::config::{load_with, parse, ConfigError, DirectorConfig, Proto};
use crate::health::admin::{AdminState, Command, Override};

/// Largest weight a runtime change may set (the file's bound).
const MAX_WEIGHT: u32 = 65_535;

/// Reads and validates the config file, keeping the text it was read from.
pub(super) fn load_text(path: &Path) -> Result<(DirectorConfig, String), ConfigError> {
    load_with(path, |text| parse(text).map(|c| (c, text.to_owned())))
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refused {
    /// 400: a parameter is missing or malformed.
    Bad(String),
    /// 404: no such service or backend.
    Unknown(String),
}

/// What a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Controlled {
    pub service: SocketAddrV4,
    pub proto: Proto,
    pub backend: SocketAddrV4,
    pub before: Override,
    pub after: Override,
    pub file_weight: u32,
}

/// The service `vip` (with `proto`, when given) among `services`.
fn find_service(
    services: &mut [ServiceState],
    vip: SocketAddrV4,
    proto: Option<Proto>,
) -> Result<&mut ServiceState, Refused> {
    let mut matching = services
        .iter_mut()
        .filter(|s| s.config.vip == vip && proto.is_none_or(|p| s.config.proto == p));
    let first = matching
        .next()
        .ok_or_else(|| Refused::Unknown(format!("no service {vip}")))?;
    if matching.next().is_some() {
        return Err(Refused::Bad(format!(
            "service {vip} is both tcp and udp: add proto=tcp or proto=udp"
        )));
    }
    Ok(first)
}

impl State {
    /// Applies `cmd` to backend `backend` (`ip:port`, or an `ip` one backend has) of service
    /// `vip`; the caller rebuilds the services when it changed anything.
    pub(super) fn control(
        &mut self,
        vip: SocketAddrV4,
        proto: Option<Proto>,
        backend: &str,
        cmd: Command,
    ) -> Result<Controlled, Refused> {
        let service = find_service(&mut self.services, vip, proto)?;
        let wanted: Box<dyn Fn(SocketAddrV4) -> bool> =
            if let Ok(addr) = backend.parse::<SocketAddrV4>() {
                Box::new(move |a| a == addr)
            } else if let Ok(ip) = backend.parse::<Ipv4Addr>() {
                Box::new(move |a: SocketAddrV4| *a.ip() == ip)
            } else {
                return Err(Refused::Bad(format!(
                    "bad addr {backend:?}: write the backend's ip or ip:port"
                )));
            };
        let service_id = (service.config.vip, service.config.proto);
        let mut found = service.backends.iter_mut().filter(|b| wanted(b.addr()));
        let b = found
            .next()
            .ok_or_else(|| Refused::Unknown(format!("service {vip} has no backend {backend}")))?;
        if found.next().is_some() {
            return Err(Refused::Bad(format!(
                "service {vip} has several backends at {backend}: write ip:port"
            )));
        }
        let before = b.admin;
        b.admin.apply(cmd);
        Ok(Controlled {
            service: service_id.0,
            proto: service_id.1,
            backend: b.addr(),
            before,
            after: b.admin,
            file_weight: b.weight,
        })
    }

    /// The backends with a runtime override: (service, proto, backend, override, file weight).
    fn overridden(&self) -> Vec<(SocketAddrV4, Proto, SocketAddrV4, Override, u32)> {
        self.services
            .iter()
            .flat_map(|s| {
                s.backends
                    .iter()
                    .filter(|b| b.admin.is_set())
                    .map(|b| (s.config.vip, s.config.proto, b.addr(), b.admin, b.weight))
            })
            .collect()
    }
}

/// Answers `/backend` and `/config` (already past the guard).
pub(super) fn route<B>(inner: &Arc<Inner>, req: &Request<B>) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/backend") => match set_backend(inner, req) {
            Ok(body) => respond(StatusCode::OK, "application/json", body),
            Err(Refused::Bad(why)) => {
                respond(StatusCode::BAD_REQUEST, TEXT, format!("400 {why}\n"))
            }
            Err(Refused::Unknown(why)) => {
                respond(StatusCode::NOT_FOUND, TEXT, format!("404 {why}\n"))
            }
        },
        (&Method::GET, "/config") => respond(StatusCode::OK, TEXT, config_in_effect(inner)),
        (&Method::GET, "/config.json") => respond(
            StatusCode::OK,
            "application/json",
            serde_json::json!({ "config": config_in_effect(inner) }).to_string(),
        ),
        (_, "/backend") => not_allowed("POST"),
        _ => not_allowed("GET"),
    }
}

/// `POST /backend`: the JSON answer or why not.
fn set_backend<B>(inner: &Arc<Inner>, req: &Request<B>) -> Result<String, Refused> {
    let uri = req.uri();
    let service_text = query_param(uri, "service")
        .ok_or_else(|| Refused::Bad("missing service=VIP:PORT".into()))?;
    let vip: SocketAddrV4 = service_text.parse().map_err(|_| {
        Refused::Bad(format!(
            "bad service {service_text:?}: write the service's vip as VIP:PORT"
        ))
    })?;
    let proto = match query_param(uri, "proto").as_deref() {
        None => None,
        Some("tcp") => Some(Proto::Tcp),
        Some("udp") => Some(Proto::Udp),
        Some(other) => return Err(Refused::Bad(format!("bad proto {other:?}: tcp or udp"))),
    };
    let backend =
        query_param(uri, "addr").ok_or_else(|| Refused::Bad("missing addr=IP[:PORT]".into()))?;
    let cmd = Command::from_query(
        query_param(uri, "state").as_deref(),
        query_param(uri, "weight").as_deref(),
        MAX_WEIGHT,
    )
    .map_err(Refused::Bad)?;
    let by = req
        .extensions()
        .get::<AdminPeer>()
        .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |p| p.0);
    let done = inner.change("runtime control", |state| {
        let r = state.control(vip, proto, &backend, cmd);
        let apply = r.as_ref().is_ok_and(|c| c.before != c.after);
        (r, apply)
    })?;
    tracing::info!(service = %done.service, proto = done.proto.as_str(), backend = %done.backend,
        by = %by, asked = %cmd, admin_state = done.after.state.as_str(),
        weight = done.after.weight(done.file_weight), changed = done.before != done.after,
        "runtime control: backend set by the admin endpoint");
    Ok(serde_json::json!({
        "service": done.service.to_string(),
        "proto": done.proto.as_str(),
        "backend": done.backend.to_string(),
        "admin_state": done.after.state.as_str(),
        "weight": done.after.weight(done.file_weight),
        "file_weight": done.file_weight,
        "changed": done.before != done.after,
    })
    .to_string())
}

/// `GET /config`'s text (module doc).
fn config_in_effect(inner: &Inner) -> String {
    let text = lock(&inner.applied_text).clone();
    let id = lock(&inner.config).id.clone();
    let overridden = lock(&inner.state).overridden();
    render_config(
        &id,
        &inner.config_path.display().to_string(),
        &text,
        &overridden,
    )
}

/// The config view: header, the text as written, the runtime overrides as comments.
fn render_config(
    id: &str,
    path: &str,
    text: &str,
    overridden: &[(SocketAddrV4, Proto, SocketAddrV4, Override, u32)],
) -> String {
    let mut out = format!(
        "# strait director {id}: the configuration in effect\n\
         # source: {path} as of the start or the last applied reload\n\
         # runtime overrides (strait ctl backend), if any, are listed at the end as comments\n\n{text}"
    );
    if !out.ends_with('\n') {
        out.push('\n');
    }
    if !overridden.is_empty() {
        out.push_str("\n# runtime overrides (not in the file; cleared by a reload that changes the backend's weight):\n");
        for (vip, proto, backend, admin, file_weight) in overridden {
            let _ = writeln!(
                out,
                "# runtime override: service {vip} {} backend {backend}: {}",
                proto.as_str(),
                admin.describe(*file_weight)
            );
        }
    }
    out
}

/// `strait_director_backend_admin_state{vip, proto, backend, state}`: 1 for the backend's
/// runtime control state, 0 for the two others.
pub(super) fn encode_admin_states(
    enc: &mut DescriptorEncoder<'_>,
    services: &[ServiceView],
) -> fmt::Result {
    let series = services.iter().flat_map(|s| {
        s.backends.iter().flat_map(move |b| {
            AdminState::ALL.into_iter().map(move |st| {
                let labels = [
                    ("vip", s.vip.as_str()),
                    ("proto", s.proto),
                    ("backend", b.addr.as_str()),
                    ("state", st.as_str()),
                ];
                (labels, u64::from(b.admin_state == st.as_str()))
            })
        })
    });
    gauges(
        enc,
        "backend_admin_state",
        "Runtime control state of a backend (ready, drain or maint), set by strait ctl backend",
        series,
    )
}

#[cfg(test)]
mod tests;
