//! Admission-equivalent validation: the CRD's OpenAPI schema and its CEL rules, evaluated
//! here so that `render` and `serve -f` refuse exactly what `kubectl apply` would.

use kube::{
    CustomResourceExt,
    core::cel::{CompiledSchema, Validator, compile_schema},
};
use serde_json::Value;

use super::problem::Kind;
use crate::{LLMBudget, LLMProvider, LLMRoute};

/// Schema and CEL validators for the three kinds, built once per compile.
pub(crate) struct Validators {
    cel: Validator,
    kinds: Vec<(Kind, jsonschema::Validator, CompiledSchema, Value)>,
}

/// One failed check: the field path and what is wrong.
pub(crate) type Failure = (String, String);

impl Validators {
    pub(crate) fn new() -> Result<Self, String> {
        let mut kinds = Vec::with_capacity(3);
        for (kind, crd) in [
            (Kind::LLMProvider, LLMProvider::crd()),
            (Kind::LLMRoute, LLMRoute::crd()),
            (Kind::LLMBudget, LLMBudget::crd()),
        ] {
            let schema = crd
                .spec
                .versions
                .first()
                .and_then(|v| v.schema.as_ref())
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .ok_or_else(|| format!("{} CRD has no schema", kind.as_str()))?;
            let schema = serde_json::to_value(schema).map_err(|e| e.to_string())?;
            let json = jsonschema::draft4::options()
                .should_validate_formats(false)
                .build(&schema)
                .map_err(|e| format!("{} schema does not compile: {e}", kind.as_str()))?;
            let cel = compile_schema(&schema);
            kinds.push((kind, json, cel, schema));
        }
        Ok(Self {
            cel: Validator::new(),
            kinds,
        })
    }

    /// Every schema and CEL failure of `object` (a whole object, as JSON).
    pub(crate) fn check(&self, kind: Kind, object: &Value) -> Vec<Failure> {
        let Some((_, json, cel, schema)) = self.kinds.iter().find(|(k, ..)| *k == kind) else {
            return vec![(String::new(), format!("no validator for {}", kind.as_str()))];
        };
        let mut failures: Vec<Failure> = json
            .iter_errors(object)
            .map(|e| {
                (
                    pointer_to_path(&e.instance_path().to_string()),
                    e.to_string(),
                )
            })
            .collect();
        list_map_duplicates(schema, object, "", &mut failures);
        // CEL rules assume a structurally valid object, as in the API server.
        if failures.is_empty()
            && let Err(errors) = self.cel.validate_compiled(cel, object, None)
        {
            failures.extend(
                errors
                    .into_vec()
                    .into_iter()
                    .map(|e| (e.field_path.clone(), e.message.clone())),
            );
        }
        failures
    }
}

/// Entries of `x-kubernetes-list-type: map` lists whose keys repeat an earlier entry's, as
/// the API server refuses them (`Duplicate value: {"name":"m"}`).
fn list_map_duplicates(schema: &Value, value: &Value, path: &str, out: &mut Vec<Failure>) {
    match value {
        Value::Object(fields) => {
            let Some(Value::Object(properties)) = schema.get("properties") else {
                return;
            };
            for (name, child) in fields {
                if let Some(child_schema) = properties.get(name) {
                    let child_path = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}.{name}")
                    };
                    list_map_duplicates(child_schema, child, &child_path, out);
                }
            }
        }
        Value::Array(items) => {
            let Some(item_schema) = schema.get("items") else {
                return;
            };
            let keys: Vec<&str> =
                if schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
                    schema
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|k| k.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
            let mut seen = std::collections::BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                if !keys.is_empty() {
                    let key: serde_json::Map<String, Value> = keys
                        .iter()
                        .map(|k| {
                            (
                                (*k).to_owned(),
                                item.get(*k).cloned().unwrap_or(Value::Null),
                            )
                        })
                        .collect();
                    let key = Value::Object(key).to_string();
                    if !seen.insert(key.clone()) {
                        out.push((format!("{path}[{i}]"), format!("Duplicate value: {key}")));
                    }
                }
                list_map_duplicates(item_schema, item, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// `/spec/backends/0/weight` → `spec.backends[0].weight`.
pub(crate) fn pointer_to_path(pointer: &str) -> String {
    let mut path = String::new();
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            path.push('[');
            path.push_str(&segment);
            path.push(']');
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&segment);
        }
    }
    path
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn pointers_become_field_paths() {
        assert_eq!(
            pointer_to_path("/spec/backends/0/weight"),
            "spec.backends[0].weight"
        );
        assert_eq!(pointer_to_path(""), "");
        assert_eq!(pointer_to_path("/spec/a~1b"), "spec.a/b");
    }

    #[test]
    fn list_map_keys_repeated_are_refused_as_the_api_server_does() {
        let validators = Validators::new().unwrap();
        let provider = serde_json::json!({
            "apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "LLMProvider",
            "metadata": {"name": "p"},
            "spec": {"type": "mock", "models": [
                {"name": "m", "pricing": {"input": "0", "output": "0"}},
                {"name": "n", "pricing": {"input": "0", "output": "0"}},
                {"name": "m", "pricing": {"input": "1", "output": "1"}}]},
        });
        assert_eq!(
            validators.check(Kind::LLMProvider, &provider),
            vec![(
                "spec.models[2]".to_owned(),
                r#"Duplicate value: {"name":"m"}"#.to_owned()
            )]
        );
        let rule = |name: &str| serde_json::json!({"name": name, "match": {"hasTools": true}, "backends": [{"providerRef": {"name": "p"}, "model": "a"}]});
        let route = serde_json::json!({
            "apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "LLMRoute",
            "metadata": {"name": "r"},
            "spec": {"model": "chat", "backends": [{"providerRef": {"name": "p"}, "model": "a"}],
                     "rules": [rule("a"), rule("a")]},
        });
        assert_eq!(
            validators.check(Kind::LLMRoute, &route),
            vec![(
                "spec.rules[1]".to_owned(),
                r#"Duplicate value: {"name":"a"}"#.to_owned()
            )]
        );
    }
}
