//! `strait ctl purge URL` and `strait ctl ban PREFIX|--all`: the destructive commands.
//!
//! Contract (exit codes, also in `docs/cache.md#strait-ctl`):
//! * a ban prefix is checked here first, by the rule the node applies
//!   (`strait_cache::checked_ban_prefix`): an empty, relative or host-less prefix is refused
//!   before anything is sent, with the reason on stderr, exit [`EXIT_REFUSED`] (2, as for any
//!   other bad command line);
//! * the node's answer: at least one object removed and every cluster member confirmed: exit
//!   0; nothing removed, or a member that did not confirm: exit [`EXIT_NOT_DONE`] (1) with the
//!   reason on stderr (the answer is printed on stdout as usual);
//! * a node that refuses (400) or cannot be reached is exit 1 too (`super::run`).

use serde_json::Value;

use super::percent_encode;

/// Exit code of a command line refused before anything was sent.
pub const EXIT_REFUSED: i32 = 2;
/// Exit code of an invalidation that did not do what was asked (nothing removed, or not
/// confirmed by every member).
pub const EXIT_NOT_DONE: i32 = 1;

/// The request target of `ban PREFIX` (`Some(prefix)`) or `ban --all` (`None`), or why the
/// prefix is refused.
pub fn ban_target(prefix: Option<&str>) -> Result<String, String> {
    match prefix {
        None => Ok("/ban?all=1".to_owned()),
        Some(raw) => strait_cache::checked_ban_prefix(raw)
            .map(|p| format!("/ban?prefix={}", percent_encode(&p)))
            .map_err(|why| format!("ban {raw:?} refused: {}", why.message())),
    }
}

/// The exit code of an invalidation's answer, and what to tell the operator on stderr when it
/// is not 0 (see the module doc).
pub fn outcome(answer: &Value) -> (i32, Option<String>) {
    let removed = answer.get("removed").and_then(Value::as_u64);
    let failed: Vec<&String> = answer
        .get("failed")
        .and_then(Value::as_object)
        .map(|f| f.keys().collect())
        .unwrap_or_default();
    if !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|s| s.as_str()).collect();
        return (
            EXIT_NOT_DONE,
            Some(format!(
                "not confirmed by {}: copies may remain there; run it again",
                names.join(", ")
            )),
        );
    }
    match removed {
        Some(0) => (
            EXIT_NOT_DONE,
            Some(format!(
                "nothing removed: no stored object matched {}",
                what(answer)
            )),
        ),
        Some(_) => (0, None),
        None => (
            EXIT_NOT_DONE,
            Some("the answer does not say what was removed".to_owned()),
        ),
    }
}

/// What the answer says was asked: the URL's key, the prefix, or everything.
fn what(answer: &Value) -> String {
    if let Some(key) = answer.get("key").and_then(Value::as_str) {
        format!("the key {key}")
    } else if let Some(prefix) = answer.get("prefix").and_then(Value::as_str) {
        format!("the prefix {prefix}")
    } else if answer.get("all").and_then(Value::as_bool) == Some(true) {
        "(the cache was already empty)".to_owned()
    } else {
        "the request".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_ban_prefix_is_checked_before_it_is_sent() {
        assert_eq!(
            ban_target(Some("http://Example.com/img/")),
            Ok("/ban?prefix=http%3A%2F%2Fexample.com%2Fimg%2F".to_owned())
        );
        assert_eq!(ban_target(None), Ok("/ban?all=1".to_owned()));
        for raw in ["", "/img/", "http://", "example.com/img/"] {
            let why = ban_target(Some(raw)).expect_err(raw);
            assert!(why.starts_with(&format!("ban {raw:?} refused: ")), "{why}");
        }
        assert!(ban_target(Some("")).unwrap_err().contains("--all"));
    }

    #[test]
    fn removing_nothing_or_not_everywhere_is_exit_1() {
        assert_eq!(outcome(&json!({"removed": 3})), (0, None));
        let cluster = json!({"removed": 2, "nodes": {"a": 2, "b": 0}, "failed": {}});
        assert_eq!(outcome(&cluster), (0, None));
        assert_eq!(
            outcome(&json!({"removed": 0, "prefix": "http://h/x/"})),
            (
                1,
                Some("nothing removed: no stored object matched the prefix http://h/x/".into())
            )
        );
        assert_eq!(
            outcome(&json!({"removed": 0, "key": "http://h/a"})).1,
            Some("nothing removed: no stored object matched the key http://h/a".into())
        );
        let partial = json!({"removed": 5, "failed": {"c": "timeout", "b": "refused"}});
        assert_eq!(
            outcome(&partial),
            (
                1,
                Some("not confirmed by b, c: copies may remain there; run it again".into())
            )
        );
        assert_eq!(outcome(&json!({"ok": true})).0, 1);
    }
}
