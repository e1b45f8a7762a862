//! The committed CRD YAML must be exactly what the Rust types generate (`just crds`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

use tollgate_crds::crdgen::{crds, to_yaml};

#[test]
fn committed_crds_match_the_types() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for (file, crd) in crds() {
        let generated = to_yaml(&crd).expect("CRD serializes");
        let committed = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        if committed != generated {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "CRD YAML is out of date, run `just crds`: {stale:?}"
    );
}

#[test]
fn crds_have_the_promised_names_columns_and_status() {
    for (_, crd) in crds() {
        let names = &crd.spec.names;
        assert_eq!(crd.spec.group, "llm.tollgate.dev");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(
            names.categories.as_deref(),
            Some(&["tollgate".to_string()][..])
        );
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{} has a status subresource",
            names.kind
        );
        let columns: Vec<(&str, &str)> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.as_str(), c.json_path.as_str()))
            .collect();
        let expected: &[(&str, &str)] = match names.kind.as_str() {
            "LLMProvider" => &[
                ("Type", ".spec.type"),
                ("Models", ".status.modelCount"),
                ("Ready", ".status.conditions[?(@.type=='Ready')].status"),
                ("Reason", ".status.conditions[?(@.type=='Ready')].reason"),
                ("Age", ".metadata.creationTimestamp"),
            ],
            "LLMRoute" => &[
                ("Model", ".spec.model"),
                ("Backends", ".status.backendCount"),
                ("Ready", ".status.conditions[?(@.type=='Ready')].status"),
                ("Reason", ".status.conditions[?(@.type=='Ready')].reason"),
                ("Age", ".metadata.creationTimestamp"),
            ],
            "LLMBudget" => &[
                ("Limit", ".spec.limit.amount"),
                ("Spent", ".status.spent"),
                ("Remaining", ".status.remaining"),
                ("Period", ".spec.limit.period"),
                ("Period End", ".status.periodEnd"),
                (
                    "Status",
                    ".status.conditions[?(@.type=='WithinBudget')].reason",
                ),
                ("Age", ".metadata.creationTimestamp"),
            ],
            other => panic!("unexpected kind {other}"),
        };
        assert_eq!(columns, expected, "{}", names.kind);
        let short = names.short_names.clone().unwrap_or_default();
        let want = match names.kind.as_str() {
            "LLMProvider" => "llmp",
            "LLMRoute" => "llmr",
            _ => "llmb",
        };
        assert_eq!(short, vec![want.to_string()]);

        let schema = serde_json::to_value(
            version
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap();
        let conditions = &schema["properties"]["status"]["properties"]["conditions"];
        assert_eq!(
            conditions["x-kubernetes-list-type"], "map",
            "{}",
            names.kind
        );
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            serde_json::json!(["type"])
        );
        assert!(conditions["maxItems"].as_u64().is_some());
    }
}

#[test]
fn only_formats_kubernetes_knows() {
    // The API server (1.34+) warns on every apply about formats it does not know.
    let known = [
        "int32",
        "int64",
        "float",
        "double",
        "byte",
        "date",
        "date-time",
        "duration",
    ];
    for (file, crd) in crds() {
        let yaml = to_yaml(&crd).unwrap();
        for line in yaml
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("format: "))
        {
            let format = line.trim_start_matches("format: ");
            assert!(known.contains(&format), "{file}: {line}");
        }
    }
}
