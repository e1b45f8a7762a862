//! The real controllers against the in-memory API server (`crate::testing`), with fake
//! gateway pods answering `/config/status` over loopback HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    core::v1::{ConfigMap, Secret},
    events::v1::Event,
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
    runtime::events::Reporter,
};
use serde_json::{Value, json};
use tollgate_crds::{
    LLMBudget, LLMProvider, LLMRoute,
    catalog::PriceCatalogue,
    conditions::{Condition, ConditionStatus},
    config::CONFIG_FILE,
    manifests::Manifests,
};

use super::{Operator, context::Context, controller::Tracked};
use crate::{
    metrics::Metrics,
    render::{self, GatewayObjects},
    settings::{ApiLimits, SecretPolicy, Settings, Timings},
    testing::FakeApi,
};

mod blast_radius;
mod own_objects;
mod rbac;
mod scale;
mod status_apply;
mod unreadable;
mod wakeups;
mod with_gateway;

const GATEWAY_NS: &str = "tollgate-system";
const POD_SELECTOR: &str = "app.kubernetes.io/component=gateway";

/// The operator running against `fake`; stopped on drop.
struct Harness {
    fake: FakeApi,
    ctx: Arc<Context>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn settings(secrets: SecretPolicy) -> Settings {
    Settings {
        watch_namespaces: Vec::new(),
        operator_namespace: GATEWAY_NS.into(),
        gateway: GatewayObjects::default(),
        pod_selector: POD_SELECTOR.into(),
        admin_port: 9,
        secrets,
        timings: Timings {
            debounce: Duration::from_millis(10),
            resync: Duration::from_secs(300),
            secret_sync_grace: Duration::from_secs(3),
            poll_fast: Duration::from_millis(50),
            poll_slow: Duration::from_millis(200),
            poll_timeout: Duration::from_millis(500),
        },
        deployment: None,
        limits: ApiLimits::default(),
    }
}

impl Harness {
    fn start(fake: &FakeApi, secrets: SecretPolicy) -> Self {
        Self::start_with(fake, settings(secrets))
    }

    fn start_with(fake: &FakeApi, settings: Settings) -> Self {
        // Logs show with `RUST_LOG=tollgate_operator=debug cargo test -- --nocapture`.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let reporter = Reporter {
            controller: "tollgate-operator".into(),
            instance: Some("test".into()),
        };
        let op =
            Operator::new(fake.client(), settings, Arc::new(Metrics::new()), reporter).unwrap();
        let ctx = op.context.clone();
        let task = tokio::spawn(op.run(std::future::pending()));
        Self {
            fake: fake.clone(),
            ctx,
            task,
        }
    }

    fn config_map(&self) -> Option<ConfigMap> {
        self.fake
            .get::<ConfigMap>(Some(GATEWAY_NS), "tollgate-gateway-config")
    }

    fn config(&self) -> Option<Value> {
        let cm = self.config_map()?;
        serde_json::from_str(&cm.data?[CONFIG_FILE]).ok()
    }

    fn gateway_secret(&self) -> Option<std::collections::BTreeMap<String, Vec<u8>>> {
        let s = self
            .fake
            .get::<Secret>(Some(GATEWAY_NS), "tollgate-gateway-keys")?;
        Some(
            s.data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
        )
    }

    fn condition<K: Tracked>(&self, ns: &str, name: &str, type_: &str) -> Option<Condition> {
        let obj = self.fake.get::<K>(Some(ns), name)?;
        obj.conditions().iter().find(|c| c.type_ == type_).cloned()
    }

    /// Waits until `K ns/name` has condition `type_` with `status` and `reason`.
    async fn wait_condition<K: Tracked>(
        &self,
        ns: &str,
        name: &str,
        type_: &str,
        status: ConditionStatus,
        reason: &str,
    ) -> Condition {
        let what = format!(
            "{} {ns}/{name} {type_}={status:?}/{reason}",
            K::KIND.as_str()
        );
        eventually(&what, || {
            self.condition::<K>(ns, name, type_)
                .filter(|c| c.status == status && c.reason == reason)
        })
        .await
    }

    /// Waits for a Warning Event with `reason` on the object named `name` in `ns`.
    async fn wait_warning(&self, ns: &str, name: &str, reason: &str) -> Event {
        eventually(&format!("a Warning Event {reason} on {ns}/{name}"), || {
            self.events_for(ns, name).into_iter().find(|e| {
                e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some(reason)
            })
        })
        .await
    }

    /// Sets a route's aliases, as `kubectl edit` would (a new generation).
    async fn set_aliases(&self, ns: &str, route: &str, aliases: &[&str]) {
        let routes: Api<LLMRoute> = Api::namespaced(self.fake.client(), ns);
        routes
            .patch(
                route,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"aliases": aliases}})),
            )
            .await
            .unwrap();
    }

    fn events_for(&self, ns: &str, name: &str) -> Vec<Event> {
        self.fake
            .list::<Event>(Some(ns))
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect()
    }

    /// Waits for the controllers to go quiet: no write for `quiet`.
    async fn settle(&self, quiet: Duration) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = self.fake.write_count();
        let mut since = Instant::now();
        while since.elapsed() < quiet {
            assert!(Instant::now() < deadline, "the operator never went quiet");
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = self.fake.write_count();
            if now != last {
                last = now;
                since = Instant::now();
            }
        }
    }
}

async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Stores every document of a YAML text, as `kubectl apply` would create them.
fn apply_yaml(fake: &FakeApi, text: &str) {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).unwrap();
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        fake.seed_json(doc).unwrap();
    }
}

fn sample(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config/samples")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

const OPENAI: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: openai, namespace: tollgate-system}
stringData: {api-key: sk-first}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {name: openai, namespace: tollgate-system}
spec:
  type: openai
  auth:
    secretRefs: [{name: openai, key: api-key}]
  models:
    - name: gpt-4o-mini
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {name: chat, namespace: tollgate-system}
spec:
  model: chat
  backends:
    - providerRef: {name: openai}
      model: gpt-4o-mini
"#;

/// A gateway pod's admin endpoint, answering `/config/status` with whatever it is told.
struct FakeGateway {
    addr: SocketAddr,
    answer: Arc<Mutex<Value>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGateway {
    async fn spawn() -> Self {
        let answer = Arc::new(Mutex::new(json!({"hash": null, "sources": []})));
        let shared = answer.clone();
        let app = axum::Router::new().route(
            "/config/status",
            axum::routing::get(move || {
                let shared = shared.clone();
                async move { axum::Json(shared.lock().unwrap().clone()) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, answer, task }
    }

    /// Reports serving `cm`'s config, as a gateway does after loading it.
    fn load(&self, cm: &ConfigMap) {
        let config: Value = serde_json::from_str(&cm.data.as_ref().unwrap()[CONFIG_FILE]).unwrap();
        *self.answer.lock().unwrap() = json!({
            "hash": cm.annotations()[render::HASH_ANNOTATION],
            "sources": config["sources"],
            "lastError": null,
        });
    }

    /// Reports rejecting a newer config while still serving the old one.
    fn reject(&self, message: &str) {
        self.answer.lock().unwrap()["lastError"] = json!(message);
    }

    /// A ready pod whose admin port is this server's.
    fn pod(&self, name: &str) -> Value {
        gateway_pod(name, self.addr.port())
    }
}

/// A ready gateway pod on 127.0.0.1 whose container port `admin` is `admin_port`.
fn gateway_pod(name: &str, admin_port: u16) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": GATEWAY_NS, "labels": {"app.kubernetes.io/component": "gateway"}},
        "spec": {"containers": [{"name": "gateway", "image": "tollgate", "ports": [{"name": "admin", "containerPort": admin_port}]}]},
        "status": {"podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]},
    })
}

#[tokio::test]
async fn samples_yield_the_config_map_and_secret_that_render_produces() {
    let fake = FakeApi::new();
    for file in [
        "quickstart.yaml",
        "openai-anthropic-fallback.yaml",
        "more-providers.yaml",
    ] {
        apply_yaml(&fake, &sample(file));
    }
    let h = Harness::start(&fake, SecretPolicy::Any);
    let cm = eventually("the ConfigMap", || h.config_map()).await;
    h.settle(Duration::from_millis(300)).await;
    let cm = h.config_map().unwrap_or(cm);

    // `render` over the very objects the API server holds (generations, timestamps and
    // all), printed as YAML and read back as a GitOps pipeline would.
    let mut text = String::new();
    for value in h
        .fake
        .list::<LLMProvider>(None)
        .iter()
        .map(to_doc)
        .chain(h.fake.list::<LLMRoute>(None).iter().map(to_doc))
        .chain(h.fake.list::<LLMBudget>(None).iter().map(to_doc))
        .chain(h.fake.list::<Secret>(Some("default")).iter().map(to_doc))
    {
        text.push_str("---\n");
        text.push_str(&serde_saphyr::to_string(&value).unwrap());
    }
    let mut manifests = Manifests::default();
    let mut errors = Vec::new();
    manifests.add_text(Path::new("from-cluster.yaml"), &text, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let compiled = manifests
        .compile(PriceCatalogue::builtin().unwrap())
        .unwrap();
    let rendered = render::config_text(&compiled).unwrap();
    let rendered_map = render::config_map(&rendered, &GatewayObjects::default());

    assert_eq!(
        cm.data, rendered_map.data,
        "controller and render must write byte-identical config"
    );
    assert_eq!(cm.annotations()[render::HASH_ANNOTATION], rendered.hash);
    assert_eq!(
        h.gateway_secret().unwrap(),
        manifests.gateway_secret_data(&compiled.config),
        "the gateway Secret holds exactly the keys the config names"
    );
    assert!(!compiled.config.routes.is_empty() && !compiled.config.providers.is_empty());
    assert_eq!(
        cm.labels()["app.kubernetes.io/managed-by"],
        "tollgate-operator"
    );
    // Every object got status with the outcome of the same compile.
    for p in h.fake.list::<LLMProvider>(None) {
        let accepted = p.conditions().iter().find(|c| c.type_ == "Accepted");
        assert!(
            accepted.is_some(),
            "{} has no Accepted condition",
            p.name_any()
        );
        assert_eq!(p.status.as_ref().unwrap().observed_generation, Some(1));
    }
    for problem in &compiled.problems {
        let ns = &problem.object.namespace;
        let name = &problem.object.name;
        let reason = problem.reason.as_str();
        let cond = problem.reason.condition().as_str();
        let found = match problem.object.kind {
            tollgate_crds::compile::Kind::LLMProvider => h.condition::<LLMProvider>(ns, name, cond),
            tollgate_crds::compile::Kind::LLMRoute => h.condition::<LLMRoute>(ns, name, cond),
            tollgate_crds::compile::Kind::LLMBudget => h.condition::<LLMBudget>(ns, name, cond),
        };
        let found = found.unwrap();
        assert_eq!(
            (found.status, found.reason.as_str()),
            (ConditionStatus::False, reason),
            "{problem}"
        );
    }
}

fn to_doc<K: serde::Serialize + kube::Resource<DynamicType = ()>>(obj: &K) -> Value {
    let mut v = serde_json::to_value(obj).unwrap();
    v["apiVersion"] = json!(K::api_version(&()));
    v["kind"] = json!(K::kind(&()));
    // Status is the operator's output, not an input to render.
    v.as_object_mut().unwrap().remove("status");
    v
}

#[tokio::test]
async fn changing_a_route_changes_the_config_map() {
    let fake = FakeApi::new();
    apply_yaml(&fake, OPENAI);
    let h = Harness::start(&fake, SecretPolicy::Any);
    eventually("the first config", || h.config()).await;
    let first_hash = h.config_map().unwrap().annotations()[render::HASH_ANNOTATION].clone();

    h.set_aliases(GATEWAY_NS, "chat", &["chat-latest"]).await;
    let config = eventually("the alias in the config", || {
        h.config().filter(|c| c.to_string().contains("chat-latest"))
    })
    .await;
    assert!(
        config["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "tollgate-system/chat" && s["generation"] == 2),
        "{config}"
    );
    assert_ne!(
        h.config_map().unwrap().annotations()[render::HASH_ANNOTATION],
        first_hash
    );
    let accepted = h
        .wait_condition::<LLMRoute>(
            GATEWAY_NS,
            "chat",
            "Accepted",
            ConditionStatus::True,
            "Accepted",
        )
        .await;
    eventually("observedGeneration 2", || {
        let r = h.fake.get::<LLMRoute>(Some(GATEWAY_NS), "chat")?;
        (r.status?.observed_generation == Some(2)).then_some(())
    })
    .await;
    assert!(accepted.observed_generation.is_some());
}

#[tokio::test]
async fn deleting_a_provider_flips_its_routes_to_provider_not_found() {
    let fake = FakeApi::new();
    apply_yaml(&fake, OPENAI);
    let h = Harness::start(&fake, SecretPolicy::Any);
    h.wait_condition::<LLMRoute>(
        GATEWAY_NS,
        "chat",
        "ResolvedRefs",
        ConditionStatus::True,
        "ResolvedRefs",
    )
    .await;

    let providers: Api<LLMProvider> = Api::namespaced(fake.client(), GATEWAY_NS);
    providers
        .delete("openai", &DeleteParams::default())
        .await
        .unwrap();
    let cond = h
        .wait_condition::<LLMRoute>(
            GATEWAY_NS,
            "chat",
            "ResolvedRefs",
            ConditionStatus::False,
            "ProviderNotFound",
        )
        .await;
    assert!(
        cond.message.contains("spec.backends[0]"),
        "{}",
        cond.message
    );
    let ready = h
        .wait_condition::<LLMRoute>(
            GATEWAY_NS,
            "chat",
            "Ready",
            ConditionStatus::False,
            "ProviderNotFound",
        )
        .await;
    assert!(
        ready.message.starts_with("ResolvedRefs: "),
        "{}",
        ready.message
    );
    h.wait_warning(GATEWAY_NS, "chat", "ProviderNotFound").await;
    // The key the deleted provider used is gone from the gateway Secret.
    eventually("the key removed", || {
        h.gateway_secret()
            .filter(std::collections::BTreeMap::is_empty)
    })
    .await;
}

#[tokio::test]
async fn a_missing_secret_key_is_reported_and_recovers_when_the_key_appears() {
    let fake = FakeApi::new();
    apply_yaml(&fake, &OPENAI.replace("api-key: sk-first", "other: x"));
    let h = Harness::start(&fake, SecretPolicy::Any);
    let cond = h
        .wait_condition::<LLMProvider>(
            GATEWAY_NS,
            "openai",
            "ResolvedRefs",
            ConditionStatus::False,
            "SecretKeyNotFound",
        )
        .await;
    assert!(
        cond.message.contains("has no key \"api-key\""),
        "{}",
        cond.message
    );
    assert!(
        !cond.message.contains("x"),
        "values never appear: {}",
        cond.message.contains("sk-")
    );
    assert_eq!(h.gateway_secret().unwrap().len(), 0);

    let secrets: Api<Secret> = Api::namespaced(fake.client(), GATEWAY_NS);
    secrets
        .patch(
            "openai",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"api-key": "sk-second"}})),
        )
        .await
        .unwrap();
    h.wait_condition::<LLMProvider>(
        GATEWAY_NS,
        "openai",
        "ResolvedRefs",
        ConditionStatus::True,
        "ResolvedRefs",
    )
    .await;
    let key = "tollgate-system__openai__api-key";
    eventually("the key copied", || {
        h.gateway_secret()
            .filter(|d| d.get(key).map(Vec::as_slice) == Some(b"sk-second".as_slice()))
    })
    .await;

    // Rotation: a new value reaches the gateway Secret without touching the provider.
    let hash = h.config_map().unwrap().annotations()[render::HASH_ANNOTATION].clone();
    secrets
        .patch(
            "openai",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"api-key": "sk-third"}})),
        )
        .await
        .unwrap();
    eventually("the rotated key", || {
        h.gateway_secret()
            .filter(|d| d.get(key).map(Vec::as_slice) == Some(b"sk-third".as_slice()))
    })
    .await;
    assert_eq!(
        h.config_map().unwrap().annotations()[render::HASH_ANNOTATION],
        hash,
        "a rotated value does not change the config"
    );
}

#[tokio::test]
async fn an_unchanged_world_causes_no_writes() {
    let fake = FakeApi::new();
    apply_yaml(&fake, OPENAI);
    let gateway = FakeGateway::spawn().await;
    fake.seed_json(gateway.pod("gw-0")).unwrap();
    let h = Harness::start(&fake, SecretPolicy::Any);
    let cm = eventually("the ConfigMap", || h.config_map()).await;
    gateway.load(&cm);
    h.wait_condition::<LLMRoute>(GATEWAY_NS, "chat", "Ready", ConditionStatus::True, "Ready")
        .await;
    h.settle(Duration::from_millis(300)).await;

    fake.reset_writes();
    // Force a full round: recompile, compare, re-check every object's status.
    h.ctx.inputs_changed.notify_one();
    h.ctx.trigger_status();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        fake.writes(),
        vec![],
        "nothing changed, so nothing is written"
    );
}

#[tokio::test]
async fn programmed_follows_what_gateway_pods_report_and_a_rejection_is_a_warning() {
    let fake = FakeApi::new();
    apply_yaml(&fake, OPENAI);
    let h = Harness::start(&fake, SecretPolicy::Any);
    h.wait_condition::<LLMRoute>(
        GATEWAY_NS,
        "chat",
        "Programmed",
        ConditionStatus::False,
        "NoGatewayPods",
    )
    .await;

    let gateway = FakeGateway::spawn().await;
    fake.seed_json(gateway.pod("gw-0")).unwrap();
    let pending = h
        .wait_condition::<LLMRoute>(
            GATEWAY_NS,
            "chat",
            "Programmed",
            ConditionStatus::False,
            "Pending",
        )
        .await;
    assert!(pending.message.contains("0 of 1"), "{}", pending.message);

    gateway.load(&h.config_map().unwrap());
    h.wait_condition::<LLMRoute>(
        GATEWAY_NS,
        "chat",
        "Programmed",
        ConditionStatus::True,
        "Programmed",
    )
    .await;
    h.wait_condition::<LLMProvider>(
        GATEWAY_NS,
        "openai",
        "Ready",
        ConditionStatus::True,
        "Ready",
    )
    .await;

    // A new generation the pod refuses to load.
    h.set_aliases(GATEWAY_NS, "chat", &["chat-v2"]).await;
    gateway.reject("route tollgate-system/chat: unknown provider");
    let rejected = h
        .wait_condition::<LLMRoute>(
            GATEWAY_NS,
            "chat",
            "Programmed",
            ConditionStatus::False,
            "Rejected",
        )
        .await;
    assert!(rejected.message.contains("gw-0"), "{}", rejected.message);
    assert!(
        rejected.message.contains("unknown provider"),
        "{}",
        rejected.message
    );
    let event = h.wait_warning(GATEWAY_NS, "chat", "Rejected").await;
    assert!(event.note.unwrap_or_default().contains("unknown provider"));
    // The provider's generation is still served, so it stays Programmed.
    assert_eq!(
        h.condition::<LLMProvider>(GATEWAY_NS, "openai", "Programmed")
            .unwrap()
            .status,
        ConditionStatus::True
    );

    // The pod loads it after all.
    gateway.load(&h.config_map().unwrap());
    h.wait_condition::<LLMRoute>(GATEWAY_NS, "chat", "Ready", ConditionStatus::True, "Ready")
        .await;
}

#[tokio::test]
async fn the_older_route_keeps_a_contested_model_name() {
    let fake = FakeApi::new();
    apply_yaml(&fake, OPENAI);
    let h = Harness::start(&fake, SecretPolicy::Any);
    h.wait_condition::<LLMRoute>(
        GATEWAY_NS,
        "chat",
        "Accepted",
        ConditionStatus::True,
        "Accepted",
    )
    .await;
    // Created a second later (creation timestamps have one-second resolution), and named
    // to sort first, so only age can decide.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    apply_yaml(
        &fake,
        r#"
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {name: a-newer, namespace: tollgate-system}
spec:
  model: chat
  backends:
    - providerRef: {name: openai}
      model: gpt-4o-mini
"#,
    );
    let cond = h
        .wait_condition::<LLMRoute>(
            GATEWAY_NS,
            "a-newer",
            "Accepted",
            ConditionStatus::False,
            "ModelNameConflict",
        )
        .await;
    assert!(
        cond.message.contains("tollgate-system/chat"),
        "{}",
        cond.message
    );
    assert_eq!(
        h.condition::<LLMRoute>(GATEWAY_NS, "chat", "Accepted")
            .unwrap()
            .status,
        ConditionStatus::True
    );
    let programmed = h
        .wait_condition::<LLMRoute>(
            GATEWAY_NS,
            "a-newer",
            "Programmed",
            ConditionStatus::False,
            "NotInConfig",
        )
        .await;
    assert!(
        programmed.message.contains("not accepted"),
        "{}",
        programmed.message
    );
}

#[tokio::test]
async fn credentials_outside_the_allowed_namespaces_are_not_copied() {
    let fake = FakeApi::new();
    apply_yaml(&fake, &OPENAI.replace("tollgate-system", "team-a"));
    let h = Harness::start(
        &fake,
        SecretPolicy::Only([GATEWAY_NS.to_owned()].into_iter().collect()),
    );
    let cond = h
        .wait_condition::<LLMProvider>(
            "team-a",
            "openai",
            "ResolvedRefs",
            ConditionStatus::False,
            "RefNotPermitted",
        )
        .await;
    assert!(cond.message.contains("team-a"), "{}", cond.message);
    assert_eq!(h.gateway_secret().unwrap().len(), 0, "nothing copied");
    assert!(
        h.ctx.secrets.index().secrets().next().is_none(),
        "Secrets in a namespace not allowed are not even watched"
    );
}

#[tokio::test]
async fn budgets_are_accepted_and_say_where_their_spend_is() {
    let fake = FakeApi::new();
    apply_yaml(&fake, OPENAI);
    apply_yaml(
        &fake,
        r#"
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMBudget
metadata: {name: monthly, namespace: tollgate-system}
spec:
  limit: {amount: "100", period: monthly}
  action: reject
"#,
    );
    let h = Harness::start(&fake, SecretPolicy::Any);
    h.wait_condition::<LLMBudget>(
        GATEWAY_NS,
        "monthly",
        "Accepted",
        ConditionStatus::True,
        "Accepted",
    )
    .await;
    h.wait_condition::<LLMBudget>(
        GATEWAY_NS,
        "monthly",
        "WithinBudget",
        ConditionStatus::Unknown,
        "SpendUnknown",
    )
    .await;
    let config = eventually("the budget in the config", || {
        h.config()
            .filter(|c| c["budgets"].as_array().is_some_and(|b| !b.is_empty()))
    })
    .await;
    assert_eq!(config["budgets"][0]["id"], "tollgate-system/monthly");
}

#[tokio::test]
async fn client_key_secrets_reach_the_config_as_hashes_and_rotate() {
    const KEY: &str = "tg-operator-test-0123456789abcdef0123";
    const NEW: &str = "tg-operator-test-rotated-0123456789ab";
    let fake = FakeApi::new();
    apply_yaml(&fake, OPENAI);
    let secret = |key: &str| {
        format!(
            r#"
apiVersion: v1
kind: Secret
metadata:
  name: app
  namespace: tollgate-system
  labels: {{tollgate.dev/client-key: "true"}}
  annotations: {{tollgate.dev/team: research}}
stringData: {{key: "{key}"}}
"#
        )
    };
    apply_yaml(&fake, &secret(KEY));
    let h = Harness::start(&fake, SecretPolicy::Any);
    let hash = |k: &str| tollgate_crds::keys::hash_key(k.as_bytes());
    let config = eventually("the key in the config", || {
        h.config().filter(|c| c.to_string().contains(&hash(KEY)))
    })
    .await;
    assert_eq!(config["keyedNamespaces"][0], "tollgate-system");
    assert_eq!(config["clientKeys"][0]["team"], "research");
    let text = h
        .config_map()
        .unwrap()
        .data
        .unwrap_or_default()
        .values()
        .cloned()
        .collect::<String>();
    assert!(!text.contains(KEY), "the key value reached the ConfigMap");
    assert!(
        h.gateway_secret()
            .unwrap_or_default()
            .values()
            .all(|v| !String::from_utf8_lossy(v).contains(KEY))
    );

    // Rotation is an update of the Secret.
    apply_yaml(&fake, &secret(NEW));
    eventually("the rotated key in the config", || {
        h.config()
            .filter(|c| c.to_string().contains(&hash(NEW)) && !c.to_string().contains(&hash(KEY)))
    })
    .await;
}

#[tokio::test]
async fn one_broken_credential_never_blocks_the_others() {
    let fake = FakeApi::new();
    apply_yaml(
        &fake,
        &OPENAI.replace(
            "secretRefs: [{name: openai, key: api-key}]",
            "secretRefs: [{name: openai, key: api-key}, {name: gone, key: api-key}]",
        ),
    );
    let h = Harness::start(&fake, SecretPolicy::Any);
    let cond = h
        .wait_condition::<LLMProvider>(
            GATEWAY_NS,
            "openai",
            "ResolvedRefs",
            ConditionStatus::False,
            "SecretNotFound",
        )
        .await;
    assert!(cond.message.contains("secretRefs[1]"), "{}", cond.message);
    let keys = eventually("the good key", || {
        h.gateway_secret().filter(|d| !d.is_empty())
    })
    .await;
    assert_eq!(
        keys.keys().collect::<Vec<_>>(),
        ["tollgate-system__openai__api-key"]
    );
    let config = h.config().unwrap();
    assert_eq!(
        config["providers"][0]["credentials"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    h.wait_condition::<LLMRoute>(
        GATEWAY_NS,
        "chat",
        "ResolvedRefs",
        ConditionStatus::True,
        "ResolvedRefs",
    )
    .await;
}

#[tokio::test]
async fn only_the_watched_namespaces_are_compiled() {
    let fake = FakeApi::new();
    apply_yaml(&fake, OPENAI);
    apply_yaml(&fake, &OPENAI.replace("tollgate-system", "team-b"));
    let mut s = settings(SecretPolicy::Any);
    s.watch_namespaces = vec!["team-b".into()];
    let h = Harness::start_with(&fake, s);
    let config = eventually("a config", || h.config()).await;
    let ids: Vec<&str> = config["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["team-b/chat"]);
    h.wait_condition::<LLMRoute>(
        "team-b",
        "chat",
        "Accepted",
        ConditionStatus::True,
        "Accepted",
    )
    .await;
    h.settle(Duration::from_millis(200)).await;
    assert!(
        h.condition::<LLMRoute>(GATEWAY_NS, "chat", "Accepted")
            .is_none(),
        "objects outside the watched namespaces are not touched"
    );
}
