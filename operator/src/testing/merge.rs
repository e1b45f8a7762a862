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

/// A list the schema declares `x-kubernetes-list-type: map`: server-side apply merges its
/// items by these keys instead of replacing the list. Only lists reached through object
/// properties (e.g. `status.conditions`, `spec.models`) are modelled, not lists nested in
/// other lists' items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListMap {
    /// Property names from the object's root to the list.
    pub path: Vec<String>,
    /// The `x-kubernetes-list-map-keys`.
    pub keys: Vec<String>,
}

/// Server-side apply, simplified: the applied configuration is merged into the live object
/// with the applied values winning; lists are replaced whole, except [`ListMap`]s, whose
/// items merge by key (an applied item merges into the live item with the same key, other
/// live items stay). Fields a manager stops applying are removed by [`remove_unapplied`];
/// unlike real SSA, conflicts between managers are not detected and a field co-owned by
/// another manager is removed anyway.
pub(crate) fn apply_merge(live: Value, applied: Value, list_maps: &[ListMap]) -> Value {
    merge_at(live, applied, list_maps, &mut Vec::new())
}

fn merge_at(live: Value, applied: Value, list_maps: &[ListMap], path: &mut Vec<String>) -> Value {
    match (live, applied) {
        (Value::Object(mut live), Value::Object(applied)) => {
            for (key, value) in applied {
                let current = live.remove(&key).unwrap_or(Value::Null);
                path.push(key.clone());
                let merged = merge_at(current, value, list_maps, path);
                path.pop();
                live.insert(key, merged);
            }
            Value::Object(live)
        }
        (Value::Array(mut live), Value::Array(applied)) => {
            let Some(list_map) = list_maps.iter().find(|m| &m.path == path) else {
                return Value::Array(applied);
            };
            for item in applied {
                let key = item_key(&item, &list_map.keys);
                match live.iter_mut().find(|l| item_key(l, &list_map.keys) == key) {
                    Some(existing) => {
                        let current = std::mem::take(existing);
                        *existing = merge_at(current, item, &[], &mut Vec::new());
                    }
                    None => live.push(item),
                }
            }
            Value::Array(live)
        }
        (_, applied) => applied,
    }
}

/// The `k:{...}` field-set name of a list-map item: its key fields as a JSON object.
fn item_key(item: &Value, keys: &[String]) -> String {
    let fields: serde_json::Map<String, Value> = keys
        .iter()
        .map(|k| (k.clone(), item.get(k).cloned().unwrap_or(Value::Null)))
        .collect();
    format!("k:{}", Value::Object(fields))
}

/// The fields an applied configuration sets, in `FieldsV1` shape (`{"f:data": {"f:k": {}}}`):
/// objects recurse, list-map items are `k:{...}` entries, anything else (other lists
/// included) is a leaf. Identity fields are left out.
pub(crate) fn applied_fields(applied: &Value, list_maps: &[ListMap]) -> Value {
    fn walk(v: &Value, path: &mut Vec<String>, list_maps: &[ListMap]) -> Value {
        let top = path.is_empty();
        let in_meta = path.len() == 1 && path[0] == "metadata";
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
                path.push(key.clone());
                let sub = match child {
                    Value::Object(_) => walk(child, path, list_maps),
                    Value::Array(items) => match list_maps.iter().find(|m| &m.path == path) {
                        Some(m) => Value::Object(
                            items
                                .iter()
                                .map(|i| (item_key(i, &m.keys), Value::Object(Default::default())))
                                .collect(),
                        ),
                        None => Value::Object(serde_json::Map::new()),
                    },
                    _ => Value::Object(serde_json::Map::new()),
                };
                path.pop();
                out.insert(format!("f:{key}"), sub);
            }
        }
        Value::Object(out)
    }
    walk(applied, &mut Vec::new(), list_maps)
}

/// Removes from `live` the fields present in `before` (a manager's previous `FieldsV1`) but
/// absent from `now` (its current one): what real SSA does when a manager drops a field.
/// A list-map item (`k:{...}`) the manager stops applying is removed from its list.
pub(crate) fn remove_unapplied(live: &mut Value, before: &Value, now: &Value) {
    let Value::Object(before) = before else {
        return;
    };
    if let Value::Array(items) = live {
        items.retain(|item| {
            !before.keys().any(|k| {
                k.starts_with("k:")
                    && now.get(k).is_none()
                    && serde_json::from_str::<serde_json::Map<String, Value>>(&k[2..])
                        .is_ok_and(|fields| fields.iter().all(|(f, v)| item.get(f) == Some(v)))
            })
        });
        return;
    }
    let Value::Object(live) = live else {
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
            apply_merge(live, applied, &[]),
            json!({"spec": {"a": 1, "b": [3]}, "metadata": {"labels": {"x": "1", "y": "2"}}})
        );
    }

    #[test]
    fn a_field_no_longer_applied_is_removed_and_others_stay() {
        let first = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": {"a": "1"}}, "data": {"k1": "eA==", "k2": "eQ=="}});
        let second = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": {"a": "1"}}, "data": {"k2": "eQ=="}});
        let before = applied_fields(&first, &[]);
        assert_eq!(
            before,
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:data": {"f:k1": {}, "f:k2": {}}})
        );
        let mut live = json!({"metadata": {"name": "s", "labels": {"a": "1", "other": "x"}}, "data": {"k1": "eA==", "k2": "eQ=="}});
        remove_unapplied(&mut live, &before, &applied_fields(&second, &[]));
        assert_eq!(
            live,
            json!({"metadata": {"name": "s", "labels": {"a": "1", "other": "x"}}, "data": {"k2": "eQ=="}})
        );
    }

    #[test]
    fn list_map_items_merge_by_key_and_an_item_no_longer_applied_is_removed() {
        let maps = [ListMap {
            path: vec!["status".into(), "conditions".into()],
            keys: vec!["type".into()],
        }];
        let live = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "Theirs", "status": "True"},
        ]}});
        let first = json!({"status": {"conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "Mine", "status": "True"},
        ]}});
        let merged = apply_merge(live, first.clone(), &maps);
        assert_eq!(
            merged,
            json!({"status": {"conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "Theirs", "status": "True"},
                {"type": "Mine", "status": "True"},
            ]}})
        );
        let before = applied_fields(&first, &maps);
        assert_eq!(
            before,
            json!({"f:status": {"f:conditions": {"k:{\"type\":\"Mine\"}": {}, "k:{\"type\":\"Ready\"}": {}}}})
        );
        let second = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let mut live = apply_merge(merged, second.clone(), &maps);
        remove_unapplied(&mut live, &before, &applied_fields(&second, &maps));
        assert_eq!(
            live,
            json!({"status": {"conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "Theirs", "status": "True"},
            ]}}),
            "only the item this manager stopped applying goes"
        );
    }
}
