//! `strait check` on route tables: a last route with a `match` (requests left unrouted), a bad
//! `path_regex`, a bad host pattern and an unknown key inside `match` are refused with exit
//! code 2 and a `FILE:LINE:COL: message` diagnostic on stderr.

use std::process::Command;

use crate::support::scratch_dir;

/// A config whose first route (line 9) is `match = <matcher>`; `with_default` adds a last
/// route without `match`.
fn config(matcher: &str, with_default: bool) -> String {
    let mut text = format!(
        "[node]\nid = \"a\"\nlisten = [\"127.0.0.1:0\"]\nadmin = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"p\"\nservers = [{{ addr = \"127.0.0.1:1\" }}]\n\
         [[route]]\nmatch = {matcher}\npool = \"p\"\n"
    );
    if with_default {
        text.push_str("[[route]]\npool = \"p\"\n");
    }
    text
}

/// Run `strait check` on `text`; (exit code, stdout, stderr, the path as printed).
fn check(text: &str) -> (i32, String, String, String) {
    let path = scratch_dir("check").join("node.toml");
    std::fs::write(&path, text).expect("write config");
    let shown = path.display().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["check", &shown])
        .env_remove("STRAIT_LOG")
        .output()
        .expect("run strait check");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        shown,
    )
}

#[test]
fn a_table_with_a_default_route_is_accepted() {
    let (code, stdout, stderr, path) = check(&config(
        r#"{ host = "*.cdn.example", path_regex = '\.css$', method = ["GET", "HEAD"], header = { name = "x-tier", regex = "^gold$" } }"#,
        true,
    ));
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(stdout, format!("{path}: ok\n"));
}

#[test]
fn a_last_route_with_a_match_is_refused_as_leaving_requests_unrouted() {
    let (code, stdout, stderr, path) = check(&config(r#"{ path_prefix = "/a/" }"#, false));
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert_eq!(
        stderr,
        format!(
            "{path}:9:9: a request matching no route would be left unrouted: the last route \
             must have no `match`\n"
        )
    );
}

#[test]
fn a_bad_path_regex_is_refused_where_it_is() {
    let (code, stdout, stderr, path) = check(&config(r#"{ path_regex = "a(b" }"#, true));
    assert_eq!((code, stdout.as_str()), (2, ""));
    let first = stderr.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!("{path}:9:9: route 0: invalid regex \"a(b\": regex parse error:")
    );
    assert!(stderr.contains("unclosed group"), "{stderr}");
}

#[test]
fn a_bad_host_pattern_is_refused_where_it_is() {
    for bad in ["a*b", "*.", "*.a*.b", ""] {
        let (code, stdout, stderr, path) = check(&config(&format!("{{ host = \"{bad}\" }}"), true));
        assert_eq!((code, stdout.as_str()), (2, ""), "{bad:?}");
        assert_eq!(
            stderr,
            format!("{path}:9:9: route 0: invalid host pattern \"{bad}\"\n"),
            "{bad:?}"
        );
    }
}

#[test]
fn an_unknown_key_inside_match_is_refused_where_it_is() {
    let (code, stdout, stderr, path) = check(&config(r#"{ path_prefx = "/a/" }"#, true));
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert_eq!(
        stderr,
        format!(
            "{path}:9:11: route.match: unknown field `path_prefx`, expected one of `host`, \
             `path_prefix`, `path_regex`, `method`, `header`\n"
        )
    );
}
