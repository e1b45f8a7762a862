//! The operator against a real API server: it runs in-process, scoped to a fresh namespace
//! (watched namespace, gateway namespace and Lease all there), and must write the gateway's
//! ConfigMap and Secret and the status of the quickstart objects.
//!
//! Ignored by default (`just e2e` runs it); without a reachable cluster it then prints one
//! `SKIP e2e: …` line and returns.

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use tollgate_crds::{LLMRoute, conditions::ConditionStatus, config::CONFIG_FILE};
use tollgate_e2e::{
    apply_manifest, cluster, install_crds, poll_until, read_manifests, samples_dir, with_namespace,
};
use tollgate_operator::{
    health::Health,
    leader::LeaseSettings,
    metrics::Metrics,
    render::GatewayObjects,
    run::{RunOptions, run},
    settings::{ApiLimits, SecretPolicy, Settings, Timings},
};

#[tokio::test]
#[ignore = "needs a Kubernetes cluster; run with `just e2e`"]
async fn the_operator_writes_config_and_status_for_the_quickstart() {
    let Some(client) = cluster().await else {
        return;
    };
    install_crds(&client).await.expect("CRDs install");
    let manifests = read_manifests(&samples_dir()).expect("samples parse");
    let result = with_namespace(&client, |client, ns| async move {
        for m in manifests.iter().filter(|m| m.source.contains("quickstart")) {
            apply_manifest(&client, &ns, &m.object)
                .await
                .expect("quickstart applies");
        }
        let options = RunOptions {
            settings: Settings {
                watch_namespaces: vec![ns.clone()],
                operator_namespace: ns.clone(),
                gateway: GatewayObjects {
                    namespace: ns.clone(),
                    ..GatewayObjects::default()
                },
                pod_selector: "app.kubernetes.io/component=gateway".into(),
                admin_port: 9090,
                secrets: SecretPolicy::Only([ns.clone()].into()),
                timings: Timings::default(),
                deployment: None,
                limits: ApiLimits::default(),
            },
            lease: Some(LeaseSettings {
                name: "tollgate-operator".into(),
                namespace: ns.clone(),
                identity: "e2e".into(),
                duration: Duration::from_secs(15),
            }),
            identity: "e2e".into(),
        };
        let operator = tokio::spawn(run(
            client.clone(),
            options,
            Arc::new(Health::default()),
            Arc::new(Metrics::new()),
            std::future::pending(),
        ));

        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
        let config = poll_until(
            "the gateway ConfigMap",
            Duration::from_secs(60),
            Duration::from_millis(500),
            || async {
                let cm = maps
                    .get_opt("tollgate-gateway-config")
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("not written yet")?;
                cm.data
                    .and_then(|d| d.get(CONFIG_FILE).cloned())
                    .ok_or_else(|| "no gateway.json".to_owned())
            },
        )
        .await
        .expect("the operator writes the config");
        assert!(config.contains("\"demo\""), "{config}");

        let routes: Api<LLMRoute> = Api::namespaced(client.clone(), &ns);
        poll_until(
            "route demo Accepted and ResolvedRefs",
            Duration::from_secs(60),
            Duration::from_millis(500),
            || async {
                let route = routes.get("demo").await.map_err(|e| e.to_string())?;
                let conditions = route.status.map(|s| s.conditions).unwrap_or_default();
                let ok = |t: &str| {
                    conditions
                        .iter()
                        .any(|c| c.type_ == t && c.status == ConditionStatus::True)
                };
                // No gateway pods run in this namespace, so Programmed stays False.
                let programmed = conditions
                    .iter()
                    .any(|c| c.type_ == "Programmed" && c.reason == "NoGatewayPods");
                if ok("Accepted") && ok("ResolvedRefs") && programmed {
                    Ok(())
                } else {
                    Err(format!("conditions so far: {conditions:?}"))
                }
            },
        )
        .await
        .expect("the operator writes the route's status");
        operator.abort();
    })
    .await;
    result.expect("namespace lifecycle");
}
