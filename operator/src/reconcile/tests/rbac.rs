//! `config/rbac/` must allow every request the operator makes: the operator runs a busy
//! scenario (lease, compile and write, status, Events, Secret watches, gateway pods) against
//! the fake API, and each recorded request is checked against the committed rules.

use std::path::Path;

use crate::leader::{Leadership, LeaseSettings};

use super::*;

/// One rule, and where it applies (`None`: every namespace, from the ClusterRole).
struct Grant {
    namespace: Option<String>,
    groups: Vec<String>,
    resources: Vec<String>,
    names: Vec<String>,
    verbs: Vec<String>,
}

/// What one request needs.
#[derive(Debug)]
struct Access {
    verb: &'static str,
    group: String,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

fn grants() -> Vec<Grant> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/rbac");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for doc in docs
            .iter()
            .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
        {
            let namespace = (doc["kind"] == "Role")
                .then(|| doc["metadata"]["namespace"].as_str().unwrap().to_owned());
            for rule in doc["rules"].as_array().unwrap() {
                out.push(Grant {
                    namespace: namespace.clone(),
                    groups: strings(&rule["apiGroups"]),
                    resources: strings(&rule["resources"]),
                    names: strings(&rule["resourceNames"]),
                    verbs: strings(&rule["verbs"]),
                });
            }
        }
    }
    out
}

/// `/api/v1/namespaces/ns/secrets/name` and friends → what RBAC checks.
fn access(req: &crate::testing::RecordedRequest) -> Access {
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => (String::new(), rest.to_vec()),
        ["apis", group, _version, rest @ ..] => ((*group).to_owned(), rest.to_vec()),
        _ => panic!("unexpected path {}", req.path),
    };
    let (namespace, rest) = match rest.as_slice() {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => {
            (Some((*ns).to_owned()), rest.to_vec())
        }
        _ => (None, rest),
    };
    let resource = match rest.as_slice() {
        [r, _name, sub] => format!("{r}/{sub}"),
        [r, ..] => (*r).to_owned(),
        [] => panic!("no resource in {}", req.path),
    };
    // A list or watch selecting one name (`fieldSelector=metadata.name=X`) is authorized
    // as a request for X, so `resourceNames` can restrict it (Kubernetes ≥ 1.11).
    let selected = req.query.as_deref().and_then(|q| {
        q.split('&')
            .find_map(|p| p.strip_prefix("fieldSelector="))
            .map(|f| f.replace("%3D", "=").replace("%3d", "="))
            .and_then(|f| {
                f.strip_prefix("metadata.name=")
                    .filter(|n| !n.contains(',') && !n.contains('%'))
                    .map(str::to_owned)
            })
    });
    let name = rest.get(1).map(|n| (*n).to_owned());
    let watching = req
        .query
        .as_deref()
        .is_some_and(|q| q.contains("watch=true"));
    let verb = match (req.method.as_str(), name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if watching => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PATCH", _) => "patch",
        ("PUT", _) => "update",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        (m, _) => panic!("unexpected method {m}"),
    };
    Access {
        verb,
        group,
        resource,
        namespace,
        name: name.or(selected),
    }
}

fn allowed(grants: &[Grant], a: &Access) -> bool {
    grants.iter().any(|g| {
        let in_scope = match &g.namespace {
            None => true,
            Some(ns) => a.namespace.as_ref() == Some(ns),
        };
        // resourceNames cannot restrict create, nor a list or watch without a name selector.
        let named = g.names.is_empty() || a.name.as_ref().is_some_and(|n| g.names.contains(n));
        in_scope
            && named
            && g.groups.contains(&a.group)
            && g.resources.contains(&a.resource)
            && g.verbs.iter().any(|v| v == a.verb)
    })
}

#[tokio::test]
async fn the_committed_rbac_allows_every_request_the_operator_makes() {
    // Every optional gateway object too (autoscaler, ServiceMonitor), owned by the
    // operator's Deployment.
    let fake = crate::deploy::tests::fake_api();
    crate::deploy::tests::seed_operator(&fake);
    let mut lease = Leadership::start(
        fake.client(),
        &LeaseSettings {
            name: "tollgate-operator".into(),
            namespace: GATEWAY_NS.into(),
            identity: "op-0".into(),
            duration: Duration::from_secs(3),
        },
    )
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(10), lease.acquired())
        .await
        .unwrap()
        .unwrap();

    apply_yaml(&fake, OPENAI);
    let gateway = FakeGateway::spawn().await;
    fake.seed_json(gateway.pod("gw-0")).unwrap();
    let mut settings = settings(SecretPolicy::Only([GATEWAY_NS.to_owned()].into()));
    // A budget left from earlier settings, which these no longer ask for: deleted.
    fake.seed_json(serde_json::json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "tollgate-gateway", "namespace": GATEWAY_NS, "labels": {
            "app.kubernetes.io/component": "gateway",
            "app.kubernetes.io/managed-by": "tollgate-operator"}},
        "spec": {"maxUnavailable": 1},
    }))
    .unwrap();
    let deployment = format!(
        "{}\nautoscaling: {{minReplicas: 2, maxReplicas: 4}}\ndisruptionBudget: {{enabled: false}}\n",
        crate::deploy::tests::SETTINGS
    );
    settings.deployment =
        Some(crate::deploy::settings::GatewayDeployment::parse(&deployment).unwrap());
    let h = Harness::start_with(&fake, settings);
    eventually("the leftover budget deleted", || {
        fake.get::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(
            Some(GATEWAY_NS),
            "tollgate-gateway",
        )
        .is_none()
        .then_some(())
    })
    .await;
    eventually("the gateway Deployment", || {
        fake.get::<k8s_openapi::api::apps::v1::Deployment>(Some(GATEWAY_NS), "tollgate-gateway")
    })
    .await;
    let cm = eventually("the ConfigMap", || h.config_map()).await;
    gateway.load(&cm);
    h.wait_condition::<LLMRoute>(GATEWAY_NS, "chat", "Ready", ConditionStatus::True, "Ready")
        .await;
    fake.remove::<LLMProvider>(Some(GATEWAY_NS), "openai")
        .unwrap();
    h.wait_warning(GATEWAY_NS, "chat", "ProviderNotFound").await;
    h.settle(Duration::from_millis(200)).await;
    lease.release().await;

    let grants = grants();
    let requests = fake.requests();
    assert!(requests.len() > 10, "the scenario made requests");
    let denied: Vec<String> = requests
        .iter()
        .map(access)
        .filter(|a| !allowed(&grants, a))
        .map(|a| format!("{a:?}"))
        .collect();
    assert!(denied.is_empty(), "config/rbac does not allow: {denied:#?}");

    // And the rules are not wider than needed: nothing grants update, and delete only on
    // the named budget and autoscaler.
    for g in &grants {
        assert!(
            g.verbs
                .iter()
                .all(|v| !matches!(v.as_str(), "deletecollection" | "update" | "*")),
            "{:?}",
            g.verbs
        );
        if g.verbs.iter().any(|v| v == "delete") {
            assert!(
                !g.names.is_empty()
                    && g.resources.iter().all(|r| {
                        r == "poddisruptionbudgets" || r == "horizontalpodautoscalers"
                    }),
                "delete on {:?} {:?}",
                g.resources,
                g.names
            );
        }
    }
}

/// Every rule of the Roles and ClusterRoles in `docs`, normalized for comparison.
fn rule_set(docs: &[Value]) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for doc in docs
        .iter()
        .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
    {
        let ns = doc["metadata"]["namespace"].as_str().unwrap_or("*cluster*");
        for rule in doc["rules"].as_array().unwrap() {
            let mut parts = Vec::new();
            for field in ["apiGroups", "resources", "resourceNames", "verbs"] {
                let mut v = strings(&rule[field]);
                v.sort();
                parts.push(format!("{field}={v:?}"));
            }
            out.insert(format!(
                "{} {ns}: {}",
                doc["kind"].as_str().unwrap(),
                parts.join(" ")
            ));
        }
    }
    out
}

fn yaml_docs(path: &Path) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(&std::fs::read_to_string(path).unwrap())
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// The chart (as rendered into config/default by charts/sync.sh) grants exactly what
/// config/rbac grants, which the test above checks against the operator's requests.
#[test]
fn the_default_install_grants_exactly_the_committed_rbac() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut committed = Vec::new();
    for entry in std::fs::read_dir(root.join("config/rbac")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            committed.extend(yaml_docs(&path));
        }
    }
    let installed = yaml_docs(&root.join("config/default/tollgate.yaml"));
    let (committed, installed) = (rule_set(&committed), rule_set(&installed));
    let missing: Vec<_> = committed.difference(&installed).collect();
    let extra: Vec<_> = installed.difference(&committed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "chart RBAC differs from config/rbac\nonly in config/rbac: {missing:#?}\nonly in the chart: {extra:#?}"
    );
}
