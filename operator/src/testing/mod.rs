//! An in-memory Kubernetes API server for tests, served as a tower `Service` behind a real
//! `kube::Client`.
//!
//! No cluster exists where the operator's tests run, and `tower-test` mocks only script
//! single request/response pairs. The controllers need a server that keeps state and
//! streams watches, so this module emulates the part of the API server they use: CRUD,
//! list and watch with selectors, merge patch, a simplified server-side apply, the status
//! subresource, generation, finalizers, owner-reference cascades and 410 on stale watches.
//!
//! Server-side apply, as modelled: the applied fields merge into the live object and are
//! recorded per manager (and per subresource: an apply on `/status` has its own entry); a
//! field a manager stops applying is removed; lists are replaced whole, except lists a
//! CRD's schema declares `x-kubernetes-list-type: map` (reached through object properties,
//! e.g. `status.conditions`), whose items merge by their keys and are owned item by item.
//!
//! What it does not model (a test relying on these needs a real API server): conflicts
//! between managers (no 409 on apply, `force` is implied), fields owned by several
//! managers at once, list-maps nested in other lists' items, `set` lists, strategic merge
//! patch (merge patch stands in for it), OpenAPI validation, defaulting and pruning, CEL
//! rules, admission, pagination (`limit`/`continue` are ignored: a list returns
//! everything), and `resourceVersionMatch`.
//!
//! ```ignore
//! let fake = FakeApi::new();
//! let client = fake.client();
//! // run controllers against `client`, then:
//! assert_eq!(fake.write_count(), 0);
//! ```

mod error;
mod merge;
mod request;
mod selector;
mod service;
mod store;
mod watch;

#[cfg(test)]
mod tests;

use std::{
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use http::Method;
use kube::{CustomResourceExt, Resource};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

pub use error::ApiError;
pub use merge::ListMap;
use service::FakeService;
use store::{ObjKey, Store, Write, WriteMode};

/// How the fake serves one kind: its identity, URL plural, scope, and whether it has a
/// status subresource (then main-resource writes keep the stored status and `/status`
/// writes change only status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindInfo {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    pub status_subresource: bool,
    /// Lists server-side apply merges by key (from the CRD schema; none for built-ins).
    pub list_maps: Vec<ListMap>,
}

impl KindInfo {
    /// A kind from a Rust type (built-in or derived), with the status flag given explicitly
    /// because `Resource` does not say.
    pub fn of<K>(status_subresource: bool) -> Self
    where
        K: Resource<DynamicType = ()>,
        K::Scope: Scope,
    {
        Self {
            group: K::group(&()).into_owned(),
            version: K::version(&()).into_owned(),
            kind: K::kind(&()).into_owned(),
            plural: K::plural(&()).into_owned(),
            namespaced: <K::Scope as Scope>::NAMESPACED,
            status_subresource,
            list_maps: Vec::new(),
        }
    }

    /// A kind from a `#[derive(CustomResource)]` type, reading scope and status from its CRD.
    pub fn of_crd<K: CustomResourceExt>() -> Self {
        let crd = K::crd();
        let ar = K::api_resource();
        let has_status = crd
            .spec
            .versions
            .iter()
            .find(|v| v.name == ar.version)
            .and_then(|v| v.subresources.as_ref())
            .is_some_and(|s| s.status.is_some());
        let list_maps = crd
            .spec
            .versions
            .iter()
            .find(|v| v.name == ar.version)
            .and_then(|v| v.schema.as_ref()?.open_api_v3_schema.as_ref())
            .and_then(|s| serde_json::to_value(s).ok())
            .map(|schema| list_maps_of(&schema))
            .unwrap_or_default();
        Self {
            group: ar.group,
            version: ar.version,
            kind: ar.kind,
            plural: ar.plural,
            namespaced: crd.spec.scope == "Namespaced",
            status_subresource: has_status,
            list_maps,
        }
    }

    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// The `x-kubernetes-list-type: map` lists of a schema reached through object properties.
fn list_maps_of(schema: &Value) -> Vec<ListMap> {
    fn walk(schema: &Value, path: &mut Vec<String>, out: &mut Vec<ListMap>) {
        if schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
            let keys = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| {
                    k.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            out.push(ListMap {
                path: path.clone(),
                keys,
            });
        }
        if let Some(Value::Object(properties)) = schema.get("properties") {
            for (name, child) in properties {
                path.push(name.clone());
                walk(child, path, out);
                path.pop();
            }
        }
    }
    let mut out = Vec::new();
    walk(schema, &mut Vec::new(), &mut out);
    out
}

/// Whether a `Resource::Scope` is namespaced; implemented for k8s-openapi's two scopes.
pub trait Scope {
    const NAMESPACED: bool;
}

impl Scope for k8s_openapi::NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl Scope for k8s_openapi::ClusterResourceScope {
    const NAMESPACED: bool = false;
}

/// One request as the fake received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
}

impl RecordedRequest {
    fn is_write(&self) -> bool {
        matches!(
            self.method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        )
    }
}

/// An injected failure: the next `remaining` requests with this method and path get `error`.
struct Failure {
    method: Method,
    path: String,
    remaining: usize,
    error: ApiError,
}

impl Failure {
    /// Exact path match, or prefix match when the pattern ends in `*`.
    fn matches(&self, req: &RecordedRequest) -> bool {
        self.method == req.method
            && match self.path.strip_suffix('*') {
                Some(prefix) => req.path.starts_with(prefix),
                None => req.path == self.path,
            }
    }
}

pub(crate) struct State {
    pub(crate) store: Store,
    writes: Vec<RecordedRequest>,
    /// Every request (reads included), for checking RBAC against what clients did.
    requests: Vec<RecordedRequest>,
    failures: Vec<Failure>,
}

/// Shared by the handle and every service clone.
pub(crate) struct Shared {
    state: Mutex<State>,
    kinds: Vec<KindInfo>,
    pub(crate) max_watch: Duration,
    default_namespace: String,
}

impl Shared {
    /// Poisoning only means a test thread panicked; the state is still usable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn kind_for(&self, group: &str, version: &str, plural: &str) -> Option<&KindInfo> {
        self.kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.plural == plural)
    }

    /// Logs writes, then consumes a matching injected failure if there is one.
    pub(crate) fn record_and_check(&self, req: RecordedRequest) -> Option<ApiError> {
        let mut state = self.lock();
        let failure = state
            .failures
            .iter_mut()
            .find(|f| f.remaining > 0 && f.matches(&req))
            .map(|f| {
                f.remaining -= 1;
                f.error.clone()
            });
        state.failures.retain(|f| f.remaining > 0);
        if req.is_write() {
            state.writes.push(req.clone());
        }
        state.requests.push(req);
        failure
    }
}

/// Configures a [`FakeApi`]: kinds, history size and watch timeout cap.
pub struct FakeApiBuilder {
    kinds: Vec<KindInfo>,
    history_limit: usize,
    max_watch: Duration,
    default_namespace: String,
}

impl FakeApiBuilder {
    /// Serves one more kind (a later registration of the same resource replaces it).
    pub fn kind(mut self, kind: KindInfo) -> Self {
        self.kinds.retain(|k| {
            (k.group.as_str(), k.version.as_str(), k.plural.as_str())
                != (
                    kind.group.as_str(),
                    kind.version.as_str(),
                    kind.plural.as_str(),
                )
        });
        self.kinds.push(kind);
        self
    }

    /// Serves a `#[derive(CustomResource)]` kind.
    pub fn crd<K: CustomResourceExt>(self) -> Self {
        self.kind(KindInfo::of_crd::<K>())
    }

    /// How many events are kept for watch resumption (default 1000).
    pub fn history_limit(mut self, events: usize) -> Self {
        self.history_limit = events;
        self
    }

    /// The longest a watch stays open before the server ends it (default 30 s); requests
    /// asking for longer are cut to this, so watchers re-watch during a test.
    pub fn max_watch_timeout(mut self, timeout: Duration) -> Self {
        self.max_watch = timeout;
        self
    }

    /// The namespace `kube::Client::default_namespace` reports (default `default`).
    pub fn default_namespace(mut self, ns: &str) -> Self {
        ns.clone_into(&mut self.default_namespace);
        self
    }

    pub fn build(self) -> FakeApi {
        let store = Store::new(self.history_limit, self.history_limit.max(1024));
        FakeApi {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    store,
                    writes: Vec::new(),
                    requests: Vec::new(),
                    failures: Vec::new(),
                }),
                kinds: self.kinds,
                max_watch: self.max_watch,
                default_namespace: self.default_namespace,
            }),
        }
    }
}

/// The in-memory API server. Cloning shares the same state.
#[derive(Clone)]
pub struct FakeApi {
    shared: Arc<Shared>,
}

impl Default for FakeApi {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeApi {
    /// A server with the built-in kinds the operator touches and Tollgate's CRDs.
    pub fn new() -> Self {
        Self::builder()
            .crd::<tollgate_crds::LLMProvider>()
            .crd::<tollgate_crds::LLMRoute>()
            .crd::<tollgate_crds::LLMBudget>()
            .build()
    }

    /// A builder with only the built-in kinds: ConfigMap, Secret, Namespace, Service,
    /// ServiceAccount, Pod, core and events.k8s.io Events, Lease, Deployment, PodDisruptionBudget and HorizontalPodAutoscaler.
    pub fn builder() -> FakeApiBuilder {
        use k8s_openapi::api::{apps, coordination, core, events};
        let builder = FakeApiBuilder {
            kinds: Vec::new(),
            history_limit: 1000,
            max_watch: Duration::from_secs(30),
            default_namespace: "default".to_owned(),
        };
        builder
            .kind(KindInfo::of::<core::v1::ConfigMap>(false))
            .kind(KindInfo::of::<core::v1::Secret>(false))
            .kind(KindInfo::of::<core::v1::Namespace>(true))
            .kind(KindInfo::of::<core::v1::Service>(true))
            .kind(KindInfo::of::<core::v1::ServiceAccount>(false))
            .kind(KindInfo::of::<core::v1::Pod>(true))
            .kind(KindInfo::of::<core::v1::Event>(false))
            .kind(KindInfo::of::<events::v1::Event>(false))
            .kind(KindInfo::of::<coordination::v1::Lease>(false))
            .kind(KindInfo::of::<apps::v1::Deployment>(true))
            .kind(KindInfo::of::<
                k8s_openapi::api::policy::v1::PodDisruptionBudget,
            >(true))
            .kind(KindInfo::of::<
                k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler,
            >(true))
    }

    /// A `kube::Client` backed by this server.
    pub fn client(&self) -> kube::Client {
        let service = FakeService {
            shared: self.shared.clone(),
        };
        kube::Client::new(service, self.shared.default_namespace.as_str())
    }

    /// A client builder over this server, for clients with extra layers.
    pub(crate) fn client_builder(&self) -> kube::client::ClientBuilder<FakeService> {
        let service = FakeService {
            shared: self.shared.clone(),
        };
        kube::client::ClientBuilder::new(service, self.shared.default_namespace.as_str())
    }

    /// Stores an object directly (create or replace, status included), as if it had been
    /// there already; not counted as a write request.
    pub fn seed<K: Resource<DynamicType = ()> + Serialize>(
        &self,
        obj: &K,
    ) -> Result<Value, ApiError> {
        let mut value = serde_json::to_value(obj)
            .map_err(|e| ApiError::bad_request(format!("cannot serialize the object: {e}")))?;
        if let Some(o) = value.as_object_mut() {
            o.insert("apiVersion".into(), K::api_version(&()).into_owned().into());
            o.insert("kind".into(), K::kind(&()).into_owned().into());
        }
        self.seed_json(value)
    }

    /// Like [`FakeApi::seed`] for a JSON object carrying `apiVersion` and `kind`.
    pub fn seed_json(&self, value: Value) -> Result<Value, ApiError> {
        let api_version = value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind_name = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = self
            .shared
            .kinds
            .iter()
            .find(|k| k.api_version() == api_version && k.kind == kind_name)
            .ok_or_else(|| ApiError::no_route(&format!("{api_version} {kind_name}")))?;
        let ns = value.pointer("/metadata/namespace").and_then(Value::as_str);
        let ns = kind
            .namespaced
            .then(|| ns.unwrap_or(&self.shared.default_namespace).to_owned());
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid("metadata.name: Required value"))?
            .to_owned();
        let mut state = self.shared.lock();
        let store = &mut state.store;
        let key = ObjKey::new(kind, ns.as_deref(), &name);
        let write = |body: Value, status: bool| Write {
            kind,
            namespace: ns.as_deref(),
            name: &name,
            body,
            mode: WriteMode::Replace,
            status,
            field_manager: None,
            dry_run: false,
        };
        let mut body = value.clone();
        if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
        let mut out = if store.get(&key).is_ok() {
            store.write(write(body.clone(), false))?
        } else {
            store.create(write(body.clone(), false))?
        };
        if kind.status_subresource && value.get("status").is_some() {
            out = store.write(write(body, true))?;
        }
        Ok(out)
    }

    /// The stored object, decoded; `None` when absent or not decodable as `K`.
    pub fn get<K>(&self, namespace: Option<&str>, name: &str) -> Option<K>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned,
    {
        let value = self.get_json::<K>(namespace, name)?;
        serde_json::from_value(value).ok()
    }

    /// The stored object as JSON.
    pub fn get_json<K: Resource<DynamicType = ()>>(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let kind = self.kind_of::<K>()?;
        let key = ObjKey::new(kind, namespace, name);
        self.shared.lock().store.get(&key).ok()
    }

    /// All stored objects of `K` (in one namespace, or all), in name order.
    pub fn list<K>(&self, namespace: Option<&str>) -> Vec<K>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned,
    {
        let Some(kind) = self.kind_of::<K>() else {
            return Vec::new();
        };
        let state = self.shared.lock();
        state
            .store
            .list(kind, namespace)
            .filter_map(|v| serde_json::from_value(v.clone()).ok())
            .collect()
    }

    /// Deletes directly (finalizers and cascades apply); not counted as a write request.
    pub fn remove<K: Resource<DynamicType = ()>>(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let kind = self
            .kind_of::<K>()
            .ok_or_else(|| ApiError::no_route(&K::plural(&())))?;
        let key = ObjKey::new(kind, namespace, name);
        self.shared.lock().store.delete(&key, false)
    }

    /// How many write requests (POST, PUT, PATCH, DELETE) clients sent, injected failures
    /// included.
    pub fn write_count(&self) -> usize {
        self.shared.lock().writes.len()
    }

    /// The write requests clients sent, oldest first; handy in assertion messages.
    pub fn writes(&self) -> Vec<RecordedRequest> {
        self.shared.lock().writes.clone()
    }

    /// Every request clients sent (reads, lists and watches included), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Forgets the recorded writes, e.g. once a controller has settled.
    pub fn reset_writes(&self) {
        self.shared.lock().writes.clear();
    }

    /// Makes the next `times` requests with `method` to `path` (the URL path without query;
    /// a trailing `*` matches a prefix) fail with `error`.
    pub fn fail_next(&self, method: Method, path: &str, times: usize, error: ApiError) {
        self.shared.lock().failures.push(Failure {
            method,
            path: path.to_owned(),
            remaining: times,
            error,
        });
    }

    /// The current (newest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().store.rv
    }

    /// Drops the event history: watches resuming from any earlier version get 410 Gone.
    pub fn compact(&self) {
        self.shared.lock().store.compact();
    }

    fn kind_of<K: Resource<DynamicType = ()>>(&self) -> Option<&KindInfo> {
        self.shared
            .kind_for(&K::group(&()), &K::version(&()), &K::plural(&()))
    }
}
