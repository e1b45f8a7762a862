//! Every sample in `config/samples/` loads as the Rust types and compiles with no problems.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

use std::path::PathBuf;

use tollgate_crds::{catalog::PriceCatalogue, config::GatewayConfig, manifests::Manifests};

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/samples")
}

#[test]
fn every_sample_compiles_without_problems() {
    let files: Vec<PathBuf> = std::fs::read_dir(samples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    assert!(files.len() >= 3, "samples exist: {files:?}");
    for file in &files {
        let (m, errors) = Manifests::load(std::slice::from_ref(file));
        assert!(errors.is_empty(), "{}: {errors:?}", file.display());
        assert!(m.skipped.is_empty(), "{}: {:?}", file.display(), m.skipped);
        let compiled = m.compile(PriceCatalogue::builtin().unwrap()).unwrap();
        let problems: Vec<String> = compiled.problems.iter().map(ToString::to_string).collect();
        assert!(
            problems.is_empty(),
            "{}:\n{}",
            file.display(),
            problems.join("\n")
        );
        assert!(
            !compiled.config.routes.is_empty(),
            "{} defines a route",
            file.display()
        );
        // What the operator writes, the gateway reads back and accepts.
        let text = compiled.config.to_json().unwrap();
        assert_eq!(GatewayConfig::from_json(&text).unwrap(), compiled.config);
    }
}

#[test]
fn all_samples_together_compile_and_name_only_existing_secret_keys() {
    let (m, errors) = Manifests::load(&[samples_dir()]);
    assert!(errors.is_empty(), "{errors:?}");
    let compiled = m.compile(PriceCatalogue::builtin().unwrap()).unwrap();
    assert!(compiled.problems.is_empty(), "{:?}", compiled.problems);
    let data = m.gateway_secret_data(&compiled.config);
    let named: Vec<&str> = compiled
        .config
        .providers
        .iter()
        .flat_map(|p| &p.credentials)
        .flat_map(|c| c.secret_keys())
        .collect();
    assert_eq!(data.keys().map(String::as_str).collect::<Vec<_>>(), {
        let mut n = named.clone();
        n.sort();
        n
    });
    let json = compiled.config.to_json().unwrap();
    assert!(
        !json.contains("replace-me"),
        "no secret value in the config"
    );
}
