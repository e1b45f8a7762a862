//! Golden translations: an Anthropic request as each non-Anthropic backend receives it, and
//! what is refused. `UPDATE_GOLDEN=1` rewrites the expected files (review the diff).

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tollgate_crds::config::{AzureConfig, ProviderConfig, ProviderType};

use super::*;
use crate::{
    pipeline::{Operation, messages::Messages},
    providers::{Adapter, Secret, SecretString, Target},
    wire::anthropic::MessagesRequest,
};

pub(crate) const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/messages");

/// Compares `actual` with the fixture `name` (or writes it under `UPDATE_GOLDEN`).
pub(crate) fn golden(name: &str, actual: &str) {
    let path = format!("{FIXTURES}/{name}");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{path} is missing: run with UPDATE_GOLDEN=1 and review it"));
    assert_eq!(actual, expected, "{name}");
}

pub(crate) fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
}

const TYPES: [ProviderType; 6] = [
    ProviderType::OpenAI,
    ProviderType::AzureOpenAI,
    ProviderType::OpenAICompatible,
    ProviderType::Gemini,
    ProviderType::Bedrock,
    ProviderType::Mock,
];

fn provider(kind: ProviderType) -> ProviderConfig {
    ProviderConfig {
        id: "ns/p".into(),
        provider_type: kind,
        base_url: Some("https://api.example.com".into()),
        credentials: vec![],
        azure: (kind == ProviderType::AzureOpenAI).then(|| AzureConfig {
            api_version: "2024-10-21".into(),
            deployments: Default::default(),
        }),
        bedrock_region: (kind == ProviderType::Bedrock).then(|| "us-east-1".into()),
        models: vec![],
        limits: None,
        headers: vec![],
    }
}

fn request(body: &str) -> MessagesRequest {
    serde_json::from_str(body).unwrap()
}

/// The upstream body a backend of `kind` receives for `body`.
fn upstream(kind: ProviderType, body: &str) -> Result<Value, RequestError> {
    let p = provider(kind);
    let secret = Secret::ApiKey(SecretString::new("k"));
    let target = Target {
        provider: &p,
        model: "backend-model",
        secret: (kind != ProviderType::Bedrock).then_some(&secret),
        request_id: "req-1",
        created: 1,
        answers_checked: false,
    };
    let up = Messages::translate(&Adapter::for_type(kind), &target, &request(body))?;
    Ok(serde_json::from_slice(&up.body).unwrap())
}

#[test]
fn requests_translate_for_every_backend_type() {
    for case in ["request_agent", "request_simple"] {
        let body = fixture(&format!("{case}.json"));
        for kind in TYPES {
            let up = upstream(kind, &body).unwrap_or_else(|e| panic!("{case} {kind:?}: {e}"));
            let text = serde_json::to_string_pretty(&up).unwrap() + "\n";
            golden(&format!("{case}.{}.json", kind.as_str()), &text);
        }
    }
}

/// The refusal for `body` on a backend of `kind`: its parameter.
fn refused(kind: ProviderType, body: Value) -> RequestError {
    let mut body = body;
    body["model"] = json!("m");
    body["max_tokens"] = json!(10);
    upstream(kind, &body.to_string()).unwrap_err()
}

fn user(content: Value) -> Value {
    json!({"messages": [{"role": "user", "content": content}]})
}

#[test]
fn what_chat_backends_cannot_express_is_refused_naming_the_field() {
    let cases = [
        (
            json!({"thinking": {"type": "enabled", "budget_tokens": 2000}, "messages": [{"role": "user", "content": "x"}]}),
            "thinking",
        ),
        (
            user(
                json!([{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "d"}}]),
            ),
            "messages[0].content[0]",
        ),
        (
            user(json!([{"type": "image", "source": {"type": "file", "file_id": "file_1"}}])),
            "messages[0].content[0].source.type",
        ),
        (
            user(json!([{"type": "text", "text": "x", "citations": [{"type": "char_location"}]}])),
            "messages[0].content[0].citations",
        ),
        (
            json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}], "messages": [{"role": "user", "content": "x"}]}),
            "tools[0].type",
        ),
        (
            json!({"service_tier": "priority", "messages": [{"role": "user", "content": "x"}]}),
            "service_tier",
        ),
    ];
    for kind in TYPES {
        for (body, param) in &cases {
            let e = refused(kind, body.clone());
            assert_eq!(e.param.as_deref(), Some(*param), "{kind:?}: {e}");
            assert!(
                e.message.contains(kind.as_str()) || param.ends_with("type"),
                "{e}"
            );
        }
    }
}

#[test]
fn top_k_reaches_only_backends_that_take_it() {
    let body = json!({"top_k": 5, "messages": [{"role": "user", "content": "x"}]});
    for kind in [ProviderType::OpenAI, ProviderType::AzureOpenAI] {
        assert_eq!(refused(kind, body.clone()).param.as_deref(), Some("top_k"));
    }
    let mut ok = body;
    ok["model"] = json!("m");
    ok["max_tokens"] = json!(10);
    let up = upstream(ProviderType::OpenAICompatible, &ok.to_string()).unwrap();
    assert_eq!(up["top_k"], 5);
}

#[test]
fn disabled_thinking_and_unset_fields_are_not_refused() {
    let body = json!({"model": "m", "max_tokens": 5, "thinking": {"type": "disabled"},
        "service_tier": null, "messages": [{"role": "user", "content": "x"}]});
    for kind in TYPES {
        assert!(upstream(kind, &body.to_string()).is_ok(), "{kind:?}");
    }
}

#[test]
fn one_tool_call_at_most_is_refused_where_it_cannot_be_enforced() {
    let body = json!({"tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "tools": [{"name": "t", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": "x"}]});
    for kind in [ProviderType::Gemini, ProviderType::Bedrock] {
        assert_eq!(
            refused(kind, body.clone()).param.as_deref(),
            Some("tool_choice.disable_parallel_tool_use")
        );
    }
}
