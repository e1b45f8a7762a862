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
pub(super) fn mirror(fake: FakeApi, dir: std::path::PathBuf) -> tokio::task::JoinHandle<()> {
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
                    .chain(
                        cm.binary_data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.0)),
                    )
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
        pays: Default::default(),
        cache: Default::default(),
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

const PRICED_BUDGET: &str = r#"
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {name: mock, namespace: tollgate-system}
spec:
  type: mock
  models: [{name: mock-chat, pricing: {input: "15", output: "60"}}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {name: demo, namespace: tollgate-system}
spec:
  model: demo
  backends: [{providerRef: {name: mock}, model: mock-chat}]
---
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMBudget
metadata: {name: cap, namespace: tollgate-system}
spec:
  limit: {amount: "100", period: monthly, timeZone: Europe/Berlin}
  action: reject
"#;

async fn gateway_at(dir: &std::path::Path, admin: std::net::SocketAddr) -> server::Running {
    server::start(Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: admin,
        source: ConfigSource::Dir(dir.to_path_buf()),
        drain_timeout: Duration::from_secs(1),
        max_body: 1024 * 1024,
        recheck: Duration::from_millis(100),
        health: HealthSettings::default(),
        limits: Default::default(),
        pays: Default::default(),
        cache: Default::default(),
    })
    .await
    .unwrap()
}

async fn gateway_spent(g: &server::Running) -> String {
    let report: serde_json::Value = reqwest::get(format!("http://{}/budgets", g.admin_addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    report["budgets"][0]["spent"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn budget_spend_reaches_the_status_and_a_restarted_gateway_starts_from_it() {
    let fake = FakeApi::new();
    apply_yaml(&fake, PRICED_BUDGET);
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
    let first = gateway_at(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let admin = first.admin_addr;
    fake.seed_json(gateway_pod("gateway-0", admin.port()))
        .unwrap();
    tollgate_gateway::install_crypto_provider();
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let r = client
            .post(format!("http://{}/v1/chat/completions", first.api_addr))
            .json(&serde_json::json!({"model": "demo", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let spent = gateway_spent(&first).await;
    assert_ne!(spent, "0");
    // The mock's answers cost whole micro-dollars here, so status and gateway agree exactly.
    let status = eventually("the spend in LLMBudget.status", || {
        let b = h.fake.get::<LLMBudget>(Some(GATEWAY_NS), "cap")?;
        let s = b.status?;
        (s.spent.as_ref()?.to_string() == spent).then_some(s)
    })
    .await;
    let remaining: rust_decimal::Decimal = status.remaining.unwrap().to_string().parse().unwrap();
    let spent_usd: rust_decimal::Decimal = spent.parse().unwrap();
    assert_eq!(remaining, rust_decimal::Decimal::from(100) - spent_usd);
    assert!(status.period_start.is_some() && status.period_end.is_some());
    // The condition may first be written from an earlier poll's spend; wait for the one
    // that states the persisted spend.
    eventually("WithinBudget=True stating the persisted spend", || {
        h.condition::<LLMBudget>(GATEWAY_NS, "cap", "WithinBudget")
            .filter(|c| {
                c.status == ConditionStatus::True
                    && c.reason == "WithinBudget"
                    && c.message.contains(&spent)
            })
    })
    .await;

    // Restart: in-process counters start empty; the operator seeds the persisted spend.
    first.shutdown().await;
    let second = gateway_at(dir.path(), admin).await;
    let mut seen = String::new();
    for _ in 0..200 {
        seen = gateway_spent(&second).await;
        if seen == spent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(seen, spent, "the restarted gateway was not seeded");
    kubelet.abort();
    second.shutdown().await;
}
