//! Route guardrails: compiled with defaults, bad patterns refused naming the field.

use serde_json::json;

use super::*;
use crate::config::{Detector, DetectorConfig, GuardrailAction, GuardrailScope, GuardrailsConfig};

fn guarded(guardrails: serde_json::Value) -> World {
    let mut w = World::new();
    w.routes.push(route(
        "guarded",
        "2026-01-01T00:00:00Z",
        json!({"model": "guarded", "backends": [backend("mock", "mock-chat")], "guardrails": guardrails}),
    ));
    w
}

#[test]
fn guardrails_compile_with_defaults_and_detectors_in_order() {
    let c = guarded(json!({
        "maxPromptTokens": 1000,
        "blockedPatterns": ["(?i)project\\s+falcon"],
        "pii": {"secrets": "block", "email": "redact", "ipAddress": "flag"},
        "promptInjection": "flag",
    }))
    .compile();
    assert!(c.problems.is_empty(), "{:#?}", c.problems);
    assert_eq!(
        c.config.routes[0].guardrails,
        Some(GuardrailsConfig {
            max_prompt_tokens: Some(1000),
            blocked_patterns: vec!["(?i)project\\s+falcon".into()],
            pii: vec![
                DetectorConfig {
                    detector: Detector::Email,
                    action: GuardrailAction::Redact
                },
                DetectorConfig {
                    detector: Detector::IpAddress,
                    action: GuardrailAction::Flag
                },
                DetectorConfig {
                    detector: Detector::Secrets,
                    action: GuardrailAction::Block
                },
            ],
            prompt_injection: Some(GuardrailAction::Flag),
            applies_to: GuardrailScope::Prompt,
        })
    );
    assert!(c.config.validate().is_ok());
}

#[test]
fn the_old_two_field_form_still_compiles() {
    let c = guarded(json!({"maxPromptTokens": 10, "blockedPatterns": ["password"]})).compile();
    assert!(c.problems.is_empty(), "{:#?}", c.problems);
    let g = c.config.routes[0].guardrails.as_ref().unwrap();
    assert_eq!(g.applies_to, GuardrailScope::Prompt);
    assert!(g.pii.is_empty());
}

#[test]
fn bad_patterns_are_refused_naming_the_field() {
    let c = guarded(json!({"blockedPatterns": ["ok", "a(b", "\\w{1000}{1000}"]})).compile();
    assert_eq!(
        summary(&c),
        vec![
            (
                "guarded".into(),
                "spec.guardrails.blockedPatterns[1]".into(),
                Reason::Invalid
            ),
            (
                "guarded".into(),
                "spec.guardrails.blockedPatterns[2]".into(),
                Reason::Invalid
            ),
        ]
    );
    assert!(
        c.problems[1].message.contains("size limit"),
        "{}",
        c.problems[1].message
    );
    assert!(c.config.routes.is_empty());
}

#[test]
fn patterns_that_check_answers_must_be_bounded() {
    let prompt_only = guarded(json!({"blockedPatterns": ["secret.*"]})).compile();
    assert!(
        prompt_only.problems.is_empty(),
        "{:#?}",
        prompt_only.problems
    );
    let c = guarded(json!({"blockedPatterns": ["secret.*"], "appliesTo": "both"})).compile();
    assert_eq!(
        summary(&c),
        vec![(
            "guarded".into(),
            "spec.guardrails.blockedPatterns[0]".into(),
            Reason::Invalid
        )]
    );
    assert!(
        c.problems[0].message.contains("unbounded"),
        "{}",
        c.problems[0].message
    );
}

#[test]
fn empty_guardrails_are_invalid() {
    let c = guarded(json!({"appliesTo": "both"})).compile();
    assert_eq!(c.problems.len(), 1, "{:#?}", c.problems);
    assert_eq!(c.problems[0].reason, Reason::Invalid);
    assert!(
        c.problems[0].message.contains("guardrails needs"),
        "{}",
        c.problems[0].message
    );
    let c = guarded(json!({"pii": {}})).compile();
    assert_eq!(c.problems.len(), 1, "{:#?}", c.problems);
}

#[test]
fn a_hand_edited_config_with_a_bad_pattern_is_refused() {
    let mut c = guarded(json!({"blockedPatterns": ["x"]})).compile();
    c.config.routes[0]
        .guardrails
        .as_mut()
        .unwrap()
        .blocked_patterns = vec!["a(".into()];
    let e = c.config.validate().unwrap_err().to_string();
    assert!(e.contains("guardrails.blockedPatterns[0]"), "{e}");
}
