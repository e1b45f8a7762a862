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
    kinds: Vec<(Kind, jsonschema::Validator, CompiledSchema)>,
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
            kinds.push((kind, json, cel));
        }
        Ok(Self {
            cel: Validator::new(),
            kinds,
        })
    }

    /// Every schema and CEL failure of `object` (a whole object, as JSON).
    pub(crate) fn check(&self, kind: Kind, object: &Value) -> Vec<Failure> {
        let Some((_, json, cel)) = self.kinds.iter().find(|(k, _, _)| *k == kind) else {
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
}
