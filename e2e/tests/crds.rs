//! The Tollgate CRDs against a real API server: the samples are accepted, bad manifests are
//! refused with their CEL message, and `kubectl get` shows the printer columns.
//!
//! Ignored by default (`just e2e` runs them); without a reachable cluster each test then
//! prints one `SKIP e2e: …` line and returns.

use kube::{
    Client,
    api::{DynamicObject, ObjectMeta},
    core::TypeMeta,
};
use serde_json::{Value, json};
use tollgate_crds::{GROUP, VERSION};
use tollgate_e2e::{
    apply_manifest, check_typed, cluster, install_crds, read_manifests, samples_dir, with_namespace,
};

fn object(kind: &str, name: &str, spec: Value) -> DynamicObject {
    DynamicObject {
        types: Some(TypeMeta {
            api_version: format!("{GROUP}/{VERSION}"),
            kind: kind.to_owned(),
        }),
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: json!({ "spec": spec }),
    }
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster; run with `just e2e`"]
async fn samples_are_accepted() {
    let Some(client) = cluster().await else {
        return;
    };
    install_crds(&client).await.unwrap();
    let dir = samples_dir();
    let manifests = read_manifests(&dir)
        .unwrap_or_else(|e| panic!("the samples in {} must exist and parse: {e}", dir.display()));

    with_namespace(&client, |client, ns| async move {
        let mut failures = Vec::new();
        let mut tollgate_objects = 0;
        for manifest in &manifests {
            match apply_manifest(&client, &ns, &manifest.object).await {
                Ok(stored) => match check_typed(&stored) {
                    Ok(typed) => {
                        tollgate_objects += usize::from(typed);
                        println!("accepted {}", manifest.source);
                    }
                    Err(e) => failures.push(format!("{}: {e}", manifest.source)),
                },
                Err(e) => failures.push(format!("{}: {e}", manifest.source)),
            }
        }
        assert!(tollgate_objects > 0, "the samples hold no Tollgate objects");
        assert!(
            failures.is_empty(),
            "samples refused by the API server:\n{}",
            failures.join("\n")
        );
    })
    .await
    .unwrap();
}

/// A manifest the API server must refuse for one reason, and the same object with that one
/// defect fixed, which it must accept: so each refusal is known to come from the rule named.
struct Case {
    bad: DynamicObject,
    fixed: DynamicObject,
    message: &'static str,
}

fn case(kind: &str, name: &str, bad: Value, fixed: Value, message: &'static str) -> Case {
    Case {
        bad: object(kind, name, bad),
        fixed: object(kind, name, fixed),
        message,
    }
}

fn backend(provider: &str, model: &str) -> Value {
    json!({"providerRef": {"name": provider}, "model": model})
}

fn weighted(provider: &str, model: &str, weight: u32) -> Value {
    json!({"providerRef": {"name": provider}, "model": model, "weight": weight})
}

fn compatible_provider(base_url: Option<&str>) -> Value {
    let mut spec = json!({"type": "openai-compatible", "models": [{"name": "llama-3.1-8b"}]});
    if let Some(url) = base_url {
        spec["baseURL"] = url.into();
    }
    spec
}

fn budget(action: &str, extra: Value) -> Value {
    let mut spec = json!({"limit": {"amount": "100.00", "period": "monthly"}, "action": action});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    spec
}

fn cases() -> Vec<Case> {
    const GOOD_URL: &str = "http://vllm.inference.svc:8000/v1";
    vec![
        case(
            "LLMRoute",
            "fallback-repeats-primary",
            json!({"model": "chat", "backends": [backend("openai", "gpt-4o-mini")], "fallbacks": [backend("openai", "gpt-4o-mini")]}),
            json!({"model": "chat", "backends": [backend("openai", "gpt-4o-mini")], "fallbacks": [backend("openai", "gpt-4o")]}),
            "fallbacks may not repeat a primary backend",
        ),
        case(
            "LLMRoute",
            "all-weights-zero",
            json!({"model": "chat", "backends": [weighted("openai", "gpt-4o-mini", 0), weighted("anthropic", "claude-haiku-4-5", 0)]}),
            json!({"model": "chat", "backends": [weighted("openai", "gpt-4o-mini", 0), weighted("anthropic", "claude-haiku-4-5", 1)]}),
            "at least one backend needs a non-zero weight",
        ),
        case(
            "LLMProvider",
            "cloud-metadata-url",
            compatible_provider(Some("http://169.254.169.254/")),
            compatible_provider(Some(GOOD_URL)),
            "must not point at a link-local or cloud-metadata address",
        ),
        case(
            "LLMProvider",
            "metadata-hostname-url",
            compatible_provider(Some("http://metadata.google.internal/computeMetadata/v1")),
            compatible_provider(Some(GOOD_URL)),
            "must not point at a link-local or cloud-metadata address",
        ),
        case(
            "LLMProvider",
            "link-local-url",
            compatible_provider(Some("https://169.254.10.20:8443/v1")),
            compatible_provider(Some(GOOD_URL)),
            "must not point at a link-local or cloud-metadata address",
        ),
        case(
            "LLMProvider",
            "compatible-without-base-url",
            compatible_provider(None),
            compatible_provider(Some(GOOD_URL)),
            "baseURL is required",
        ),
        case(
            "LLMBudget",
            "thresholds-descending",
            budget("alert", json!({"alertThresholds": [80, 50]})),
            budget("alert", json!({"alertThresholds": [50, 80]})),
            "strictly ascending",
        ),
        case(
            "LLMBudget",
            "thresholds-repeated",
            budget("alert", json!({"alertThresholds": [50, 50, 90]})),
            budget("alert", json!({"alertThresholds": [50, 90]})),
            "strictly ascending",
        ),
        case(
            "LLMBudget",
            "downgrade-without-target",
            budget("downgrade", json!({})),
            budget("downgrade", json!({"downgradeTo": {"name": "chat-cheap"}})),
            "downgradeTo is required for, and only allowed with, action downgrade",
        ),
    ]
}

/// `None` when `bad` was refused as expected; otherwise what went wrong.
async fn check_refused(
    client: &Client,
    ns: &str,
    bad: &DynamicObject,
    message: &str,
) -> Option<String> {
    let err = match apply_manifest(client, ns, bad).await {
        Ok(_) => return Some(format!("accepted, expected HTTP 422 with {message:?}")),
        Err(e) => e,
    };
    let Some(status) = err.api_status() else {
        return Some(format!("failed without an API answer: {err}"));
    };
    if status.code != 422 || !status.message.contains(message) {
        return Some(format!(
            "refused with HTTP {} {:?}, expected HTTP 422 containing {message:?}",
            status.code, status.message
        ));
    }
    None
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster; run with `just e2e`"]
async fn invalid_manifests_are_rejected_with_their_cel_message() {
    let Some(client) = cluster().await else {
        return;
    };
    install_crds(&client).await.unwrap();

    with_namespace(&client, |client, ns| async move {
        let mut failures = Vec::new();
        for case in cases() {
            let what = format!(
                "{}/{}",
                case.bad
                    .types
                    .as_ref()
                    .map(|t| t.kind.as_str())
                    .unwrap_or_default(),
                case.bad.metadata.name.as_deref().unwrap_or_default()
            );
            if let Some(problem) = check_refused(&client, &ns, &case.bad, case.message).await {
                failures.push(format!("{what} (bad): {problem}"));
            }
            if let Err(e) = apply_manifest(&client, &ns, &case.fixed).await {
                failures.push(format!("{what} (fixed): should be accepted, got {e}"));
            }
        }
        assert!(
            failures.is_empty(),
            "CEL validation did not behave:\n{}",
            failures.join("\n")
        );
    })
    .await
    .unwrap();
}

const READY_PATH: &str = ".status.conditions[?(@.type=='Ready')].status";

/// The columns `kubectl get <plural>` must show for each kind, beyond `Name`.
const COLUMNS: [(&str, &[&str]); 3] = [
    ("llmproviders", &["Type", "Models", "Ready", "Age"]),
    ("llmroutes", &["Model", "Backends", "Ready", "Age"]),
    ("llmbudgets", &["Limit", "Spent", "Period", "Status", "Age"]),
];

fn column_names(columns: &[Value], key: &str) -> Vec<String> {
    columns
        .iter()
        .filter_map(|c| c[key].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster; run with `just e2e`"]
async fn printer_columns_are_served() {
    let Some(client) = cluster().await else {
        return;
    };
    let served = install_crds(&client).await.unwrap();

    // The CRDs as stored by the API server carry the columns, Ready with its exact path.
    for (plural, expected) in COLUMNS {
        let crd = served
            .iter()
            .find(|c| c.spec.names.plural == plural)
            .unwrap_or_else(|| panic!("CRD {plural}.{GROUP} not installed"));
        let version = crd
            .spec
            .versions
            .iter()
            .find(|v| v.name == VERSION)
            .unwrap();
        let columns = version
            .additional_printer_columns
            .as_deref()
            .unwrap_or_default();
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        for name in expected {
            assert!(
                names.contains(name),
                "{plural}: column {name} missing from {names:?}"
            );
        }
        if expected.contains(&"Ready") {
            let ready = columns.iter().find(|c| c.name == "Ready").unwrap();
            assert_eq!(ready.json_path, READY_PATH, "{plural}: Ready column");
            assert_eq!(ready.type_, "string", "{plural}: Ready column");
        }
    }

    // What `kubectl get` actually asks for: the list rendered as a Table.
    with_namespace(&client, |client, ns| async move {
        let objects = [
            object(
                "LLMProvider",
                "mock",
                json!({"type": "mock", "models": [{"name": "echo"}]}),
            ),
            object(
                "LLMRoute",
                "chat",
                json!({"model": "e2e-chat", "backends": [backend("mock", "echo")]}),
            ),
            object(
                "LLMBudget",
                "team",
                json!({"limit": {"amount": "10", "period": "daily"}, "action": "reject"}),
            ),
        ];
        for object in &objects {
            apply_manifest(&client, &ns, object).await.unwrap();
        }
        let expected_cells = [
            ("llmproviders", "Type", "mock"),
            ("llmroutes", "Model", "e2e-chat"),
            ("llmbudgets", "Period", "daily"),
        ];

        for ((plural, expected), (object, (_, cell_column, cell_value))) in
            COLUMNS.iter().zip(objects.iter().zip(expected_cells))
        {
            let request =
                http::Request::get(format!("/apis/{GROUP}/{VERSION}/namespaces/{ns}/{plural}"))
                    .header(
                        http::header::ACCEPT,
                        "application/json;as=Table;g=meta.k8s.io;v=v1",
                    )
                    .body(Vec::new())
                    .unwrap();
            let table: Value = client.request(request).await.unwrap();
            assert_eq!(table["kind"], "Table", "{plural}: {table}");

            let columns = table["columnDefinitions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let names = column_names(&columns, "name");
            assert_eq!(
                names.first().map(String::as_str),
                Some("Name"),
                "{plural}: {names:?}"
            );
            for name in *expected {
                assert!(
                    names.iter().any(|n| n == name),
                    "{plural}: column {name} missing from {names:?}"
                );
            }

            let rows = table["rows"].as_array().cloned().unwrap_or_default();
            assert_eq!(rows.len(), 1, "{plural}: {table}");
            let cells = rows[0]["cells"].as_array().cloned().unwrap_or_default();
            assert_eq!(cells.len(), names.len(), "{plural}: one cell per column");
            assert_eq!(cells[0], json!(object.metadata.name), "{plural}: Name cell");
            let at = names.iter().position(|n| n == cell_column).unwrap();
            assert_eq!(cells[at], json!(cell_value), "{plural}: {cell_column} cell");
        }
    })
    .await
    .unwrap();
}
