//! `strait ctl server|backend|show config` and `--admin` resolution.
//!
//! Contract:
//! * `server POOL ADDR drain|ready|maint|weight N` -> `POST /server?pool=&addr=&state=` (or
//!   `&weight=`) on a node; `backend SERVICE ADDR [--proto P] drain|ready|maint|weight N` ->
//!   `POST /backend?service=&addr=[&proto=]&state=` (or `&weight=`) on a director; `show
//!   config` -> `GET /config.json`. Values are percent-encoded as every ctl query is. A
//!   refusal (4xx) is printed on stderr with exit 1 by `ctl::run`.
//! * Output: `server|backend` print one line, `<pool> <server>: <state>, weight <w> (file
//!   <f>)` and `(unchanged)` when nothing changed; `show config` prints the TOML view as the
//!   admin gives it. `--json` prints the answer's JSON.
//! * `--admin`: an `ip:port` is taken as is; a `host:port` is resolved once, an IPv4 address
//!   preferred (an admin listens on 127.0.0.1 by default, and `localhost` may also name ::1).

use std::fmt::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};

use http::Method;
use serde_json::Value;

use super::{cell, percent_encode};
use crate::cli::{Action, RuntimeCommand, ShowWhat};

/// `--admin`'s value parser (module doc).
pub fn admin_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let resolved: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("{text:?}: {e}; write host:port or ip:port, e.g. localhost:9090"))?
        .collect();
    resolved
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| resolved.first())
        .copied()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

/// The query part of an action.
fn action_query(action: Action) -> String {
    match action {
        Action::Drain => "state=drain".into(),
        Action::Ready => "state=ready".into(),
        Action::Maint => "state=maint".into(),
        Action::Weight { weight } => format!("weight={weight}"),
    }
}

/// Method and request target of a runtime command.
pub fn request_for(command: &RuntimeCommand) -> (Method, String) {
    match command {
        RuntimeCommand::Server { pool, addr, action } => (
            Method::POST,
            format!(
                "/server?pool={}&addr={}&{}",
                percent_encode(pool),
                percent_encode(addr),
                action_query(*action)
            ),
        ),
        RuntimeCommand::Backend {
            service,
            addr,
            proto,
            action,
        } => {
            let proto = proto
                .as_deref()
                .map(|p| format!("&proto={}", percent_encode(p)))
                .unwrap_or_default();
            (
                Method::POST,
                format!(
                    "/backend?service={}&addr={}{proto}&{}",
                    percent_encode(service),
                    percent_encode(addr),
                    action_query(*action)
                ),
            )
        }
        RuntimeCommand::Show {
            what: ShowWhat::Config,
        } => (Method::GET, "/config.json".to_owned()),
    }
}

/// The human view of a runtime command's answer (module doc).
pub fn render(command: &RuntimeCommand, answer: &Value) -> String {
    match command {
        RuntimeCommand::Show { .. } => match answer.get("config").and_then(Value::as_str) {
            Some(text) if text.ends_with('\n') => text.to_owned(),
            Some(text) => format!("{text}\n"),
            None => format!("{answer}\n"),
        },
        RuntimeCommand::Server { .. } | RuntimeCommand::Backend { .. } => {
            let get = |k: &str| cell(answer.get(k));
            let mut out = match command {
                RuntimeCommand::Server { .. } => {
                    format!("pool {} server {}", get("pool"), get("server"))
                }
                _ => format!(
                    "service {} {} backend {}",
                    get("service"),
                    get("proto"),
                    get("backend")
                ),
            };
            let _ = write!(
                out,
                ": {}, weight {} (file {})",
                get("admin_state"),
                get("weight"),
                get("file_weight")
            );
            if answer.get("changed") == Some(&Value::Bool(false)) {
                out.push_str(" (unchanged)");
            }
            out.push('\n');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command, CtlCommand};
    use clap::Parser;

    fn parse(args: &[&str]) -> crate::cli::CtlArgs {
        match Cli::try_parse_from(args).unwrap().command {
            Command::Ctl(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn admin_is_accepted_before_or_after_the_subcommand() {
        let before = parse(&[
            "strait",
            "ctl",
            "--admin",
            "127.0.23.1:9",
            "server",
            "p",
            "127.0.23.2:80",
            "drain",
        ]);
        let after = parse(&[
            "strait",
            "ctl",
            "server",
            "p",
            "127.0.23.2:80",
            "drain",
            "--admin",
            "127.0.23.1:9",
        ]);
        let want: SocketAddr = "127.0.23.1:9".parse().unwrap();
        assert_eq!((before.admin, after.admin), (want, want));
        assert_eq!(before.command_runtime(), after.command_runtime());
        let json = parse(&["strait", "ctl", "show", "config", "--json"]);
        assert!(json.json);
        assert_eq!(json.admin, "127.0.0.1:9090".parse::<SocketAddr>().unwrap());
    }

    #[test]
    fn host_names_are_resolved_for_admin() {
        assert_eq!(
            admin_addr("127.0.23.4:90"),
            Ok("127.0.23.4:90".parse().unwrap())
        );
        // /etc/hosts names localhost: no DNS needed.
        let local = admin_addr("localhost:9090").unwrap();
        assert!(local.ip().is_loopback() && local.port() == 9090, "{local}");
        assert!(local.is_ipv4(), "IPv4 preferred: {local}");
        let e = admin_addr("localhost").unwrap_err();
        assert!(e.contains("host:port"), "{e}");
        assert!(Cli::try_parse_from(["strait", "ctl", "--admin", "nope", "status"]).is_err());
    }

    #[test]
    fn requests_per_runtime_command() {
        let server = |a: &[&str]| {
            let mut args = vec!["strait", "ctl", "server", "web pool", "127.0.23.2:80"];
            args.extend_from_slice(a);
            request_for(&parse(&args).command_runtime().unwrap())
        };
        assert_eq!(
            server(&["drain"]),
            (
                Method::POST,
                "/server?pool=web%20pool&addr=127.0.23.2%3A80&state=drain".into()
            )
        );
        assert_eq!(
            server(&["weight", "5"]).1,
            "/server?pool=web%20pool&addr=127.0.23.2%3A80&weight=5"
        );
        assert!(
            Cli::try_parse_from(["strait", "ctl", "server", "p", "a", "weight", "-1"]).is_err()
        );
        assert!(Cli::try_parse_from(["strait", "ctl", "server", "p", "a", "up"]).is_err());
        let backend = parse(&[
            "strait",
            "ctl",
            "backend",
            "10.0.0.100:80",
            "10.0.0.11",
            "--proto",
            "udp",
            "maint",
        ]);
        assert_eq!(
            request_for(&backend.command_runtime().unwrap()).1,
            "/backend?service=10.0.0.100%3A80&addr=10.0.0.11&proto=udp&state=maint"
        );
        let show = parse(&["strait", "ctl", "show", "config"]);
        assert_eq!(
            request_for(&show.command_runtime().unwrap()),
            (Method::GET, "/config.json".into())
        );
    }

    #[test]
    fn answers_render_as_one_line_or_the_config_text() {
        let cmd = parse(&["strait", "ctl", "server", "p", "127.0.23.2:80", "drain"])
            .command_runtime()
            .unwrap();
        let answer = serde_json::json!({"pool": "p", "server": "127.0.23.2:80",
            "admin_state": "drain", "weight": 1, "file_weight": 1, "changed": false});
        assert_eq!(
            render(&cmd, &answer),
            "pool p server 127.0.23.2:80: drain, weight 1 (file 1) (unchanged)\n"
        );
        let show = parse(&["strait", "ctl", "show", "config"])
            .command_runtime()
            .unwrap();
        assert_eq!(
            render(&show, &serde_json::json!({"config": "a = 1"})),
            "a = 1\n"
        );
    }

    impl crate::cli::CtlArgs {
        fn command_runtime(&self) -> Option<RuntimeCommand> {
            match &self.command {
                CtlCommand::Runtime(r) => Some(r.clone()),
                _ => None,
            }
        }
    }
}
