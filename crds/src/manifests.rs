//! Reading Tollgate objects (and the Secrets they use) from YAML files, for the offline
//! `render` command and `tollgate-gateway serve -f`. Unknown fields are errors, as with
//! `kubectl apply --validate=strict`, so a typo never silently drops a setting.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::ResourceExt;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{
    GROUP, LLMBudget, LLMProvider, LLMRoute, VERSION,
    catalog::PriceCatalogue,
    compile::{CompileError, Compiled, DEFAULT_NAMESPACE, Inputs, SecretIndex, compile},
    config::GatewayConfig,
};

/// Objects read from files.
#[derive(Clone, Debug, Default)]
pub struct Manifests {
    /// `LLMProvider`s.
    pub providers: Vec<LLMProvider>,
    /// `LLMRoute`s.
    pub routes: Vec<LLMRoute>,
    /// `LLMBudget`s.
    pub budgets: Vec<LLMBudget>,
    /// Secrets (values included: they feed the gateway Secret).
    pub secrets: Vec<Secret>,
    /// Documents of other kinds, skipped (`Kind namespace/name`).
    pub skipped: Vec<String>,
}

/// A file or document that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The path could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not YAML.
    #[error("{path}: not valid YAML: {message}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// One document is wrong.
    #[error("{path}: document {index} ({what}): {message}")]
    Document {
        /// The file.
        path: PathBuf,
        /// 1-based position of the document in the file.
        index: usize,
        /// `Kind namespace/name`, as far as known.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// The same object appears twice.
    #[error("{what} is defined more than once")]
    Duplicate {
        /// `Kind namespace/name`.
        what: String,
    },
}

impl Manifests {
    /// Reads every path: files, or directories (their `.yaml`, `.yml` and `.json` files,
    /// in name order, not recursing). Returns what loaded and every error.
    pub fn load(paths: &[PathBuf]) -> (Manifests, Vec<LoadError>) {
        let mut manifests = Manifests::default();
        let mut errors = Vec::new();
        for file in expand(paths, &mut errors) {
            match std::fs::read_to_string(&file) {
                Ok(text) => manifests.add_text(&file, &text, &mut errors),
                Err(source) => errors.push(LoadError::Read { path: file, source }),
            }
        }
        manifests.check_duplicates(&mut errors);
        (manifests, errors)
    }

    /// The files [`Manifests::load`] reads for `paths`, in the order it reads them
    /// (unreadable directories left out).
    pub fn files(paths: &[PathBuf]) -> Vec<PathBuf> {
        expand(paths, &mut Vec::new())
    }

    /// Adds the documents of one YAML text (as if read from `path`).
    pub fn add_text(&mut self, path: &Path, text: &str, errors: &mut Vec<LoadError>) {
        let docs: Vec<Value> = match serde_saphyr::from_multiple(text) {
            Ok(docs) => docs,
            Err(e) => {
                errors.push(LoadError::Yaml {
                    path: path.to_owned(),
                    message: e.to_string(),
                });
                return;
            }
        };
        for (i, doc) in docs.into_iter().enumerate().filter(|(_, d)| !d.is_null()) {
            if let Err(message) = self.add_document(doc.clone()) {
                errors.push(LoadError::Document {
                    path: path.to_owned(),
                    index: i + 1,
                    what: describe(&doc),
                    message,
                });
            }
        }
    }

    fn add_document(&mut self, doc: Value) -> Result<(), String> {
        let api_version = doc
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let kind = doc
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if api_version.is_empty() || kind.is_empty() {
            return Err("apiVersion and kind are required".into());
        }
        if doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err("metadata.name is required".into());
        }
        let ours = format!("{GROUP}/{VERSION}");
        match (api_version.as_str(), kind.as_str()) {
            (v, "LLMProvider") if v == ours => self.providers.push(typed(doc)?),
            (v, "LLMRoute") if v == ours => self.routes.push(typed(doc)?),
            (v, "LLMBudget") if v == ours => self.budgets.push(typed(doc)?),
            (v, _) if v.starts_with(&format!("{GROUP}/")) => {
                return Err(format!(
                    "unknown kind or version {v}/{kind}: this build reads {ours} LLMProvider, LLMRoute and LLMBudget"
                ));
            }
            ("v1", "Secret") => {
                let mut secret: Secret = serde_json::from_value(doc).map_err(|e| e.to_string())?;
                default_namespace(&mut secret);
                self.secrets.push(secret);
            }
            _ => self.skipped.push(describe(&doc)),
        }
        Ok(())
    }

    fn check_duplicates(&self, errors: &mut Vec<LoadError>) {
        let mut seen = BTreeSet::new();
        let ids = self
            .providers
            .iter()
            .map(|o| ("LLMProvider", o.namespace(), o.name_any()))
            .chain(
                self.routes
                    .iter()
                    .map(|o| ("LLMRoute", o.namespace(), o.name_any())),
            )
            .chain(
                self.budgets
                    .iter()
                    .map(|o| ("LLMBudget", o.namespace(), o.name_any())),
            )
            .chain(
                self.secrets
                    .iter()
                    .map(|o| ("Secret", o.namespace(), o.name_any())),
            );
        for (kind, ns, name) in ids {
            let ns = ns.unwrap_or_default();
            if !seen.insert((kind, ns.clone(), name.clone())) {
                errors.push(LoadError::Duplicate {
                    what: format!("{kind} {ns}/{name}"),
                });
            }
        }
    }

    /// Compiles these objects, with these Secrets, as the operator would.
    pub fn compile(&self, catalogue: &PriceCatalogue) -> Result<Compiled, CompileError> {
        let secrets = self.secret_index();
        compile(&Inputs {
            providers: &self.providers,
            routes: &self.routes,
            budgets: &self.budgets,
            secrets: &secrets,
            catalogue,
        })
    }

    /// Which Secret keys exist, for the compile function.
    pub fn secret_index(&self) -> SecretIndex {
        let mut index = SecretIndex::default();
        for s in &self.secrets {
            index.insert(
                &s.namespace().unwrap_or_default(),
                &s.name_any(),
                secret_values(s).into_keys(),
            );
        }
        index
    }

    /// The gateway Secret's data: exactly the keys `config` names, copied from the Secrets.
    pub fn gateway_secret_data(&self, config: &GatewayConfig) -> BTreeMap<String, Vec<u8>> {
        let mut sources: BTreeMap<(String, String), BTreeMap<String, Vec<u8>>> = BTreeMap::new();
        for s in &self.secrets {
            sources.insert(
                (s.namespace().unwrap_or_default(), s.name_any()),
                secret_values(s),
            );
        }
        gateway_secret_data(config, |ns, name, key| {
            sources
                .get(&(ns.to_owned(), name.to_owned()))
                .and_then(|d| d.get(key))
                .cloned()
        })
    }
}

/// The gateway Secret's data for `config`, reading each source value through `value_of`
/// (namespace, Secret name, key). Keys whose value cannot be found are left out.
pub fn gateway_secret_data(
    config: &GatewayConfig,
    value_of: impl Fn(&str, &str, &str) -> Option<Vec<u8>>,
) -> BTreeMap<String, Vec<u8>> {
    let mut data = BTreeMap::new();
    for key in config
        .providers
        .iter()
        .flat_map(|p| &p.credentials)
        .flat_map(|c| c.secret_keys())
    {
        if let Some((ns, name, source_key)) = crate::config::parse_gateway_secret_key(key)
            && let Some(value) = value_of(ns, name, source_key)
        {
            data.insert(key.to_owned(), value);
        }
    }
    data
}

/// A Secret's values, merging `stringData` over `data` as the API server does.
pub fn secret_values(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut values: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, ByteString(v))| (k.clone(), v.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        values.insert(k.clone(), v.clone().into_bytes());
    }
    values
}

fn typed<T>(doc: Value) -> Result<T, String>
where
    T: DeserializeOwned + Serialize + ResourceExt,
{
    let mut object: T = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&object).map_err(|e| e.to_string())?;
    let mut unknown = Vec::new();
    unknown_fields(&doc, &back, String::new(), &mut unknown);
    if !unknown.is_empty() {
        return Err(format!("unknown field(s): {}", unknown.join(", ")));
    }
    default_namespace(&mut object);
    Ok(object)
}

fn default_namespace<T: ResourceExt>(object: &mut T) {
    if object.namespace().is_none() {
        object.meta_mut().namespace = Some(DEFAULT_NAMESPACE.to_owned());
    }
}

/// Paths present in `raw` but absent after a typed round trip. `metadata` is left to the
/// Kubernetes types; empty values (null, `{}`, `[]`) that serialize away are not unknown.
fn unknown_fields(raw: &Value, typed: &Value, path: String, out: &mut Vec<String>) {
    match (raw, typed) {
        (Value::Object(r), Value::Object(t)) => {
            for (k, v) in r {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if p == "metadata" || p == "status" {
                    continue;
                }
                match t.get(k) {
                    Some(tv) => unknown_fields(v, tv, p, out),
                    None if is_empty(v) => {}
                    None => out.push(p),
                }
            }
        }
        (Value::Array(r), Value::Array(t)) => {
            for (i, (rv, tv)) in r.iter().zip(t).enumerate() {
                unknown_fields(rv, tv, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn describe(doc: &Value) -> String {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("?");
    let ns = doc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_NAMESPACE);
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    format!("{kind} {ns}/{name}")
}

fn expand(paths: &[PathBuf], errors: &mut Vec<LoadError>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|p| {
                            p.is_file()
                                && matches!(
                                    p.extension().and_then(|e| e.to_str()),
                                    Some("yaml" | "yml" | "json")
                                )
                        })
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(source) => errors.push(LoadError::Read {
                    path: path.clone(),
                    source,
                }),
            }
        } else {
            files.push(path.clone());
        }
    }
    files
}
