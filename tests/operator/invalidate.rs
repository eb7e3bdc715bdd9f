//! Purge and ban as an operator runs them: `strait ctl` exit codes (0 removed something, 1
//! removed nothing, 2 refused before asking) and `ban --all`, which empties the cache on purpose.

use crate::support::*;
use crate::{node_config_on, origin_on};

const IP: &str = "127.0.20.1";

/// A node with `/obj/x` and `/obj/y` stored.
fn node_with_two() -> (Origin, Node) {
    let origin = origin_on(IP);
    let node = Node::start_config(&node_config_on(IP, "origin", &[origin.addr], ""));
    for p in ["/obj/x", "/obj/y"] {
        assert_eq!(
            get(node.addr, p, &[]).cache_status(),
            "a; fwd=miss; stored",
            "{p}"
        );
    }
    (origin, node)
}

#[test]
fn ctl_exits_1_when_a_purge_or_ban_removed_nothing() {
    let (_origin, node) = node_with_two();
    let (code, out, err) = node.ctl(&["purge", "http://test.example/obj/none"]);
    assert_eq!((code, out.as_str()), (1, "removed 0 object(s)\n"), "{err}");
    assert!(
        err.contains(
            "nothing removed: no stored object matched the key http://test.example/obj/none"
        ),
        "{err}"
    );
    let (code, _, err) = node.ctl(&["ban", "http://other.example/"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the prefix http://other.example/"), "{err}");
    // Refused by the node (400): exit 1 as well, with the node's reason.
    let (code, _, err) = node.ctl(&["purge", "/obj/x"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("400") && err.contains("absolute URL"), "{err}");
    // What was asked and done is exit 0; the prefix is matched as keys are written.
    let (code, out, err) = node.ctl(&["ban", "HTTP://Test.Example:80/obj/x"]);
    assert_eq!((code, out.as_str()), (0, "removed 1 object(s)\n"), "{err}");
    assert_eq!(node.counter("stored_objects"), 1);
}

#[test]
fn ban_all_empties_the_cache_on_purpose() {
    let (origin, node) = node_with_two();
    let (code, out, err) = node.ctl(&["--json", "ban", "--all"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("ctl --json output");
    assert_eq!(v, serde_json::json!({"all": true, "removed": 2}));
    assert_eq!(node.counter("stored_objects"), 0);
    assert_eq!(
        get(node.addr, "/obj/x", &[]).cache_status(),
        "a; fwd=miss; stored"
    );
    assert_eq!(origin.count("/obj/x"), 2);
    // Again, on the one object left: removed; then nothing is left to remove.
    assert_eq!(node.ctl(&["ban", "--all"]).0, 0);
    let (code, out, err) = node.ctl(&["ban", "--all"]);
    assert_eq!((code, out.as_str()), (1, "removed 0 object(s)\n"), "{err}");
    // A prefix and --all together, or neither, is a usage error.
    assert_eq!(node.ctl(&["ban", "--all", "http://test.example/"]).0, 2);
    assert_eq!(node.ctl(&["ban"]).0, 2);
}
