//! The one compile function: CR objects (+ which Secret keys exist) → a [`GatewayConfig`]
//! and a list of per-object [`Problem`]s. The operator's controller and the offline
//! `render` command both call [`compile`]; it does no I/O and reads no clock.
//!
//! What a problem does to serving (documented in `docs/api.md`):
//! - an `Accepted` problem (invalid, unsupported, conflicting, unpriced) leaves the whole
//!   object out of the config;
//! - a `ResolvedRefs` problem leaves out only what it names: one credential of a provider,
//!   one backend of a route. A route keeps serving with its other backends, and a backend
//!   list that loses every entry answers 503 instead of silently re-routing.

mod budget;
mod problem;
mod provider;
mod route;
mod unsupported;
mod validate;

use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;
use serde::Serialize;

pub use problem::{Kind, ObjectRef, Problem, Reason};

use crate::{
    LLMBudget, LLMProvider, LLMRoute,
    catalog::PriceCatalogue,
    config::{GatewayConfig, Source},
};

/// The namespace given to objects that have none (offline manifests), as `kubectl` does.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Which keys exist in which Secrets (names only: compile never sees secret values), and
/// which namespaces credentials may not be copied from.
#[derive(Clone, Debug, Default)]
pub struct SecretIndex {
    secrets: BTreeMap<(String, String), BTreeSet<String>>,
    forbidden_namespaces: BTreeSet<String>,
}

/// What a Secret reference resolves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretLookup<'a> {
    /// The Secret exists with these keys.
    Found(&'a BTreeSet<String>),
    /// No such Secret.
    NotFound,
    /// Credentials may not be copied from the Secret's namespace.
    NotPermitted,
}

impl SecretIndex {
    /// Records that Secret `namespace/name` exists with `keys`.
    pub fn insert(&mut self, namespace: &str, name: &str, keys: impl IntoIterator<Item = String>) {
        self.secrets
            .entry((namespace.to_owned(), name.to_owned()))
            .or_default()
            .extend(keys);
    }

    /// The keys of Secret `namespace/name`, if it exists.
    pub fn keys(&self, namespace: &str, name: &str) -> Option<&BTreeSet<String>> {
        self.secrets.get(&(namespace.to_owned(), name.to_owned()))
    }

    /// Marks `namespace` as one whose Secrets may not be copied into the gateway Secret
    /// (the operator's cross-namespace policy); references into it report `RefNotPermitted`.
    pub fn forbid_namespace(&mut self, namespace: &str) {
        self.forbidden_namespaces.insert(namespace.to_owned());
    }

    /// Resolves a reference to Secret `namespace/name`.
    pub fn lookup(&self, namespace: &str, name: &str) -> SecretLookup<'_> {
        if self.forbidden_namespaces.contains(namespace) {
            return SecretLookup::NotPermitted;
        }
        match self.keys(namespace, name) {
            Some(keys) => SecretLookup::Found(keys),
            None => SecretLookup::NotFound,
        }
    }

    /// Every Secret (namespace, name) recorded.
    pub fn secrets(&self) -> impl Iterator<Item = (&str, &str)> {
        self.secrets.keys().map(|(ns, n)| (ns.as_str(), n.as_str()))
    }
}

/// Everything compile reads.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// All `LLMProvider`s in scope.
    pub providers: &'a [LLMProvider],
    /// All `LLMRoute`s in scope.
    pub routes: &'a [LLMRoute],
    /// All `LLMBudget`s in scope.
    pub budgets: &'a [LLMBudget],
    /// Secret key names that exist.
    pub secrets: &'a SecretIndex,
    /// Prices for models whose spec gives none.
    pub catalogue: &'a PriceCatalogue,
}

/// The config and the problems found on the way.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Compiled {
    /// The config to serve; contains only what is usable.
    pub config: GatewayConfig,
    /// Problems, sorted by object then field.
    pub problems: Vec<Problem>,
}

impl Compiled {
    /// The problems of one object.
    pub fn problems_of<'a>(
        &'a self,
        object: &'a ObjectRef,
    ) -> impl Iterator<Item = &'a Problem> + 'a {
        self.problems.iter().filter(move |p| &p.object == object)
    }
}

/// Failures of the compiler itself, not of the objects.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The CRD schemas generated from our own types could not be turned into validators.
    #[error("internal error building validators: {0}")]
    Validators(String),
}

/// Compiles the objects into a config. Deterministic: the same inputs, in any order, give
/// the same output.
pub fn compile(inputs: &Inputs<'_>) -> Result<Compiled, CompileError> {
    compile_leaving_out(inputs, &BTreeMap::new())
}

/// Like [`compile`], but the providers and routes in `left_out` are reported with
/// [`Reason::ConfigTooLarge`] and the message given, and left out of the config as a
/// conflicting route is (the caller picks them: the newest objects, when the whole config
/// would not fit in its ConfigMap). Routes using a left-out provider lose those backends.
pub fn compile_leaving_out(
    inputs: &Inputs<'_>,
    left_out: &BTreeMap<ObjectRef, String>,
) -> Result<Compiled, CompileError> {
    let validators = validate::Validators::new().map_err(CompileError::Validators)?;
    let mut cx = Context {
        validators,
        problems: Vec::new(),
        sources: Vec::new(),
        left_out: left_out.clone(),
    };

    let providers = provider::compile_all(&mut cx, inputs);
    let routes = route::compile_all(&mut cx, inputs, &providers);
    let budgets = budget::compile_all(&mut cx, inputs, &routes);

    let mut config = GatewayConfig::empty();
    config.providers = providers.into_values().filter_map(Result::ok).collect();
    config.routes = routes.into_values().collect();
    config.routes.sort_by(|a, b| a.model.cmp(&b.model));
    config.budgets = budgets;
    cx.sources.sort();
    config.sources = cx.sources;
    cx.problems.sort();
    cx.problems.dedup();
    Ok(Compiled {
        config,
        problems: cx.problems,
    })
}

/// State shared by the per-kind compile steps.
pub(crate) struct Context {
    validators: validate::Validators,
    problems: Vec<Problem>,
    sources: Vec<Source>,
    left_out: BTreeMap<ObjectRef, String>,
}

impl Context {
    /// Whether `object` is to be left out for size; if so, reports it.
    fn left_out(&mut self, object: &ObjectRef) -> bool {
        let Some(message) = self.left_out.get(object) else {
            return false;
        };
        let message = message.clone();
        self.problem(object, "", Reason::ConfigTooLarge, message);
        true
    }

    fn problem(
        &mut self,
        object: &ObjectRef,
        field: impl Into<String>,
        reason: Reason,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem {
            object: object.clone(),
            field: field.into(),
            reason,
            message: message.into(),
        });
    }

    /// Schema, CEL and not-yet-built checks. Returns whether the object may be compiled.
    fn admit<T: Serialize>(
        &mut self,
        object: &ObjectRef,
        value: &T,
        unsupported: Vec<(&'static str, String)>,
    ) -> bool {
        let json = match serde_json::to_value(value) {
            Ok(json) => json,
            Err(e) => {
                self.problem(
                    object,
                    "",
                    Reason::Invalid,
                    format!("cannot be represented as JSON: {e}"),
                );
                return false;
            }
        };
        let failures = self.validators.check(object.kind, &json);
        let ok = failures.is_empty() && unsupported.is_empty();
        for (field, message) in failures {
            self.problem(object, field, Reason::Invalid, message);
        }
        for (field, message) in unsupported {
            self.problem(object, field, Reason::Unsupported, message);
        }
        ok
    }

    fn source(&mut self, object: &ObjectRef, generation: Option<i64>) {
        self.sources.push(Source {
            kind: object.kind.as_str().to_owned(),
            id: object.id(),
            generation: generation.unwrap_or(0),
        });
    }
}

/// The object reference of any of our kinds.
pub fn object_ref<K: ResourceExt>(kind: Kind, object: &K) -> ObjectRef {
    ObjectRef {
        kind,
        namespace: object
            .namespace()
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
        name: object.name_any(),
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
