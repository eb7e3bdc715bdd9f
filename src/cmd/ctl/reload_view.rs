//! `strait ctl reload`'s human view of `POST /reload`'s answer (node or director): `reloaded`,
//! what changed, and the start-only keys the reload could not apply. Pure; tolerates missing
//! fields (an older answer, `{"reloaded":true}`, prints `reloaded`).

use serde_json::Value;

/// The lines printed for a successful reload.
pub fn render_reload(answer: &Value) -> String {
    let mut out = String::from("reloaded");
    if let Some(summary) = answer.get("summary").and_then(Value::as_str) {
        out.push_str(": ");
        out.push_str(summary);
    }
    out.push('\n');
    let keys: Vec<&str> = answer
        .get("not_applied")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !keys.is_empty() {
        out.push_str("not applied (restart needed): ");
        out.push_str(&keys.join(", "));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_changes_and_the_keys_left_for_a_restart() {
        let a = json!({"reloaded": true, "summary": "pools +b", "not_applied": ["node.listen", "storage.ram"]});
        assert_eq!(
            render_reload(&a),
            "reloaded: pools +b\nnot applied (restart needed): node.listen, storage.ram\n"
        );
        let b = json!({"reloaded": true, "summary": "no changes", "not_applied": []});
        assert_eq!(render_reload(&b), "reloaded: no changes\n");
        assert_eq!(render_reload(&json!({"reloaded": true})), "reloaded\n");
    }
}
