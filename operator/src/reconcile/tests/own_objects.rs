//! The gateway's ConfigMap and Secret are repaired at once (not at the 5-minute resync)
//! when someone edits or deletes them, and the operator's own writes wake nothing.

use super::*;

fn config_map_patches(fake: &FakeApi) -> usize {
    fake.writes()
        .iter()
        .filter(|w| w.path.ends_with("/configmaps/tollgate-gateway-config"))
        .count()
}

#[tokio::test]
async fn an_edited_or_deleted_config_map_or_secret_is_repaired_at_once() {
    let fake = FakeApi::new();
    apply_yaml(&fake, OPENAI);
    let h = Harness::start(&fake, SecretPolicy::Any);
    let written = eventually("the first config", || h.config_map()).await;
    let keys = eventually("the gateway Secret", || h.gateway_secret()).await;
    h.settle(Duration::from_millis(300)).await;
    let before = config_map_patches(&fake);

    // Someone edits the config by hand.
    let maps: Api<ConfigMap> = Api::namespaced(fake.client(), GATEWAY_NS);
    maps.patch(
        "tollgate-gateway-config",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {CONFIG_FILE: "{}"}})),
    )
    .await
    .unwrap();
    eventually("the config restored", || {
        (h.config_map()?.data == written.data).then_some(())
    })
    .await;
    h.settle(Duration::from_millis(500)).await;
    assert_eq!(
        config_map_patches(&fake) - before,
        2,
        "the edit and one repair, no write loop"
    );

    // Someone deletes the ConfigMap, then the Secret.
    fake.remove::<ConfigMap>(Some(GATEWAY_NS), "tollgate-gateway-config")
        .unwrap();
    eventually("the ConfigMap recreated", || {
        (h.config_map()?.data == written.data).then_some(())
    })
    .await;
    fake.remove::<Secret>(Some(GATEWAY_NS), "tollgate-gateway-keys")
        .unwrap();
    eventually("the Secret recreated", || {
        (h.gateway_secret()? == keys).then_some(())
    })
    .await;
    h.settle(Duration::from_millis(500)).await;

    // Our own writes were never taken for someone else's.
    let metrics = h.ctx.metrics.encode();
    assert!(
        metrics.contains(r#"tollgate_operator_config_drift_total{object="configmap"} 2"#)
            && metrics.contains(r#"tollgate_operator_config_drift_total{object="secret"} 1"#),
        "{metrics}"
    );
}
