//! What wakes the config task: a spec change, an object appearing or going; not a status
//! write (the operator's own after every compile, or another tool's), which would cost a
//! whole recompile each time.

use super::*;

/// Compile-and-write rounds run so far.
fn rounds(h: &Harness) -> u64 {
    let text = h.ctx.metrics.encode();
    text.lines()
        .find_map(|l| l.strip_prefix(r#"tollgate_operator_reconciles_total{kind="config"} "#))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn status_writes_do_not_recompile_and_spec_changes_do() {
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
    h.settle(Duration::from_millis(300)).await;
    let before = rounds(&h);

    // Another tool writes status.
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
    h.settle(Duration::from_millis(300)).await;
    assert_eq!(rounds(&h), before, "a status write wakes no compile");

    h.set_aliases(GATEWAY_NS, "chat", &["chat-latest"]).await;
    eventually("a compile of the new spec", || {
        (rounds(&h) > before).then_some(())
    })
    .await;
}
