//! Status is written by server-side apply under its own field manager: the operator owns
//! its conditions, `observedGeneration` and the printer columns' counts, and a condition
//! another tool applies survives.

use super::*;

#[tokio::test]
async fn status_is_applied_by_its_own_field_manager_and_leaves_others_conditions() {
    let fake = FakeApi::new();
    apply_yaml(&fake, OPENAI);
    let h = Harness::start(&fake, SecretPolicy::Any);
    h.wait_condition::<LLMRoute>(
        GATEWAY_NS,
        "chat",
        "Programmed",
        ConditionStatus::False,
        "NoGatewayPods",
    )
    .await;

    let status_writes: Vec<_> = fake
        .writes()
        .into_iter()
        .filter(|w| w.path.ends_with("/llmroutes/chat/status"))
        .collect();
    assert!(!status_writes.is_empty());
    for w in &status_writes {
        let query = w.query.as_deref().unwrap_or_default();
        assert!(
            query.contains("fieldManager=tollgate-operator-status") && query.contains("force=true"),
            "an apply by the status manager: {w:?}"
        );
    }
    let route = fake.get::<LLMRoute>(Some(GATEWAY_NS), "chat").unwrap();
    // The counts behind the MODELS and BACKENDS printer columns.
    assert_eq!(route.status.as_ref().unwrap().backend_count, Some(1));
    let provider = eventually("the provider's model count", || {
        fake.get::<LLMProvider>(Some(GATEWAY_NS), "openai")
            .filter(|p| p.status.as_ref().is_some_and(|s| s.model_count.is_some()))
    })
    .await;
    assert_eq!(provider.status.unwrap().model_count, Some(1));
    let managers: Vec<_> = route
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| (m.manager, m.operation, m.subresource))
        .collect();
    assert!(
        managers.contains(&(
            Some("tollgate-operator-status".into()),
            Some("Apply".into()),
            Some("status".into())
        )),
        "{managers:?}"
    );

    // Another tool applies a condition of its own type.
    let routes: Api<LLMRoute> = Api::namespaced(fake.client(), GATEWAY_NS);
    routes
        .patch_status(
            "chat",
            &PatchParams::apply("policy-checker"),
            &Patch::Apply(json!({
                "apiVersion": "llm.tollgate.dev/v1alpha1", "kind": "LLMRoute",
                "status": {"conditions": [{
                    "type": "PolicyChecked", "status": "True", "reason": "Checked",
                    "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z",
                }]},
            })),
        )
        .await
        .unwrap();

    // A new generation makes the operator apply its conditions again.
    h.set_aliases(GATEWAY_NS, "chat", &["chat-latest"]).await;
    eventually("the new generation observed", || {
        h.condition::<LLMRoute>(GATEWAY_NS, "chat", "Accepted")
            .filter(|c| c.observed_generation == Some(2))
    })
    .await;
    h.settle(Duration::from_millis(300)).await;
    let kept = h.condition::<LLMRoute>(GATEWAY_NS, "chat", "PolicyChecked");
    assert_eq!(
        kept.map(|c| c.reason),
        Some("Checked".to_owned()),
        "another manager's condition stays"
    );
}
