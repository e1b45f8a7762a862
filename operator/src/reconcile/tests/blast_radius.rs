//! One team's config too large for the ConfigMap: the objects that make it too large are
//! reported on themselves and left out (newest first), everyone else's objects see no write,
//! and another team's change still reaches the gateway.

use super::*;

const TEAMS: usize = 5;
const NOISY: &str = "team-noisy";

/// Five teams with a mock provider and four routes each.
fn seed_teams(fake: &FakeApi) {
    for t in 0..TEAMS {
        let ns = format!("team-{t}");
        fake.seed_json(json!({
            "apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "LLMProvider",
            "metadata": {"name": "mock", "namespace": ns},
            "spec": {"type": "mock", "models": [{"name": "m", "pricing": {"input": "0", "output": "0"}}]},
        }))
        .unwrap();
        for r in 0..4 {
            fake.seed_json(json!({
                "apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "LLMRoute",
                "metadata": {"name": format!("r{r}"), "namespace": ns},
                "spec": {"model": format!("{ns}-r{r}"), "backends": [{"providerRef": {"name": "mock"}, "model": "m"}]},
            }))
            .unwrap();
        }
    }
}

/// 40 providers with 16 headers of 4 KB of noise each: about 2.6 MB of config that gzip
/// cannot bring under 1 MiB.
fn seed_noisy_providers(fake: &FakeApi) {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut noise = || {
        (0..250)
            .map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                format!("{:016x}", seed >> 1)
            })
            .collect::<String>()
    };
    for i in 0..40 {
        let headers: Vec<Value> = (0..16)
            .map(|j| json!({"name": format!("x-h{j}"), "value": noise()}))
            .collect();
        fake.seed_json(json!({
            "apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "LLMProvider",
            "metadata": {"name": format!("big-{i}"), "namespace": NOISY},
            "spec": {"type": "openai-compatible", "baseURL": "http://vllm:8000/v1", "headers": headers,
                     "models": [{"name": "m", "pricing": {"input": "0", "output": "0"}}]},
        }))
        .unwrap();
    }
}

/// Waits until no write happened for `quiet` (large compiles in a debug build are slow).
async fn settle_long(fake: &FakeApi, quiet: Duration) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = fake.write_count();
    let mut since = Instant::now();
    while since.elapsed() < quiet {
        assert!(Instant::now() < deadline, "the operator never went quiet");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = fake.write_count();
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
}

/// The ConfigMap's config, plain or gzip-compressed, read as the gateway reads it.
fn config_text(cm: &ConfigMap) -> String {
    let dir = tempfile::tempdir().unwrap();
    let files = cm
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .chain(
            cm.binary_data
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0)),
        );
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    tollgate_crds::mount::read_config_text(dir.path()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_teams_oversized_providers_are_left_out_and_nobody_else_is_written() {
    let fake = FakeApi::new();
    seed_teams(&fake);
    let gateway = FakeGateway::spawn().await;
    fake.seed_json(gateway.pod("gateway-0")).unwrap();
    let h = Harness::start(&fake, SecretPolicy::Any);
    let first = eventually("the first config", || h.config_map()).await;
    gateway.load(&first);
    for t in 0..TEAMS {
        h.wait_condition::<LLMRoute>(
            &format!("team-{t}"),
            "r3",
            "Ready",
            ConditionStatus::True,
            "Ready",
        )
        .await;
    }
    settle_long(&fake, Duration::from_millis(500)).await;

    fake.reset_writes();
    seed_noisy_providers(&fake);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let told: Vec<Condition> = (0..40)
            .filter_map(|i| h.condition::<LLMProvider>(NOISY, &format!("big-{i}"), "Ready"))
            .collect();
        if told.len() == 40 && told.iter().any(|c| c.reason == "ConfigTooLarge") {
            break;
        }
        assert!(Instant::now() < deadline, "the noisy team was never told");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    settle_long(&fake, Duration::from_secs(1)).await;

    let others: Vec<crate::testing::RecordedRequest> = fake
        .writes()
        .into_iter()
        .filter(|w| (0..TEAMS).any(|t| w.path.contains(&format!("/namespaces/team-{t}/"))))
        .collect();
    let status = others
        .iter()
        .filter(|w| w.path.ends_with("/status"))
        .count();
    let events = others
        .iter()
        .filter(|w| w.path.ends_with("/events"))
        .count();
    println!(
        "blast radius: {} writes on the other teams' {} objects ({status} status, {events} Events)",
        others.len(),
        TEAMS * 5
    );
    assert!(
        others.is_empty(),
        "writes on other teams' objects: {others:?}"
    );

    // The noisy team is told, on the objects left out, why and what to do.
    let left_out: Vec<(String, Condition)> = (0..40)
        .map(|i| format!("big-{i}"))
        .filter_map(|name| {
            let c = h.condition::<LLMProvider>(NOISY, &name, "Accepted")?;
            (c.reason == "ConfigTooLarge").then_some((name, c))
        })
        .collect();
    assert!(
        !left_out.is_empty() && left_out.len() < 40,
        "only what does not fit is left out: {left_out:?}"
    );
    let (name, condition) = &left_out[0];
    assert!(
        condition.message.contains("ConfigMap limit"),
        "{}",
        condition.message
    );
    h.wait_warning(NOISY, name, "ConfigTooLarge").await;

    // Another team's change keeps flowing.
    h.set_aliases("team-1", "r1", &["still-flowing"]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !h
        .config_map()
        .is_some_and(|cm| config_text(&cm).contains("\"still-flowing\""))
    {
        assert!(
            Instant::now() < deadline,
            "another team's change never reached the ConfigMap"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
