//! Loading manifests: strict about unknown fields, merging Secret data like the API server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

use std::path::Path;

use tollgate_crds::{
    config::{Credential, GatewayConfig},
    manifests::{LoadError, Manifests},
};

fn load(text: &str) -> (Manifests, Vec<LoadError>) {
    let mut m = Manifests::default();
    let mut errors = Vec::new();
    m.add_text(Path::new("test.yaml"), text, &mut errors);
    (m, errors)
}

#[test]
fn unknown_fields_are_errors_naming_the_path() {
    let (_, errors) = load(
        "apiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMRoute\nmetadata: {name: r}\nspec:\n  model: m\n  fallback: [{providerRef: {name: p}, model: x}]\n  backends: [{providerRef: {name: p}, model: x, wieght: 2}]\n",
    );
    assert_eq!(errors.len(), 1);
    let message = errors[0].to_string();
    assert!(
        message.contains("test.yaml: document 1 (LLMRoute default/r)"),
        "{message}"
    );
    assert!(message.contains("spec.fallback"), "{message}");
    assert!(message.contains("spec.backends[0].wieght"), "{message}");
}

#[test]
fn objects_without_namespace_go_to_default_and_other_kinds_are_skipped() {
    let (m, errors) = load(
        "apiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMProvider\nmetadata: {name: mock}\nspec: {type: mock, models: [{name: m}]}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\n---\n",
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        m.providers[0].metadata.namespace.as_deref(),
        Some("default")
    );
    assert_eq!(m.skipped, vec!["Deployment prod/web".to_string()]);
}

#[test]
fn wrong_version_of_our_group_is_an_error_not_a_skip() {
    let (_, errors) =
        load("apiVersion: llm.tollgate.dev/v1\nkind: LLMRoute\nmetadata: {name: r}\nspec: {}\n");
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .to_string()
            .contains("this build reads llm.tollgate.dev/v1alpha1"),
        "{}",
        errors[0]
    );
}

#[test]
fn broken_yaml_names_the_file() {
    let (_, errors) = load("kind: [unclosed\n");
    assert!(
        matches!(&errors[0], LoadError::Yaml { path, .. } if path == Path::new("test.yaml")),
        "{errors:?}"
    );
}

#[test]
fn a_yaml_error_near_a_secret_gives_the_position_but_never_quotes_the_key() {
    let (_, errors) = load(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: k}\nstringData:\n  key: sk-live-TOPSECRET-4242: \"oops\n",
    );
    let message = errors[0].to_string();
    assert!(!message.contains("TOPSECRET"), "{message}");
    assert!(message.contains("line 5"), "{message}");
}

#[test]
fn a_yaml_error_elsewhere_still_shows_the_text() {
    let (_, errors) = load("apiVersion: v1\nkind: ConfigMap\ndata:\n  a: b: \"oops\n");
    assert!(errors[0].to_string().contains("a: b:"), "{}", errors[0]);
}

#[test]
fn a_secret_with_an_invalid_value_names_the_field_but_not_the_value() {
    let (_, errors) = load(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: k}\ndata: {key: \"sk-live-TOPSECRET-4242 is not base64\"}\n",
    );
    let message = errors[0].to_string();
    assert!(!message.contains("TOPSECRET"), "{message}");
    assert!(message.contains("data.key"), "{message}");
}

#[test]
fn string_data_wins_over_data_and_only_named_keys_reach_the_gateway_secret() {
    let (m, errors) = load(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: keys, namespace: a}\ndata: {k1: b2xk, unused: eA==}\nstringData: {k1: new}\n",
    );
    assert!(errors.is_empty(), "{errors:?}");
    let index = m.secret_index();
    assert_eq!(
        index.keys("a", "keys").unwrap().iter().collect::<Vec<_>>(),
        vec!["k1", "unused"]
    );
    let mut config = GatewayConfig::empty();
    config.providers.push(serde_json::from_value(serde_json::json!({
        "id": "a/p", "type": "openai", "baseUrl": "https://x", "models": [],
        "credentials": [{"kind": "apiKey", "secretKey": "a__keys__k1"}, {"kind": "apiKey", "secretKey": "a__keys__missing"}],
    })).unwrap());
    assert!(matches!(
        config.providers[0].credentials[0],
        Credential::ApiKey { .. }
    ));
    let data = m.gateway_secret_data(&config);
    assert_eq!(data.len(), 1);
    assert_eq!(data["a__keys__k1"], b"new".to_vec());
}

#[test]
fn the_same_object_twice_is_an_error() {
    let doc = "apiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMProvider\nmetadata: {name: mock}\nspec: {type: mock, models: [{name: m}]}\n";
    let mut m = Manifests::default();
    let mut errors = Vec::new();
    m.add_text(Path::new("a.yaml"), doc, &mut errors);
    m.add_text(Path::new("b.yaml"), doc, &mut errors);
    assert!(errors.is_empty());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), doc).unwrap();
    std::fs::write(dir.path().join("b.yml"), doc).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let (loaded, errors) = Manifests::load(&[dir.path().to_path_buf()]);
    assert_eq!(loaded.providers.len(), 2);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .to_string()
            .contains("LLMProvider default/mock is defined more than once"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_list_is_read_item_by_item_and_errors_name_the_item() {
    let (m, errors) = load(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: llm.tollgate.dev/v1alpha1\n  kind: LLMProvider\n  metadata: {name: mock}\n  spec: {type: mock, models: [{name: m}]}\n- apiVersion: llm.tollgate.dev/v1alpha1\n  kind: LLMRoute\n  metadata: {name: r}\n  spec: {model: x, backends: [{providerRef: {name: mock}, model: m, wieght: 1}]}\n",
    );
    assert_eq!(m.providers.len(), 1);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = errors[0].to_string();
    assert!(
        message.contains("items[1] (LLMRoute default/r)"),
        "{message}"
    );
    assert!(message.contains("spec.backends[0].wieght"), "{message}");
}

#[test]
fn thousands_of_documents_load() {
    let text: String = (0..5000)
        .map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}, namespace: x}}\ndata: {{a: b}}\n"))
        .collect();
    let (m, errors) = load(&text);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(m.skipped.len(), 5000);
}

#[test]
fn a_tollgate_kind_in_another_group_is_a_warning() {
    let (m, errors) = load(
        "apiVersion: llm.example.com/v1alpha1\nkind: LLMRoute\nmetadata: {name: r, namespace: a}\nspec: {}\n",
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(m.warnings.len(), 1);
    assert!(m.warnings[0].contains("LLMRoute a/r has apiVersion llm.example.com/v1alpha1"));
}

#[test]
fn type_errors_name_the_field_and_long_values_are_clipped() {
    let (_, errors) = load(
        "apiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMRoute\nmetadata: {name: r}\nspec:\n  model: m\n  backends: [{providerRef: {name: p}, model: x, weight: heavy}]\n",
    );
    let message = errors[0].to_string();
    assert!(
        message.contains("spec.backends[0].weight: invalid type"),
        "{message}"
    );

    let long = "x".repeat(5_000_000);
    let (_, errors) = load(&format!(
        "apiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMRoute\nmetadata: {{name: r}}\nspec:\n  model: m\n  backends: [{{providerRef: {{name: p}}, model: x, weight: {long}}}]\n",
    ));
    let message = errors[0].to_string();
    assert!(message.len() < 1000, "{} bytes", message.len());
    assert!(message.contains("bytes in all)"), "{message}");
}
