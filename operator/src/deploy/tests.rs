//! The deployment task against the in-memory API: object shapes, drift repair, what rolls
//! the pods and what does not, the autoscaler, and rollout Events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    apps::v1::Deployment,
    autoscaling::v2::HorizontalPodAutoscaler,
    core::v1::{ConfigMap, PodTemplateSpec, Service},
    events::v1::Event,
    policy::v1::PodDisruptionBudget,
};
use kube::{
    Api,
    api::{DynamicObject, Patch, PatchParams},
    runtime::events::Reporter,
};
use serde_json::{Value, json};

use super::settings::GatewayDeployment;
use crate::{
    metrics::Metrics,
    reconcile::Operator,
    settings::{RunArgs, Settings, Timings},
    testing::{FakeApi, KindInfo},
};

const NS: &str = "tollgate-system";
const SELECTOR: &str = "app.kubernetes.io/name=tollgate,app.kubernetes.io/component=gateway";

/// The settings the chart writes by default, with a ServiceMonitor.
pub(crate) const SETTINGS: &str = r#"
owner: tollgate-operator
image: ghcr.io/example/tollgate-gateway:1.0.0
resources:
  requests: {cpu: 100m, memory: 64Mi}
  limits: {memory: 256Mi}
labels: {team: platform}
service: {type: ClusterIP, port: 80}
serviceMonitor: {interval: 15s, labels: {release: prom}}
"#;

/// A fake API that also serves the Prometheus Operator's ServiceMonitor kind.
pub(crate) fn fake_api() -> FakeApi {
    FakeApi::builder()
        .crd::<tollgate_crds::LLMProvider>()
        .crd::<tollgate_crds::LLMRoute>()
        .crd::<tollgate_crds::LLMBudget>()
        .kind(KindInfo {
            group: "monitoring.coreos.com".into(),
            version: "v1".into(),
            kind: "ServiceMonitor".into(),
            plural: "servicemonitors".into(),
            namespaced: true,
            status_subresource: false,
            list_maps: Vec::new(),
        })
        .build()
}

/// The operator's own Deployment, which owns the gateway objects.
pub(crate) fn seed_operator(fake: &FakeApi) -> String {
    let stored = fake
        .seed_json(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "tollgate-operator", "namespace": NS},
            "spec": {"selector": {"matchLabels": {"app": "op"}},
                     "template": {"metadata": {"labels": {"app": "op"}}, "spec": {"containers": [{"name": "op", "image": "op"}]}}},
        }))
        .unwrap();
    stored["metadata"]["uid"].as_str().unwrap().to_owned()
}

/// Settings as the flags give them (so new flags with defaults need no change here), with
/// short loop timings and the gateway deployment from `deployment`.
pub(crate) fn settings_with(deployment: &str) -> Settings {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }
    let cli = <Cli as clap::Parser>::try_parse_from([
        "tollgate-operator",
        "--namespace",
        NS,
        "--secret-namespaces",
        "*",
        "--gateway-pod-selector",
        SELECTOR,
    ])
    .unwrap();
    let mut settings = Settings::from_args(&cli.run).unwrap();
    settings.timings = Timings {
        debounce: Duration::from_millis(10),
        poll_fast: Duration::from_millis(50),
        poll_slow: Duration::from_millis(200),
        poll_timeout: Duration::from_millis(200),
        ..Timings::default()
    };
    settings.deployment = Some(GatewayDeployment::parse(deployment).unwrap());
    settings
}

struct Running {
    metrics: Arc<Metrics>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn start(fake: &FakeApi, settings: Settings) -> Running {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let metrics = Arc::new(Metrics::new());
    let reporter = Reporter {
        controller: "tollgate-operator".into(),
        instance: Some("test".into()),
    };
    let op = Operator::new(fake.client(), settings, metrics.clone(), reporter).unwrap();
    let task = tokio::spawn(op.run(std::future::pending()));
    Running { metrics, task }
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

/// Waits until no write happened for `quiet`.
async fn settle(fake: &FakeApi, quiet: Duration) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = fake.write_count();
    let mut since = Instant::now();
    while since.elapsed() < quiet {
        assert!(Instant::now() < deadline, "the operator never went quiet");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = fake.write_count();
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
}

fn gateway(fake: &FakeApi) -> Option<Deployment> {
    fake.get::<Deployment>(Some(NS), "tollgate-gateway")
}

fn template(fake: &FakeApi) -> PodTemplateSpec {
    gateway(fake).unwrap().spec.template
}

fn events(fake: &FakeApi, reason: &str) -> Vec<Event> {
    fake.list::<Event>(Some(NS))
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("tollgate-gateway")
        })
        .collect()
}

fn writes_to(fake: &FakeApi, resource: &str) -> usize {
    fake.writes()
        .iter()
        .filter(|w| w.path.contains(&format!("/{resource}/")))
        .count()
}

#[tokio::test]
async fn the_gateway_objects_have_the_documented_shape() {
    let fake = fake_api();
    let owner_uid = seed_operator(&fake);
    let _op = start(&fake, settings_with(SETTINGS));
    let d = eventually("the gateway Deployment", || gateway(&fake)).await;
    let v = serde_json::to_value(&d).unwrap();
    let pod = &v["spec"]["template"]["spec"];
    let c = &pod["containers"][0];

    assert_eq!(v["spec"]["replicas"], 2);
    assert_eq!(c["image"], "ghcr.io/example/tollgate-gateway:1.0.0");
    assert_eq!(
        c["args"],
        json!([
            "serve",
            "--config-dir",
            "/etc/tollgate",
            "--listen",
            "0.0.0.0:8080",
            "--admin-listen",
            "0.0.0.0:9090",
            "--drain-timeout-seconds",
            "30"
        ])
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "admin"})
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "admin"})
    );
    assert_eq!(c["lifecycle"]["preStop"]["sleep"]["seconds"], 5);
    assert_eq!(c["resources"]["limits"]["memory"], "256Mi");
    // Restricted Pod Security.
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(pod["automountServiceAccountToken"], false);
    // The config objects the operator writes are what the pods mount.
    assert_eq!(
        pod["volumes"][0]["configMap"]["name"],
        "tollgate-gateway-config"
    );
    assert_eq!(
        pod["volumes"][1]["secret"]["secretName"],
        "tollgate-gateway-keys"
    );
    assert_eq!(
        c["ports"][1],
        json!({"name": "admin", "containerPort": 9090, "protocol": "TCP"})
    );
    // The pod labels match the poller's selector, and the spread uses them.
    let labels = &v["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/component"], "gateway");
    assert_eq!(labels["app.kubernetes.io/name"], "tollgate");
    assert_eq!(labels["team"], "platform");
    assert_eq!(
        pod["topologySpreadConstraints"].as_array().unwrap().len(),
        2
    );
    // Owned by the operator's Deployment: uninstalling the operator removes it.
    assert_eq!(
        v["metadata"]["ownerReferences"][0]["uid"],
        owner_uid.as_str()
    );
    assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "Deployment");

    let api = eventually("the Service", || {
        fake.get::<Service>(Some(NS), "tollgate-gateway")
    })
    .await;
    let api = serde_json::to_value(api).unwrap();
    assert_eq!(api["spec"]["type"], "ClusterIP");
    assert_eq!(api["spec"]["ports"][0]["port"], 80);
    assert_eq!(api["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(
        api["spec"]["selector"],
        v["spec"]["selector"]["matchLabels"]
    );
    let admin = eventually("the admin Service", || {
        fake.get::<Service>(Some(NS), "tollgate-gateway-admin")
    })
    .await;
    assert_eq!(
        serde_json::to_value(admin).unwrap()["spec"]["ports"][0]["port"],
        9090
    );
    let pdb = eventually("the PodDisruptionBudget", || {
        fake.get::<PodDisruptionBudget>(Some(NS), "tollgate-gateway")
    })
    .await;
    let pdb = serde_json::to_value(pdb).unwrap();
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(pdb["spec"]["selector"], v["spec"]["selector"]);
    let monitors: Api<DynamicObject> =
        Api::namespaced_with(fake.client(), NS, &super::monitor::api_resource());
    settle(&fake, Duration::from_millis(200)).await;
    let sm = monitors.get("tollgate-gateway").await.unwrap();
    let sm = serde_json::to_value(sm).unwrap();
    assert_eq!(sm["metadata"]["labels"]["release"], "prom");
    assert_eq!(
        sm["spec"]["selector"]["matchLabels"]["llm.tollgate.dev/port"],
        "admin"
    );
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "admin");
    assert!(
        fake.get::<HorizontalPodAutoscaler>(Some(NS), "tollgate-gateway")
            .is_none(),
        "no autoscaler unless asked"
    );
}

#[tokio::test]
async fn drift_is_repaired_and_announced() {
    let fake = fake_api();
    seed_operator(&fake);
    let _op = start(&fake, settings_with(SETTINGS));
    eventually("the Service", || {
        fake.get::<Service>(Some(NS), "tollgate-gateway")
    })
    .await;
    settle(&fake, Duration::from_millis(200)).await;
    let before = template(&fake);

    // Someone scales by hand, changes the image and deletes the Service.
    let deployments: Api<Deployment> = Api::namespaced(fake.client(), NS);
    deployments
        .patch(
            "tollgate-gateway",
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "spec": {"replicas": 7, "template": {"spec": {"containers": [{"name": "gateway", "image": "evil:latest"}]}}},
            })),
        )
        .await
        .unwrap();
    fake.remove::<Service>(Some(NS), "tollgate-gateway")
        .unwrap();

    eventually("the Service back", || {
        fake.get::<Service>(Some(NS), "tollgate-gateway")
    })
    .await;
    eventually("the replicas and image back", || {
        let d = gateway(&fake)?;
        (d.spec.replicas == Some(2) && d.spec.template == before).then_some(())
    })
    .await;
    let event = eventually("a DriftRepaired Event", || {
        events(&fake, "DriftRepaired").into_iter().next()
    })
    .await;
    assert!(
        event
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("Deployment tollgate-gateway"),
        "{event:?}"
    );
}

#[tokio::test]
async fn a_config_change_never_touches_the_pods_but_a_new_image_rolls_them() {
    let fake = fake_api();
    seed_operator(&fake);
    for doc in serde_saphyr::from_multiple::<Value>(include_str!(
        "../../../config/samples/quickstart.yaml"
    ))
    .unwrap()
    {
        if !doc.is_null() {
            let mut doc = doc;
            doc["metadata"]["namespace"] = json!(NS);
            fake.seed_json(doc).unwrap();
        }
    }
    let op = start(&fake, settings_with(SETTINGS));
    let cm = eventually("the ConfigMap", || {
        fake.get::<ConfigMap>(Some(NS), "tollgate-gateway-config")
    })
    .await;
    eventually("the Deployment", || gateway(&fake)).await;
    settle(&fake, Duration::from_millis(300)).await;
    let before = template(&fake);
    fake.reset_writes();

    // A route change: a new config is written, the pod template stays as it is.
    let routes: Api<tollgate_crds::LLMRoute> = Api::namespaced(fake.client(), NS);
    let route = fake.list::<tollgate_crds::LLMRoute>(Some(NS)).remove(0);
    routes
        .patch(
            route.metadata.name.as_deref().unwrap(),
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"aliases": ["a-new-alias"]}})),
        )
        .await
        .unwrap();
    eventually("a new config", || {
        let now = fake.get::<ConfigMap>(Some(NS), "tollgate-gateway-config")?;
        (now.data != cm.data).then_some(())
    })
    .await;
    settle(&fake, Duration::from_millis(300)).await;
    assert_eq!(
        template(&fake),
        before,
        "a config change must not restart pods"
    );
    assert_eq!(
        writes_to(&fake, "deployments"),
        0,
        "nothing wrote the Deployment"
    );
    drop(op);

    // A new image (the settings file changed and the operator restarted): the template changes.
    let _op = start(&fake, settings_with(&SETTINGS.replace(":1.0.0", ":1.1.0")));
    let after = eventually("the new image", || {
        let t = template(&fake);
        (t != before).then_some(t)
    })
    .await;
    let image = after.spec.unwrap().containers[0].image.clone();
    assert_eq!(
        image.as_deref(),
        Some("ghcr.io/example/tollgate-gateway:1.1.0")
    );
}

#[tokio::test]
async fn an_autoscaler_owns_the_replica_count() {
    let fake = fake_api();
    let text = format!("{SETTINGS}\nautoscaling: {{minReplicas: 2, maxReplicas: 5}}\n");
    let _op = start(&fake, settings_with(&text));
    let hpa = eventually("the HPA", || {
        fake.get::<HorizontalPodAutoscaler>(Some(NS), "tollgate-gateway")
    })
    .await;
    assert_eq!(hpa.spec.max_replicas, 5);
    assert_eq!(hpa.spec.scale_target_ref.name, "tollgate-gateway");
    let d = eventually("the Deployment", || gateway(&fake)).await;
    assert_eq!(
        d.spec.replicas, None,
        "the Deployment leaves replicas to the HPA"
    );
    assert!(
        d.metadata.owner_references.is_none(),
        "no owner Deployment exists here"
    );
}

#[tokio::test]
async fn rollout_progress_shows_as_events_and_metrics() {
    let fake = fake_api();
    let op = start(&fake, settings_with(SETTINGS));
    let d = eventually("the Deployment", || gateway(&fake)).await;
    let generation = d.metadata.generation.unwrap();
    let deployments: Api<Deployment> = Api::namespaced(fake.client(), NS);
    let set_status = |updated: i32, available: i32| {
        let deployments = deployments.clone();
        async move {
            deployments
                .patch_status(
                    "tollgate-gateway",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {
                        "observedGeneration": generation, "replicas": 2,
                        "updatedReplicas": updated, "availableReplicas": available}})),
                )
                .await
                .unwrap();
        }
    };
    // A new Deployment has no pods yet.
    let e = eventually("RolloutProgressing", || {
        events(&fake, "RolloutProgressing").into_iter().next()
    })
    .await;
    assert_eq!(
        e.note.as_deref(),
        Some("0 of 2 gateway pod(s) run the current template")
    );
    set_status(1, 1).await;
    settle(&fake, Duration::from_millis(100)).await;
    assert!(
        events(&fake, "RolloutComplete").is_empty(),
        "one pod of two is not complete"
    );
    set_status(2, 2).await;
    let e = eventually("RolloutComplete", || {
        events(&fake, "RolloutComplete").into_iter().next()
    })
    .await;
    assert_eq!(e.type_.as_deref(), Some("Normal"));
    let text = op.metrics.encode();
    assert!(
        text.contains(r#"tollgate_operator_gateway_rollout{state="complete"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"tollgate_operator_gateway_replicas{state="available"} 2"#),
        "{text}"
    );
}

/// The settings file the chart's default values produce (config/default is that rendering)
/// is one the operator accepts, and names the operator Deployment of the same install.
#[test]
fn the_default_install_settings_are_accepted() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/default/tollgate.yaml");
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap();
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} in config/default"))
    };
    let settings = find("ConfigMap", "tollgate-operator-settings")["data"]["gateway.yaml"]
        .as_str()
        .unwrap();
    let s = GatewayDeployment::parse(settings).unwrap();
    let operator = find("Deployment", s.owner.as_deref().unwrap());
    let container = &operator["spec"]["template"]["spec"]["containers"][0];
    let env = |name: &str| {
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(
        env("TOLLGATE_GATEWAY_SETTINGS"),
        Some(json!("/etc/tollgate-operator/gateway.yaml"))
    );
    assert_eq!(
        container["volumeMounts"][0]["mountPath"],
        "/etc/tollgate-operator"
    );
    // The samples live in `default`: their credentials must be allowed by default.
    assert_eq!(env("TOLLGATE_SECRET_NAMESPACES"), Some(json!("default")));
    assert_eq!(s.name, "tollgate-gateway");
    assert!(s.image.ends_with("tollgate-gateway:0.1.0"), "{}", s.image);
}

#[tokio::test]
async fn objects_the_settings_no_longer_ask_for_are_removed() {
    let fake = fake_api();
    let with = format!("{SETTINGS}\nautoscaling: {{minReplicas: 2, maxReplicas: 5}}\n");
    let op = start(&fake, settings_with(&with));
    eventually("the HPA", || {
        fake.get::<HorizontalPodAutoscaler>(Some(NS), "tollgate-gateway")
    })
    .await;
    eventually("the PDB", || {
        fake.get::<PodDisruptionBudget>(Some(NS), "tollgate-gateway")
    })
    .await;
    settle(&fake, Duration::from_millis(200)).await;
    drop(op);

    // New settings: no autoscaler, no budget. A leftover HPA would fight `replicas`.
    let without = format!("{SETTINGS}\ndisruptionBudget: {{enabled: false}}\n");
    let _op = start(&fake, settings_with(&without));
    eventually("the HPA and PDB gone", || {
        (fake
            .get::<HorizontalPodAutoscaler>(Some(NS), "tollgate-gateway")
            .is_none()
            && fake
                .get::<PodDisruptionBudget>(Some(NS), "tollgate-gateway")
                .is_none())
        .then_some(())
    })
    .await;
    eventually("replicas set again", || {
        (gateway(&fake)?.spec.replicas == Some(2)).then_some(())
    })
    .await;
    let e = eventually("a Removed Event", || {
        events(&fake, "Removed").into_iter().next()
    })
    .await;
    assert!(
        e.note
            .as_deref()
            .unwrap_or_default()
            .contains("HorizontalPodAutoscaler tollgate-gateway"),
        "{e:?}"
    );
}
