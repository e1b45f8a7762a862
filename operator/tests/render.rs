//! `tollgate-operator render`, run as a user runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a broken fixture should fail the test loudly

use std::{path::PathBuf, process::Command};

use tollgate_crds::{config::GatewayConfig, mount::read_dir_files};

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/samples")
}

fn render(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate-operator"))
        .arg("render")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn samples_render_cleanly_with_secret_values_blanked() {
    let (code, stdout, stderr) = render(&["-f", samples().to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("kind: ConfigMap") && stdout.contains("kind: Secret"),
        "{stdout}"
    );
    assert!(
        stdout.contains("name: tollgate-gateway-config")
            && stdout.contains("namespace: tollgate-system")
    );
    assert!(stdout.contains("llm.tollgate.dev/config-hash"));
    assert!(
        stdout.contains("default__openai-keys__key-a: \"\""),
        "values blanked by default: {stdout}"
    );
    // "replace-me" in base64.
    assert!(
        !stdout.contains("cmVwbGFjZS1tZQ=="),
        "no secret value printed"
    );
    let (code, stdout, _) = render(&["-f", samples().to_str().unwrap(), "--show-secret-values"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("cmVwbGFjZS1tZQ=="),
        "values shown on request"
    );
}

#[test]
fn out_dir_is_laid_out_like_the_mounted_volumes() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = render(&[
        "-f",
        samples().to_str().unwrap(),
        "--out-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let config = read_dir_files(&dir.path().join("config")).unwrap();
    let text = String::from_utf8(config["gateway.json"].clone()).unwrap();
    let parsed = GatewayConfig::from_json(&text).unwrap();
    assert!(
        stderr.contains(&parsed.hash().unwrap()),
        "the printed hash is the config's: {stderr}"
    );
    assert!(dir.path().join("config/..data").is_symlink());
    let secrets = read_dir_files(&dir.path().join("secrets")).unwrap();
    let named: std::collections::BTreeSet<String> = parsed
        .providers
        .iter()
        .flat_map(|p| &p.credentials)
        .flat_map(|c| c.secret_keys())
        .map(str::to_owned)
        .collect();
    assert_eq!(
        secrets
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        named
    );
    assert!(secrets.values().all(|v| v == b"replace-me"));
}

#[test]
fn problems_go_to_stderr_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMRoute\nmetadata: {name: r, namespace: team}\nspec:\n  model: m\n  backends: [{providerRef: {name: missing}, model: x}]\n",
    )
    .unwrap();
    let (code, stdout, stderr) = render(&["-f", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(r#"problem: LLMRoute team/r: spec.backends[0].providerRef.name: LLMProvider "missing" not found in namespace "team" (ProviderNotFound)"#),
        "{stderr}"
    );
    assert!(
        stdout.contains("kind: ConfigMap"),
        "the usable part is still rendered"
    );
}

#[test]
fn unreadable_input_is_an_error() {
    let (code, _, stderr) = render(&["-f", "/nonexistent/tollgate.yaml"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("/nonexistent/tollgate.yaml"), "{stderr}");
}

#[test]
fn stdin_is_read_with_dash_and_a_wrong_group_is_a_warning_that_fails() {
    use std::io::Write;
    let text = std::fs::read_to_string(samples().join("quickstart.yaml")).unwrap();
    let run = |input: String| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate-operator"))
            .args(["render", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, stdout, stderr) = run(text.clone());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("kind: ConfigMap"), "{stdout}");

    let wrong = format!(
        "{text}\n---\napiVersion: llm.example.com/v1alpha1\nkind: LLMRoute\nmetadata: {{name: typo, namespace: default}}\nspec: {{}}\n"
    );
    let (code, _, stderr) = run(wrong);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("warning: LLMRoute default/typo has apiVersion llm.example.com/v1alpha1"),
        "{stderr}"
    );
}

#[test]
fn secret_namespaces_mirrors_the_operator_policy() {
    let dir = samples();
    let (code, _, stderr) = render(&["-f", dir.to_str().unwrap(), "--secret-namespaces", "*"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = render(&[
        "-f",
        dir.to_str().unwrap(),
        "--secret-namespaces",
        "somewhere-else",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("RefNotPermitted"), "{stderr}");
}

#[test]
fn a_config_too_large_leaves_out_the_largest_newest_objects_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from(
        r#"apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {name: mock, namespace: team-a}
spec: {type: mock, models: [{name: m, pricing: {input: "0", output: "0"}}]}
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {name: chat, namespace: team-a}
spec: {model: chat, backends: [{providerRef: {name: mock}, model: m}]}
"#,
    );
    // 40 providers with 64 KB of random header values each: 1.5 MB even compressed.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..40 {
        text.push_str(&format!(
            "---\napiVersion: llm.tollgate.dev/v1alpha1\nkind: LLMProvider\nmetadata: {{name: big-{i}, namespace: team-noisy}}\nspec:\n  type: openai-compatible\n  baseURL: http://vllm:8000/v1\n  models: [{{name: m, pricing: {{input: \"0\", output: \"0\"}}}}]\n  headers:\n"
        ));
        for j in 0..16 {
            let value: String = (0..250)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    format!("{:016x}", seed >> 1)
                })
                .collect();
            text.push_str(&format!("    - {{name: x-h{j}, value: \"{value}\"}}\n"));
        }
    }
    let file = dir.path().join("all.yaml");
    std::fs::write(&file, text).unwrap();
    let out = dir.path().join("out");
    let (code, _, stderr) = render(&[
        "-f",
        file.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    let left_out: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("(ConfigTooLarge)"))
        .collect();
    assert!(
        !left_out.is_empty() && left_out.len() < 40,
        "only what does not fit is left out: {stderr}"
    );
    assert!(
        left_out
            .iter()
            .all(|l| l.contains("LLMProvider team-noisy/big-")),
        "{stderr}"
    );
    let config: GatewayConfig =
        serde_json::from_str(&tollgate_crds::mount::read_config_text(&out.join("config")).unwrap())
            .unwrap();
    assert_eq!(config.routes.len(), 1, "team-a's route is written");
    assert_eq!(config.providers.len(), 41 - left_out.len());
}
