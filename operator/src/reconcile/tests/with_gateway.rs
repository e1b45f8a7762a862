//! The whole chain with a real gateway: the operator writes the ConfigMap and Secret, a
//! stand-in for kubelet mirrors them into the gateway's mounted directories, the gateway
//! hot-reloads, and `Programmed` follows what its `/config/status` reports.

use std::collections::BTreeMap;

use tollgate_crds::mount::write_atomic;
use tollgate_gateway::{
    config::ConfigSource,
    resilience::health::HealthSettings,
    server::{self, Options},
};

use super::*;

const MOCK_ROUTE: &str = r#"
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {name: mock, namespace: tollgate-system}
spec:
  type: mock
  models: [{name: mock-chat, pricing: {input: "0", output: "0"}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {name: demo, namespace: tollgate-system}
spec:
  model: demo
  backends: [{providerRef: {name: mock}, model: mock-chat}]
"#;

/// Copies the gateway ConfigMap and Secret from the fake API into `dir` as kubelet does
/// (atomic `..data` swaps), whenever they change.
fn mirror(fake: FakeApi, dir: std::path::PathBuf) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let cm = fake.get::<ConfigMap>(Some(GATEWAY_NS), "tollgate-gateway-config");
            let secret = fake.get::<Secret>(Some(GATEWAY_NS), "tollgate-gateway-keys");
            if let (Some(cm), Some(secret)) = (cm, secret) {
                let config: BTreeMap<String, Vec<u8>> = cm
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                let keys: BTreeMap<String, Vec<u8>> = secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect();
                let now = Some((config.clone(), keys.clone()));
                if now != last {
                    write_atomic(&dir.join("secrets"), &keys, 0o600).unwrap();
                    write_atomic(&dir.join("config"), &config, 0o644).unwrap();
                    last = now;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

#[tokio::test]
async fn programmed_follows_what_a_real_gateway_loads() {
    let fake = FakeApi::new();
    apply_yaml(&fake, MOCK_ROUTE);
    let h = Harness::start(&fake, SecretPolicy::Any);
    eventually("the ConfigMap", || h.config_map()).await;

    let dir = tempfile::tempdir().unwrap();
    let kubelet = mirror(fake.clone(), dir.path().to_path_buf());
    eventually("the mounted config", || {
        dir.path()
            .join("config")
            .join(CONFIG_FILE)
            .exists()
            .then_some(())
    })
    .await;
    let gateway = server::start(Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        source: ConfigSource::Dir(dir.path().to_path_buf()),
        drain_timeout: Duration::from_secs(1),
        max_body: 1024 * 1024,
        recheck: Duration::from_millis(100),
        health: HealthSettings::default(),
        limits: Default::default(),
    })
    .await
    .unwrap();
    fake.seed_json(gateway_pod("gateway-0", gateway.admin_addr.port()))
        .unwrap();

    let ready = h
        .wait_condition::<LLMRoute>(GATEWAY_NS, "demo", "Ready", ConditionStatus::True, "Ready")
        .await;
    assert_eq!(ready.observed_generation, Some(1));
    let programmed = h
        .condition::<LLMRoute>(GATEWAY_NS, "demo", "Programmed")
        .unwrap();
    assert_eq!(programmed.message, "Served by all 1 ready gateway pod(s)");

    // A new generation: Programmed only once the gateway has reloaded it.
    h.set_aliases(GATEWAY_NS, "demo", &["demo-v2"]).await;
    eventually("generation 2 programmed", || {
        h.condition::<LLMRoute>(GATEWAY_NS, "demo", "Programmed")
            .filter(|c| c.status == ConditionStatus::True && c.observed_generation == Some(2))
    })
    .await;
    tollgate_gateway::install_crypto_provider();
    let answer = reqwest::get(format!("http://{}/v1/models", gateway.api_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        answer.contains("demo-v2"),
        "the gateway serves the alias: {answer}"
    );

    kubelet.abort();
    gateway.shutdown().await;
}
