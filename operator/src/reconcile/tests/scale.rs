//! Measurements at cluster scale, not pass/fail checks of speed: the operator and a real
//! gateway against the in-memory API with `TOLLGATE_SCALE_ROUTES` routes (default 1,000)
//! over one provider per 20 routes in 10 team namespaces. Prints compile-and-write time,
//! config bytes, end-to-end time until every route is `Programmed`, API writes of the cold
//! start, of one team's oversized providers (blast radius) and of a silent gateway pod, and
//! how many requests fail while the gateway reloads the big config under load.
//! Run: `just scale` (or `just scale 10000`). Debug build: absolute times are pessimistic.

use std::collections::BTreeSet;

use tollgate_gateway::{
    config::ConfigSource,
    resilience::health::HealthSettings,
    server::{self, Options},
};

use super::{with_gateway::mirror, *};

const TEAMS: usize = 10;

/// Waits up to `limit` for `check`.
async fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until no write happened for `quiet` (at most two minutes).
async fn settle(fake: &FakeApi, quiet: Duration) {
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

/// Writes since the last reset: (status patches, Events, all), counting only objects
/// outside `except_namespace`.
fn count_writes(fake: &FakeApi, except_namespace: &str) -> (usize, usize, usize) {
    let skip = format!("/namespaces/{except_namespace}/");
    let writes: Vec<_> = fake
        .writes()
        .into_iter()
        .filter(|w| !w.path.contains(&skip))
        .collect();
    let status = writes
        .iter()
        .filter(|w| w.path.ends_with("/status"))
        .count();
    let events = writes
        .iter()
        .filter(|w| w.path.ends_with("/events"))
        .count();
    (status, events, writes.len())
}

/// Waits until the newest generation of `team-N/rN` is `Programmed` again, then for quiet:
/// at 10,000 routes a debug-build compile takes longer than any quiet period.
async fn programmed_again(h: &Harness, route: usize) {
    let (ns, name) = (format!("team-{}", route % TEAMS), format!("r{route}"));
    wait_for("programmed again", Duration::from_secs(300), || {
        let generation = h
            .fake
            .get::<LLMRoute>(Some(&ns), &name)?
            .metadata
            .generation;
        h.condition::<LLMRoute>(&ns, &name, "Programmed")
            .filter(|c| c.status == ConditionStatus::True && c.observed_generation == generation)
    })
    .await;
    settle(&h.fake, Duration::from_secs(3)).await;
}

fn seed_cluster(fake: &FakeApi, routes: usize) -> usize {
    let providers = (routes / 20).max(TEAMS);
    for i in 0..providers {
        fake.seed_json(json!({
            "apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "LLMProvider",
            "metadata": {"name": format!("p{i}"), "namespace": format!("team-{}", i % TEAMS)},
            "spec": {"type": "mock", "models": [
                {"name": "m1", "pricing": {"input": "0", "output": "0"}},
                {"name": "m2", "pricing": {"input": "0", "output": "0"}}]},
        }))
        .unwrap();
    }
    let per_team = providers / TEAMS;
    for j in 0..routes {
        let team = j % TEAMS;
        let provider = |k: usize| format!("p{}", ((j / TEAMS + k) % per_team) * TEAMS + team);
        fake.seed_json(json!({
            "apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "LLMRoute",
            "metadata": {"name": format!("r{j}"), "namespace": format!("team-{team}")},
            "spec": {
                "model": format!("model-{j}"),
                "backends": [{"providerRef": {"name": provider(0)}, "model": "m1"},
                             {"providerRef": {"name": provider(1)}, "model": "m1"}],
                "fallbacks": [{"providerRef": {"name": provider(2)}, "model": "m2"}],
            },
        }))
        .unwrap();
    }
    providers
}

/// Sends chat requests from two workers until `stop` is set (bounded: at most `max`
/// requests and 120 s). Returns (sent, failed).
async fn load(
    api: SocketAddr,
    routes: usize,
    max: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (usize, usize) {
    use std::sync::atomic::Ordering;
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let worker = |w: usize| {
        let client = client.clone();
        let stop = stop.clone();
        async move {
            let (mut sent, mut failed) = (0, 0);
            while !stop.load(Ordering::Relaxed) && sent < max / 2 && Instant::now() < deadline {
                let model = format!("model-{}", (sent * 7919 + w) % routes);
                let ok = client
                    .post(format!("http://{api}/v1/chat/completions"))
                    .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                sent += 1;
                failed += usize::from(!ok);
            }
            (sent, failed)
        }
    };
    let (a, b) = tokio::join!(worker(0), worker(1));
    (a.0 + b.0, a.1 + b.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement taking minutes; run it with `just scale`"]
async fn measure_at_scale() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let routes: usize = std::env::var("TOLLGATE_SCALE_ROUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let fake = FakeApi::new();
    let providers = seed_cluster(&fake, routes);
    let objects = routes + providers;
    let started = Instant::now();
    let h = Harness::start(&fake, SecretPolicy::Any);
    let cm = wait_for("the ConfigMap", Duration::from_secs(300), || h.config_map()).await;
    let written = started.elapsed();
    let (file, bytes) = match (&cm.data, &cm.binary_data) {
        (Some(d), _) if !d.is_empty() => (CONFIG_FILE, d.values().map(String::len).sum()),
        (_, Some(b)) => (
            "gateway.json.gz",
            b.values().map(|v| v.0.len()).sum::<usize>(),
        ),
        _ => panic!("an empty ConfigMap"),
    };
    println!(
        "scale: {routes} routes, {providers} providers: ConfigMap written after {:.2} s ({file}, {bytes} bytes)",
        written.as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    let kubelet = mirror(fake.clone(), dir.path().to_path_buf());
    tollgate_gateway::install_crypto_provider();
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
    let last = format!("r{}", routes - 1);
    let last_ns = format!("team-{}", (routes - 1) % TEAMS);
    wait_for("every route programmed", Duration::from_secs(600), || {
        h.condition::<LLMRoute>(&last_ns, &last, "Programmed")
            .filter(|c| c.status == ConditionStatus::True)
    })
    .await;
    let programmed = started.elapsed();
    settle(&fake, Duration::from_secs(2)).await;
    let (status, events, all) = count_writes(&fake, "-");
    println!(
        "scale: every route Programmed after {:.2} s; cold start of {objects} objects: {all} API writes ({status} status, {events} Events)",
        programmed.as_secs_f64()
    );

    // Reload of the big config under load: a route gains an alias while requests flow.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = tokio::spawn(load(gateway.api_addr, routes, 20_000, stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    h.set_aliases("team-0", "r0", &["reloaded"]).await;
    let reload_started = Instant::now();
    let models = format!("http://{}/v1/models", gateway.api_addr);
    let mut reloaded = false;
    while reload_started.elapsed() < Duration::from_secs(120) && !reloaded {
        tokio::time::sleep(Duration::from_millis(200)).await;
        reloaded = reqwest::get(&models)
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("\"reloaded\"");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (sent, failed) = traffic.await.unwrap();
    println!(
        "scale: reload under load: {} after {:.2} s; {sent} requests, {failed} failed",
        if reloaded { "served" } else { "NOT served" },
        reload_started.elapsed().as_secs_f64()
    );
    programmed_again(&h, 0).await;

    // Blast radius: one team adds providers whose config cannot fit even compressed.
    fake.reset_writes();
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
            "metadata": {"name": format!("big-{i}"), "namespace": "team-noisy"},
            "spec": {"type": "openai-compatible", "baseURL": "http://vllm:8000/v1", "headers": headers,
                     "models": [{"name": "m", "pricing": {"input": "0", "output": "0"}}]},
        }))
        .unwrap();
    }
    wait_for("the noisy team told", Duration::from_secs(120), || {
        h.condition::<LLMProvider>("team-noisy", "big-0", "Ready")
            .filter(|c| c.status == ConditionStatus::False)
    })
    .await;
    h.set_aliases("team-1", "r1", &["still-flowing"]).await;
    let flowed = {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = false;
        while !seen && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            seen = reqwest::get(&models)
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
                .contains("\"still-flowing\"");
        }
        seen
    };
    settle(&fake, Duration::from_secs(2)).await;
    let (status, events, all) = count_writes(&fake, "team-noisy");
    println!(
        "scale: blast radius of one team's oversized providers: {all} writes on other teams' objects ({status} status, {events} Events); another team's change reached the gateway: {flowed}"
    );
    for i in 0..40 {
        fake.remove::<LLMProvider>(Some("team-noisy"), &format!("big-{i}"))
            .unwrap();
    }
    programmed_again(&h, 1).await;

    // A gateway pod goes silent.
    fake.reset_writes();
    gateway.shutdown().await;
    // Many times the misses a pod once was allowed (50 ms polls in this harness).
    tokio::time::sleep(Duration::from_secs(5)).await;
    settle(&fake, Duration::from_secs(3)).await;
    let (status, events, all) = count_writes(&fake, "-");
    let namespaces: BTreeSet<String> = fake
        .writes()
        .iter()
        .filter_map(|w| w.path.split("/namespaces/").nth(1))
        .filter_map(|p| p.split('/').next().map(str::to_owned))
        .collect();
    println!(
        "scale: the only gateway pod went silent: {all} API writes ({status} status, {events} Events) in namespaces {namespaces:?}"
    );
    kubelet.abort();
}
