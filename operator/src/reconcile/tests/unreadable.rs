//! One object the operator cannot read (it passes the API server's schema but not the
//! operator's types) is reported on itself; its kind's watch and everyone else go on.

use super::*;

const BAD_ROUTE: &str = r#"
apiVersion: llm.tollgate.dev/v1alpha1
kind: LLMRoute
metadata: {name: bad, namespace: tollgate-system}
spec:
  model: bad
  backends:
    - providerRef: {name: openai}
      model: gpt-4o-mini
      weight: 99999999999
"#;

#[tokio::test]
async fn an_unreadable_object_is_reported_and_the_others_are_compiled() {
    let fake = FakeApi::new();
    apply_yaml(&fake, OPENAI);
    apply_yaml(&fake, BAD_ROUTE);
    let h = Harness::start(&fake, SecretPolicy::Any);

    // The readable route is compiled although the list of routes holds an unreadable one.
    let config = eventually("the first config", || h.config()).await;
    let models: Vec<&str> = config["routes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["model"].as_str())
        .collect();
    assert_eq!(models, vec!["chat"]);

    // The unreadable one says why, on itself.
    let accepted = eventually("the unreadable route told", || {
        let stored = fake.get_json::<LLMRoute>(Some(GATEWAY_NS), "bad")?;
        let conditions: Vec<Condition> =
            serde_json::from_value(stored["status"]["conditions"].clone()).ok()?;
        conditions
            .into_iter()
            .find(|c| c.type_ == "Accepted" && c.reason == "Unreadable")
    })
    .await;
    assert_eq!(accepted.status, ConditionStatus::False);
    assert!(
        accepted.message.contains("cannot read this object") && accepted.message.contains("weight"),
        "{}",
        accepted.message
    );
    h.wait_warning(GATEWAY_NS, "bad", "Unreadable").await;
    h.settle(Duration::from_millis(300)).await;
    // Reported once, however often the controllers re-check everything.
    h.ctx.trigger_status();
    h.settle(Duration::from_millis(300)).await;
    let events = h
        .events_for(GATEWAY_NS, "bad")
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Unreadable"))
        .count();
    assert_eq!(events, 1);
    assert!(
        h.ctx
            .metrics
            .encode()
            .contains(r#"tollgate_operator_problems{reason="Unreadable"} 1"#)
    );

    // Fixed, it is compiled like any other.
    let routes: Api<LLMRoute> = Api::namespaced(fake.client(), GATEWAY_NS);
    routes
        .patch(
            "bad",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"backends": [{"providerRef": {"name": "openai"}, "model": "gpt-4o-mini", "weight": 1}]}})),
        )
        .await
        .unwrap();
    eventually("the fixed route in the config", || {
        h.config()
            .filter(|c| c["routes"].as_array().is_some_and(|r| r.len() == 2))
    })
    .await;
    h.wait_condition::<LLMRoute>(
        GATEWAY_NS,
        "bad",
        "Accepted",
        ConditionStatus::True,
        "Accepted",
    )
    .await;
}
