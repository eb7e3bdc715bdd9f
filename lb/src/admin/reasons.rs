//! Counts by reason (`[(reason, count)]`, every reason listed, zeros included), as the
//! director's status blocks keep them: one count up, and the `/stats.json` object.

use serde_json::{json, Map, Value};

/// Counts one more under `reason` (a reason not listed yet is added).
pub fn bump(counts: &mut Vec<(&'static str, u64)>, reason: &'static str) {
    match counts.iter_mut().find(|(r, _)| *r == reason) {
        Some((_, n)) => *n += 1,
        None => counts.push((reason, 1)),
    }
}

/// `{reason: count}`.
pub fn to_json(counts: &[(&'static str, u64)]) -> Value {
    let map: Map<String, Value> = counts
        .iter()
        .map(|(r, n)| ((*r).to_owned(), json!(n)))
        .collect();
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_adds_and_counts_and_json_lists_every_reason() {
        let mut c = vec![("a", 0), ("b", 2)];
        bump(&mut c, "b");
        bump(&mut c, "new");
        assert_eq!(c, vec![("a", 0), ("b", 3), ("new", 1)]);
        assert_eq!(to_json(&c), json!({"a": 0, "b": 3, "new": 1}));
    }
}
