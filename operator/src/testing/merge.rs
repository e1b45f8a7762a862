//! JSON merging for PATCH: RFC 7386 merge patch (also standing in for strategic merge
//! patch) and the simplified server-side apply merge.

use serde_json::Value;

/// RFC 7386: objects merge recursively, `null` deletes a key, anything else replaces.
pub(crate) fn merge_patch(target: Value, patch: Value) -> Value {
    let Value::Object(patch) = patch else {
        return patch;
    };
    let mut target = match target {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(&key);
        } else {
            let current = target.remove(&key).unwrap_or(Value::Null);
            target.insert(key, merge_patch(current, value));
        }
    }
    Value::Object(target)
}

/// Server-side apply, simplified: the applied configuration is merged into the live object
/// with the applied values winning; lists are replaced whole. Unlike real SSA, fields a
/// manager stops applying are not removed and conflicts between managers are not detected.
pub(crate) fn apply_merge(live: Value, applied: Value) -> Value {
    match (live, applied) {
        (Value::Object(mut live), Value::Object(applied)) => {
            for (key, value) in applied {
                let current = live.remove(&key).unwrap_or(Value::Null);
                live.insert(key, apply_merge(current, value));
            }
            Value::Object(live)
        }
        (_, applied) => applied,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let target = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        let patch = json!({"a": "z", "c": {"f": null}, "l": [3], "n": {"x": 1}});
        assert_eq!(
            merge_patch(target, patch),
            json!({"a": "z", "c": {"d": "e"}, "l": [3], "n": {"x": 1}})
        );
    }

    #[test]
    fn apply_merge_keeps_unapplied_fields_and_replaces_lists() {
        let live = json!({"spec": {"a": 1, "b": [1, 2]}, "metadata": {"labels": {"x": "1"}}});
        let applied = json!({"spec": {"b": [3]}, "metadata": {"labels": {"y": "2"}}});
        assert_eq!(
            apply_merge(live, applied),
            json!({"spec": {"a": 1, "b": [3]}, "metadata": {"labels": {"x": "1", "y": "2"}}})
        );
    }
}
