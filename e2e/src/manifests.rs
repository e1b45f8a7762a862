//! Reading multi-document YAML manifests and server-side applying them into a namespace.

use std::path::{Path, PathBuf};

use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, Patch, PatchParams},
    core::{GroupVersionKind, TypeMeta},
    discovery::{self, Scope},
};
use serde::de::DeserializeOwned;
use tollgate_crds::{GROUP, LLMBudget, LLMProvider, LLMRoute, VERSION};

use crate::{Error, FIELD_MANAGER};

/// One document of a manifest file.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// Where it came from: `file.yaml#2` is the second non-empty document of `file.yaml`.
    pub source: String,
    /// The object, as written.
    pub object: DynamicObject,
}

/// `config/samples/` of this repository.
pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("config")
        .join("samples")
}

/// Every document of every `*.yaml` / `*.yml` file directly in `dir`, files in name order.
/// Empty documents are skipped; a directory without any document is an error.
pub fn read_manifests(dir: &Path) -> Result<Vec<Manifest>, Error> {
    let read_err = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::ReadManifests { path, source }
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err(dir))? {
        let path = entry.map_err(read_err(dir))?.path();
        let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if is_yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();

    let mut manifests = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(read_err(&path))?;
        let documents: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(&text).map_err(|source| Error::ParseManifest {
                path: path.clone(),
                source: Box::new(source),
            })?;
        let file = path.file_name().map_or_else(
            || path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        for (index, document) in documents.into_iter().enumerate() {
            let source = format!("{file}#{}", index + 1);
            let object = to_object(&source, document)?;
            manifests.push(Manifest { source, object });
        }
    }
    if manifests.is_empty() {
        return Err(Error::NoManifests(dir.to_owned()));
    }
    Ok(manifests)
}

fn to_object(source: &str, document: serde_json::Value) -> Result<DynamicObject, Error> {
    let not_an_object = |why: String| Error::NotAnObject {
        what: source.to_owned(),
        why,
    };
    if !document.is_object() {
        return Err(not_an_object("the document is not a mapping".to_owned()));
    }
    let object: DynamicObject =
        serde_json::from_value(document).map_err(|e| not_an_object(e.to_string()))?;
    match &object.types {
        Some(types) if !types.api_version.is_empty() && !types.kind.is_empty() => {}
        _ => return Err(not_an_object("apiVersion and kind are required".to_owned())),
    }
    if object.metadata.name.as_deref().is_none_or(str::is_empty) {
        return Err(not_an_object(
            "metadata.name is required (generateName cannot be applied)".to_owned(),
        ));
    }
    Ok(object)
}

/// Server-side applies `object` into `namespace` (overriding any namespace it names) with
/// strict field validation, so unknown or misspelt fields are refused rather than pruned.
/// Returns the object as stored.
pub async fn apply_manifest(
    client: &Client,
    namespace: &str,
    object: &DynamicObject,
) -> Result<DynamicObject, Error> {
    let types = object.types.clone().unwrap_or_default();
    let name = object.metadata.name.clone().unwrap_or_default();
    let what = format!("{}/{name}", types.kind);
    let resource = resolve(client, &what, &types).await?;
    let mut object = object.clone();
    object.metadata.namespace = Some(namespace.to_owned());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let params = PatchParams::apply(FIELD_MANAGER).validation_strict();
    api.patch(&name, &params, &Patch::Apply(&object))
        .await
        .map_err(|source| Error::Apply { what, source })
}

/// Tollgate's own kinds resolve from the Rust types (no discovery lag right after the CRDs
/// are installed); anything else (Secrets, ConfigMaps…) through API discovery.
async fn resolve(client: &Client, what: &str, types: &TypeMeta) -> Result<ApiResource, Error> {
    if let Some(resource) = tollgate_resource(types) {
        return Ok(resource);
    }
    let gvk = GroupVersionKind::try_from(types).map_err(|e| Error::NotAnObject {
        what: what.to_owned(),
        why: e.to_string(),
    })?;
    let (resource, capabilities) =
        discovery::pinned_kind(client, &gvk)
            .await
            .map_err(|source| Error::Discover {
                what: format!("{what} ({})", types.api_version),
                source,
            })?;
    if capabilities.scope == Scope::Cluster {
        return Err(Error::ClusterScoped {
            what: what.to_owned(),
            kind: types.kind.clone(),
        });
    }
    Ok(resource)
}

fn tollgate_resource(types: &TypeMeta) -> Option<ApiResource> {
    if types.api_version != format!("{GROUP}/{VERSION}") {
        return None;
    }
    match types.kind.as_str() {
        "LLMProvider" => Some(ApiResource::erase::<LLMProvider>(&())),
        "LLMRoute" => Some(ApiResource::erase::<LLMRoute>(&())),
        "LLMBudget" => Some(ApiResource::erase::<LLMBudget>(&())),
        _ => None,
    }
}

/// For a Tollgate object, checks that what the API server stored reads back as the Rust type
/// the operator and gateway use (schema and types cannot drift apart unnoticed). Returns
/// whether `object` was a Tollgate kind; other kinds are not checked.
pub fn check_typed(object: &DynamicObject) -> Result<bool, Error> {
    let Some(types) = object.types.as_ref() else {
        return Ok(false);
    };
    if tollgate_resource(types).is_none() {
        return Ok(false);
    }
    let what = format!(
        "{}/{}",
        types.kind,
        object.metadata.name.as_deref().unwrap_or_default()
    );
    let typed = |source| Error::Typed {
        what: what.clone(),
        source,
    };
    let value = serde_json::to_value(object).map_err(typed)?;
    match types.kind.as_str() {
        "LLMProvider" => parse::<LLMProvider>(value).map_err(typed)?,
        "LLMRoute" => parse::<LLMRoute>(value).map_err(typed)?,
        _ => parse::<LLMBudget>(value).map_err(typed)?,
    }
    Ok(true)
}

fn parse<K: DeserializeOwned>(value: serde_json::Value) -> Result<(), serde_json::Error> {
    serde_json::from_value::<K>(value).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn reads_every_document_of_every_yaml_file_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "b.yaml",
            "# a comment before the first separator\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: key\nstringData:\n  k: v\n---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMProvider\nmetadata:\n  name: mock\nspec:\n  type: mock\n  models:\n    - name: echo\n",
        );
        write(
            dir.path(),
            "a.yml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\n",
        );
        write(dir.path(), "notes.txt", "not a manifest");

        let manifests = read_manifests(dir.path()).unwrap();
        let sources: Vec<_> = manifests.iter().map(|m| m.source.as_str()).collect();
        assert_eq!(sources, ["a.yml#1", "b.yaml#1", "b.yaml#2"]);
        let provider = &manifests[2].object;
        assert_eq!(provider.types.as_ref().unwrap().kind, "LLMProvider");
        assert_eq!(provider.data["spec"]["models"][0]["name"], "echo");
        assert!(tollgate_resource(provider.types.as_ref().unwrap()).is_some());
        assert!(tollgate_resource(manifests[1].object.types.as_ref().unwrap()).is_none());
    }

    #[test]
    fn a_missing_or_empty_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(matches!(
            read_manifests(&missing),
            Err(Error::ReadManifests { .. })
        ));
        write(dir.path(), "empty.yaml", "---\n# nothing\n");
        assert!(matches!(
            read_manifests(dir.path()),
            Err(Error::NoManifests(_))
        ));
    }

    #[test]
    fn a_document_without_kind_or_name_is_refused_with_its_source() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "x.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  generateName: k-\n",
        );
        let err = read_manifests(dir.path()).unwrap_err().to_string();
        assert!(
            err.starts_with("x.yaml#1: not a Kubernetes object: metadata.name"),
            "{err}"
        );

        write(dir.path(), "x.yaml", "metadata:\n  name: k\n");
        let err = read_manifests(dir.path()).unwrap_err().to_string();
        assert!(err.contains("apiVersion and kind are required"), "{err}");
    }

    #[test]
    fn stored_tollgate_objects_must_read_back_as_their_rust_type() {
        let good: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "LLMBudget",
            "metadata": {"name": "b"},
            "spec": {"limit": {"amount": "10", "period": "daily"}, "action": "reject"},
        }))
        .unwrap();
        assert!(check_typed(&good).unwrap());

        let mut bad = good.clone();
        bad.data["spec"]["action"] = "explode".into();
        let err = check_typed(&bad).unwrap_err().to_string();
        assert!(
            err.starts_with("LLMBudget/b: stored object does not deserialize"),
            "{err}"
        );

        let secret: DynamicObject = serde_json::from_value(
            serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}),
        )
        .unwrap();
        assert!(!check_typed(&secret).unwrap());
    }
}
