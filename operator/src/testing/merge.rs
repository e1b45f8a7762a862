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
/// with the applied values winning; lists are replaced whole. Fields a manager stops
/// applying are removed by [`remove_unapplied`]; unlike real SSA, conflicts between
/// managers are not detected and a field co-owned by another manager is removed anyway.
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

/// The fields an applied configuration sets, in `FieldsV1` shape (`{"f:data": {"f:k": {}}}`):
/// objects recurse, anything else (lists included) is a leaf. Identity fields are left out.
pub(crate) fn applied_fields(applied: &Value) -> Value {
    fn walk(v: &Value, top: bool, in_meta: bool) -> Value {
        let mut out = serde_json::Map::new();
        if let Value::Object(map) = v {
            for (key, child) in map {
                let skip = (top && (key == "apiVersion" || key == "kind"))
                    || (in_meta
                        && matches!(
                            key.as_str(),
                            "name" | "namespace" | "resourceVersion" | "managedFields"
                        ));
                if skip {
                    continue;
                }
                let sub = match child {
                    Value::Object(_) => walk(child, false, top && key == "metadata"),
                    _ => Value::Object(serde_json::Map::new()),
                };
                out.insert(format!("f:{key}"), sub);
            }
        }
        Value::Object(out)
    }
    walk(applied, true, false)
}

/// Removes from `live` the fields present in `before` (a manager's previous `FieldsV1`) but
/// absent from `now` (its current one): what real SSA does when a manager drops a field.
pub(crate) fn remove_unapplied(live: &mut Value, before: &Value, now: &Value) {
    let (Value::Object(live), Value::Object(before)) = (live, before) else {
        return;
    };
    for (fkey, sub_before) in before {
        let Some(key) = fkey.strip_prefix("f:") else {
            continue;
        };
        let owned_leaf = sub_before.as_object().is_none_or(|m| m.is_empty());
        match now.get(fkey) {
            None if owned_leaf => {
                live.remove(key);
            }
            // A map the manager set keys of: drop only its own keys, keep others'.
            None => {
                if let Some(child) = live.get_mut(key) {
                    remove_unapplied(child, sub_before, &Value::Object(serde_json::Map::new()));
                }
            }
            Some(sub_now) => {
                if let Some(child) = live.get_mut(key) {
                    remove_unapplied(child, sub_before, sub_now);
                }
            }
        }
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

    #[test]
    fn a_field_no_longer_applied_is_removed_and_others_stay() {
        let first = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": {"a": "1"}}, "data": {"k1": "eA==", "k2": "eQ=="}});
        let second = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": {"a": "1"}}, "data": {"k2": "eQ=="}});
        let before = applied_fields(&first);
        assert_eq!(
            before,
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:data": {"f:k1": {}, "f:k2": {}}})
        );
        let mut live = json!({"metadata": {"name": "s", "labels": {"a": "1", "other": "x"}}, "data": {"k1": "eA==", "k2": "eQ=="}});
        remove_unapplied(&mut live, &before, &applied_fields(&second));
        assert_eq!(
            live,
            json!({"metadata": {"name": "s", "labels": {"a": "1", "other": "x"}}, "data": {"k2": "eQ=="}})
        );
    }
}
